"""Fuzzing the WebSocket input surface of the running mock, over loopback (issue 10, item 7).

Hypothesis builds batches of frames for ``/v5/public/linear``, ``/v5/private`` and ``/v5/trade``:
JSON with any op, args and request id of any type and depth, non-JSON text and bytes, empty
frames, long strings under the frame limit, auth args of the wrong types and values, order ops
with junk fields. Each batch goes out on a fresh connection, followed by a ping; a small model
of each channel (written from Bybit's documented behaviour, not from the mock's code) says what
every frame must be answered with. Every example must leave:

(a) one answer per frame, in the channel's own shape: public ``{success, ret_msg, conn_id,
    req_id, op}``, private the same without a default ``req_id``, ``/v5/trade`` ``{retCode,
    retMsg, op, connId, [reqId]}``; refusals with ``success: false`` / a non-zero ``retCode``,
    never an "internal error", and the connection still open: the ping behind the junk gets
    its pong (closing is only for frames over the size limit: 1009 with a reason, tested apart);
(b) the worker serving others: a bystander connection, opened once per test, gets its pong
    after every example;
(c) the engine untouched: open orders, executions, balances, funding and positions unchanged.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bybit_mock import MockExchange
from bybit_mock.bybit.auth import ws_auth_signature

from .fuzzing import StateGuard, bad_orders, json_scalars, json_values, too_deep

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIMEOUT = 5.0
_ids = itertools.count(1)

#: markers a frame carries until it is sent, then replaced by values made at that moment
FRESH_EXPIRES = "<fresh expires>"  # an auth ``expires`` 10 s ahead
FRESH_HEADER = "<fresh header>"  # a /v5/trade header stamped now
VALID_AUTH = "<valid auth>"  # the whole args of a correct auth

#: public topics that exist on the default mock, by Bybit's topic grammar
PUBLIC_TOPIC = re.compile(
    r"(?:publicTrade|tickers)\.(?:BTCUSDT|ETHUSDT)"
    r"|orderbook\.(?:1|50|200|1000)\.(?:BTCUSDT|ETHUSDT)"
    r"|kline\.(?:1|3|5|15|30|60|120|240|360|720|D|W|M)\.(?:BTCUSDT|ETHUSDT)"
)
PRIVATE_TOPICS = {"order", "execution", "position", "wallet", "greeks", "dcp", "order.linear", "execution.fast"}
ORDER_OPS = ("order.create", "order.amend", "order.cancel")
MISSING: Any = object()


# -- strategies -------------------------------------------------------------------------------

#: long strings (JSON-escaped to at most 2 bytes a char): up to four in a frame stay under 64 KiB
long_text = st.builds(
    lambda c, n: c * n,
    st.characters(max_codepoint=0x7FF, exclude_categories=["Cs", "Cc"]),
    st.sampled_from([129, 2000, 7000]),
)
any_text = st.text(max_size=20) | long_text
#: request ids of every type: short and long strings, ints, floats, bools, containers, nesting
req_ids = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.sampled_from(["a" * 128, "a" * 129, "a" * 36, "a" * 37, ""]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    json_values,
    long_text,
)
topics = st.one_of(
    st.sampled_from(["tickers.BTCUSDT", "publicTrade.ETHUSDT", "orderbook.50.BTCUSDT", "kline.D.ETHUSDT"]),
    st.sampled_from(sorted(PRIVATE_TOPICS)),
    st.sampled_from(["orderbook.7.BTCUSDT", "tickers.", "kline.2.BTCUSDT", "publicTrade.DOGEUSDT", "order.spam"]),
    st.text(max_size=20),
)


@st.composite
def auth_args(draw: st.DrawFn) -> Any:
    """An auth op's args: right (at send time), or [key, expires, signature] with each part
    mostly plausible (the demo key, a future expiry) and sometimes of any type or value."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return VALID_AUTH
    if kind == 1:
        return draw(json_values)
    key = "bybit-mock-demo-key" if draw(st.integers(0, 3)) else draw(st.text(max_size=20) | json_scalars)
    expires = FRESH_EXPIRES if draw(st.integers(0, 3)) else draw(st.sampled_from([1, -1, "1" * 19]) | json_scalars)
    signature = draw(
        st.one_of(
            st.text(max_size=70),
            st.text(st.characters(min_codepoint=128), min_size=1, max_size=70),
            st.text("0123456789abcdefABCDEF", min_size=64, max_size=64),
            json_scalars,
        )
    )
    parts = [key, expires, signature]
    return parts if draw(st.integers(0, 4)) else draw(st.sampled_from([parts[:2], [*parts, None], []]))


args_values = st.one_of(st.lists(topics, max_size=4), auth_args(), json_values, st.lists(long_text, max_size=2))


@st.composite
def messages(draw: st.DrawFn, ops: list[str], id_key: str, trade: bool) -> dict[str, Any]:
    """An op message, mostly with a real op and sane parts so that most frames get past the
    parsing to the op's own checks; every part is sometimes junk of any type."""

    def often(tenths: int) -> bool:
        return draw(st.integers(0, 9)) < tenths

    msg: dict[str, Any] = {}
    if often(9):
        msg["op"] = draw(st.sampled_from(ops)) if often(7) else draw(any_text | json_values)
    if often(6):
        key = id_key if often(8) else ("req_id" if id_key == "reqId" else "reqId")
        msg[key] = draw(st.text(max_size=10) | st.integers(0, 2**31)) if often(6) else draw(req_ids)
    op = msg.get("op")
    if often(8):
        if op == "auth":
            msg["args"] = draw(auth_args())
        elif op in ORDER_OPS and often(8):
            msg["args"] = draw(st.lists(bad_orders(json_scalars), min_size=1, max_size=2))
        elif op in ("subscribe", "unsubscribe") and often(8):
            msg["args"] = draw(st.lists(topics, min_size=1, max_size=3))
        else:
            msg["args"] = draw(args_values)
    if trade and often(6):
        msg["header"] = FRESH_HEADER if often(7) else draw(json_values)
    if often(3):
        junk = st.dictionaries(st.text(max_size=6).filter(lambda k: k not in msg), json_values, max_size=2)
        msg.update(draw(junk))
    return msg


class Frame(NamedTuple):
    payload: Any  # a message (dict, rendered and encoded when sent) or the exact str/bytes
    binary: bool  # sent as a binary frame (text frames carry str, or bytes sent as text)


def deep(levels: int, id_key: str) -> str:
    return f'{{"op":"ping","{id_key}":' + "[" * levels + '"x"' + "]" * levels + "}"


def frames(ops: list[str], id_key: str, trade: bool = False) -> st.SearchStrategy[list[Frame]]:
    raw = st.one_of(
        st.sampled_from(["", " ", "null", "[]", "1", '"op"', "{", '{"op":"ping"', "\ufeff{}", "NaN", '{"op":NaN}']),
        st.text(max_size=40),
        st.integers(1, 1100).map(lambda n: deep(n, id_key)),
        st.binary(max_size=40),
    )
    frame = st.one_of(
        st.builds(Frame, messages(ops, id_key, trade), st.booleans()),
        st.builds(Frame, raw, st.booleans()),
    )
    return st.lists(frame, min_size=1, max_size=6)


# -- rendering and the channel models ---------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def render(ex: MockExchange, value: Any) -> Any:
    """Replace the freshness markers with values made now."""
    if value == VALID_AUTH:
        expires = now_ms() + 10_000
        return [ex.api_key, expires, ws_auth_signature(ex.api_secret, expires)]
    if value == FRESH_EXPIRES:
        return now_ms() + 10_000
    if value == FRESH_HEADER:
        return {"X-BAPI-TIMESTAMP": str(now_ms()), "X-BAPI-RECV-WINDOW": "8000"}
    if isinstance(value, dict):
        return {k: render(ex, v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(ex, v) for v in value]
    return value


def encode(ex: MockExchange, frame: Frame) -> str | bytes:
    """The frame's payload; bytes sent as a text frame need not be UTF-8."""
    payload: str | bytes = orjson.dumps(render(ex, frame.payload)) if isinstance(frame.payload, dict) else frame.payload
    if frame.binary and isinstance(payload, str):
        return payload.encode()
    return payload


def echoable(value: Any) -> bool:
    """A request id the mock echoes: a string of at most 128 chars, or an integer."""
    return (isinstance(value, str) and len(value) <= 128) or (type(value) is int)


class Parsed(NamedTuple):
    msg: dict[str, Any] | None  # None: refused before the op is looked at
    op: str  # the op as echoed ("" unless a string)
    req_id: Any  # the id to echo, or None


def parse(payload: str | bytes, id_key: str) -> Parsed:
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Parsed(None, "", None)
    if not isinstance(msg, dict):
        return Parsed(None, "", None)
    op = msg.get("op")
    op_s = op if isinstance(op, str) else ""
    req_id = msg.get(id_key)
    if too_deep(msg) or (req_id is not None and not echoable(req_id)):
        return Parsed(None, op_s, None)
    if not isinstance(op, str):
        return Parsed(None, "", req_id)
    return Parsed(msg, op, req_id)


def topic_list(msg: dict[str, Any]) -> list[str] | None:
    args = msg.get("args")
    if isinstance(args, list) and args and all(isinstance(a, str) for a in args):
        return args
    return None


def is_valid_auth(ex: MockExchange, msg: dict[str, Any]) -> bool:
    args = msg.get("args")
    if not (isinstance(args, list) and len(args) == 3 and args[0] == ex.api_key and type(args[1]) is int):
        return False
    return args[1] > now_ms() and args[2] == ws_auth_signature(ex.api_secret, args[1])


class Expect(NamedTuple):
    #: "bad" (refused: "error:..." / 10001), "ack" (auth, subscribe...), "pong", or "order" (a
    #: /v5/trade order op: answered after ack_delay_ms and the engine, in any order among them)
    kind: str
    op: str
    ok: bool
    req_id: Any  # echoed id, or MISSING when the answer must carry none
    code: int | None = None  # /v5/trade: the exact retCode (None: any non-zero one)


class Model:
    """What a channel answers, frame by frame, in Bybit's terms."""

    id_key = "req_id"

    def __init__(self, ex: MockExchange) -> None:
        self.ex = ex
        self.topics: set[str] = set()
        self.authed = False

    def expect(self, payload: str | bytes) -> Expect:
        parsed = parse(payload, self.id_key)
        if parsed.msg is None:
            return self.refused(parsed.op, parsed.req_id)
        return self.on_op(parsed.op, parsed.msg, parsed.req_id)

    def echo(self, req_id: Any) -> Any:
        return MISSING if req_id is None else req_id

    def refused(self, op: str, req_id: Any) -> Expect:
        return Expect("bad", op, False, self.echo(req_id))

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> Expect:
        raise NotImplementedError


class PublicModel(Model):
    def echo(self, req_id: Any) -> Any:
        return "" if req_id is None else req_id  # linear acks always carry req_id

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> Expect:
        if op == "ping":
            return Expect("pong", "ping", True, self.echo(req_id))
        names = topic_list(msg)
        if op not in ("subscribe", "unsubscribe") or names is None:
            return self.refused(op, req_id)
        if op == "unsubscribe":
            self.topics.difference_update(names)
            return Expect("ack", op, True, self.echo(req_id))
        if not all(PUBLIC_TOPIC.fullmatch(t) for t in names) or self.topics & set(names):
            return self.refused(op, req_id)
        self.topics.update(names)
        return Expect("ack", op, True, self.echo(req_id))


class PrivateModel(Model):
    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> Expect:
        if op == "ping":
            return Expect("pong", "pong", True, self.echo(req_id))
        if op == "auth":
            ok = not self.authed and is_valid_auth(self.ex, msg)
            self.authed = self.authed or ok
            return Expect("ack", op, ok, self.echo(req_id))
        if op == "unsubscribe":
            return Expect("ack", op, True, self.echo(req_id))
        names = topic_list(msg)
        if op == "subscribe" and names is not None and self.authed and set(names) <= PRIVATE_TOPICS:
            return Expect("ack", op, True, self.echo(req_id))
        return self.refused(op, req_id)


class TradeModel(Model):
    id_key = "reqId"

    def __init__(self, ex: MockExchange) -> None:
        super().__init__(ex)
        self.seen: set[str] = set()

    def refused(self, op: str, req_id: Any) -> Expect:
        return Expect("bad", op, False, self.echo(req_id), 10001)

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> Expect:
        echo = self.echo(req_id)
        if op == "ping":
            return Expect("pong", "pong", True, echo, 0)
        if op == "auth":
            if self.authed:
                return Expect("ack", op, False, echo, 20001)
            self.authed = is_valid_auth(self.ex, msg)
            return Expect("ack", op, self.authed, echo, 0 if self.authed else 10004)
        if op not in ORDER_OPS:
            return Expect("ack", op, False, echo, 10404)
        if not self.authed:
            return Expect("order", op, False, echo, 10003)
        if req_id is not None:
            if not isinstance(req_id, str) or len(req_id) > 36:
                return Expect("order", op, False, echo, 10001)
            if req_id in self.seen:
                return Expect("order", op, False, echo, 20006)
            self.seen.add(req_id)
        return Expect("order", op, False, echo, None)  # header, args or the engine: any refusal


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, types included (1 is not 1.0 is not true)."""
    return orjson.dumps(a) == orjson.dumps(b)


def check_public(reply: dict[str, Any], want: Expect, conn_id: str) -> None:
    assert set(reply) == {"success", "ret_msg", "conn_id", "req_id", "op"}, reply
    assert reply["conn_id"] == conn_id and reply["op"] == want.op and reply["success"] is want.ok, (reply, want)
    assert same(reply["req_id"], want.req_id), (reply, want)
    if want.kind == "pong":
        assert reply["ret_msg"] == "pong", reply
    elif want.ok:
        assert reply["ret_msg"] == "", reply
    else:
        assert_refusal_text(reply["ret_msg"])


def assert_refusal_text(ret_msg: str) -> None:
    """Bybit's refusals on the public and private channels say ``error:<why>``; a bug caught by
    the listener's last-resort handler says ``error:internal error`` and must never show."""
    assert ret_msg.startswith("error:") and ret_msg != "error:internal error", ret_msg


def check_private(reply: dict[str, Any], want: Expect, conn_id: str) -> None:
    keys = {"op", "args", "conn_id"} if want.kind == "pong" else {"success", "ret_msg", "op", "conn_id"}
    assert set(reply) == keys | ({"req_id"} if want.req_id is not MISSING else set()), (reply, want)
    assert reply["conn_id"] == conn_id and reply["op"] == want.op, (reply, want)
    if want.req_id is not MISSING:
        assert same(reply["req_id"], want.req_id), (reply, want)
    if want.kind == "pong":
        assert isinstance(reply["args"], list) and reply["args"][0].isdigit(), reply
        return
    assert reply["success"] is want.ok, (reply, want)
    if want.kind == "bad":
        assert_refusal_text(reply["ret_msg"])
    elif want.ok:
        assert reply["ret_msg"] == "", reply
    else:  # a refused auth, in Bybit's words
        assert reply["ret_msg"] in ("Params Error", "Repeat auth"), reply


def check_trade(reply: dict[str, Any], want: Expect, conn_id: str) -> None:
    keys = {"retCode", "retMsg", "op", "connId"}
    if want.kind == "pong":
        keys |= {"data"}
    elif want.kind == "order":
        keys |= {"data", "retExtInfo", "header"}
    assert set(reply) == keys | ({"reqId"} if want.req_id is not MISSING else set()), (reply, want)
    assert reply["connId"] == conn_id and reply["op"] == want.op, (reply, want)
    if want.req_id is not MISSING:
        assert same(reply["reqId"], want.req_id), (reply, want)
    code = reply["retCode"]
    assert type(code) is int and isinstance(reply["retMsg"], str), reply
    assert (code == want.code) if want.code is not None else (code not in (0, 10016)), (reply, want)
    assert "internal error" not in reply["retMsg"], reply
    if want.kind == "pong":
        assert reply["data"][0].isdigit(), reply
    elif want.kind == "order":
        assert reply["data"] == {} and reply["retExtInfo"] == {} and reply["header"]["Traceid"], reply


class Channel(NamedTuple):
    url: str
    model: type[Model]
    check: Any
    ops: list[str]


def channels(ex: MockExchange) -> dict[str, Channel]:
    return {
        "linear": Channel(ex.ws_public_url("linear"), PublicModel, check_public, ["ping", "subscribe", "unsubscribe"]),
        "private": Channel(
            ex.ws_private_url, PrivateModel, check_private, ["ping", "auth", "subscribe", "unsubscribe"]
        ),
        "trade": Channel(ex.ws_trade_url, TradeModel, check_trade, ["ping", "auth", *ORDER_OPS]),
    }


def control_reply(ws: ClientConnection) -> dict[str, Any]:
    """The next answer that is not stream data (a subscribe may have started some)."""
    while True:
        raw = ws.recv(timeout=TIMEOUT)
        reply: dict[str, Any] = orjson.loads(raw)
        if "topic" not in reply:
            return reply


def ping(id_key: str) -> tuple[str, str]:
    req_id = f"fuzz-ping-{next(_ids)}"
    return req_id, orjson.dumps({"op": "ping", id_key: req_id}).decode()


def exchange(ex: MockExchange, channel: Channel, batch: list[Frame]) -> None:
    """Send the batch and a ping on a fresh connection; check every answer against the model."""
    model = channel.model(ex)
    with connect(channel.url, max_size=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        wanted: list[Expect] = []
        for frame in batch:
            data = encode(ex, frame)
            wanted.append(model.expect(data))
            ws.send(data, text=not frame.binary)
        final, ping_text = ping(model.id_key)
        wanted.append(model.expect(ping_text))
        ws.send(ping_text)
        for want in wanted[:-1]:
            event(f"{want.kind} {want.op if want.op in channel.ops else '(other op)'} ok={want.ok} code={want.code}")
        replies = [control_reply(ws) for _ in wanted]
        conn_id = replies[0]["connId" if channel.model is TradeModel else "conn_id"]
        # /v5/trade answers order ops after ack_delay_ms (and the engine): in order among the
        # rest, in any order among themselves
        orders = [r for r in replies if r.get("op") in ORDER_OPS and "header" in r]
        rest = [r for r in replies if not (r.get("op") in ORDER_OPS and "header" in r)]
        want_orders = [w for w in wanted if w.kind == "order"]
        want_rest = [w for w in wanted if w.kind != "order"]
        assert len(rest) == len(want_rest) and len(orders) == len(want_orders), (replies, wanted)
        for reply, want in zip(rest, want_rest, strict=True):
            channel.check(reply, want, conn_id)
        for want in sorted(want_orders, key=lambda w: w.code is None):
            match = next((r for r in orders if matches(channel, r, want, conn_id)), None)
            assert match is not None, (want, orders)
            orders.remove(match)
        pong = rest[-1]
        assert same(pong.get(model.id_key), final), pong
        # and nothing more was owed: the next answer is the next ping's
        again, ping_text = ping(model.id_key)
        ws.send(ping_text)
        assert same(control_reply(ws).get(model.id_key), again)


def matches(channel: Channel, reply: dict[str, Any], want: Expect, conn_id: str) -> bool:
    try:
        channel.check(reply, want, conn_id)
    except AssertionError:
        return False
    return True


# -- (b) and (c) ------------------------------------------------------------------------------


class Guard(StateGuard):
    """The WS bystander: a public connection whose ping gets its pong."""

    def __init__(self, ex: MockExchange, bystander: ClientConnection) -> None:
        super().__init__(ex)
        self.bystander = bystander

    def bystander_served(self) -> None:
        req_id, text = ping("req_id")
        self.bystander.send(text)
        pong = orjson.loads(self.bystander.recv(timeout=TIMEOUT))
        assert pong["req_id"] == req_id and pong["ret_msg"] == "pong", pong


@pytest.fixture
def guard(bybit_mock: MockExchange) -> Iterator[Guard]:
    with connect(bybit_mock.ws_public_url("linear"), open_timeout=TIMEOUT, close_timeout=TIMEOUT) as bystander:
        g = Guard(bybit_mock, bystander)
        g.check()
        yield g


# -- the tests --------------------------------------------------------------------------------


@FUZZ
@given(batch=frames(["ping", "subscribe", "unsubscribe", "auth", "pong"], "req_id"))
def test_public_linear_answers_every_fuzzed_frame(bybit_mock: MockExchange, guard: Guard, batch: list[Frame]) -> None:
    with guard:
        exchange(bybit_mock, channels(bybit_mock)["linear"], batch)


@FUZZ
@given(batch=frames(["ping", "auth", "subscribe", "unsubscribe", "order.create"], "req_id"))
@example(
    batch=[Frame({"op": "auth", "args": ["bybit-mock-demo-key", FRESH_EXPIRES, "\u00e9"]}, False)]
)  # was a TypeError
def test_private_answers_every_fuzzed_frame(bybit_mock: MockExchange, guard: Guard, batch: list[Frame]) -> None:
    with guard:
        exchange(bybit_mock, channels(bybit_mock)["private"], batch)


@FUZZ
@given(
    batch=frames(["ping", "auth", *ORDER_OPS, "subscribe"], "reqId", trade=True),
    login=st.booleans(),
)
@example(batch=[Frame({"op": "auth", "args": ["bybit-mock-demo-key", FRESH_EXPIRES, "\u00e9"]}, False)], login=False)
def test_trade_answers_every_fuzzed_frame_and_places_nothing(
    bybit_mock: MockExchange, guard: Guard, batch: list[Frame], login: bool
) -> None:
    if login:  # most order ops should get past auth to their header, args and the engine
        batch = [Frame({"op": "auth", "args": VALID_AUTH}, False), *batch]
    with guard:
        exchange(bybit_mock, channels(bybit_mock)["trade"], batch)


@pytest.mark.parametrize("name", ["linear", "private", "trade"])
def test_a_frame_over_the_limit_is_closed_with_1009_and_a_reason(
    bybit_mock: MockExchange, guard: Guard, name: str
) -> None:
    channel = channels(bybit_mock)[name]
    limit = bybit_mock.config.max_ws_frame_bytes
    with guard, connect(channel.url, max_size=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        _, text = ping(channel.model.id_key)
        ws.send(text[:-1] + ',"pad":"' + "x" * limit + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            control_reply(ws)
        assert closed.value.rcvd is not None, "closed without a close frame (1006)"
        assert closed.value.rcvd.code == 1009 and str(limit) in closed.value.rcvd.reason


def test_a_fragmented_message_is_answered_as_one(bybit_mock: MockExchange) -> None:
    with connect(bybit_mock.ws_public_url("linear"), open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send(iter(['{"op":"ping",', '"req_id":"whole"}']))
        reply = control_reply(ws)
        assert reply["req_id"] == "whole" and reply["ret_msg"] == "pong", reply
