"""``rest.protocol.HttpProtocol`` driven by hand: bytes straight into ``data_received``, a fake
transport that records writes, a fake loop whose clock only moves when told, and a fake app
whose ``dispatch`` answers at once or holds the answer for the test to release (uvicorn tests
its protocols the same way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bybit_mock.rest.protocol import HttpProtocol, Request, Respond

MAX_BODY = 4096
MAX_HEAD = 2048
TIMEOUT = 10.0

GET_TIME = b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.buffer = b""
        self.closed = False
        self.read_paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.buffer += data

    def close(self) -> None:
        assert not self.closed, "closed twice"
        self.closed = True

    def pause_reading(self) -> None:
        self.read_paused = True

    def is_closing(self) -> bool:
        return self.closed


class FakeTimer:
    def __init__(self, loop: FakeLoop, when: float, callback: Callable[[], None]) -> None:
        self.loop = loop
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.loop.timers.remove(self)


class FakeLoop:
    """Only what the protocol uses: ``call_later``, on a clock moved by :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t.when):
            if timer.when <= self.now and not timer.cancelled:
                self.timers.remove(timer)
                timer.callback()


class FakeApp:
    """Answers ``/v5/market/time`` at once with the path; ``/slow`` waits in ``held`` until
    released; ``/boom`` raises; ``/twice`` answers and then raises."""

    def __init__(self) -> None:
        self.max_body_bytes = MAX_BODY
        self.max_header_bytes = MAX_HEAD
        self.request_timeout = TIMEOUT
        self.requests: list[Request] = []
        self.held: list[tuple[Request, Respond]] = []

    def dispatch(self, request: Request, respond: Respond) -> None:
        self.requests.append(request)
        if request.path == "/slow":
            self.held.append((request, respond))
            return
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        respond(200, orjson.dumps({"path": request.path, "query": request.query, "body": request.body.decode()}))
        if request.path == "/twice":
            raise RuntimeError("bug after answering")

    def release(self, index: int = 0) -> None:
        request, respond = self.held.pop(index)
        respond(200, orjson.dumps({"path": request.path, "query": request.query, "body": ""}))


class Conn:
    def __init__(self) -> None:
        self.app = FakeApp()
        self.loop = FakeLoop()
        self.transport = FakeTransport()
        self.protocol = HttpProtocol(self.app, loop=self.loop)  # type: ignore[arg-type]
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.protocol.data_received(chunk)

    def responses(self) -> list[tuple[int, dict[str, str], dict[str, Any]]]:
        """Every complete response written so far, parsed, and consumed from the buffer."""
        out = []
        buf = self.transport.buffer
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
            length = int(headers["content-length"])
            assert len(rest) >= length, "a partial response was written"
            out.append((int(lines[0].split()[1]), headers, orjson.loads(rest[:length])))
            buf = rest[length:]
        assert buf == b"", f"trailing bytes: {buf!r}"
        self.transport.buffer = b""
        return out


@pytest.fixture
def conn() -> Conn:
    return Conn()


def get(path: str, *headers: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: x", *headers, "", ""]).encode()


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


def assert_envelope(data: dict[str, Any], code: int) -> None:
    assert set(data) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert data["retCode"] == code and data["result"] == {} and data["retExtInfo"] == {}
    assert isinstance(data["time"], int)


# -- the ordinary path ------------------------------------------------------------------------


def test_simple_get_is_answered_and_kept_alive(conn: Conn) -> None:
    conn.feed(get("/v5/market/time?a=1"))
    [(status, headers, data)] = conn.responses()
    assert status == 200 and "connection" not in headers
    assert headers["content-type"].startswith("application/json")
    assert data["path"] == "/v5/market/time" and data["query"] == "a=1"
    assert not conn.transport.closed and not conn.loop.timers


def test_request_split_across_reads_is_assembled(conn: Conn) -> None:
    raw = post("/v5/order/create", b'{"qty":"1"}')
    conn.feed(*(raw[i : i + 7] for i in range(0, len(raw), 7)))
    [(status, _, data)] = conn.responses()
    assert status == 200 and data["body"] == '{"qty":"1"}'
    assert not conn.loop.timers  # the timer armed mid-request went with its completion


def test_pipelined_answers_keep_order_when_the_first_is_late(conn: Conn) -> None:
    conn.feed(get("/slow?n=1") + get("/v5/market/time?n=2") + get("/slow?n=3") + get("/v5/market/time?n=4"))
    assert conn.transport.buffer == b""  # the fast answers wait behind the slow first one
    conn.app.release(1)  # the second slow one answers before the first
    assert conn.transport.buffer == b""
    conn.app.release(0)
    assert [data["query"] for _, _, data in conn.responses()] == ["n=1", "n=2", "n=3", "n=4"]
    assert not conn.transport.closed


def test_connection_close_answers_then_closes_and_serves_nothing_behind_it(conn: Conn) -> None:
    conn.feed(get("/slow", "Connection: close") + get("/v5/market/time?behind=1"))
    assert [r.path for r in conn.app.requests] == ["/slow"]  # the pipelined one is never dispatched
    assert not conn.transport.closed
    conn.app.release()
    [(status, headers, _)] = conn.responses()
    assert status == 200 and headers["connection"] == "close"
    assert conn.transport.closed
    conn.feed(get("/v5/market/time"))  # a late read is ignored, not an error
    assert conn.transport.buffer == b""


def test_http10_closes_after_its_answer(conn: Conn) -> None:
    conn.feed(b"GET /v5/market/time HTTP/1.0\r\n\r\n")
    [(status, headers, _)] = conn.responses()
    assert status == 200 and headers["connection"] == "close" and conn.transport.closed


# -- refusals ---------------------------------------------------------------------------------


def test_body_over_the_limit_by_content_length_is_413(conn: Conn) -> None:
    conn.feed(f"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
    [(status, headers, data)] = conn.responses()
    assert status == 413 and headers["connection"] == "close"
    assert_envelope(data, 10001)
    assert "too large" in data["retMsg"] and str(MAX_BODY) in data["retMsg"]
    assert conn.transport.closed and not conn.app.requests


def test_chunked_body_over_the_limit_is_413(conn: Conn) -> None:
    conn.feed(b"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 1000
    for _ in range(MAX_BODY // len(chunk) + 1):
        conn.feed(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    [(status, _, data)] = conn.responses()
    assert status == 413
    assert_envelope(data, 10001)
    assert conn.transport.closed and not conn.app.requests


def test_chunked_body_under_the_limit_is_served(conn: Conn) -> None:
    conn.feed(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    [(status, _, data)] = conn.responses()
    assert status == 200 and data["body"] == "hello"


@pytest.mark.parametrize(
    "garbage",
    [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n", b"\x00\x01\x02\r\n\r\n"],
)
def test_malformed_request_is_400_and_closes(conn: Conn, garbage: bytes) -> None:
    conn.feed(garbage)
    [(status, headers, data)] = conn.responses()
    assert status == 400 and headers["connection"] == "close"
    assert_envelope(data, 10001)
    assert "malformed" in data["retMsg"]
    assert conn.transport.closed and conn.transport.read_paused


def test_malformed_request_is_answered_after_the_pending_ones(conn: Conn) -> None:
    conn.feed(get("/slow") + b"BROKEN\r\n\r\n")
    assert conn.transport.buffer == b"" and not conn.transport.closed
    conn.app.release()
    assert [status for status, _, _ in conn.responses()] == [200, 400]
    assert conn.transport.closed


# -- the head cap -----------------------------------------------------------------------------


def test_huge_header_over_many_reads_is_431_before_it_ends(conn: Conn) -> None:
    conn.feed(b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    while not conn.transport.closed:
        conn.feed(b"a" * 512)
        sent += 512
        assert sent <= MAX_HEAD + 512, "the head was read past its cap"
    [(status, headers, data)] = conn.responses()
    assert status == 431 and headers["connection"] == "close"
    assert_envelope(data, 10001)
    assert str(MAX_HEAD) in data["retMsg"] and "max_header_bytes" in data["retMsg"]
    assert not conn.app.requests


def test_huge_complete_head_in_one_read_is_431(conn: Conn) -> None:
    conn.feed(get("/v5/market/time", "X-Big: " + "a" * (MAX_HEAD + 1)))
    [(status, _, data)] = conn.responses()
    assert status == 431
    assert_envelope(data, 10001)
    assert not conn.app.requests and conn.transport.closed


def test_many_headers_are_counted_too(conn: Conn) -> None:
    conn.feed(b"GET / HTTP/1.1\r\n")
    for i in range(MAX_HEAD):  # about ten bytes each: well past the cap
        conn.feed(f"X-{i}: 1\r\n".encode())
        if conn.transport.closed:
            break
    assert [status for status, _, _ in conn.responses()] == [431]


def test_normal_heads_are_fine_even_pipelined_in_one_big_read(conn: Conn) -> None:
    head = get("/v5/market/time", "X-Pad: " + "a" * (MAX_HEAD // 2))  # large, but under the cap
    conn.feed(head * 20)  # twenty heads: ten times the cap in a single read
    assert [status for status, _, _ in conn.responses()] == [200] * 20
    # a head split across reads right after whole requests is still measured as itself
    conn.feed(head * 3 + head[:100], head[100:])
    assert [status for status, _, _ in conn.responses()] == [200] * 4
    assert not conn.transport.closed


def test_large_body_is_not_counted_as_head(conn: Conn) -> None:
    body = b'{"pad":"' + b"b" * (MAX_BODY - 20) + b'"}'
    assert len(body) > MAX_HEAD
    raw = post("/x", body) + get("/v5/market/time")
    conn.feed(*(raw[i : i + 300] for i in range(0, len(raw), 300)))
    assert [status for status, _, _ in conn.responses()] == [200, 200]


# -- the unfinished-request timeout -----------------------------------------------------------


def test_unfinished_head_times_out_with_408(conn: Conn) -> None:
    conn.feed(b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\n")
    conn.loop.advance(TIMEOUT - 0.1)
    assert conn.transport.buffer == b"" and not conn.transport.closed
    conn.feed(b"X-Slow: 1\r\n")  # trickling bytes does not buy more time
    conn.loop.advance(0.2)
    [(status, headers, data)] = conn.responses()
    assert status == 408 and headers["connection"] == "close"
    assert_envelope(data, 10001)
    assert "request_timeout" in data["retMsg"]
    assert conn.transport.closed and not conn.app.requests


def test_unfinished_body_times_out_with_408(conn: Conn) -> None:
    conn.feed(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    conn.loop.advance(TIMEOUT + 1)
    assert [status for status, _, _ in conn.responses()] == [408]
    assert conn.transport.closed


def test_timeout_counts_from_each_requests_first_byte(conn: Conn) -> None:
    conn.feed(b"GET /v5/market/time HTTP/1.1\r\n")
    conn.loop.advance(TIMEOUT - 1)
    conn.feed(b"Host: x\r\n\r\n" + b"GET /v5/market/time?second=1 HTTP/1.1\r\n")
    conn.loop.advance(TIMEOUT - 1)  # 2 * TIMEOUT - 2 since the connection opened, not since the request
    assert [status for status, _, _ in conn.responses()] == [200]
    conn.loop.advance(2)
    assert [status for status, _, _ in conn.responses()] == [408]


def test_idle_keep_alive_and_slow_answers_never_time_out(conn: Conn) -> None:
    conn.feed(get("/v5/market/time"), get("/slow"))
    assert not conn.loop.timers
    conn.loop.advance(TIMEOUT * 100)
    conn.app.release()
    assert [status for status, _, _ in conn.responses()] == [200, 200]
    assert not conn.transport.closed


def test_timeout_answer_waits_for_pending_answers(conn: Conn) -> None:
    conn.feed(get("/slow") + b"GET /v5/market/time HTTP/1.1\r\n")
    conn.loop.advance(TIMEOUT + 1)
    assert conn.transport.buffer == b""
    conn.app.release()
    assert [status for status, _, _ in conn.responses()] == [200, 408]
    assert conn.transport.closed


def test_connection_lost_cancels_the_timer(conn: Conn) -> None:
    conn.feed(b"GET /v5/market/time HTTP/1.1\r\n")
    assert len(conn.loop.timers) == 1
    conn.protocol.connection_lost(None)
    assert not conn.loop.timers
    conn.loop.advance(TIMEOUT * 2)
    assert conn.transport.buffer == b""


# -- upgrade, late replies, handler bugs ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v5/market/time", "/slow"])
def test_upgrade_gets_exactly_one_response_then_close(conn: Conn, path: str) -> None:
    upgrade = get(path, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    conn.feed(upgrade + get("/v5/market/time?after=1"))
    if path == "/slow":
        assert not conn.transport.closed
        conn.app.release()
    [(status, headers, data)] = conn.responses()
    assert status == 200 and headers["connection"] == "close" and data["path"] == path
    assert conn.transport.closed
    assert [r.path for r in conn.app.requests] == [path]  # the bytes after the upgrade are never parsed
    conn.feed(get("/v5/market/time"))
    assert conn.transport.buffer == b""


def test_a_head_is_answered_without_a_body_even_when_refused(conn: Conn) -> None:
    """RFC 9110 9.3.2: the head says the Content-Length a GET would get; no body follows, so
    the next answer on the connection starts right after the head."""
    conn.feed(b"HEAD /v5/market/time HTTP/1.1\r\nHost: x\r\n\r\n" + get("/v5/market/time"))
    first, second = conn.transport.buffer.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in first
    assert second.startswith(b"HTTP/1.1 200 ")
    refused = Conn()
    refused.feed(b"HEAD /v5/market/time HTTP/1.1\r\nBad Header\r\n\r\n")
    head, body = refused.transport.buffer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400 ") and body == b"" and refused.transport.closed


def test_late_reply_after_connection_lost_writes_nothing(conn: Conn) -> None:
    conn.feed(get("/slow"))
    conn.protocol.connection_lost(ConnectionResetError())
    conn.app.release()  # FakeTransport.write would raise had it been closed; here it must not be called
    assert conn.transport.buffer == b""


def test_handler_exception_is_500_and_the_connection_survives(conn: Conn) -> None:
    conn.feed(get("/boom"))
    [(status, headers, data)] = conn.responses()
    assert status == 500 and "connection" not in headers
    assert_envelope(data, 10016)
    conn.feed(get("/v5/market/time"))
    assert [status for status, _, _ in conn.responses()] == [200]
    assert not conn.transport.closed


def test_handler_that_answers_then_raises_is_answered_once(conn: Conn) -> None:
    conn.feed(get("/twice") + get("/v5/market/time"))
    assert [status for status, _, _ in conn.responses()] == [200, 200]
