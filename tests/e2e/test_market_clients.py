"""The real clients on the public streams: pybit's WebSocket and ccxt pro, unmodified."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest
from pybit.unified_trading import WebSocket

from bybit_mock import MockExchange


def local_pybit_ws(ex: MockExchange, channel: str) -> WebSocket:
    base = ex.ws_url

    class LocalWebSocket(WebSocket):  # type: ignore[misc]
        def _connect(self, url: str) -> None:
            super()._connect(url.replace("wss://{SUBDOMAIN}.{DOMAIN}.com", base))

    return LocalWebSocket(testnet=False, channel_type=channel, restart_on_error=False)


def test_pybit_public_callbacks_receive_every_stream(
    bybit_mock: MockExchange, caplog: pytest.LogCaptureFixture
) -> None:
    got: dict[str, list[dict[str, Any]]] = {"orderbook": [], "trade": [], "kline": [], "ticker": []}
    lock = threading.Lock()

    def keep(kind: str) -> Any:
        def callback(msg: dict[str, Any]) -> None:
            with lock:
                got[kind].append(msg)

        return callback

    ws = local_pybit_ws(bybit_mock, "linear")
    try:
        ws.orderbook_stream(50, "BTCUSDT", keep("orderbook"))
        ws.trade_stream("BTCUSDT", keep("trade"))
        ws.kline_stream(1, "BTCUSDT", keep("kline"))
        ws.ticker_stream("BTCUSDT", keep("ticker"))
        deadline = time.monotonic() + 5

        def enough() -> bool:  # every stream seen; the book streams at 50/s, klines at 1/s
            with lock:
                return len(got["kline"]) >= 2 and len(got["ticker"]) >= 3 and len(got["orderbook"]) > 20

        while time.monotonic() < deadline and not enough():
            time.sleep(0.05)
        assert ws.is_connected()
    finally:
        ws.exit()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with lock:
        book = got["orderbook"][-1]["data"]  # pybit hands over its merged book
        assert len(got["orderbook"]) > 20 and len(book["b"]) == 50 == len(book["a"])
        assert Decimal(book["b"][0][0]) < Decimal(book["a"][0][0])
        assert got["trade"] and got["trade"][-1]["data"][0]["s"] == "BTCUSDT"
        assert got["kline"][-1]["data"][0]["interval"] == "1"
        ticker = got["ticker"][-1]["data"]  # pybit merges deltas into the snapshot
        assert ticker["symbol"] == "BTCUSDT" and Decimal(ticker["lastPrice"]) > 0
        assert {"bid1Price", "ask1Price", "markPrice", "fundingRate", "volume24h"} <= set(ticker)


def ccxt_pro(ex: MockExchange) -> ccxt.pro.bybit:
    client = ccxt.pro.bybit({"apiKey": ex.api_key, "secret": ex.api_secret})
    client.urls["api"] = {k: v if k == "ws" else ex.rest_url for k, v in client.urls["api"].items()}
    ws = client.urls["api"]["ws"]
    for category in ("linear", "spot", "inverse", "option"):
        ws["public"][category] = ex.ws_public_url(category)
    ws["private"]["contract"] = ex.ws_private_url
    return client


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "BTC/USDT"])
async def test_ccxt_pro_watch_order_book_and_trades(bybit_mock: MockExchange, symbol: str) -> None:
    client = ccxt_pro(bybit_mock)
    try:
        await client.load_markets()
        stamps = []
        for _ in range(5):
            book = await client.watch_order_book(symbol)
            stamps.append(book["timestamp"])
        trades = await client.watch_trades(symbol)
        ticker = await client.watch_ticker(symbol)
    finally:
        await client.close()
    assert book["symbol"] == symbol and len(book["bids"]) == 50 == len(book["asks"])
    assert book["bids"][0][0] < book["asks"][0][0]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]  # deltas applied on top of the snapshot
    assert trades and all(t["symbol"] == symbol and t["price"] > 0 and t["amount"] > 0 for t in trades)
    assert ticker["symbol"] == symbol and ticker["last"] > 0 and ticker["high"] >= ticker["last"] >= ticker["low"]
    if ":" in symbol:  # Bybit's spot ticker stream carries no best bid/ask
        assert ticker["bid"] < ticker["ask"]
