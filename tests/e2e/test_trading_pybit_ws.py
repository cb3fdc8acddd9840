"""pybit's WebSocket clients on the trading paths: private callbacks and ``/v5/trade`` order entry."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest
from pybit.unified_trading import WebSocket, WebSocketTrading

from bybit_mock import MockExchange

from .conftest import pybit_http
from .test_ws import errors_logged

SCHEME_HOST = "wss://{SUBDOMAIN}.{DOMAIN}.{TLD}"


def local(cls: type, ex: MockExchange, **kwargs: Any) -> Any:
    """A pybit WebSocket class pointed at the mock (only the URL changes)."""

    class Local(cls):  # type: ignore[misc, valid-type]
        def _connect(self, url: str) -> None:
            super()._connect(url.replace(SCHEME_HOST, ex.ws_url))

    return Local(testnet=False, api_key=ex.api_key, api_secret=ex.api_secret, restart_on_error=False, **kwargs)


def wait_for(q: queue.Queue[dict[str, Any]], pred: Any, seconds: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = q.get(timeout=left)
        if pred(msg):
            return msg
    raise AssertionError("no matching message")


def test_private_callbacks_see_every_change(market: MockExchange, caplog: pytest.LogCaptureFixture) -> None:
    got: dict[str, queue.Queue[dict[str, Any]]] = {
        t: queue.Queue() for t in ("order", "execution", "position", "wallet")
    }
    ws = local(WebSocket, market, channel_type="private")
    try:
        ws.order_stream(callback=got["order"].put)
        ws.execution_stream(callback=got["execution"].put)
        ws.position_stream(callback=got["position"].put)
        ws.wallet_stream(callback=got["wallet"].put)
        time.sleep(0.3)  # the subscribe acks
        http = pybit_http(market)
        order_id = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.02")[
            "result"
        ]["orderId"]
        order = wait_for(got["order"], lambda m: m["data"][0]["orderId"] == order_id)
        assert order["topic"] == "order" and order["data"][0]["orderStatus"] == "Filled"
        fill = wait_for(got["execution"], lambda m: m["data"][0]["orderId"] == order_id)
        assert fill["data"][0]["execQty"] == "0.02" and fill["data"][0]["category"] == "linear"
        position = wait_for(got["position"], lambda m: m["data"][0]["symbol"] == "BTCUSDT")
        assert position["data"][0]["size"] == "0.02"
        wallet = wait_for(got["wallet"], lambda m: True)
        usdt = next(c for c in wallet["data"][0]["coin"] if c["coin"] == "USDT")
        assert usdt["walletBalance"] == "99999.285"  # 1300 * 0.055 % taker fee
        assert ws.is_connected()
    finally:
        ws.exit()
    assert errors_logged(caplog) == []


def test_websocket_trading_place_amend_cancel(market: MockExchange, caplog: pytest.LogCaptureFixture) -> None:
    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    ws = local(WebSocketTrading, market)
    try:
        deadline = time.monotonic() + 5
        while not ws.auth and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ws.auth is True
        ws.place_order(
            replies.put,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price="60000",
            orderLinkId="ws-1",
        )
        placed = replies.get(timeout=5)
        assert placed["retCode"] == 0 and placed["op"] == "order.create"
        assert placed["data"]["orderLinkId"] == "ws-1" and placed["header"]["X-Bapi-Limit"]
        order_id = placed["data"]["orderId"]
        assert market.state.order(market.api_key, order_id).status == "New"  # type: ignore[union-attr]
        ws.amend_order(replies.put, category="linear", symbol="BTCUSDT", orderId=order_id, price="61000")
        assert replies.get(timeout=5)["retCode"] == 0
        assert market.state.order(market.api_key, order_id).price == 61000  # type: ignore[union-attr]
        ws.cancel_order(replies.put, category="linear", symbol="BTCUSDT", orderId=order_id)
        assert replies.get(timeout=5)["data"]["orderId"] == order_id
        assert market.state.order(market.api_key, order_link_id="ws-1").status == "Cancelled"  # type: ignore[union-attr]
    finally:
        ws.exit()
    assert errors_logged(caplog) == []
