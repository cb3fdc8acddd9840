"""Open interest over real sockets: pybit and ccxt read its history, tickers show it moving."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError

from bybit_mock import MockExchange

from .conftest import pybit_http
from .streams import collect, subscribed
from .test_rest_ccxt import ccxt_bybit

FIVE_MIN = 300_000
HOUR = 3_600_000


def test_pybit_reads_the_history_on_interval_boundaries(bybit_mock: MockExchange) -> None:
    http = pybit_http(bybit_mock)
    reply = http.get_open_interest(category="linear", symbol="BTCUSDT", intervalTime="5min", limit=3)
    result = reply["result"]
    assert (result["symbol"], result["category"]) == ("BTCUSDT", "linear")
    stamps = [int(i["timestamp"]) for i in result["list"]]
    assert stamps[0] % FIVE_MIN == 0 and stamps == [stamps[0] - k * FIVE_MIN for k in range(3)]
    assert stamps[0] <= time.time() * 1000 < stamps[0] + FIVE_MIN
    for item in result["list"]:
        assert list(item) == ["openInterest", "singleOpenInterest", "timestamp"]
        assert Decimal(item["openInterest"]) == 2 * Decimal(item["singleOpenInterest"]) > 0
    assert result["nextPageCursor"]
    more = http.get_open_interest(
        category="linear", symbol="BTCUSDT", intervalTime="5min", limit=2, cursor=result["nextPageCursor"]
    )["result"]["list"]
    assert [int(i["timestamp"]) for i in more] == [stamps[2] - FIVE_MIN, stamps[2] - 2 * FIVE_MIN]
    with pytest.raises(InvalidRequestError) as refused:
        http.get_open_interest(category="linear", symbol="BTCUSDT", intervalTime="2h")
    assert refused.value.status_code == 10001


def test_ccxt_fetch_open_interest_and_its_history(bybit_mock: MockExchange) -> None:
    client = ccxt_bybit(bybit_mock)
    client.load_markets()
    now = client.milliseconds()
    current = client.fetch_open_interest("BTC/USDT:USDT")
    assert current["symbol"] == "BTC/USDT:USDT" and current["openInterestAmount"] > 0
    assert now - 2 * HOUR < current["timestamp"] <= now
    rows = client.fetch_open_interest_history("BTC/USDT:USDT", "1h", limit=5)
    stamps = [r["timestamp"] for r in rows]
    assert len(rows) == 5 and stamps == sorted(stamps)  # ccxt orders them oldest first
    assert all(b - a == HOUR for a, b in itertools.pairwise(stamps)) and stamps[-1] % HOUR == 0
    assert all(r["openInterestAmount"] > 0 for r in rows)
    since = stamps[-1] - 3 * 86_400_000
    days = client.fetch_open_interest_history("BTC/USDT:USDT", "1d", since=since)
    assert [d["timestamp"] % 86_400_000 for d in days] == [0] * len(days) and 3 <= len(days) <= 4


async def test_tickers_show_open_interest_moving_with_the_trades(bybit_mock: MockExchange) -> None:
    http = pybit_http(bybit_mock)
    seen = set()
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        (ticker,) = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert Decimal(ticker["openInterest"]) == 2 * Decimal(ticker["singleOpenInterest"])
        assert Decimal(ticker["openInterestValue"]) - 2 * Decimal(ticker["singleOpenInterestValue"]) in (
            Decimal("-0.01"), Decimal(0), Decimal("0.01"),
        )  # fmt: skip
        seen.add(ticker["openInterest"])
        time.sleep(0.3)
    assert len(seen) >= 2  # the market's trades moved it
    async with subscribed(bybit_mock.ws_public_url("linear"), "tickers.BTCUSDT") as ws:
        messages = await collect(ws, 1.5)
    snapshot = next(m for m in messages if m.get("type") == "snapshot")["data"]
    keys = list(snapshot)
    at = keys.index("openInterest")
    assert keys[at : at + 4] == ["openInterest", "openInterestValue", "singleOpenInterest", "singleOpenInterestValue"]
    assert Decimal(snapshot["openInterest"]) == 2 * Decimal(snapshot["singleOpenInterest"])
    deltas = [m["data"] for m in messages if m.get("type") == "delta" and "singleOpenInterest" in m["data"]]
    assert deltas  # it moves on the stream too
    assert all(Decimal(d["openInterest"]) == 2 * Decimal(d["singleOpenInterest"]) for d in deltas)
