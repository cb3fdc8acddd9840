"""The REST connection: httptools parsing, request framing and in-order responses.

Rules this protocol keeps, and why:

* **In-order responses.** A client may pipeline requests; some are answered at once (market
  time), some after a state-service round trip. Each request takes a slot in ``_slots`` as it
  completes parsing and responses are written strictly from the left, so a fast answer never
  overtakes a slow one on the same connection.
* **Bounded input.** A body larger than ``max_body_bytes`` (by ``Content-Length`` or while
  reading a chunked body) is answered with 413 and a Bybit envelope, then the connection is
  closed: reading on would let a client make the worker buffer without limit.
* **Malformed HTTP** gets 400 and a Bybit envelope, then close. Nothing a client sends can
  raise out of ``data_received`` into the event loop.
* **Late replies.** A state reply can arrive after its client has gone; the transport is
  checked before every write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httptools

from ..bybit import envelope, errors
from .http import json_response

if TYPE_CHECKING:
    from .app import RestApp

log = logging.getLogger(__name__)


class Request:
    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: dict[bytes, bytes], body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


#: ``respond(http_status, json_body)``: the protocol frames it, with ``Connection: close``
#: when the connection will not be kept alive.
Respond = Callable[[int, bytes], None]


class _Reject(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_app",
        "_body",
        "_body_len",
        "_headers",
        "_max_body",
        "_parser",
        "_slots",
        "_transport",
        "_url",
    )

    def __init__(self, app: RestApp) -> None:
        # connection lifetime
        self._app = app
        self._max_body = app.max_body_bytes
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._slots: deque[list[Any]] = deque()  # [response bytes | None, close_after]
        # request lifetime
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_len = 0

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._slots.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except _Reject as rej:
            self._fail(rej.status, rej.code, rej.msg)
        except httptools.HttpParserUpgrade:
            self._fail(400, errors.PARAMS_ERROR, "protocol upgrade is not supported on the REST port")
        except httptools.HttpParserError as exc:
            # httptools wraps an exception raised in a callback; ours carries the answer.
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.code, cause.msg)
            else:
                self._fail(400, errors.PARAMS_ERROR, f"malformed HTTP request: {exc}")

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise _Reject(
                413, errors.PARAMS_ERROR, f"request body too large: {int(length)} bytes, limit {self._max_body}"
            )

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self._max_body:
            raise _Reject(413, errors.PARAMS_ERROR, f"request body too large: over the {self._max_body}-byte limit")
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = self._url
        qpos = url.find(b"?")
        if qpos >= 0:
            path, query = url[:qpos], url[qpos + 1 :]
        else:
            path, query = url, b""
        request = Request(
            self._parser.get_method().decode("ascii", "replace"),
            path.decode("latin-1"),
            query.decode("latin-1"),
            self._headers,
            b"".join(self._body) if self._body else b"",
        )
        close = not self._parser.should_keep_alive()
        slot: list[Any] = [None, close]
        self._slots.append(slot)

        def respond(status: int, body: bytes) -> None:
            slot[0] = json_response(status, body, close=close)
            self._flush()

        try:
            self._app.dispatch(request, respond)
        except Exception:  # a handler bug answers 10016; it never kills the connection or worker
            log.exception("unhandled error for %s %s", request.method, request.path)
            now = time.time_ns() // 1_000_000
            respond(500, envelope.error(errors.SERVER_ERROR, "Server error", now))

    # -- writing ----------------------------------------------------------------------------

    def _flush(self) -> None:
        transport = self._transport
        slots = self._slots
        while slots and slots[0][0] is not None:
            response, close = slots.popleft()
            if transport is None:
                return
            transport.write(response)
            if close:
                slots.clear()
                transport.close()
                self._transport = None
                return

    def _fail(self, status: int, code: int, msg: str) -> None:
        """Answer a request we refuse to parse further, after any earlier responses, and close."""
        now = time.time_ns() // 1_000_000
        self._slots.append([json_response(status, envelope.error(code, msg, now), close=True), True])
        if self._transport is not None:
            self._transport.pause_reading()
        self._flush()
