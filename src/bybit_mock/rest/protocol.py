"""The REST connection: httptools parsing, request framing and in-order responses.

Rules this protocol keeps, and why:

* **In-order responses.** A client may pipeline requests; some are answered at once (market
  time), some after a state-service round trip. Each request takes a slot in ``_slots`` as it
  completes parsing and responses are written strictly from the left, so a fast answer never
  overtakes a slow one on the same connection. A request marked ``Connection: close`` is the
  last one served: llhttp refuses the bytes after it, so requests pipelined behind it are
  not even dispatched.
* **Bounded input.** A body larger than ``max_body_bytes`` (by ``Content-Length`` or while
  reading a chunked body) is answered with 413, a head (request line and headers) larger than
  ``max_header_bytes`` with 431, each with a Bybit envelope, then the connection is closed:
  reading on would let a client make the worker buffer without limit. httptools gathers a
  header's name and value internally (by repeated concatenation, so a huge header costs
  quadratic time) before ``on_header`` sees it, so the head is measured in ``data_received``
  instead: every read that starts while a head is unfinished counts in full, and the count
  restarts when a head completes. The count is checked after each read (a read that also holds
  earlier requests or a body would otherwise be refused), and when it is over the cap at the
  end of a head, the head's known URL and header bytes decide. So no byte outside a head makes
  a request fail, a read of whole requests costs a comparison or two, and the most a head can
  take before it is refused is the cap plus two reads (the one it began in, when earlier
  requests shared it, and the one that crosses the cap): bounded work, which is the point.
* **Bounded time.** A request whose head or body is still unfinished ``request_timeout``
  seconds after the read that brought its first byte is answered with 408 and the connection
  closed (a slowloris would otherwise hold a connection, and its buffers, for ever). The timer
  is armed only when a read ends in the middle of a request, never per request, and an idle
  keep-alive connection has none.
* **Upgrade is ignored.** httptools completes a request carrying ``Upgrade`` (without any
  body it announced), or a ``CONNECT``, and then stops parsing the connection, so the request
  is answered normally, with ``Connection: close``, and the connection is closed after it:
  exactly one response, as RFC 9110 lets a server that declines an upgrade do.
* **Malformed HTTP** gets 400 and a Bybit envelope, then close. Nothing a client sends can
  raise out of ``data_received`` into the event loop, and a handler's exception answers 500
  for that request alone.
* **Late replies.** A state reply can arrive after its client has gone; the transport is
  checked before every write, and a request is answered at most once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import httptools

from ..bybit import envelope, errors
from .http import json_response

if TYPE_CHECKING:
    from .app import RestApp

log = logging.getLogger(__name__)


class Request:
    __slots__ = ("body", "conn", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[bytes, bytes],
        body: bytes,
        conn: HttpProtocol | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        #: the connection it came on (what a scripted transport fault acts on)
        self.conn = conn

    @property
    def peer(self) -> str:
        """The client's IP address ("" if unknown)."""
        return self.conn.peer if self.conn is not None else ""


class Respond(Protocol):
    """``respond(http_status, json_body, extra=b"")``: the protocol frames it, with
    ``Connection: close`` when the connection will not be kept alive; ``extra`` is pre-rendered
    header lines (the rate-limit headers of a signed answer)."""

    def __call__(self, status: int, body: bytes, extra: bytes = b"", content_type: bytes | None = None) -> None: ...


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
        "_closing",
        "_head_bytes",
        "_headers",
        "_in_head",
        "_in_message",
        "_loop",
        "_max_body",
        "_max_head",
        "_parser",
        "_slots",
        "_timeout",
        "_timer",
        "_transport",
        "_url",
    )

    def __init__(self, app: RestApp, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # connection lifetime
        self._app = app
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._max_body = app.max_body_bytes
        self._max_head = app.max_header_bytes
        self._timeout = app.request_timeout
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._slots: deque[list[Any]] = deque()  # [response bytes | None, close_after]
        self._closing = False  # no further request will be served
        self._timer: asyncio.TimerHandle | None = None  # armed only while a request is unfinished
        # request lifetime
        self._in_head = True  # between requests counts as in a head: the next byte starts one
        self._head_bytes = 0
        self._in_message = False
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_len = 0

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    @property
    def peer(self) -> str:
        transport = self._transport
        name = transport.get_extra_info("peername") if transport is not None else None
        return str(name[0]) if isinstance(name, tuple) and name else ""

    # -- scripted transport faults (``rest/faults.py``) ---------------------------------------

    def reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), whatever it still owes."""
        transport, self._transport = self._transport, None
        self._closing = True
        self._slots.clear()
        self._cancel_timer()
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._closing = True
        self._slots.clear()
        self._cancel_timer()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except _Reject as rej:
            self._fail(rej.status, rej.code, rej.msg)
            return
        except httptools.HttpParserUpgrade:
            # The upgrade request itself completed and was dispatched with ``close`` set;
            # httptools parses nothing after it, so nothing more is read.
            self._stop_reading()
            return
        except httptools.HttpParserError as exc:
            # httptools wraps an exception raised in a callback; ours carries the answer.
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.code, cause.msg)
            elif not self._closing:  # else: llhttp refusing bytes pipelined behind a closing request
                self._fail(400, errors.PARAMS_ERROR, f"malformed HTTP request: {exc}")
            return
        if self._in_head and self._head_bytes > self._max_head:
            self._fail(431, errors.PARAMS_ERROR, self._head_too_large())
        elif self._in_message and self._timer is None and not self._closing:
            self._timer = self._loop.call_later(self._timeout, self._timed_out)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        # _head_bytes may include bytes after this head in the same read, so it only decides
        # whether to measure what the head is known to hold (a lower bound of its size).
        if self._head_bytes > self._max_head and self._head_lower_bound() > self._max_head:
            raise _Reject(431, errors.PARAMS_ERROR, self._head_too_large())
        self._in_head = False
        self._head_bytes = 0
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
        self._in_message = False
        self._in_head = True
        if self._timer is not None:
            self._cancel_timer()
        url = self._url
        qpos = url.find(b"?")
        if qpos >= 0:
            path, query = url[:qpos], url[qpos + 1 :]
        else:
            path, query = url, b""
        headers = self._headers
        parser = self._parser
        method = parser.get_method()
        head_only = method == b"HEAD"  # its answer has a Content-Length but no body (RFC 9110 9.3.2)
        request = Request(
            method.decode("ascii", "replace"),
            path.decode("latin-1"),
            query.decode("latin-1"),
            headers,
            b"".join(self._body) if self._body else b"",
            self,
        )
        # After an upgrade request (an ``Upgrade`` + ``Connection: upgrade`` pair, or any
        # ``CONNECT``) httptools parses nothing more, so it is the last one.
        close = not parser.should_keep_alive() or parser.should_upgrade()
        if close:
            self._closing = True
        slot: list[Any] = [None, close]
        self._slots.append(slot)

        def respond(status: int, body: bytes, extra: bytes = b"", content_type: bytes | None = None) -> None:
            if slot[0] is not None:  # answered already (a handler that answered, then raised)
                return
            response = json_response(status, body, close=close, extra=extra, content_type=content_type)
            slot[0] = response[: len(response) - len(body)] if head_only else response
            self._flush()

        try:
            self._app.dispatch(request, respond)
        except Exception:  # a handler bug answers 10016; it never kills the connection or worker
            log.exception("unhandled error for %s %s", request.method, request.path)
            now = time.time_ns() // 1_000_000
            respond(500, envelope.error(errors.SERVER_ERROR, "Server error", now))

    # -- limits -----------------------------------------------------------------------------

    def _head_lower_bound(self) -> int:
        """Bytes the current head surely holds: its URL and its (distinct) header lines."""
        return len(self._url) + sum(len(name) + len(value) + 2 for name, value in self._headers.items())

    def _head_too_large(self) -> str:
        return f"request header too large: over the {self._max_head}-byte limit (max_header_bytes)"

    def _timed_out(self) -> None:
        self._timer = None
        if self._in_message and not self._closing:
            self._fail(
                408,
                errors.PARAMS_ERROR,
                f"request timeout: the request was not complete within {self._timeout:g} s (request_timeout)",
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

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

    def _stop_reading(self) -> None:
        """Serve nothing more on this connection; what is already dispatched is still answered."""
        self._closing = True
        self._cancel_timer()
        if self._transport is not None:
            self._transport.pause_reading()

    def _fail(self, status: int, code: int, msg: str) -> None:
        """Answer a request we refuse to parse further, after any earlier responses, and close."""
        self._stop_reading()
        now = time.time_ns() // 1_000_000
        body = envelope.error(code, msg, now)
        response = json_response(status, body, close=True)
        # A HEAD's answer has no body, a refusal's included; the method is known once the URL
        # has begun (before that, the parser's method is a default or a prefix of a bad token).
        if self._in_message and self._url and self._parser.get_method() == b"HEAD":
            response = response[: len(response) - len(body)]
        self._slots.append([response, True])
        self._flush()
