"""A raw keep-alive HTTP/1.1 client (uvloop protocols, Content-Length framing) that signs
each request as Bybit checks it, and the REST operations of the mix.

One :class:`HttpConnection` carries one request at a time, as a bot's pooled connection
does. A latency runs from ``start_ns`` (the operation's *intended* start in an open loop,
so a stalled server shows as latency rather than as fewer requests) to the end of the
response. The next request of a multi-request operation starts when the previous answer
is in, and is measured from then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from ..bybit.auth import rest_headers
from .report import Recorder

#: far below any synthetic BTCUSDT price, so the order rests (and only holds margin)
ORDER_PRICES = ("30000", "30010")
ORDER_QTY = "0.001"
SYMBOL = "BTCUSDT"


def split_response(buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """The first whole response in ``buf`` as (head, body, what follows), or None until it is
    all in (the mock always sends Content-Length; no chunked bodies)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end]
    start = head.lower().find(b"content-length:")
    length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
    if len(buf) < end + 4 + length:
        return None
    return head, buf[end + 4 : end + 4 + length], buf[end + 4 + length :]


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; :meth:`call` sends a request and returns (status, body)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self.buf += data
        whole = split_response(self.buf)
        if whole is None:
            return
        head, body, self.buf = whole
        if self.waiter is not None and not self.waiter.done():
            try:
                status = int(head[9:12])
            except ValueError:
                self.waiter.set_exception(ConnectionError("malformed status line"))
                return
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc if exc is not None else ConnectionResetError("closed by server"))

    async def call(self, request: bytes, timeout: float) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionResetError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await asyncio.wait_for(self.waiter, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def ret_code_of(status: int, body: bytes) -> str:
    """The answer's retCode as a string; ``"http<status>"`` when it is not a Bybit envelope."""
    start = body.find(b'"retCode":')
    if start < 0:
        return f"http{status}"
    start += 10
    end = start
    while end < len(body) and body[end : end + 1] in b"-0123456789":
        end += 1
    return body[start:end].decode() or f"http{status}"


@dataclass(frozen=True)
class RestTarget:
    host: str
    port: int
    api_key: str
    api_secret: str
    timeout: float = 10.0

    def get(self, path: str, query: str, signed: bool = True) -> bytes:
        head = f"GET {path}{'?' + query if query else ''} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if signed:
            head += _header_lines(rest_headers(self.api_key, self.api_secret, query, _now_ms()))
        return (head + "\r\n").encode()

    def post(self, path: str, body: bytes) -> bytes:
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
        head += _header_lines(rest_headers(self.api_key, self.api_secret, body.decode(), _now_ms()))
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _header_lines(headers: dict[str, str]) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RestSession:
    """A connection (reopened after a transport error) and the operations of the mix on it."""

    def __init__(self, target: RestTarget, recorder: Recorder, clock_ns: Callable[[], int] = time.monotonic_ns):
        self.target = target
        self.recorder = recorder
        self.clock_ns = clock_ns
        self.conn: HttpConnection | None = None
        self.ops: dict[str, Callable[[int], Awaitable[None]]] = {
            "time": lambda t: self._simple("time", target.get("/v5/market/time", "", signed=False), t),
            "wallet": lambda t: self._simple(
                "wallet", target.get("/v5/account/wallet-balance", "accountType=UNIFIED"), t
            ),
            "realtime": lambda t: self._simple(
                "realtime", target.get("/v5/order/realtime", f"category=linear&symbol={SYMBOL}"), t
            ),
            "positions": lambda t: self._simple(
                "positions", target.get("/v5/position/list", f"category=linear&symbol={SYMBOL}"), t
            ),
            "create_cancel": lambda t: self._order_cycle(t, amend=False),
            "amend": lambda t: self._order_cycle(t, amend=True),
        }

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.conn = await loop.create_connection(HttpConnection, self.target.host, self.target.port)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    async def run(self, op: str, start_ns: int) -> None:
        """Run one operation of the mix, its first request measured from ``start_ns``."""
        await self.ops[op](start_ns)

    async def _request(self, name: str, request: bytes, start_ns: int) -> bytes | None:
        """Send, record, return the body (None after a transport error, the connection reopened)."""
        op = f"rest.{name}"
        try:
            if self.conn is None or self.conn.closed:
                await self.connect()
            assert self.conn is not None
            status, body = await self.conn.call(request, self.target.timeout)
        except (TimeoutError, OSError, ConnectionError) as exc:
            self.recorder.transport_error(op, type(exc).__name__)
            self.close()
            self.conn = None
            return None
        self.recorder.record(op, self.clock_ns() - start_ns, ret_code_of(status, body))
        return body

    async def _simple(self, name: str, request: bytes, start_ns: int) -> None:
        await self._request(name, request, start_ns)

    async def _order_cycle(self, start_ns: int, amend: bool) -> None:
        create = orjson.dumps(
            {
                "category": "linear",
                "symbol": SYMBOL,
                "side": "Buy",
                "orderType": "Limit",
                "qty": ORDER_QTY,
                "price": ORDER_PRICES[0],
            }
        )
        body = await self._request("create", self.target.post("/v5/order/create", create), start_ns)
        order_id = _order_id(body)
        if order_id is None:
            return
        ref = {"category": "linear", "symbol": SYMBOL, "orderId": order_id}
        if amend:
            change = orjson.dumps({**ref, "price": ORDER_PRICES[1]})
            await self._request("amend", self.target.post("/v5/order/amend", change), self.clock_ns())
        await self._request("cancel", self.target.post("/v5/order/cancel", orjson.dumps(ref)), self.clock_ns())


def _order_id(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    result = answer.get("result") if isinstance(answer, dict) and answer.get("retCode") == 0 else None
    order_id = result.get("orderId") if isinstance(result, dict) else None
    return order_id if isinstance(order_id, str) else None
