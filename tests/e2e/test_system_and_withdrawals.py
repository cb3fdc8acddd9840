"""``/v5/system/status`` and ``/v5/asset/withdraw/query-record`` through ccxt's and pybit's own
methods: maintenance windows a test announces, and the (always empty) withdrawal records."""

from __future__ import annotations

import ccxt
import pytest

from bybit_mock import MockExchange

from .conftest import now_ms, pybit_http
from .test_rest_ccxt import ccxt_bybit


@pytest.fixture
def mock(bybit_mock: MockExchange) -> MockExchange:
    bybit_mock.state.reset()  # no window left by another test
    return bybit_mock


def test_ccxt_fetch_status_follows_an_announced_maintenance_window(mock: MockExchange) -> None:
    client = ccxt_bybit(mock)
    assert client.fetch_status()["status"] == "ok"
    now = now_ms()
    mock.state.add_maintenance("upcoming", now + 3_600_000, now + 7_200_000)
    assert client.fetch_status()["status"] == "ok"  # scheduled only
    ongoing = mock.state.add_maintenance("now", now - 1000, now + 60_000, href="https://example.test/m")
    status = client.fetch_status()
    assert status["status"] == "maintenance"
    assert status["eta"] == now + 60_000 and status["url"] == "https://example.test/m"
    mock.state.reset()
    assert client.fetch_status()["status"] == "ok"
    assert ongoing  # an id, for the query below in pybit's test


def test_pybit_system_status_lists_windows_with_bybit_fields(mock: MockExchange) -> None:
    now = now_ms()
    done = mock.state.add_maintenance("past", now - 7_200_000, now - 3_600_000, maintain_type=3)
    mock.state.add_maintenance("next", now + 3_600_000, now + 7_200_000, product=(1,))
    session = pybit_http(mock)
    listed = session.get_system_status()["result"]["list"]
    assert [w["title"] for w in listed] == ["next", "past"]  # newest first
    assert [w["state"] for w in listed] == ["scheduled", "completed"]
    assert list(listed[1]) == [
        "id", "title", "state", "begin", "end", "href", "serviceTypes", "product", "uidSuffix", "maintainType", "env",
    ]  # fmt: skip
    assert listed[0]["product"] == [1] and listed[1]["maintainType"] == 3 and listed[1]["begin"] == str(now - 7_200_000)

    def status(**query: str) -> list[dict[str, object]]:  # pybit's method takes no filters
        path = f"{session.endpoint}/v5/system/status"
        answer = session._submit_request(method="GET", path=path, query=query)
        listed: list[dict[str, object]] = answer["result"]["list"]
        return listed

    assert [w["id"] for w in status(id=done)] == [done]
    assert status(state="ongoing") == []
    with pytest.raises(Exception, match="10001"):
        status(state="sleeping")


def test_withdrawal_records_are_empty_with_bybit_shape(mock: MockExchange) -> None:
    assert ccxt_bybit(mock).fetch_withdrawals("USDT") == []
    result = pybit_http(mock).get_withdrawal_records(coin="USDT")["result"]
    assert result == {"rows": [], "nextPageCursor": ""}
    with pytest.raises(Exception, match="10001"):  # Bybit's 30-day rule, checked
        pybit_http(mock).get_withdrawal_records(startTime=now_ms() - 40 * 86_400_000, endTime=now_ms())
    with pytest.raises(ccxt.AuthenticationError):  # signed, as on Bybit
        client = ccxt_bybit(mock)
        client.secret = "wrong"
        client.fetch_withdrawals("USDT")
