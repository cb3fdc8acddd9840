"""The WS listeners driven through fake picows transports: no sockets, no processes.

As uvicorn tests its protocols with a mock transport: a fake ``WSTransport`` records close
frames and disconnects, a fake asyncio transport under it records the bytes the fan-out writes,
and a fake app stands in for ``WsApp`` (a real :class:`FanOut` and config, a state client that
only records what it is asked). Frames are real picows frames (``_make_test_ws_frame``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest
from picows import WSCloseCode, WSMsgType
from picows.picows import _make_test_ws_frame

from bybit_mock.config import MockExchangeConfig
from bybit_mock.ws import listeners
from bybit_mock.ws.app import WsApp
from bybit_mock.ws.fanout import FanOut
from bybit_mock.ws.listeners import BaseListener, PrivateListener, PublicListener
from bybit_mock.ws.market_faults import MarketFaults
from bybit_mock.ws.publisher import MarketPublisher
from bybit_mock.ws.scenarios import WsScenarios
from bybit_mock.ws.topics import PublicTopics
from bybit_mock.ws.trade import REQ_ID_WINDOW, RecentIds, TradeListener

from .test_fanout import parse_frames

KEY, SECRET = "key", "secret"


class FakeRaw:
    """The asyncio transport under picows: what the fan-out writes to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


class FakeWSTransport:
    """picows' ``WSTransport``: control frames and disconnects, recorded."""

    def __init__(self) -> None:
        self.underlying_transport = FakeRaw()
        self.closes: list[tuple[WSCloseCode, bytes]] = []
        self.disconnects: list[bool] = []  # the ``graceful`` flag of each call

    def send(self, msg_type: WSMsgType, message: bytes) -> None:
        raise AssertionError("listeners send data through the fan-out, never WSTransport.send")

    def send_close(self, close_code: WSCloseCode = WSCloseCode.NO_INFO, close_message: bytes | None = None) -> None:
        if not self.closes:  # picows sends one close frame at most
            self.closes.append((close_code, close_message or b""))

    def disconnect(self, graceful: bool = True) -> None:
        self.disconnects.append(graceful)
        self.underlying_transport.closing = True


class FakeState:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], Callable[[Any], None]]] = []

    def submit(self, op: str, args: tuple[Any, ...], callback: Callable[[Any], None]) -> None:
        self.calls.append((op, args, callback))


class FakeApp:
    """What the listeners use of ``WsApp``, except the auth flow.

    A test that needs an authenticated connection sets its ``api_key``; auth has its own tests.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, config: MockExchangeConfig) -> None:
        self.config = config
        self.loop = loop
        self.fanout = FanOut(loop, config.ws_max_buffer_bytes)
        self.public_topics = PublicTopics(config)
        self.secrets = {KEY: SECRET}
        self.state = FakeState()
        self.connections = 0
        self.hub: list[tuple[str, list[str] | None]] = []
        self.name = "ws-test"
        self.engine = "engine"
        self.listeners: set[BaseListener] = set()
        self.subscribers: dict[tuple[str, str], set[BaseListener]] = {}
        self.private: dict[str, set[PrivateListener]] = {}
        publisher = MarketPublisher(loop, self.fanout, lambda category, topic: [], lambda c, s: (0.0, 0.0))
        self.market_faults = MarketFaults(publisher, loop, self.subscribers.keys)
        self.scenarios = WsScenarios(cast(WsApp, self), self.market_faults)

    def hub_subscribe(self, listener: PublicListener, topics: list[str]) -> None:
        self.hub.append(("subscribe", topics))

    def hub_unsubscribe(self, listener: PublicListener, topics: list[str] | None = None) -> None:
        self.hub.append(("unsubscribe", topics))

    def private_disconnected(self, listener: PrivateListener) -> None:
        pass


class Conn:
    """One listener on a fake transport, and what it has been sent."""

    def __init__(self, listener: BaseListener, ws: FakeWSTransport, app: FakeApp) -> None:
        self.listener = listener
        self.ws = ws
        self.app = app

    def frame(self, payload: bytes | str | dict[str, Any], msg_type: WSMsgType = WSMsgType.TEXT) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        self.listener.on_ws_frame(self.ws, _make_test_ws_frame(msg_type, payload, True, False))  # type: ignore[arg-type]

    async def replies(self) -> list[dict[str, Any]]:
        """Everything written to the socket so far (after letting the fan-out flush)."""
        for _ in range(5):  # a /v5/trade reply is a call_later(0), then the fan-out's call_soon
            await asyncio.sleep(0)
        return [orjson.loads(f) for w in self.ws.underlying_transport.writes for f in parse_frames(w)]

    async def ask(self, payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
        before = len(await self.replies())
        self.frame(payload)
        after = await self.replies()
        assert len(after) == before + 1, after[before:]
        return after[-1]

    def disconnected(self) -> None:
        self.listener.on_ws_disconnected(self.ws)  # type: ignore[arg-type]


def open_conn(kind: str, **config: Any) -> Conn:
    cfg = MockExchangeConfig.default()
    cfg.ack_delay_ms = 0.0
    for name, value in config.items():
        setattr(cfg, name, value)
    return attach(FakeApp(asyncio.get_running_loop(), cfg), kind)


def attach(app: FakeApp, kind: str) -> Conn:
    """A new connection of ``kind`` (``trade``, ``private`` or a public category) to ``app``."""
    as_app = cast(WsApp, app)
    listener: BaseListener
    if kind == "trade":
        listener = TradeListener(as_app)
    elif kind == "private":
        listener = PrivateListener(as_app)
    else:
        listener = PublicListener(as_app, kind)
    ws = FakeWSTransport()
    listener.on_ws_connected(ws)  # type: ignore[arg-type]
    return Conn(listener, ws, app)


def header() -> dict[str, str]:
    return {"X-BAPI-TIMESTAMP": str(int(time.time() * 1000)), "X-BAPI-RECV-WINDOW": "5000"}


def order(req_id: Any) -> dict[str, Any]:
    args = [{"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.001"}]
    return {"op": "order.create", "reqId": req_id, "header": header(), "args": args}


def nested(depth: int) -> str:
    """JSON text of an object ``depth`` levels deep (orjson will not encode past 254)."""
    return '{"k":' * depth + '"x"' + "}" * depth


def with_raw(msg: dict[str, Any], key: str, raw_json: str) -> bytes:
    """``msg`` encoded with ``key`` set to the JSON text ``raw_json``."""
    return orjson.dumps(msg)[:-1] + f',"{key}":{raw_json}}}'.encode()


def assert_open(conn: Conn) -> None:
    assert conn.ws.closes == [] and conn.ws.disconnects == []


# -- the ordinary exchanges -------------------------------------------------------------------


async def test_public_ping_pong() -> None:
    conn = open_conn("linear")
    pong = await conn.ask({"op": "ping", "req_id": "p1"})
    assert pong == {"success": True, "ret_msg": "pong", "conn_id": conn.listener.conn_id, "req_id": "p1", "op": "ping"}


async def test_private_ping_pong_echoes_an_integer_req_id() -> None:
    conn = open_conn("private")
    pong = await conn.ask({"op": "ping", "req_id": 42})
    assert pong["op"] == "pong" and pong["req_id"] == 42 and pong["args"][0].isdigit()


async def test_subscribe_acks_and_joins_the_hub() -> None:
    conn = open_conn("linear")
    ack = await conn.ask({"op": "subscribe", "req_id": "s", "args": ["orderbook.1.BTCUSDT"]})
    assert ack["success"] is True and ack["req_id"] == "s" and ack["op"] == "subscribe"
    assert conn.app.hub == [("subscribe", ["orderbook.1.BTCUSDT"])]
    assert conn.listener.topics == {"orderbook.1.BTCUSDT"}


async def test_subscribe_ack_waits_ack_delay_and_holds_later_frames() -> None:
    conn = open_conn("linear", ack_delay_ms=30.0)
    conn.frame({"op": "subscribe", "req_id": "s", "args": ["tickers.BTCUSDT"]})
    conn.frame({"op": "ping", "req_id": "p"})
    assert await conn.replies() == []
    await asyncio.sleep(0.2)
    assert [r["req_id"] for r in await conn.replies()] == ["s", "p"]


@pytest.mark.parametrize(
    ("payload", "ret_msg"),
    [
        (b"{not json", "error:request not json"),
        (b"[1,2]", "error:request not json object"),
        (b'"op"', "error:request not json object"),
        (b'{"args": []}', "error:op is required"),
        (b'{"op": 7}', "error:op is required"),
        (b'{"op": "fly"}', "error:unsupported op: fly"),
        (b'{"op": "subscribe"}', "error:args must be a non-empty list of topic strings"),
        (b"[" * 2000 + b"]" * 2000, "error:request not json"),  # past orjson's own depth limit
        (with_raw({"op": "ping"}, "x", nested(300)), "error:request nested too deep (limit 6 levels)"),
    ],
)
async def test_bad_messages_get_failure_acks_and_the_connection_stays(payload: bytes, ret_msg: str) -> None:
    conn = open_conn("linear")
    reply = await conn.ask(payload)
    assert reply["success"] is False and reply["ret_msg"] == ret_msg
    assert (await conn.ask({"op": "ping", "req_id": "after"}))["req_id"] == "after"
    assert_open(conn)


async def test_binary_frames_are_requests_too() -> None:
    conn = open_conn("linear")
    conn.frame(orjson.dumps({"op": "ping", "req_id": "b"}), WSMsgType.BINARY)
    assert (await conn.replies())[-1]["req_id"] == "b"


async def test_close_frame_is_answered_and_the_socket_closed() -> None:
    conn = open_conn("linear")
    conn.frame(struct.pack("!H", 1000) + b"bye", WSMsgType.CLOSE)
    assert conn.ws.closes == [(WSCloseCode.OK, b"")] and conn.ws.disconnects == [True]


async def test_fragments_are_one_message_and_bounded_together() -> None:
    conn = open_conn("linear", max_ws_frame_bytes=1024)
    ws = cast(Any, conn.ws)
    for part, msg_type, fin in (
        (b'{"op":"ping",', WSMsgType.TEXT, False),
        (b'"req_id":"w"}', WSMsgType.CONTINUATION, True),
    ):
        conn.listener.on_ws_frame(ws, _make_test_ws_frame(msg_type, part, fin, False))
    (pong,) = await conn.replies()
    assert pong["req_id"] == "w" and pong["ret_msg"] == "pong"
    # a thousand one-byte fragments: a running size, refused at the limit (not re-summed per fragment)
    conn.listener.on_ws_frame(ws, _make_test_ws_frame(WSMsgType.TEXT, b"[", False, False))
    for _ in range(1100):
        conn.listener.on_ws_frame(ws, _make_test_ws_frame(WSMsgType.CONTINUATION, b"1", False, False))
    assert conn.ws.closes == [(WSCloseCode.MESSAGE_TOO_BIG, b"message over 1024 bytes")]


async def test_a_continuation_with_nothing_to_continue_is_a_protocol_error() -> None:
    conn = open_conn("linear")
    conn.listener.on_ws_frame(cast(Any, conn.ws), _make_test_ws_frame(WSMsgType.CONTINUATION, b"x", True, False))
    assert conn.ws.closes == [(WSCloseCode.PROTOCOL_ERROR, b"unexpected continuation frame")]


# -- request ids ------------------------------------------------------------------------------


#: request ids as JSON text
BAD_REQ_IDS = [
    pytest.param(nested(300), id="nested-300"),  # orjson parses it; encoding the echo would fail
    pytest.param(nested(3), id="nested-3"),  # within the frame's depth limit, still not an id
    pytest.param('["a"]', id="list"),
    pytest.param('"' + "r" * (listeners.MAX_REQ_ID_CHARS + 1) + '"', id="too-long"),
    pytest.param("true", id="bool"),
    pytest.param("1.5", id="float"),
]


@pytest.mark.parametrize("req_id", BAD_REQ_IDS)
async def test_public_bad_req_id_is_refused_without_echo(req_id: str) -> None:
    conn = open_conn("linear")
    reply = await conn.ask(with_raw({"op": "subscribe", "args": ["tickers.BTCUSDT"]}, "req_id", req_id))
    assert reply["success"] is False and reply["op"] == "subscribe"
    assert reply["req_id"] == ""  # linear always carries one: the empty one, not the client's
    assert "req_id must be" in reply["ret_msg"] or "nested too deep" in reply["ret_msg"]
    assert conn.app.hub == []
    assert (await conn.ask({"op": "ping", "req_id": "p"}))["ret_msg"] == "pong"
    assert_open(conn)


@pytest.mark.parametrize("req_id", BAD_REQ_IDS)
async def test_private_bad_req_id_is_refused_without_echo(req_id: str) -> None:
    conn = open_conn("private")
    reply = await conn.ask(with_raw({"op": "ping"}, "req_id", req_id))
    assert reply["success"] is False and "req_id" not in reply and reply["op"] == "ping"
    assert (await conn.ask({"op": "ping", "req_id": "p"}))["op"] == "pong"
    assert_open(conn)


@pytest.mark.parametrize("req_id", BAD_REQ_IDS)
async def test_trade_bad_req_id_is_refused_without_echo(req_id: str) -> None:
    conn = open_conn("trade")
    conn.listener.api_key = KEY  # type: ignore[attr-defined]  # as if authenticated (auth has its own tests)
    msg = order(None)
    del msg["reqId"]
    reply = await conn.ask(with_raw(msg, "reqId", req_id))
    assert reply["retCode"] == 10001 and "reqId" not in reply and reply["op"] == "order.create"
    assert conn.app.state.calls == []
    assert (await conn.ask({"op": "ping", "reqId": "p"}))["retMsg"] == "OK"
    assert_open(conn)


async def test_req_id_at_the_length_limit_is_echoed() -> None:
    conn = open_conn("linear")
    req_id = "r" * listeners.MAX_REQ_ID_CHARS
    assert (await conn.ask({"op": "ping", "req_id": req_id}))["req_id"] == req_id


# -- auth gates -------------------------------------------------------------------------------


async def test_private_subscribe_before_auth_is_refused() -> None:
    conn = open_conn("private")
    ack = await conn.ask({"op": "subscribe", "req_id": "early", "args": ["order"]})
    assert ack == {
        "req_id": "early",
        "success": False,
        "ret_msg": "error:topic:order needs auth first",
        "op": "subscribe",
        "conn_id": conn.listener.conn_id,
    }
    assert conn.listener.topics == set()


async def test_trade_op_before_auth_is_refused() -> None:
    conn = open_conn("trade")
    reply = await conn.ask(order("r1"))
    assert reply["retCode"] == 10003 and reply["retMsg"] == "Please authenticate first" and reply["reqId"] == "r1"
    assert conn.app.state.calls == []


# -- /v5/trade reqIds -------------------------------------------------------------------------


async def test_trade_duplicate_req_id_gets_20006_and_is_not_submitted() -> None:
    conn = open_conn("trade")
    conn.listener.api_key = KEY  # type: ignore[attr-defined]
    conn.frame(order("same"))
    assert [op for op, _, _ in conn.app.state.calls] == ["order_create"]
    reply = await conn.ask(order("same"))
    assert reply["retCode"] == 20006 and reply["reqId"] == "same"
    assert len(conn.app.state.calls) == 1
    conn.frame(order("other"))
    assert len(conn.app.state.calls) == 2


async def test_trade_order_args_too_deep_never_reach_the_state_service() -> None:
    conn = open_conn("trade")
    conn.listener.api_key = KEY  # type: ignore[attr-defined]
    msg = order("deep")
    msg["args"][0]["extra"] = orjson.loads(nested(4))
    reply = await conn.ask(msg)
    assert reply["retCode"] == 10001 and "nested too deep" in reply["retMsg"]
    assert conn.app.state.calls == []


def test_recent_ids_forget_the_oldest_first() -> None:
    ids = RecentIds(3)
    for i in range(5):
        ids.add(str(i))
    ids.add("4")  # a repeat does not push anything out
    assert len(ids) == 3 and "0" not in ids and "1" not in ids
    assert all(str(i) in ids for i in (2, 3, 4))


async def test_trade_req_id_window_is_bounded() -> None:
    conn = open_conn("trade")
    listener = cast(TradeListener, conn.listener)
    listener.api_key = KEY
    for i in range(REQ_ID_WINDOW + 5):
        conn.frame(order(f"r{i}"))
    assert len(listener.req_ids) == REQ_ID_WINDOW
    conn.frame(order("r0"))  # out of the window: accepted again
    assert len(conn.app.state.calls) == REQ_ID_WINDOW + 6
    conn.frame(order(f"r{REQ_ID_WINDOW + 4}"))  # still in it: refused
    assert len(conn.app.state.calls) == REQ_ID_WINDOW + 6


# -- the queue of frames behind a paused connection -------------------------------------------


async def test_queued_frames_run_in_order_including_a_malformed_one() -> None:
    conn = open_conn("linear", ack_delay_ms=20.0)
    conn.frame({"op": "subscribe", "req_id": "s", "args": ["tickers.BTCUSDT"]})
    conn.frame(b"{broken")
    conn.frame({"op": "ping", "req_id": "p"})
    await asyncio.sleep(0.15)
    replies = await conn.replies()
    assert [(r.get("req_id"), r["success"]) for r in replies] == [("s", True), ("", False), ("p", True)]


async def test_flooding_a_paused_connection_closes_it_with_1008(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listeners, "CLOSE_GRACE_S", 0.05)
    conn = open_conn("linear", ack_delay_ms=60_000.0, ws_max_pending_requests=5)
    conn.frame({"op": "ping", "req_id": "before"})  # owed, not yet flushed when the close comes
    conn.frame({"op": "subscribe", "req_id": "s", "args": ["tickers.BTCUSDT"]})  # pauses the connection
    for i in range(5):
        conn.frame({"op": "ping", "req_id": i})
    assert_open(conn)  # exactly at the limit
    conn.frame({"op": "ping", "req_id": "one too many"})
    assert conn.ws.closes == [(WSCloseCode.POLICY_VIOLATION, b"too many requests queued (limit 5)")]
    assert conn.ws.disconnects == []  # the socket stays open for the peer's answer
    # the pong owed before the close was written ahead of the close frame, nothing after it
    assert [r["req_id"] for r in await conn.replies()] == ["before"]
    conn.frame({"op": "ping", "req_id": "after"})
    assert len(await conn.replies()) == 1 and conn.ws.closes[1:] == []
    await asyncio.sleep(0.15)
    assert conn.ws.disconnects == [True]  # no answer: hung up, gracefully since nothing was left unsent


async def test_the_peers_close_frame_ends_a_closing_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listeners, "CLOSE_GRACE_S", 0.05)
    conn = open_conn("private", ack_delay_ms=60_000.0, ws_max_pending_requests=1)
    conn.frame({"op": "subscribe", "args": ["order"]})
    conn.frame({"op": "ping"})
    conn.frame({"op": "ping"})
    assert conn.ws.closes == [(WSCloseCode.POLICY_VIOLATION, b"too many requests queued (limit 1)")]
    conn.frame(struct.pack("!H", 1008), WSMsgType.CLOSE)
    assert conn.ws.disconnects == [True]
    conn.disconnected()
    await asyncio.sleep(0.15)
    assert conn.ws.disconnects == [True]  # the grace timer died with the connection


async def test_an_exception_in_a_handler_is_answered_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    conn = open_conn("linear")

    def broken(category: str, topic: str) -> bool:
        raise RuntimeError("bug")

    conn.app.public_topics.is_valid = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="bybit_mock.ws.listeners"):
        reply = await conn.ask({"op": "subscribe", "req_id": "s", "args": ["tickers.BTCUSDT"]})
    assert reply["success"] is False and reply["ret_msg"] == "error:internal error" and reply["req_id"] == "s"
    assert any("failed" in r.getMessage() for r in caplog.records)
    assert_open(conn)


# -- slow consumers ---------------------------------------------------------------------------


async def test_slow_consumer_gets_a_1013_close_after_whole_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listeners, "CLOSE_GRACE_S", 0.05)
    conn = open_conn("linear", ws_max_buffer_bytes=1000)
    assert (await conn.ask({"op": "ping"}))["ret_msg"] == "pong"
    raw = conn.ws.underlying_transport
    raw.buffered = 5000  # the peer stopped reading
    box = conn.listener.outbox
    assert box is not None
    conn.app.fanout.publish([box], b'{"topic":"tickers.BTCUSDT"}')
    await asyncio.sleep(0)
    assert conn.app.fanout.slow_consumers_dropped == 1 and box.dropped
    assert conn.ws.closes == [(WSCloseCode.TRY_AGAIN_LATER, b"slow consumer: 5000 bytes unsent")]
    assert conn.ws.disconnects == []
    assert len(raw.writes) == 1  # only the pong: the data owed was discarded, not half-written
    conn.app.fanout.publish([box], b"more")  # nothing more is queued for it
    await asyncio.sleep(0)
    assert box.frames == [] and len(raw.writes) == 1
    await asyncio.sleep(0.15)
    assert conn.ws.disconnects == [False]  # it never took its bytes: aborted after the grace
