"""WebSocket load: public subscribers, authenticated private subscribers and ``/v5/trade``
order entry, on picows clients (the mock's own WebSocket library, uvloop-friendly).

Subscribers count the pushes they receive (``ws_public.messages``, ``ws_private.messages``)
and time their subscribe (and auth) acks. Once the measured window opens (``measuring``) each
push also counts for its subscriber (``received``: a subscriber left at 0 got nothing) and its
delivery lag is recorded: the receive time (``time.time_ns``) less the push's own time, ``ts``
on public pushes and ``creationTime`` on private ones (milliseconds, so the lag reads up to
1 ms high). The time is found in the raw bytes, not by parsing the push: 10 000 subscribers
decoding every order book would measure the generator, not the mock.

Order entry sends ``order.create`` then ``order.cancel`` of it; creates are scheduled at a
rate (open loop, measured from the intended time) and matched to their answers by ``reqId``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ..bybit.auth import ws_auth_signature
from .report import Recorder
from .rest import ORDER_PRICES, ORDER_QTY, SYMBOL

DEFAULT_PUBLIC_TOPICS = ("orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT")
DEFAULT_PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
#: the field holding a push's time (ms) per channel; the first match in the frame is taken (the
#: top-level one: no nested key of Bybit's pushes is spelled ``ts``; orderbook's ``cts`` is not)
TIME_FIELDS = {"ws_public": b'"ts":', "ws_private": b'"creationTime":'}


class _Listener(WSListener):
    def __init__(self, owner: WsClient) -> None:
        self.owner = owner

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.owner.on_text(frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.owner.on_disconnected()


class WsClient:
    """One connection: pushes counted, replies routed to the request waiting for them."""

    def __init__(self, name: str, recorder: Recorder, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.name = name  # "ws_public", "ws_private", "ws_trade"
        self.recorder = recorder
        self.clock_ns = clock_ns
        self.transport: WSTransport | None = None
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.stopping = False
        self.ids = itertools.count()
        self.time_field = TIME_FIELDS.get(name)
        self.measuring = False  # set when the measured window opens
        self.received = 0  # pushes received while measuring

    async def connect(self, url: str) -> None:
        self.transport, _ = await ws_connect(lambda: _Listener(self), url)

    def on_text(self, payload: bytes) -> None:
        if b'"topic"' in payload:  # a push: counted, its time read from the bytes, not parsed
            self.recorder.counters[f"{self.name}.messages"] += 1
            if self.measuring:
                self.received += 1
                sent_ms = push_time_ms(payload, self.time_field) if self.time_field else None
                if sent_ms is not None:
                    self.recorder.record_lag(f"{self.name}.delivery_lag", time.time_ns() - sent_ms * 1_000_000)
            return
        try:
            reply = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.recorder.transport_error(self.name, "bad_json")
            return
        if not isinstance(reply, dict):
            return
        key = reply.get("reqId") or reply.get("req_id") or f"op:{reply.get('op')}"
        waiter = self.waiting.pop(str(key), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def on_disconnected(self) -> None:
        if not self.stopping:
            self.recorder.transport_error(self.name, "disconnected")
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("WebSocket closed"))
        self.waiting.clear()

    async def request(
        self, op: str, message: dict[str, Any], key: str, start_ns: int, timeout: float = 10.0
    ) -> dict[str, Any] | None:
        """Send ``message``, wait for the reply filed under ``key``, record it as ``op``."""
        if self.transport is None:
            raise ConnectionResetError("not connected")
        waiter = self.waiting[key] = asyncio.get_running_loop().create_future()
        self.transport.send(WSMsgType.TEXT, orjson.dumps(message))
        try:
            reply: dict[str, Any] = await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, ConnectionError) as exc:
            self.waiting.pop(key, None)
            self.recorder.transport_error(op, type(exc).__name__)
            return None
        self.recorder.record(op, self.clock_ns() - start_ns, ret_code_of_reply(reply))
        return reply

    async def auth(self, api_key: str, api_secret: str) -> None:
        expires = time.time_ns() // 1_000_000 + 10_000
        message = {"op": "auth", "args": [api_key, expires, ws_auth_signature(api_secret, expires)]}
        await self.request(f"{self.name}.auth", message, "op:auth", self.clock_ns())

    async def subscribe(self, topics: tuple[str, ...]) -> None:
        req_id = f"s{next(self.ids)}"
        message = {"op": "subscribe", "req_id": req_id, "args": list(topics)}
        await self.request(f"{self.name}.subscribe", message, req_id, self.clock_ns())

    async def trade_cycle(self, start_ns: int) -> None:
        """``order.create`` (measured from ``start_ns``), then ``order.cancel`` of the order."""
        header = {"X-BAPI-TIMESTAMP": str(time.time_ns() // 1_000_000)}
        args = {"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Limit"}
        create_id = f"c{next(self.ids)}"
        create = {
            "reqId": create_id,
            "header": header,
            "op": "order.create",
            "args": [{**args, "qty": ORDER_QTY, "price": ORDER_PRICES[0]}],
        }
        reply = await self.request("ws_trade.create", create, create_id, start_ns)
        data = reply.get("data") if reply is not None and reply.get("retCode") == 0 else None
        order_id = data.get("orderId") if isinstance(data, dict) else None
        if not isinstance(order_id, str):
            return
        cancel_id = f"x{next(self.ids)}"
        ref = {"category": "linear", "symbol": SYMBOL, "orderId": order_id}
        cancel = {"reqId": cancel_id, "header": header, "op": "order.cancel", "args": [ref]}
        await self.request("ws_trade.cancel", cancel, cancel_id, self.clock_ns())

    def close(self) -> None:
        self.stopping = True
        if self.transport is not None:
            self.transport.disconnect()


def ret_code_of_reply(reply: dict[str, Any]) -> str:
    """Trade and auth-on-trade replies carry ``retCode``; public/private acks ``success``."""
    if "retCode" in reply:
        return str(reply["retCode"])
    if reply.get("success") is True:
        return "0"
    return f"refused:{reply.get('ret_msg', '')}"[:60]


def push_time_ms(payload: bytes, field: bytes) -> int | None:
    """The integer after the first ``field`` (e.g. ``b'"ts":'``) in ``payload``; None without one."""
    at = payload.find(field)
    if at < 0:
        return None
    start = at + len(field)
    end = start
    while end < len(payload) and 48 <= payload[end] <= 57:  # ASCII digits
        end += 1
    return int(payload[start:end]) if end > start else None
