"""Fuzzing the REST input surface of the running mock, over loopback (issue 10, item 7).

Hypothesis builds request lines, headers and bodies; each example is sent raw on its own
connection, followed by a *sentinel*: ``GET /v5/fuzz-sentinel-<n>``, an unknown path, so its
404 echoes the path and says exactly where the answers to the fuzzed bytes end. Every example
must leave:

(a) only Bybit-shaped answers: complete HTTP/1.1 responses whose body is the envelope
    ``{retCode, retMsg, result, retExtInfo, time}``, a non-zero ``retCode`` for bad input, never
    a 500 / 10016; a protocol-level refusal (400/413/431, 408 for a stall) says
    ``Connection: close`` and is the last thing on the connection; the connection otherwise
    stays usable (the sentinel is answered);
(b) the worker serving others: a bystander keep-alive connection, opened once per test, gets
    its market time and a signed wallet balance after every example;
(c) the engine untouched: open orders, executions, balances, funding balances and positions,
    read through the state API, equal what they were before the test.
"""

from __future__ import annotations

import itertools
import re
import socket
import string
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from bybit_mock import MockExchange
from bybit_mock.bybit import auth
from bybit_mock.config import MockExchangeConfig
from bybit_mock.rest.routes import build_routes

from .conftest import get_request, now_ms, signed_get
from .fuzzing import (
    BASE_ORDER,
    StateGuard,
    bad_orders,
    json_values,
    junk_keys,
    too_deep,
)

#: hypothesis settings shared by the tests here: bounded examples, no deadline (a round trip
#: to another process is not a unit of CPU), one mock per session (function-scoped fixture).
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: how long any read may wait for the mock (every answer here is immediate or one state round trip)
TIMEOUT = 5.0
SENTINEL = "/v5/fuzz-sentinel-"
_sentinels = itertools.count(1)

ROUTES = build_routes(MockExchangeConfig.default())
#: the statuses the mock answers with, and what each must say
REFUSALS = {400, 408, 413, 431}  # protocol level: always Connection: close
ENVELOPE_KEYS = {"retCode", "retMsg", "result", "retExtInfo", "time"}
PLAIN_UNSIGNED = re.compile(r"[0-9]{1,18}")
LIMIT_HEADERS = ("x-bapi-limit", "x-bapi-limit-status", "x-bapi-limit-reset-timestamp")

POST_PATHS = sorted(path for path, route in ROUTES.items() if route.method == "POST")


# -- the wire ---------------------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    close: bool
    data: dict[str, Any]


class Wire:
    """One raw connection: sends exact bytes, reads whole responses and checks their shape."""

    def __init__(self, ex: MockExchange) -> None:
        self.sock = socket.create_connection(("127.0.0.1", ex.rest_port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send; a refusal may close the connection while we are still sending (its answer is
        then already on its way, which is what the reads check)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            # The mock closed with our unread bytes behind a refusal (the sentinel): Linux
            # answers those with a reset. The refusal itself was already delivered.
            chunk = b""
        except TimeoutError:
            raise AssertionError(f"no answer within {TIMEOUT} s; have {self.buf[:200]!r}") from None
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def answer(self, to_head: bool = False) -> Answer | None:
        """The next response, or None if the connection ended cleanly between responses;
        ``to_head``: the answer to a HEAD, which has no body (its ``data`` is then empty)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                assert self.buf == b"", f"connection ended mid-response: {self.buf[:300]!r}"
                return None
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.1 (\d{3}) [A-Za-z ]+", status_line)
        assert match, status_line
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            assert sep and name.lower() not in headers, lines
            headers[name.lower()] = value.strip()
        assert headers["content-type"] == "application/json; charset=utf-8", headers
        length = int(headers["content-length"])
        self.buf = rest
        status = int(match.group(1))
        close = headers.get("connection") == "close"
        if to_head:  # Content-Length is what a GET would get; no body follows (RFC 9110 9.3.2)
            assert status != 500 and (status not in REFUSALS or close), (status, headers)
            return Answer(status, close, {})
        while len(self.buf) < length:
            assert self._fill(), f"connection ended mid-body: {self.buf!r}"
        body, self.buf = self.buf[:length], self.buf[length:]
        data: dict[str, Any] = orjson.loads(body)
        assert set(data) == ENVELOPE_KEYS, data
        assert type(data["retCode"]) is int and isinstance(data["retMsg"], str), data
        assert isinstance(data["time"], int) and isinstance(data["retExtInfo"], dict), data
        assert set(headers) <= {"content-type", "content-length", "connection", *LIMIT_HEADERS}, headers
        limits = [headers.get(name) for name in LIMIT_HEADERS]  # Bybit's rate limits: all three or none
        assert limits == [None] * 3 or all(v is not None and PLAIN_UNSIGNED.fullmatch(v) for v in limits), headers
        assert status != 500 and data["retCode"] != 10016, f"a handler failed: {data}"
        if status == 200:
            assert isinstance(data["result"], dict | list), data
        else:
            assert data["retCode"] != 0 and data["result"] == {}, (status, data)
        if status in REFUSALS:
            assert close and data["retCode"] == 10001, (status, close, data)
        return Answer(status, close, data)

    def assert_ended(self) -> None:
        """After a ``Connection: close`` answer: not one byte more, then the end."""
        while not self.eof:
            self._fill()
        assert self.buf == b"", f"bytes after a Connection: close answer: {self.buf[:300]!r}"


def sentinel() -> tuple[str, bytes]:
    path = f"{SENTINEL}{next(_sentinels)}"
    return path, get_request(path)


def is_sentinel(answer: Answer, path: str) -> bool:
    return answer.status == 404 and answer.data.get("retMsg") == f"Route not found: GET {path}"


def exchange(
    ex: MockExchange, data: bytes | list[bytes], tail: bytes = b"", head_first: bool = False
) -> tuple[list[Answer], bool]:
    """Send the fuzzed bytes (one piece or several), a sentinel and ``tail`` on a fresh connection;
    return the answers to the fuzzed bytes and whether the connection stayed open (the sentinel
    was answered). ``head_first``: the first request is a HEAD (its answer has no body)."""
    path, probe = sentinel()
    pieces = [data] if isinstance(data, bytes) else list(data)
    wire = Wire(ex)
    try:
        for piece in pieces[:-1]:
            wire.send(piece)
        wire.send(pieces[-1] + probe + tail)
        answers: list[Answer] = []
        while True:
            got = wire.answer(to_head=head_first and not answers)
            assert got is not None, f"closed without a Connection: close answer; after {answers}"
            if is_sentinel(got, path):
                assert not got.close, got
                return answers, True
            if currently_in_test_context():
                event(f"answer {got.status} retCode {got.data.get('retCode')}{' close' if got.close else ''}")
            answers.append(got)
            if got.close:
                wire.assert_ended()
                return answers, False
    finally:
        wire.close()


# -- (b) and (c): the bystander and the engine ------------------------------------------------


class Guard(StateGuard):
    """The REST bystander: a keep-alive connection asking for the market time and a signed
    wallet balance, which must not change."""

    def __init__(self, ex: MockExchange) -> None:
        super().__init__(ex)
        assert self.before.open_orders == [] and self.before.executions == []
        self.bystander = Wire(ex)
        self.wallet: Any = None

    def bystander_served(self) -> None:
        by = self.bystander
        by.send(
            get_request("/v5/market/time") + signed_get(self.ex, "/v5/account/wallet-balance", "accountType=UNIFIED")
        )
        time_answer, wallet_answer = by.answer(), by.answer()
        assert time_answer is not None and time_answer.status == 200 and time_answer.data["retCode"] == 0
        assert set(time_answer.data["result"]) == {"timeSecond", "timeNano"}
        assert wallet_answer is not None and wallet_answer.status == 200 and wallet_answer.data["retCode"] == 0
        coins = {c["coin"]: c["walletBalance"] for a in wallet_answer.data["result"]["list"] for c in a["coin"]}
        if self.wallet is None:
            self.wallet = coins
        assert coins == self.wallet

    def close(self) -> None:
        self.bystander.close()


@pytest.fixture(scope="module")
def unlimited_mock() -> Iterator[MockExchange]:
    """The mock fuzzed here: Bybit's rate limits off. Hundreds of examples a second would
    otherwise be refused with 10006 before the handler ever saw what was fuzzed."""
    with MockExchange(MockExchangeConfig.default().copy(rate_limits="off")) as ex:
        yield ex


@pytest.fixture
def bybit_mock(unlimited_mock: MockExchange) -> MockExchange:
    """The plugin's fixture, on :func:`unlimited_mock`: reset before each test."""
    unlimited_mock.state.reset()
    return unlimited_mock


@pytest.fixture
def guard(bybit_mock: MockExchange) -> Iterator[Guard]:
    g = Guard(bybit_mock)
    try:
        g.check()
        yield g
    finally:
        g.close()


def deep(levels: int, kind: str) -> str:
    if kind == "list":
        return "[" * levels + '"0.001"' + "]" * levels
    return '{"k":' * levels + '"0.001"' + "}" * levels


#: raw JSON texts for a number field (several are not JSON at all, NaN among them)
RAW_NUMBERS = [
    "1e30",
    "1E400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "0_0.1",
    " 1e30 ",
    "1.",
    ".5",
    "0x10",
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "1.0e+16",
    "1e-20",
    "true",
    "null",
    "[]",
    "{}",
    '"1e30"',
    '"0_0.1"',
    '" 1"',
    '"NaN"',
    '"0.001 "',
]


@st.composite
def raw_number_bodies(draw: st.DrawFn) -> bytes:
    """``BASE_ORDER`` as text with a number field replaced by a raw JSON (or non-JSON) token."""
    field = draw(st.sampled_from(["qty", "price"]))
    token = draw(st.sampled_from(RAW_NUMBERS) | st.integers(1, 1100).map(lambda n: deep(n, "list")))
    text = orjson.dumps(BASE_ORDER).decode()
    return text.replace(f'"{field}":"{BASE_ORDER[field]}"', f'"{field}":{token}').encode()


#: bodies that are (nearly always) not a JSON object of request shape: 10001, in the worker
unparsable_bodies = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda b: b.strip() != b""),
    st.text(min_size=1, max_size=100).filter(lambda s: s.strip() != "").map(lambda s: s.encode()),
    json_values.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps),
    st.tuples(st.integers(7, 1100), st.sampled_from(["list", "dict"])).map(
        lambda t: ('{"category":"linear","qty":' + deep(*t) + "}").encode()
    ),
    st.integers(1, len(orjson.dumps(BASE_ORDER)) - 1).map(lambda n: orjson.dumps(BASE_ORDER)[:n]),
)
#: JSON objects of request shape that name no parameter the endpoints read
nameless_objects = st.dictionaries(junk_keys, json_values, max_size=6).map(orjson.dumps)


def post_head(ex: MockExchange, path: str, signed: bytes, length: int) -> bytes:
    """A POST's head, signed over ``signed`` as the mock reads a body, saying ``length``."""
    headers = auth.rest_headers(ex.api_key, ex.api_secret, signed.decode("utf-8", "replace"), now_ms())
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_post(ex: MockExchange, path: str, body: bytes, *, length: int | None = None) -> bytes:
    """A POST signed over ``body``; ``length`` (the Content-Length) may lie."""
    return post_head(ex, path, body, len(body) if length is None else length) + body


def worker_refusal(body: bytes) -> str | None:
    """What the worker itself says of a body before any handler (or the state service) sees it:
    a request is a JSON object of a shallow shape. None if the body is for the handler to judge."""
    if not body.strip():
        return None  # no body: no parameters
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "request body is not valid JSON"
    if not isinstance(value, dict):
        return "request body must be a JSON object"
    return "request body nested too deep" if too_deep(value) else None


def assert_refused_by_handler(answer: Answer, *, code: int | None = None, body: bytes | None = None) -> None:
    """A body the signature let through and the worker's shape check or the handler refused
    (which of them: by ``body``, when given)."""
    assert answer.status == 200 and not answer.close, answer
    assert answer.data["retCode"] not in (0, 10002, 10003, 10004), answer  # auth passed; the body failed
    if code is not None:
        assert answer.data["retCode"] == code, answer
    if body is not None:
        refusal = worker_refusal(body)
        if refusal is None:
            assert "request body" not in answer.data["retMsg"], answer
        else:
            assert answer.data["retCode"] == 10001 and refusal in answer.data["retMsg"], (refusal, answer)


# -- (1) request lines ------------------------------------------------------------------------

LLHTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE", "M-SEARCH"]
#: bytes any URL parser takes in a path or query
URL_SAFE = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?%"
url_safe_text = st.text(alphabet=URL_SAFE, max_size=40)


class Line(NamedTuple):
    method: bytes
    target: bytes
    version: bytes


@st.composite
def request_lines(draw: st.DrawFn) -> Line:
    junk_method = st.sampled_from([b"get", b"Get", b"HEAD2", b"G ET", b"", b"\x00", b"GET\t"]) | st.binary(
        min_size=1, max_size=8
    ).filter(lambda b: b"\r" not in b and b"\n" not in b)
    method = draw(st.sampled_from(LLHTTP_METHODS).map(str.encode)) if draw(st.integers(0, 3)) else draw(junk_method)
    route = draw(st.sampled_from(sorted(ROUTES)))
    target = draw(
        st.one_of(
            st.just(route.encode()),
            st.builds(lambda q: f"{route}?{q}".encode(), url_safe_text),
            url_safe_text.map(lambda s: ("/" + s).encode()),
            # percent-encoding, valid or not, of any byte
            st.lists(st.integers(0, 255), max_size=10).map(
                lambda bs: ("/v5/" + "".join(f"%{b:02X}" for b in bs)).encode()
            )
            | st.sampled_from([b"/v5/market/%74ime", b"/%zz", b"/%", b"/%%", b"/v5/market/time%00", b"/v5/%2e%2e/x"]),
            st.sampled_from(
                [b"*", b"http://127.0.0.1/v5/market/time", b"//", b"/v5/market/time#frag", b"127.0.0.1:80"]
            ),
            # junk bytes, control characters and spaces included
            st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b).map(lambda b: b"/" + b),
            # very long: under the head limit, or over it (431)
            st.sampled_from([200, 4000, 30_000, 60_000, 70_000, 100_000]).map(lambda n: b"/" + b"a" * n),
        )
    )
    version = draw(
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])
        if draw(st.integers(0, 3))
        else st.sampled_from([b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1.1 x", b""])
    )
    return Line(method, target, version)


def plain_line(line: Line) -> bool:
    """Whether any HTTP/1.1 parser must accept this request line."""
    return (
        line.method.decode("latin-1") in LLHTTP_METHODS
        and line.version in (b"HTTP/1.1", b"HTTP/1.0")
        and line.target.startswith(b"/")
        and all(chr(b) in URL_SAFE for b in line.target)
    )


@FUZZ
@given(line=request_lines(), host=st.booleans())
@example(line=Line(b"HEAD", b"/v5/account/fee-rate", b"HTTP/2.0"), host=False)  # a bodiless answer
@example(line=Line(b"HEAD", b"/v5/market/time", b"HTTP/1.1"), host=True)
def test_fuzzed_request_lines_get_one_bybit_answer(
    bybit_mock: MockExchange, guard: Guard, line: Line, host: bool
) -> None:
    with guard:
        head = line.method + b" " + line.target + (b" " + line.version if line.version else b"") + b"\r\n"
        if host:
            head += b"Host: 127.0.0.1\r\n"
        request = head + b"\r\n"
        answers, open_after = exchange(bybit_mock, request, head_first=line.method == b"HEAD")
        assert len(answers) == 1, answers  # exactly one answer to one request, refusal or not
        (answer,) = answers
        too_long = len(request) > bybit_mock.config.max_header_bytes + 4096
        if too_long:
            assert answer.status in ((431,) if plain_line(line) else (400, 431)) and not open_after, answer
        elif plain_line(line):
            assert answer.status not in (400, 431), answer
            method = line.method.decode()
            path = line.target.split(b"?", 1)[0].decode("latin-1")
            route = ROUTES.get(path)
            if route is None:
                assert answer.status == 404 and answer.data["retMsg"] == f"Route not found: {method} {path}", answer
            elif route.method != method:
                assert answer.status == 404 and answer.data["retMsg"] == f"method {method} not allowed: {method} {path}"
            else:
                assert answer.status in (200, 401), answer
            # HTTP/1.1 keeps the connection unless the request was a CONNECT (an upgrade); 1.0 closes it
            assert open_after == (line.version == b"HTTP/1.1" and method != "CONNECT"), (answer, open_after)
        else:
            assert answer.status not in (413, 408), answer
            if answer.status == 400 and answer.data:  # (a HEAD's answer has no body to read)
                assert answer.data["retMsg"].startswith("malformed HTTP request: "), answer


# -- (2) headers: junk ones, and odd or duplicated auth headers -------------------------------

AUTH_NAMES = ("X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN")
#: a header name as the token grammar allows it, or anything that is not a line break
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
#: mostly a name the token grammar allows; sometimes anything that is not a line break or a colon


def weighted(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 4) -> st.SearchStrategy[Any]:
    """``common``, and ``rare`` one time in ``odds``."""
    return st.one_of(*[common] * (odds - 1), rare)


#: mostly a name the token grammar allows; sometimes anything that is not a line break or a colon
header_names = weighted(
    st.text(alphabet=TOKEN, min_size=1, max_size=20),
    st.text(min_size=1, max_size=12).filter(lambda s: "\r" not in s and "\n" not in s and ":" not in s),
    odds=16,
)
visible = st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f")
#: mostly visible characters (Latin-1 and beyond: obs-text is allowed); sometimes any but CR, LF
header_values = weighted(
    st.text(visible, max_size=40), st.text(max_size=40).filter(lambda s: "\r" not in s and "\n" not in s), odds=16
)


@st.composite
def odd_numbers(draw: st.DrawFn) -> Callable[[int], str]:
    """A header number built from the time it is sent: huge, signed, spaced, exponent, unicode..."""
    offset = draw(st.sampled_from([0, -3_000, -6_000, -60_000, -(10**9), 2_000, 10**6]))
    form = draw(
        st.sampled_from(
            [
                "{}",
                " {}",
                "{} ",
                "\t{}",
                "+{}",
                "-{}",
                "{}.0",
                "{}e0",
                "0x{}",
                "{}_0",
                "1{}",
                "{}" + "0" * 20,
                "",
                "x{}",
            ]
        )
        | st.text(visible, max_size=12).map(lambda s: s.replace("{", "").replace("}", ""))
    )
    return lambda now: form.format(now + offset)


@st.composite
def header_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Junk headers beside the auth headers, of which one (sometimes two, sometimes none) is
    odd: each odd value then decides the answer, since the others are right."""
    odd = draw(st.sets(st.sampled_from(["ts", "rw", "key", "sign"]), max_size=2))
    rw_values = st.sampled_from(["1000", "5000", "100000", "9" * 18, "9" * 19, "", "-1", "5e3", " 5000"])
    return {
        "junk": draw(st.lists(st.tuples(header_names, header_values), max_size=3)),
        "ts": draw(odd_numbers()) if "ts" in odd else None,
        "rw": draw(rw_values) if "rw" in odd else None,
        "key": draw(header_values | st.sampled_from(["", " bybit-mock-demo-key", "BYBIT"])) if "key" in odd else None,
        "sign": draw(st.sampled_from(["upper", "empty", "hex"]) | header_values) if "sign" in odd else None,
        "dup": draw(weighted(st.none(), st.tuples(st.sampled_from(AUTH_NAMES), header_values, st.booleans()))),
    }


def ows(value: str) -> str:
    """A field value as RFC 9110 (5.5) reads it: without surrounding spaces and tabs."""
    return value.strip(" \t")


def leading_ows(value: str) -> str:
    """A field value as the mock reads it today (llhttp drops leading whitespace only; reported)."""
    return value.lstrip(" \t")


def time_headers(values: dict[str, str | None], ows: Callable[[str], str]) -> tuple[str, str]:
    """The timestamp and recv window as the mock reads them (the window "5000" when absent)."""
    rw = values["X-BAPI-RECV-WINDOW"]
    return ows(values["X-BAPI-TIMESTAMP"] or ""), ows(rw or "") if rw is not None else "5000"


def near_window_edge(values: dict[str, str | None], sent_ms: int, ows: Callable[[str], str]) -> bool:
    """Whether the timestamp is within a second of the window's lower edge: the mock reads its
    clock a few ms after ``sent_ms``, so a small or zero recv window can make it 10002 there."""
    ts_raw, rw_raw = time_headers(values, ows)
    if not (PLAIN_UNSIGNED.fullmatch(ts_raw) and PLAIN_UNSIGNED.fullmatch(rw_raw)):
        return False
    return 0 <= int(ts_raw) - (sent_ms - int(rw_raw)) < 1000


def expected_auth(
    values: dict[str, str | None], ex: MockExchange, sent_ms: int, payload: str, ows: Callable[[str], str] = ows
) -> tuple[int, int]:
    """(HTTP status, retCode) Bybit's auth rules give for these header values, read with ``ows``."""
    key = ows(values["X-BAPI-API-KEY"] or "")
    if not key:
        return 401, 10003
    ts_raw, rw_raw = time_headers(values, ows)
    if not (PLAIN_UNSIGNED.fullmatch(ts_raw) and PLAIN_UNSIGNED.fullmatch(rw_raw)):
        return 200, 10002
    # the mock reads the clock a few ms after we did: the offsets keep 1 s from every edge but
    # the one a small recv window sets, which the caller allows for (see ``near_window_edge``)
    if not sent_ms - int(rw_raw) <= int(ts_raw) < sent_ms + 1000:
        return 200, 10002
    if key != ex.api_key:
        return 200, 10003
    good = auth.rest_signature(ex.api_secret, ts_raw, key, rw_raw, payload)
    return (200, 0) if ows(values["X-BAPI-SIGN"] or "").lower() == good else (200, 10004)


@FUZZ
@given(case=header_cases())
@example(case={"junk": [], "ts": None, "rw": None, "key": None, "sign": "\u00e9", "dup": None})  # was a 500
@example(
    case={"junk": [], "ts": None, "rw": None, "key": None, "sign": None, "dup": ("X-BAPI-RECV-WINDOW", "0", False)}
)
def test_fuzzed_headers_and_auth_values_get_bybit_answers(
    bybit_mock: MockExchange, guard: Guard, case: dict[str, Any]
) -> None:
    with guard:
        ex = bybit_mock
        query = "accountType=UNIFIED"
        sent_ms = now_ms()
        values: dict[str, str | None] = dict(auth.rest_headers(ex.api_key, ex.api_secret, query, sent_ms))
        if case["ts"] is not None:
            values["X-BAPI-TIMESTAMP"] = case["ts"](sent_ms)
        if case["rw"] is not None:
            values["X-BAPI-RECV-WINDOW"] = case["rw"]
        if case["key"] is not None:
            values["X-BAPI-API-KEY"] = case["key"]
        # signed over what is sent, unless the case is about the signature itself
        ts, key, rw = (values[n] or "" for n in ("X-BAPI-TIMESTAMP", "X-BAPI-API-KEY", "X-BAPI-RECV-WINDOW"))
        good = auth.rest_signature(ex.api_secret, ts, key, rw, query)
        values["X-BAPI-SIGN"] = {None: good, "upper": good.upper(), "empty": "", "hex": good[::-1]}.get(
            case["sign"], case["sign"]
        )
        lines = [(n, v) for n, v in values.items() if v is not None]
        lines += case["junk"]
        readings = [values]  # which value of a duplicated header counts is the mock's choice: either
        if case["dup"] is not None:
            name, value, first = case["dup"]
            if first:
                lines.insert(0, (name, value))
            else:
                lines.append((name, value))
            readings.append({**values, name: value})
        raw = [f"GET /v5/account/wallet-balance?{query} HTTP/1.1", "Host: 127.0.0.1"]
        raw += [f"{n}: {v}" for n, v in lines]
        data = ("\r\n".join(raw) + "\r\n\r\n").encode("utf-8")

        answers, open_after = exchange(ex, data)
        assert len(answers) == 1, answers
        (answer,) = answers
        junk_names = {n.lower() for n, _ in case["junk"]}
        if answer.status == 400:
            # the parser refused a header: only junk the test added can be the cause
            assert not open_after and answer.data["retMsg"].startswith("malformed HTTP request: "), answer
            suspect = "".join(f"{n}{v}" for n, v in lines)
            assert any(ord(c) < 32 or ord(c) >= 127 for c in suspect) or any(
                not re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+", n) for n, _ in lines
            ), answer
        else:
            assert open_after, answer
            if not junk_names & {n.lower() for n in AUTH_NAMES}:
                outcomes = {
                    expected_auth(r, ex, sent_ms, query, strip) for r in readings for strip in (ows, leading_ows)
                }
                if any(near_window_edge(r, sent_ms, strip) for r in readings for strip in (ows, leading_ows)):
                    outcomes.add((200, 10002))
                assert (answer.status, answer.data["retCode"]) in outcomes, (answer, outcomes)


# -- (3) bodies, signed so that they reach the handler ----------------------------------------


@FUZZ
@given(order=bad_orders())
def test_an_order_with_one_bad_field_is_refused_and_places_nothing(
    bybit_mock: MockExchange, guard: Guard, order: dict[str, Any]
) -> None:
    with guard:
        body = orjson.dumps(order)
        answers, open_after = exchange(bybit_mock, signed_post(bybit_mock, "/v5/order/create", body))
        assert open_after and len(answers) == 1, answers
        assert_refused_by_handler(answers[0], body=body)


@FUZZ
@given(body=raw_number_bodies() | unparsable_bodies)
def test_odd_numbers_and_unparsable_bodies_are_10001_in_the_worker(
    bybit_mock: MockExchange, guard: Guard, body: bytes
) -> None:
    with guard:
        answers, open_after = exchange(bybit_mock, signed_post(bybit_mock, "/v5/order/create", body))
        assert open_after and len(answers) == 1, answers
        assert_refused_by_handler(answers[0], code=10001, body=body)


@FUZZ
@given(path=st.sampled_from(POST_PATHS), body=nameless_objects)
def test_every_post_endpoint_refuses_a_body_that_names_nothing(
    bybit_mock: MockExchange, guard: Guard, path: str, body: bytes
) -> None:
    with guard:
        answers, open_after = exchange(bybit_mock, signed_post(bybit_mock, path, body))
        assert open_after and len(answers) == 1, answers
        assert_refused_by_handler(answers[0], code=10001, body=body)


def test_the_base_order_is_placed_so_the_refusals_were_the_fields(bybit_mock: MockExchange) -> None:
    """The control for the body tests: signed the same way, the unaltered order is placed."""
    answers, open_after = exchange(bybit_mock, signed_post(bybit_mock, "/v5/order/create", orjson.dumps(BASE_ORDER)))
    assert open_after and len(answers) == 1 and answers[0].data["retCode"] == 0, answers
    assert len(bybit_mock.state.open_orders(bybit_mock.api_key)) == 1


# -- (4) Content-Length that lies, chunked bodies that lie ------------------------------------


@FUZZ
@given(
    body=st.sampled_from([orjson.dumps(BASE_ORDER)]) | bad_orders().map(orjson.dumps),
    short_by=st.integers(1, 40),
    hide=st.booleans(),
    sign_all=st.booleans(),
)
def test_a_content_length_that_lies_frames_the_stream_and_runs_nothing(
    bybit_mock: MockExchange, guard: Guard, body: bytes, short_by: int, hide: bool, sign_all: bool
) -> None:
    with guard:
        ex = bybit_mock
        if hide:
            # Content-Length covers this body *and* a whole valid order request behind it: the
            # hidden request is body bytes, and must never be placed. Signed over all of that, the
            # body reaches the parser (JSON with bytes after it: 10001); signed over the visible
            # body alone, the signature no longer matches (10004).
            payload = body + signed_post(ex, "/v5/order/create", orjson.dumps(BASE_ORDER))
            request = post_head(ex, "/v5/order/create", payload if sign_all else body, len(payload)) + payload
            answers, open_after = exchange(ex, request)
            assert open_after and len(answers) == 1, answers
            assert answers[0].status == 200 and answers[0].data["retCode"] == (10001 if sign_all else 10004), answers
        else:
            # Content-Length short of the body: the body is cut (its signature no longer matches),
            # and what is left over is parsed as the next request (junk: 400, then close).
            length = max(len(body) - short_by, 0)
            answers, open_after = exchange(ex, signed_post(ex, "/v5/order/create", body, length=length))
            assert answers, answers
            assert answers[0].status == 200 and answers[0].data["retCode"] == 10004, answers
            assert all(a.data["retCode"] != 0 for a in answers), answers
            if not open_after:
                assert answers[-1].status == 400, answers


@FUZZ
@given(
    chunks=st.lists(
        st.tuples(st.binary(min_size=1, max_size=40), st.none() | st.none() | st.integers(0, 300)),
        min_size=1,
        max_size=4,
    ),
    size_form=st.sampled_from(["{:x}", "{:X}", "{:x};ext=1"] * 3 + ["0x{:x}", " {:x}", "{:x} ", "-{:x}", "{:x}z"]),
)
def test_chunked_bodies_honest_or_lying_are_framed_and_refused(
    bybit_mock: MockExchange, guard: Guard, chunks: list[tuple[bytes, int | None]], size_form: str
) -> None:
    """Chunk sizes that tell the truth (None) in a valid form frame one body, signed here over
    what the chunks carry, that reaches the handler (random bytes: 10001); a size that lies or
    is malformed costs the request a refusal and never a hang."""
    with guard:
        honest = all(n is None for _, n in chunks) and size_form in ("{:x}", "{:X}", "{:x};ext=1")
        framed = [(size_form.format(len(data) if n is None else n).encode(), data) for data, n in chunks]
        body = b"".join(size + b"\r\n" + data + b"\r\n" for size, data in framed) + b"0\r\n\r\n"
        content = b"".join(data for data, _ in chunks)
        head = b"POST /v5/order/create HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        signature = auth.rest_headers(
            bybit_mock.api_key, bybit_mock.api_secret, content.decode("utf-8", "replace"), now_ms()
        )
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in signature.items())
        # Padding after the sentinel: a chunk size that lies high swallows the sentinel, and the
        # padding feeds that chunk to its end (then to a refusal) instead of leaving the parser waiting.
        answers, open_after = exchange(bybit_mock, head + b"\r\n" + body, tail=b"\r\n" * 1024)
        if honest:
            assert open_after and len(answers) == 1, answers
            assert_refused_by_handler(answers[0], code=10001, body=content)
        else:
            assert answers or open_after, "the mock answered nothing"
            assert len(answers) <= 2, answers
            assert all(a.data["retCode"] != 0 for a in answers), answers
            if not open_after:
                assert answers[-1].status == 400, answers


# -- (5) pipelined mixes ----------------------------------------------------------------------


class Step(NamedTuple):
    data: bytes
    #: what its answer must be: "time", "wallet", "refused" (handler), "404:<path>", "400"
    expect: str
    body: bytes = b""


@st.composite
def pipelines(draw: st.DrawFn, ex: MockExchange) -> list[Step]:
    steps: list[Step] = []
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["time", "wallet", "order", "body", "404"]))
        if kind == "time":
            steps.append(Step(get_request("/v5/market/time"), "time"))
        elif kind == "wallet":
            steps.append(Step(signed_get(ex, "/v5/account/wallet-balance", "accountType=UNIFIED"), "wallet"))
        elif kind in ("order", "body"):
            body = orjson.dumps(draw(bad_orders())) if kind == "order" else draw(unparsable_bodies)
            steps.append(Step(signed_post(ex, "/v5/order/create", body), "refused", body))
        else:
            path = "/" + draw(url_safe_text).replace("?", "")
            steps.append(Step(get_request(path), f"404:{path}"))
    if draw(st.booleans()):
        steps.append(
            Step(draw(st.sampled_from([b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n", b"\x16\x03\x01\x02\x00\r\n\r\n"])), "400")
        )
    return steps


@FUZZ
@given(data=st.data())
def test_pipelined_mixes_are_answered_in_order(bybit_mock: MockExchange, guard: Guard, data: st.DataObject) -> None:
    with guard:
        steps = data.draw(pipelines(bybit_mock))
        stream = b"".join(s.data for s in steps)
        cuts = sorted(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=4, unique=True)))
        pieces = [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]
        answers, open_after = exchange(bybit_mock, pieces)
        assert len(answers) == len(steps), (answers, [s.expect for s in steps])
        assert open_after == (steps[-1].expect != "400")
        for step, answer in zip(steps, answers, strict=True):
            if step.expect == "time":
                assert answer.data["retCode"] == 0 and "timeSecond" in answer.data["result"], answer
            elif step.expect == "wallet":
                assert answer.data["retCode"] == 0 and "list" in answer.data["result"], answer
            elif step.expect == "refused":
                assert_refused_by_handler(answer, body=step.body)
            elif step.expect == "400":
                assert answer.status == 400 and answer.close, answer
            else:
                path = step.expect.removeprefix("404:")
                assert answer.status == 404 and answer.data["retMsg"] == f"Route not found: GET {path}", answer


# -- found while fuzzing ----------------------------------------------------------------------


def test_trailing_whitespace_is_not_part_of_a_header_value(bybit_mock: MockExchange) -> None:
    """``X-BAPI-TIMESTAMP: <digits> \\t``, signed over the digits: the value is the digits."""
    request = signed_get(bybit_mock, "/v5/account/wallet-balance", "accountType=UNIFIED")
    request = re.sub(rb"(X-BAPI-TIMESTAMP: \d+)\r\n", rb"\1 \t\r\n", request)
    answers, open_after = exchange(bybit_mock, request)
    assert open_after and [a.data["retCode"] for a in answers] == [0], answers


def test_head_is_answered_without_a_body(bybit_mock: MockExchange) -> None:
    """A client reads no body after a HEAD's head: bytes after it start its next response."""
    with socket.create_connection(("127.0.0.1", bybit_mock.rest_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"HEAD /v5/market/time HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_request("/v5/market/time"))
        received = b""
        while received.count(b"\r\n\r\n") < 2 and (chunk := sock.recv(65536)):
            received += chunk
        head, after = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 ") and after.startswith(b"HTTP/1.1 200 "), received  # HEAD is GET
