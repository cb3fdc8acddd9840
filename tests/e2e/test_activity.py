"""Private activity over real sockets: a private ``websockets`` client receives an account's
activity at its configured rate; consistent activity agrees with REST, canned activity does not
exist for REST."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import AccountConfig, MockExchange, MockExchangeConfig
from bybit_mock.bybit.auth import ws_auth_signature
from bybit_mock.config import ActivityConfig

from .conftest import now_ms, pybit_http
from .streams import collect
from .test_ws import ask

RATE = 100  # events/s per account
CONSISTENT = AccountConfig(
    "activity-consistent", "s1", {"USDT": Decimal(100000)}, activity=ActivityConfig("consistent", RATE)
)
CANNED = AccountConfig("activity-canned", "s2", {"USDT": Decimal(100000)}, activity=ActivityConfig("canned", RATE))


@pytest.fixture(scope="module")
def busy() -> Iterator[MockExchange]:
    config = MockExchangeConfig(accounts=[CONSISTENT, CANNED], rest_workers=1, ws_workers=1)
    with MockExchange(config) as ex:
        ex.state.freeze_market()  # the activity's orders rest 5 % away: a still market leaves them be
        yield ex


async def private(ex: MockExchange, account: AccountConfig, ws: ClientConnection) -> None:
    expires = now_ms() + 10_000
    auth = {"op": "auth", "args": [account.api_key, expires, ws_auth_signature(account.api_secret, expires)]}
    assert (await ask(ws, auth))["success"] is True
    assert (await ask(ws, {"op": "subscribe", "args": ["order", "execution"]}))["success"] is True


def events_in_a_second(times: list[int]) -> int:
    """How many of ``times`` (engine ms, one per event) fall in the second after the first: the
    rate as the engine kept it, whatever the delivery jitter."""
    start = min(times)
    return sum(start < t <= start + 1000 for t in times)


def assert_rate(times: list[int]) -> None:
    assert max(times) - min(times) > 1000, "less than a second of activity arrived"
    assert abs(events_in_a_second(times) - RATE) <= 0.05 * RATE + 2  # one tick's events at the edges


async def test_consistent_activity_arrives_at_its_rate_and_rest_agrees(busy: MockExchange) -> None:
    session = pybit_http(busy, api_key=CONSISTENT.api_key, api_secret=CONSISTENT.api_secret)
    since = now_ms()
    async with connect(busy.ws_private_url) as ws:
        await private(busy, CONSISTENT, ws)
        before = await collect(ws, 2.0)
        for _ in range(20):  # each cycle has a moment with none open (after its cancel): ask again
            rest_open = session.get_open_orders(category="linear", symbol="BTCUSDT", limit=50)["result"]["list"]
            if rest_open:
                break
        rest_fills = session.get_executions(category="linear", symbol="BTCUSDT", startTime=since, limit=100)
        after = await collect(ws, 0.5)
    orders = [(m["topic"], item) for m in before if m["topic"] == "order" for item in m["data"]]
    # every event is one order change: placed (New), filled or cancelled
    assert_rate([int(item["updatedTime"]) for _, item in orders])
    assert {item["orderStatus"] for _, item in orders} == {"New", "Filled", "Cancelled"}
    # REST agrees with what was pushed: an order it lists open was pushed New (before or right
    # after the request); one pushed closed before the request is not open
    announced = {item["orderId"] for m in before + after if m["topic"] == "order" for item in m["data"]}
    closed = {item["orderId"] for _, item in orders if item["orderStatus"] in ("Filled", "Cancelled")}
    open_ids = {o["orderId"] for o in rest_open}
    assert open_ids and open_ids <= announced and not open_ids & closed
    assert all(o["orderStatus"] == "New" for o in rest_open)
    pushed_fills = {item["execId"] for m in before if m["topic"] == "execution" for item in m["data"]}
    rest_exec_ids = {e["execId"] for e in rest_fills["result"]["list"]}
    assert pushed_fills and pushed_fills <= rest_exec_ids


async def test_canned_activity_arrives_at_its_rate_and_rest_knows_nothing_of_it(busy: MockExchange) -> None:
    session = pybit_http(busy, api_key=CANNED.api_key, api_secret=CANNED.api_secret)
    async with connect(busy.ws_private_url) as ws:
        await private(busy, CANNED, ws)
        got: list[dict[str, Any]] = await collect(ws, 2.0)
    assert {m["topic"] for m in got} == {"order", "execution", "position", "wallet"}
    times = [m["creationTime"] for m in got]
    assert_rate(times)
    assert abs(max(times) - now_ms()) < 5000  # moved to now, not the file's 2023 times
    order_ids = {item["orderId"] for m in got if m["topic"] == "order" for item in m["data"]}
    assert order_ids
    assert session.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    history = session.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert not order_ids & {o["orderId"] for o in history}
    assert session.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"] == []


FAST = AccountConfig("activity-fast", "s3", {"USDT": Decimal(10**7)}, activity=ActivityConfig("consistent", 10_000))


async def test_consistent_activity_keeps_10_000_events_a_second() -> None:
    """The top of the range, end to end: the engine runs every event on time (nothing
    skipped, nothing refused), each one's order item reaches a private socket, and the items'
    engine times show the rate within 2 % over the span received."""
    config = MockExchangeConfig(accounts=[FAST], rest_workers=1, ws_workers=1)
    with MockExchange(config) as ex:
        ex.state.freeze_market()
        async with connect(ex.ws_private_url, max_size=None) as ws:
            await private(ex, FAST, ws)
            got = await collect(ws, 3.0)
        status = ex.state.activity()[FAST.api_key]
    times = sorted(int(item["updatedTime"]) for m in got if m["topic"] == "order" for item in m["data"])
    span_ms = times[-1] - times[0]
    assert span_ms > 2000, "less than two seconds of activity arrived"
    inside = sum(times[0] < t <= times[-1] for t in times)  # the first tick's events are before the span
    assert abs(inside - 10_000 * span_ms / 1000) <= 0.02 * 10_000 * span_ms / 1000
    assert status["mode"] == "consistent" and status["failed"] == 0 and status["skipped"] == 0
    assert status["done"] >= len(times)
    # one push per tick, not one per event: a tick's events share a frame
    assert len([m for m in got if m["topic"] == "order"]) < len(times) / 10
