"""The WS worker's scenario side without sockets: what it asks the engine, and when it does not.

The listeners run on the fake transports of ``test_ws_listeners``; the fake state client
records every command, so "nothing armed costs nothing" is a count of scenario commands.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from picows import WSMsgType
from picows.picows import _make_test_ws_frame

from bybit_mock.config import MockExchangeConfig
from bybit_mock.ws.listeners import PrivateListener
from bybit_mock.ws.trade import TradeListener

from .test_ws_listeners import KEY, Conn, FakeApp, attach, order

NOTHING: dict[str, Any] = {"version": 1, "rest": {}, "ws": {}, "public": []}


def fake_app(summary: dict[str, Any] | None = None) -> FakeApp:
    cfg = MockExchangeConfig.default()
    cfg.ack_delay_ms = 0.0
    app = FakeApp(asyncio.get_running_loop(), cfg)
    app.scenarios.learn(summary or NOTHING)
    return app


connect = attach


def scenario_ops(app: FakeApp) -> list[str]:
    return [op for op, _, _ in app.state.calls if op.startswith("scenario_")]


def answer(app: FakeApp, op: str, value: Any) -> None:
    """Answer the latest waiting ``op`` command as the engine would."""
    for i in reversed(range(len(app.state.calls))):
        name, _, callback = app.state.calls[i]
        if name == op:
            del app.state.calls[i]
            callback((0, value))
            return
    raise AssertionError(f"no {op} was sent")


def a_session(app: FakeApp) -> list[Conn]:
    """Everything a client can do that a WS trigger could stand for."""
    public = connect(app, "linear")
    public.frame({"op": "subscribe", "req_id": "s", "args": ["publicTrade.BTCUSDT"]})
    public.frame({"op": "ping"})
    private = connect(app, "private")
    private.frame({"op": "auth", "args": [KEY, 1, "bad-signature"]})
    cast(PrivateListener, private.listener).api_key = KEY
    private.frame({"op": "subscribe", "args": ["order"]})
    trade = connect(app, "trade")
    cast(TradeListener, trade.listener).api_key = KEY
    trade.frame(order("r1"))
    app.scenarios.count_public("linear", {"publicTrade.BTCUSDT": [b"{}", b"{}"]})
    app.market_faults.filter("linear", {"publicTrade.BTCUSDT": [b"{}"]})
    for conn in (public, private, trade):
        conn.disconnected()
    return [public, private, trade]


async def test_nothing_armed_sends_no_scenario_command() -> None:
    app = fake_app()
    app.subscribers[("linear", "publicTrade.BTCUSDT")] = set()
    a_session(app)
    await asyncio.sleep(0)
    assert scenario_ops(app) == [] and app.scenarios.asked == 0
    assert [op for op, _, _ in app.state.calls] == ["order_create"]  # the plain command


async def test_armed_elsewhere_sends_no_scenario_command() -> None:
    # armed, but for another channel, trade op and topic than this session uses
    summary = {
        "version": 2,
        "rest": {"/v5/order/amend": ["POST"]},
        "ws": {"ws_connect": ["trade"], "ws_subscribe": ["private"], "trade_op": ["order_amend"]},
        "public": ["orderbook.*"],
    }
    app = fake_app(summary)
    public = connect(app, "linear")
    public.frame({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
    app.scenarios.count_public("linear", {"publicTrade.BTCUSDT": [b"{}"]})
    assert scenario_ops(app) == []


async def test_each_armed_trigger_asks_the_engine() -> None:
    # the counterpart of the above: the same session asks once a trigger is armed for it
    summary = {
        "version": 2,
        "ws": {
            "ws_connect": ["*"],
            "ws_auth": ["private"],
            "ws_subscribe": ["public"],
            "private_disconnect": ["private"],
            "trade_op": ["order_create"],
        },
        "public": ["publicTrade.*"],
    }
    app = fake_app(summary)
    conn = connect(app, "linear")
    assert scenario_ops(app) == ["scenario_take"]
    assert app.state.calls[0][1] == (
        "ws_connect",
        {"channel": "public", "conn_id": conn.listener.conn_id, "category": "linear"},
    )
    answer(app, "scenario_take", [])  # nothing fired: the connection goes on
    conn.frame({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
    kind, ctx = app.state.calls[-1][1]
    assert kind == "ws_subscribe" and ctx["topic"] == "publicTrade.BTCUSDT" and ctx["symbol"] == "BTCUSDT"
    app.subscribers[("linear", "publicTrade.BTCUSDT")] = {conn.listener}
    app.scenarios.count_public("linear", {"publicTrade.BTCUSDT": [b"{}", b"{}"], "tickers.BTCUSDT": [b"{}"]})
    kinds = [args[0] for op, args, _ in app.state.calls if op == "scenario_take"]
    assert kinds[-4:] == ["message", "public_stream", "message", "public_stream"]
    trade = connect(app, "trade")
    answer(app, "scenario_take", [])
    cast(TradeListener, trade.listener).api_key = KEY
    trade.frame(order("r1"))
    op, args, _ = app.state.calls[-1]
    assert op == "scenario_rest" and args[:3] == ("POST", "/v5/order/create", KEY) and args[4] == "order_create"


async def test_a_newer_summary_wins_and_an_older_one_is_ignored() -> None:
    app = fake_app({"version": 5, "ws": {"ws_connect": ["*"]}, "public": []})
    app.scenarios.learn({"version": 4, "ws": {}, "public": []})
    assert app.scenarios.armed("ws_connect", "public")
    app.scenarios.on_event("scenarios", {"version": 6, "ws": {}, "public": []})
    assert not app.scenarios.armed("ws_connect", "public")


async def test_fail_on_a_gated_subscribe_answers_the_channels_error_ack() -> None:
    app = fake_app({"version": 2, "ws": {"ws_subscribe": ["public"]}, "public": []})
    conn = connect(app, "linear")
    conn.frame({"op": "subscribe", "req_id": "a", "args": ["tickers.BTCUSDT"]})
    conn.frame({"op": "ping", "req_id": "p"})  # waits behind the subscribe
    assert await conn.replies() == []
    fail = {"type": "fail", "ret_code": 10016, "ret_msg": "error:nope", "http_status": 200}
    answer(app, "scenario_take", [{"action": fail, "seq": 7, "ctx": {}}])
    ack, pong = await conn.replies()
    assert (ack["req_id"], ack["success"], ack["ret_msg"]) == ("a", False, "error:nope")
    assert pong["req_id"] == "p"
    assert app.state.calls[-1][:2] == ("scenario_note", (7, "refused with 10016 'error:nope'"))


async def test_stall_holds_writes_and_pings_then_lets_them_go() -> None:
    app = fake_app()
    conn = connect(app, "linear")
    sent_pongs: list[bytes] = []
    conn.ws.send_pong = sent_pongs.append  # type: ignore[attr-defined]
    conn.listener.stall(50)
    assert conn.listener.stalled
    conn.frame({"op": "ping", "req_id": "held"})
    conn.listener.on_ws_frame(conn.ws, _ping(b"x"))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert await conn.replies() == [] and sent_pongs == []
    await asyncio.sleep(0.08)
    assert not conn.listener.stalled
    assert [r["req_id"] for r in await conn.replies()] == ["held"]
    conn.listener.on_ws_frame(conn.ws, _ping(b"y"))  # type: ignore[arg-type]
    assert sent_pongs == [b"y"]


async def test_injected_event_goes_to_the_accounts_private_connections_as_is() -> None:
    app = fake_app()
    mine, theirs = connect(app, "private"), connect(app, "private")
    app.private = {KEY: {cast(PrivateListener, mine.listener)}, "other": {cast(PrivateListener, theirs.listener)}}
    event = {"anything": [1, {"goes": True}]}
    app.scenarios.on_event("private_raw", (KEY, event))
    assert await mine.replies() == [event] and await theirs.replies() == []
    app.scenarios.on_event("private_raw", (None, event))
    assert await mine.replies() == [event, event] and await theirs.replies() == [event]


async def test_a_broadcast_close_selects_by_channel_and_account() -> None:
    app = fake_app()
    public, mine, theirs = connect(app, "linear"), connect(app, "private"), connect(app, "private")
    cast(PrivateListener, mine.listener).api_key = KEY
    cast(PrivateListener, theirs.listener).api_key = "other"
    app.scenarios.on_event(
        "fault", {"type": "ws_close", "code": 4000, "reason": "r", "channel": "private", "api_key": KEY}
    )
    assert mine.ws.closes == [(4000, b"r")]
    assert public.ws.closes == [] and theirs.ws.closes == []
    app.scenarios.on_event("fault", {"type": "ws_reset"})
    assert public.ws.disconnects == [False] and theirs.ws.disconnects == [False]


def _ping(payload: bytes) -> Any:
    return _make_test_ws_frame(WSMsgType.PING, payload, True, False)


def test_refusal_window(monkeypatch: Any) -> None:
    loop = asyncio.new_event_loop()
    try:
        cfg = MockExchangeConfig.default()
        app = FakeApp(loop, cfg)
        scenarios = app.scenarios
        scenarios.add_refusal({"type": "ws_refuse", "ms": 1000, "what": "auth", "api_key": KEY})
        assert scenarios.refusing("auth", "private", KEY) and scenarios.refusing("auth", "trade", KEY)
        assert not scenarios.refusing("auth", "private", "other") and not scenarios.refusing("connect", "private")
        monkeypatch.setattr(loop, "time", lambda: 10**9)
        assert not scenarios.refusing("auth", "private", KEY)
    finally:
        loop.close()
