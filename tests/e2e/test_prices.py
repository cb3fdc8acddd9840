"""Three prices per contract over real sockets: pybit, ccxt and a websockets client see the last,
index and mark prices apart and consistent (tickers, the price klines, positions), and a
``MarkPrice`` stop watches the mark."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from bybit_mock import MockExchange
from tests.e2e.conftest import pybit_http
from tests.e2e.streams import collect, subscribed
from tests.e2e.test_rest_ccxt import ccxt_bybit

D = Decimal
TICK = D("0.10")


def ticker(ex: MockExchange) -> dict[str, Any]:
    got = pybit_http(ex).get_tickers(category="linear", symbol="BTCUSDT")
    assert got["retCode"] == 0
    item: dict[str, Any] = got["result"]["list"][0]
    return item


def apart(ex: MockExchange, gap: str = "0") -> dict[str, Any]:
    """Wait (the market runs) until last, index and mark differ (last and mark by more than
    ``gap``), then freeze the market so every later read sees the same three prices."""
    deadline = time.monotonic() + 20
    while True:
        t = ticker(ex)
        last, index, mark = D(t["lastPrice"]), D(t["indexPrice"]), D(t["markPrice"])
        if len({last, index, mark}) == 3 and abs(mark - last) > D(gap):
            break
        assert time.monotonic() < deadline, t
        time.sleep(0.2)
    ex.state.freeze_market()
    return ticker(ex)


def test_pybit_tickers_klines_and_position_agree(bybit_mock: MockExchange) -> None:
    t = apart(bybit_mock)
    last, index, mark = D(t["lastPrice"]), D(t["indexPrice"]), D(t["markPrice"])
    assert t["markPrice"].count(".") == 1 and len(t["markPrice"].split(".")[1]) == 2  # Bybit's 2 decimals
    session = pybit_http(bybit_mock)
    now = int(time.time() * 1000)
    kinds = {
        "mark": session.get_mark_price_kline(category="linear", symbol="BTCUSDT", interval="1", limit=3),
        "index": session.get_index_price_kline(category="linear", symbol="BTCUSDT", interval="1", limit=3),
        "premium": session.get_premium_index_price_kline(category="linear", symbol="BTCUSDT", interval="1", limit=3),
    }
    for reply in kinds.values():
        assert reply["retCode"] == 0
        result = reply["result"]
        assert list(result) == ["symbol", "category", "list"] and result["category"] == "linear"
        rows = result["list"]
        assert len(rows) == 3 and all(len(r) == 5 and all(isinstance(v, str) for v in r) for r in rows)
        assert int(rows[0][0]) == now - now % 60_000 or int(rows[0][0]) == now - now % 60_000 - 60_000
        assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    # the open candles close at the ticker's prices (the market is frozen)
    assert D(kinds["mark"]["result"]["list"][0][4]) == mark
    assert D(kinds["index"]["result"]["list"][0][4]) == index
    assert abs(D(kinds["premium"]["result"]["list"][0][4])) < D("0.01")
    # a daily candle and a window in the past answer too
    daily = session.get_index_price_kline(category="linear", symbol="BTCUSDT", interval="D", limit=2)
    assert len(daily["result"]["list"]) == 2
    past = session.get_mark_price_kline(
        category="linear", symbol="BTCUSDT", interval="60", start=now - 10 * 3_600_000, end=now - 5 * 3_600_000
    )
    assert 5 <= len(past["result"]["list"]) <= 6
    # a position is valued at the mark, not the last price
    placed = session.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.1")
    assert placed["retCode"] == 0
    (pos,) = session.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert D(pos["markPrice"]) == mark != last
    assert D(pos["unrealisedPnl"]) == (mark - D(pos["avgPrice"])) * D("0.1")


def test_pybit_mark_price_stop_watches_the_mark(bybit_mock: MockExchange) -> None:
    t = apart(bybit_mock, gap="0.3")
    last, mark = D(t["lastPrice"]), D(t["markPrice"])
    session = pybit_http(bybit_mock)
    # a trigger between the two prices, on the tick grid: the mark still has to reach it, the
    # last price is already past it
    trigger = ((last + mark) / 2 / TICK).quantize(D(1)) * TICK
    rising = mark < last  # the mark must rise to the trigger
    query: dict[str, Any] = {
        "category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01",
        "triggerPrice": str(trigger), "triggerDirection": 1 if rising else 2,
    }  # fmt: skip
    with pytest.raises(InvalidRequestError, match="110092" if rising else "110093"):
        session.place_order(**query, triggerBy="LastPrice")  # the last price has passed it
    placed = session.place_order(**query, triggerBy="MarkPrice")
    oid = placed["result"]["orderId"]
    (item,) = session.get_open_orders(category="linear", symbol="BTCUSDT", orderId=oid)["result"]["list"]
    assert (item["orderStatus"], item["triggerBy"]) == ("Untriggered", "MarkPrice")
    # the market moves to the trigger price: the mark reaches it, and the stop fires
    bybit_mock.state.set_mark_price("BTCUSDT", trigger)
    (item,) = session.get_order_history(category="linear", symbol="BTCUSDT", orderId=oid)["result"]["list"]
    assert item["orderStatus"] == "Filled" and item["triggerBy"] == "MarkPrice"
    after = ticker(bybit_mock)  # the jump moved all three
    assert D(after["markPrice"]) == D(after["indexPrice"]) == D(after["lastPrice"]) == trigger


def test_ccxt_ticker_and_price_ohlcv(bybit_mock: MockExchange) -> None:
    apart(bybit_mock)
    client = ccxt_bybit(bybit_mock)
    tick = client.fetch_ticker("BTC/USDT:USDT")
    assert len({tick["last"], tick["markPrice"], tick["indexPrice"]}) == 3
    for fetch, expected in (
        (client.fetch_mark_ohlcv, tick["markPrice"]),
        (client.fetch_index_ohlcv, tick["indexPrice"]),
        (client.fetch_premium_index_ohlcv, None),
    ):
        rows = fetch("BTC/USDT:USDT", "1m", limit=4)
        assert len(rows) == 4
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # ccxt turns them oldest first
        assert all(r[3] <= min(r[1], r[4]) and r[2] >= max(r[1], r[4]) for r in rows)
        if expected is not None:
            assert rows[-1][4] == expected
    hourly = client.fetch_mark_ohlcv("BTC/USDT:USDT", "1h", since=client.milliseconds() - 5 * 3_600_000, limit=3)
    assert len(hourly) == 3 and hourly[1][0] - hourly[0][0] == 3_600_000


async def test_ws_tickers_carry_the_three_prices(bybit_mock: MockExchange) -> None:
    # (after a reset the three start equal, as after a jump, and part within seconds)
    merged: dict[str, str] = {}
    seen_apart = False
    indexes, marks = set(), set()
    msgs: list[dict[str, Any]] = []
    async with subscribed(bybit_mock.ws_public_url("linear"), "tickers.BTCUSDT") as ws:
        deadline = time.monotonic() + 15
        while not (seen_apart and len(indexes) > 2 and len(marks) > 2) and time.monotonic() < deadline:
            for msg in await collect(ws, 1.0):
                assert msg["topic"] == "tickers.BTCUSDT"
                assert msg["type"] == ("delta" if msgs else "snapshot")
                msgs.append(msg)
                merged |= msg["data"]
                indexes.add(merged["indexPrice"])
                marks.add(merged["markPrice"])
                seen_apart |= len({merged["lastPrice"], merged["indexPrice"], merged["markPrice"]}) == 3
    assert seen_apart, merged
    assert len(indexes) > 2 and len(marks) > 2  # both move with the market, in the deltas
    snapshot = msgs[0]["data"]
    assert list(snapshot).index("markPrice") + 1 == list(snapshot).index("indexPrice")  # Bybit's order
