"""The order-to-push probe: market orders one at a time, timed from the request to the push.

Each sample is the time from writing ``POST /v5/order/create`` on one keep-alive connection to
receiving that order's ``execution`` push on an authenticated ``/v5/private`` socket. The
client is as lean as a bot's hot path can be, so what it measures is the mock:

* uvloop, the load generator's raw REST connection (``load/rest.py``) and a picows listener
  for the private stream;
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

from bybit_mock.bybit.auth import ws_auth_signature
from bybit_mock.load.rest import HttpConnection, RestTarget

TIMEOUT = 5.0  # seconds for any one answer or push: a lost one fails the run, never hangs it
ORDER = b'{"category":"linear","symbol":"BTCUSDT","side":"%s","orderType":"Market","qty":"0.001"}'


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
    target = RestTarget("127.0.0.1", ex.rest_port, ex.api_key, ex.api_secret)
    _, rest = await loop.create_connection(HttpConnection, target.host, target.port)
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
            side = "Buy" if i % 2 == 0 else "Sell"  # keeps the position flat-ish
            request = target.post("/v5/order/create", ORDER % side.encode())
            pushed = stream.expect(b'"topic":"execution"')
            start = time.perf_counter()
            # ``call`` writes at once; the push is timed in its frame callback, so awaiting the
            # answer (which comes first) before the push does not move the push's time
            status, body = await rest.call(request, TIMEOUT)
            assert status == 200 and b'"retCode":0' in body, body
            await asyncio.wait_for(pushed, TIMEOUT)
            samples.append((stream.read_at - start) * 1000)
    finally:
        ws.disconnect()
        rest.close()
    return samples
