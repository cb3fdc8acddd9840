"""The order-to-push probe: market orders one at a time, timed from the request to the push.

Each sample is the time from writing ``POST /v5/order/create`` on one keep-alive connection to
receiving that order's ``execution`` push on an authenticated ``/v5/private`` socket. The
client is as lean as a bot's hot path can be, so what it measures is the mock:

* uvloop, a raw ``asyncio.Protocol`` for REST and a picows listener for the private stream;
* the push is timed in picows' frame callback, when the frame is read, not when a coroutine
  waiting on it next runs (a ``websockets`` client on the default loop added ~100 µs);
* its own garbage collector is off while it measures: its pauses (tens of ms once its heap is
  large, as pytest's is) would count as the mock's latency.

Run it with ``uvloop.run(event_samples(ex, count))``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bybit_mock.bybit.auth import rest_headers, ws_auth_signature
from bybit_mock.load.rest import split_response

TIMEOUT = 5.0  # seconds for any one answer or push: a lost one fails the run, never hangs it


class PrivateStream(WSListener):  # type: ignore[misc]
    """Resolves :attr:`waiter` with the next text frame (when ``wanted`` is None) or the next
    one containing ``wanted``, noting when it was read."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None
        self.wanted: bytes | None = None
        self.read_at = 0.0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        waiter = self.waiter
        if waiter is not None and not waiter.done() and (self.wanted is None or self.wanted in payload):
            self.read_at = time.perf_counter()
            waiter.set_result(payload)

    def expect(self, wanted: bytes | None = None) -> asyncio.Future[bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.wanted = wanted
        return self.waiter


class RestConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        whole = split_response(self.buf)
        if whole is not None and self.waiter is not None and not self.waiter.done():
            self.buf = whole[2]
            self.waiter.set_result(whole[1])

    def send(self, request: bytes) -> asyncio.Future[bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


def order_request(api_key: str, api_secret: str, side: str) -> bytes:
    body = f'{{"category":"linear","symbol":"BTCUSDT","side":"{side}","orderType":"Market","qty":"0.001"}}'
    headers = rest_headers(api_key, api_secret, body, time.time_ns() // 1_000_000)
    head = "POST /v5/order/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


async def event_samples(ex: Any, count: int) -> list[float]:
    """``count`` market orders one at a time on ``ex`` (a running ``MockExchange``): ms from
    writing each to reading its ``execution`` push."""
    gc.collect()
    gc.disable()
    try:
        return await _event_samples(ex, count)
    finally:
        gc.enable()


async def _event_samples(ex: Any, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    _, rest = await loop.create_connection(RestConnection, "127.0.0.1", ex.rest_port)
    ws, stream = await ws_connect(PrivateStream, ex.ws_private_url)
    samples: list[float] = []
    try:
        expires = int(time.time() * 1000) + 600_000
        for op in (
            {"op": "auth", "args": [ex.api_key, expires, ws_auth_signature(ex.api_secret, expires)]},
            {"op": "subscribe", "args": ["execution"]},
        ):
            ack = stream.expect()
            ws.send(WSMsgType.TEXT, orjson.dumps(op))
            assert orjson.loads(await asyncio.wait_for(ack, TIMEOUT))["success"], op
        for i in range(count):
            request = order_request(ex.api_key, ex.api_secret, "Buy" if i % 2 == 0 else "Sell")  # flat-ish
            pushed = stream.expect(b'"topic":"execution"')
            start = time.perf_counter()
            answered = rest.send(request)
            await asyncio.wait_for(pushed, TIMEOUT)
            samples.append((stream.read_at - start) * 1000)
            assert b'"retCode":0' in await asyncio.wait_for(answered, TIMEOUT)
    finally:
        ws.disconnect()
        assert rest.transport is not None
        rest.transport.close()
    return samples
