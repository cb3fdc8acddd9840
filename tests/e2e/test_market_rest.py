"""``/v5/market/*`` over real sockets: shapes against Bybit's recorded responses, parameter
rules, and the order book REST shows being the one the stream shows."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from decimal import Decimal
from typing import Any

import ccxt
import orjson
import pytest
from pybit.unified_trading import HTTP

from bybit_mock import MockExchange
from tests.e2e.streams import apply_book, collect, subscribed
from tests.fixtures import recorded_response


def public(ex: MockExchange) -> HTTP:
    session = HTTP(retry_codes={0})
    session.endpoint = ex.rest_url
    return session


def keys_of(method: str, index: int = 0) -> set[str]:
    result = recorded_response(method, index)["result"]
    return set(result["list"][0]) if "list" in result and isinstance(result["list"][0], dict) else set(result)


def test_orderbook_shape_and_order(bybit_mock: MockExchange) -> None:
    reply = public(bybit_mock).get_orderbook(category="linear", symbol="BTCUSDT", limit=200)
    book = reply["result"]
    assert keys_of("fetchOrderBook") <= set(book) and {"ts", "u", "seq", "cts"} <= set(book)
    bids = [Decimal(p) for p, _ in book["b"]]
    asks = [Decimal(p) for p, _ in book["a"]]
    assert len(bids) == 200 == len(asks)
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert isinstance(book["ts"], int) and book["s"] == "BTCUSDT"
    default = public(bybit_mock).get_orderbook(category="spot", symbol="BTCUSDT")["result"]
    assert len(default["b"]) == 1 == len(default["a"])  # spot's default depth is 1


def test_recent_trades_klines_and_tickers_carry_every_recorded_field(bybit_mock: MockExchange) -> None:
    http = public(bybit_mock)
    for _ in range(40):  # a freshly started market has had only a few trades yet
        trades = http.get_public_trade_history(category="linear", symbol="BTCUSDT", limit=5)["result"]["list"]
        if len(trades) == 5:
            break
        time.sleep(0.05)
    assert len(trades) == 5 and keys_of("fetchTrades") <= set(trades[0])
    times = [int(t["time"]) for t in trades]
    assert times == sorted(times, reverse=True)  # newest first
    klines = http.get_kline(category="linear", symbol="BTCUSDT", interval="15", limit=10)["result"]
    assert klines["symbol"] == "BTCUSDT" and klines["category"] == "linear" and len(klines["list"]) == 10
    starts = [int(row[0]) for row in klines["list"]]
    assert starts == sorted(starts, reverse=True) and {b - a for a, b in zip(starts[1:], starts, strict=False)} == {
        900_000
    }
    assert all(len(row) == 7 and all(isinstance(v, str) for v in row) for row in klines["list"])
    ticker = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert keys_of("fetchTicker") <= set(ticker)
    assert Decimal(ticker["lowPrice24h"]) <= Decimal(ticker["lastPrice"]) <= Decimal(ticker["highPrice24h"])
    assert Decimal(ticker["bid1Price"]) < Decimal(ticker["ask1Price"])
    every = http.get_tickers(category="spot")["result"]["list"]
    assert {t["symbol"] for t in every} == {"BTCUSDT", "ETHUSDT"} and "usdIndexPrice" in every[0]


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("orderbook", "symbol=BTCUSDT", "params error: category is required"),
        ("orderbook", "category=linear", "params error: symbol is required"),
        ("orderbook", "category=linear&symbol=NOPE", "params error: symbol invalid"),
        ("orderbook", "category=linear&symbol=BTCUSDT&limit=501", "params error: limit must be in [1, 500]"),
        ("recent-trade", "category=spot&symbol=BTCUSDT&limit=61", "params error: limit must be in [1, 60]"),
        ("kline", "symbol=BTCUSDT&interval=7", "params error: Invalid period"),
        ("kline", "symbol=BTCUSDT", "params error: interval is required"),
        ("kline", "symbol=BTCUSDT&interval=1&start=10&end=5", "params error: start must be <= end"),
        ("tickers", "category=bogus", "params error: category only support linear, inverse, spot, option"),
    ],
)
def test_parameter_errors(bybit_mock: MockExchange, path: str, query: str, message: str) -> None:

    with urllib.request.urlopen(f"{bybit_mock.rest_url}/v5/market/{path}?{query}", timeout=5) as resp:
        assert resp.status == 200
        body = orjson.loads(resp.read())
    assert body["retCode"] == 10001 and body["retMsg"] == message and body["result"] == {}


def test_ccxt_public_market_calls(bybit_mock: MockExchange) -> None:
    client = ccxt.bybit()
    client.urls["api"] = dict.fromkeys(client.urls["api"], bybit_mock.rest_url)
    client.load_markets()
    for symbol in ("BTC/USDT:USDT", "ETH/USDT"):
        book = client.fetch_order_book(symbol, 50)
        assert len(book["bids"]) == 50 and book["bids"][0][0] < book["asks"][0][0]
        ticker = client.fetch_ticker(symbol)
        assert ticker["last"] > 0 and ticker["low"] <= ticker["last"] <= ticker["high"]
        ohlcv = client.fetch_ohlcv(symbol, "1h", since=client.milliseconds() - 10 * 3_600_000, limit=10)
        stamps = [row[0] for row in ohlcv]
        assert len(ohlcv) == 10 and stamps == sorted(stamps)
        assert all(low <= min(o, c) and max(o, c) <= high for _, o, high, low, c, _ in ohlcv)
        trades = client.fetch_trades(symbol, limit=20)
        assert len(trades) == 20 and all(t["amount"] > 0 for t in trades)


async def test_rest_book_is_the_book_the_stream_shows(custom_mock: MockExchange) -> None:
    # ETHUSDT in custom_mock changes only through orderbook.50 ticks (no trades), so every book
    # state REST can show was also sent on the stream, under the same seq.
    loop = asyncio.get_running_loop()
    http = public(custom_mock)
    rest_books: list[dict[str, Any]] = []

    def fetch() -> None:
        for _ in range(8):
            rest_books.append(http.get_orderbook(category="linear", symbol="ETHUSDT", limit=50)["result"])

    async with subscribed(custom_mock.ws_public_url("linear"), "orderbook.50.ETHUSDT") as ws:
        await collect(ws, 0.1)  # the snapshot arrives first; restart from a fresh connection below
    async with subscribed(custom_mock.ws_public_url("linear"), "orderbook.50.ETHUSDT") as ws:
        msgs = await collect(ws, 0.1)  # the snapshot (the ack waits ack_delay_ms) ...
        fetching = loop.run_in_executor(None, fetch)  # ... then REST reads while deltas flow
        msgs += await collect(ws, 1.0)
        await fetching
    by_seq: dict[int, tuple[list[list[str]], list[list[str]]]] = {}
    book: dict[str, dict[str, str]] = {}
    for msg in msgs:
        apply_book(book, msg)
        by_seq[msg["data"]["seq"]] = (
            sorted(([p, q] for p, q in book["b"].items()), key=lambda x: -Decimal(x[0])),
            sorted(([p, q] for p, q in book["a"].items()), key=lambda x: Decimal(x[0])),
        )
    matched = [r for r in rest_books if r["seq"] in by_seq]
    assert len(matched) >= 4, "REST and the stream should share book versions"
    for rest in matched:
        assert (rest["b"], rest["a"]) == by_seq[rest["seq"]]
