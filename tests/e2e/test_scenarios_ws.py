"""WebSocket scenarios over real sockets: connection faults, market-data faults, injected
events and order ops on ``/v5/trade``, each checked as the client sees it and in the journal."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close

from bybit_mock import (
    AccountConfig,
    Match,
    MockExchange,
    OrderFillStep,
    Scenario,
    ScenarioAction,
    ScenarioTrigger,
)

from .streams import apply_book, collect_timed, subscribed
from .test_trading_ws import LIMIT, call, order_op
from .test_ws import ask, auth_msg

#: seconds for a WS worker to learn a newly armed scenario from the engine's events
SETTLE = 0.25
OTHER = AccountConfig(api_key="other-key", api_secret="other-secret", balances={"USDT": Decimal(1000)})


async def arm(ex: MockExchange, scenario: Scenario) -> str:
    ident = ex.scenarios.push(scenario)
    await asyncio.sleep(SETTLE)
    return ident


async def closed(ws: ClientConnection, seconds: float = 5) -> Close | None:
    """Read until the connection ends; the close frame it got (None: none, the socket was cut)."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd
    except TimeoutError:
        pass
    raise AssertionError("the connection is still open")


async def done_notes(ex: MockExchange, name: str, fragment: str, seconds: float = 3) -> list[dict[str, Any]]:
    """The journal entries of scenario ``name``, once one says it did ``fragment``."""
    deadline = time.monotonic() + seconds
    while True:
        entries = ex.scenarios.journal(name)
        if any(fragment in note for e in entries for note in e["done"]):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"no journal entry of {name!r} says {fragment!r}: {entries}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def private(
    ex: MockExchange, key: str | None = None, secret: str | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(ex.ws_private_url) as ws:
        ack = await ask(ws, auth_msg(ex, key=key, secret=secret))
        assert ack["success"] is True, ack
        yield ws


async def next_reply(ws: ClientConnection) -> dict[str, Any]:
    """The next control message (an ack or a pong), stream data skipped."""
    while True:
        reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if "topic" not in reply:
            return reply


topic_messages = collect_timed


# -- connections ------------------------------------------------------------------------------


async def test_ws_close_on_private_connect(bybit_mock: MockExchange) -> None:
    await arm(
        bybit_mock, Scenario("bye", ScenarioTrigger.ws_connect("private"), ScenarioAction.ws_close(4001, "go away"))
    )
    async with connect(bybit_mock.ws_public_url("linear")) as public:
        async with connect(bybit_mock.ws_private_url) as ws:
            close = await closed(ws)
        assert close is not None and (close.code, close.reason) == (4001, "go away")
        assert (await ask(public, {"op": "ping"}))["ret_msg"] == "pong"  # another channel: untouched
    (entry,) = await done_notes(bybit_mock, "bye", "closed private")
    assert entry["matched"]["channel"] == "private" and entry["matched"]["conn_id"]
    async with private(bybit_mock):  # once only (times=1)
        pass


async def test_ws_reset_on_auth_sends_no_close_frame(bybit_mock: MockExchange) -> None:
    await arm(bybit_mock, Scenario("cut", ScenarioTrigger.ws_auth("private"), ScenarioAction.ws_reset()))
    async with connect(bybit_mock.ws_private_url) as ws:
        await ws.send(orjson.dumps(auth_msg(bybit_mock)).decode())
        assert await closed(ws) is None
        assert ws.close_code == 1006
    (entry,) = await done_notes(bybit_mock, "cut", "no close frame")
    assert entry["matched"]["api_key"] == bybit_mock.api_key


async def test_stall_holds_data_and_pongs_then_resumes(bybit_mock: MockExchange) -> None:
    stall = Scenario(
        "stall", ScenarioTrigger.ws_subscribe("public"), ScenarioAction.ws_stall(800), Match(topic="tickers.*")
    )
    await arm(bybit_mock, stall)
    async with subscribed(bybit_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as ws:
        assert (await next_reply(ws))["success"] is True  # the trade subscribe passed
        sent = time.monotonic()
        await ws.send(orjson.dumps({"op": "subscribe", "req_id": "t", "args": ["tickers.BTCUSDT"]}).decode())
        await done_notes(bybit_mock, "stall", "stalled public")
        await asyncio.sleep(0.05)  # frames written before the stall are in
        while True:  # drain them
            try:
                await asyncio.wait_for(ws.recv(), 0.05)
            except TimeoutError:
                break
        pong = await ws.ping()
        with pytest.raises(TimeoutError):  # a stalled connection sends nothing, not even a pong
            await asyncio.wait_for(asyncio.shield(pong), 0.2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.1)
        ack = await ask(ws, {"op": "ping", "req_id": "after"})  # the held ack comes first
        assert ack["req_id"] == "t" and ack["success"] is True
        assert time.monotonic() - sent >= 0.75
        # pongs again, and the streams flow (read meanwhile: a client that stops reading would
        # leave the pong behind unread data)
        flowed, _ = await asyncio.gather(topic_messages(ws, 0.5), asyncio.wait_for(await ws.ping(), 2))
        assert flowed


async def test_refuse_connect_for_a_time(bybit_mock: MockExchange) -> None:
    refuse = ScenarioAction.ws_refuse(700, what="connect", channel="public")
    await arm(bybit_mock, Scenario("refuse", ScenarioTrigger.ws_connect("private"), refuse))
    async with connect(bybit_mock.ws_private_url) as trigger:
        await done_notes(bybit_mock, "refuse", "refusing connect")
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with connect(bybit_mock.ws_public_url("linear")):
                pass
        assert exc.value.response.status_code == 503
        async with private(bybit_mock):  # another channel connects
            pass
        await asyncio.sleep(0.8)
        async with connect(bybit_mock.ws_public_url("linear")) as ws:
            assert (await ask(ws, {"op": "ping"}))["ret_msg"] == "pong"
        assert (await ask(trigger, {"op": "ping"}))["op"] == "pong"


async def test_refuse_auth_of_one_account_for_a_time(bybit_mock: MockExchange) -> None:
    bybit_mock.state.add_account(OTHER)
    refuse = ScenarioAction.ws_refuse(600, what="auth", api_key=bybit_mock.api_key)
    await arm(bybit_mock, Scenario("no-auth", ScenarioTrigger.NOW, refuse))
    async with connect(bybit_mock.ws_private_url) as ws:
        ack = await ask(ws, auth_msg(bybit_mock))
        assert ack["success"] is False and "auth refused" in ack["ret_msg"]
        async with private(bybit_mock, OTHER.api_key, OTHER.api_secret):
            pass
        await asyncio.sleep(0.7)
        assert (await ask(ws, auth_msg(bybit_mock)))["success"] is True
    assert bybit_mock.scenarios.journal("no-auth")[0]["done"] == [
        "sent to the WS workers",
        "refusing auth (bybit-mock-demo-key) for 600 ms on ws-0",
    ]


async def test_auth_fail_on_trade_and_auth_delay_on_private(bybit_mock: MockExchange) -> None:
    await arm(bybit_mock, Scenario("fail", ScenarioTrigger.ws_auth("trade"), ScenarioAction.fail(10004, "scripted")))
    await arm(bybit_mock, Scenario("slow", ScenarioTrigger.ws_auth("private"), ScenarioAction.delay(400)))
    async with connect(bybit_mock.ws_trade_url) as ws:
        refused = await call(ws, auth_msg(bybit_mock))
        assert (refused["op"], refused["retCode"], refused["retMsg"]) == ("auth", 10004, "scripted")
        assert (await call(ws, auth_msg(bybit_mock)))["retCode"] == 0  # the scenario was spent
    async with connect(bybit_mock.ws_private_url) as ws:
        start = time.monotonic()
        await ws.send(orjson.dumps(auth_msg(bybit_mock)).decode())
        await ws.send(orjson.dumps({"op": "ping", "req_id": "p"}).decode())
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["op"] == "auth" and ack["success"] is True and time.monotonic() - start >= 0.38
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["req_id"] == "p"  # in order
    await done_notes(bybit_mock, "fail", "refused with 10004")
    await done_notes(bybit_mock, "slow", "held 400 ms")


async def test_subscribe_fail_and_delay(bybit_mock: MockExchange) -> None:
    fail = ScenarioAction.fail(ret_msg="error:scripted refusal")
    await arm(bybit_mock, Scenario("nope", ScenarioTrigger.ws_subscribe("public"), fail, Match(topic="tickers.*")))
    await arm(bybit_mock, Scenario("later", ScenarioTrigger.ws_subscribe("private"), ScenarioAction.delay(300)))
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        ack = await ask(ws, {"op": "subscribe", "req_id": "a", "args": ["tickers.BTCUSDT"]})
        assert (ack["success"], ack["ret_msg"], ack["req_id"]) == (False, "error:scripted refusal", "a")
        assert (await ask(ws, {"op": "subscribe", "req_id": "b", "args": ["tickers.BTCUSDT"]}))["success"] is True
    async with private(bybit_mock) as ws:
        start = time.monotonic()
        ack = await ask(ws, {"op": "subscribe", "req_id": "s", "args": ["order"]})
        assert ack["success"] is True and time.monotonic() - start >= 0.28
    (entry,) = await done_notes(bybit_mock, "nope", "refused")
    assert entry["matched"]["topic"] == "tickers.BTCUSDT"


async def test_private_disconnect_fires_while_the_client_is_away(bybit_mock: MockExchange) -> None:
    edit = ScenarioAction.edit_balance("USDT", "123.5")
    await arm(bybit_mock, Scenario("away", ScenarioTrigger.PRIVATE_DISCONNECT, edit, Match(api_key=bybit_mock.api_key)))
    async with connect(bybit_mock.ws_private_url):  # never authenticated: not a private disconnect
        pass
    await asyncio.sleep(0.2)
    assert bybit_mock.scenarios.journal("away") == []
    async with private(bybit_mock):
        pass
    (entry,) = await done_notes(bybit_mock, "away", "balance USDT")
    assert entry["trigger"] == "private_disconnect" and entry["matched"]["api_key"] == bybit_mock.api_key
    assert bybit_mock.state.balance(bybit_mock.api_key, "USDT") == Decimal("123.5")


async def test_timer_closes_one_accounts_private_connections_only(bybit_mock: MockExchange) -> None:
    bybit_mock.state.add_account(OTHER)
    close = ScenarioAction.ws_close(4003, "account closed", channel="private", api_key=bybit_mock.api_key)
    async with (
        private(bybit_mock) as mine,
        private(bybit_mock, OTHER.api_key, OTHER.api_secret) as theirs,
        connect(bybit_mock.ws_trade_url) as my_trade,
    ):
        assert (await call(my_trade, auth_msg(bybit_mock)))["retCode"] == 0
        bybit_mock.scenarios.push(Scenario("timer", ScenarioTrigger.timer(after=100), close))
        got = await closed(mine)
        assert got is not None and (got.code, got.reason) == (4003, "account closed")
        assert (await ask(theirs, {"op": "ping"}))["op"] == "pong"
        assert (await call(my_trade, {"op": "ping"}))["retCode"] == 0  # another channel
    assert bybit_mock.scenarios.journal("timer")[0]["trigger"] == "timer"


async def test_injected_private_event_reaches_the_accounts_socket_as_is(bybit_mock: MockExchange) -> None:
    bybit_mock.state.add_account(OTHER)
    event = {"topic": "wallet", "id": "injected-1", "creationTime": 1, "data": [{"odd": ["shape", 1]}]}
    async with private(bybit_mock) as mine, private(bybit_mock, OTHER.api_key, OTHER.api_secret) as theirs:
        inject = ScenarioAction.inject_private_event(event, api_key=bybit_mock.api_key)
        bybit_mock.scenarios.push(Scenario("inject", ScenarioTrigger.NOW, inject))
        assert orjson.loads(await asyncio.wait_for(mine.recv(), 5)) == event
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(theirs.recv(), 0.3)
    (entry,) = bybit_mock.scenarios.journal("inject")
    assert "injected" in entry["done"][0]


# -- public messages as triggers ----------------------------------------------------------------


async def test_nth_public_message_closes_the_topics_subscribers(bybit_mock: MockExchange) -> None:
    nth = Scenario(
        "fifth",
        ScenarioTrigger.message("public", nth=5),
        ScenarioAction.ws_close(4002, "fifth trade"),
        Match(topic="publicTrade.BTCUSDT"),
    )
    await arm(bybit_mock, nth)
    async with (
        subscribed(bybit_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as trades,
        subscribed(bybit_mock.ws_public_url("linear"), "tickers.BTCUSDT") as tickers,
    ):
        assert (await next_reply(tickers))["success"] is True
        seen = 0
        with pytest.raises(websockets.ConnectionClosed) as exc:
            while True:
                if "topic" in orjson.loads(await asyncio.wait_for(trades.recv(), 5)):
                    seen += 1
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 4002
        assert 5 <= seen <= 8  # the close follows the fifth message (a tick or so later)
        assert (await ask(tickers, {"op": "ping"}))["ret_msg"] == "pong"
    (entry,) = await done_notes(bybit_mock, "fifth", "closed public")
    assert entry["matched"]["topic"] == "publicTrade.BTCUSDT"


async def test_public_stream_trigger_makes_a_book_gap(bybit_mock: MockExchange) -> None:
    trigger = ScenarioTrigger("public_stream", {"nth": 3})
    gap = Scenario("gap", trigger, ScenarioAction.market("book_gap"), Match(topic="orderbook.50.BTCUSDT"))
    await arm(bybit_mock, gap)
    async with subscribed(bybit_mock.ws_public_url("linear"), "orderbook.50.BTCUSDT") as ws:
        got = [m for _, m in await topic_messages(ws, 1.0)]
    us = [m["data"]["u"] for m in got]
    steps = [b - a for a, b in itertools.pairwise(us)]
    assert len(us) > 10 and steps.count(2) == 1 and steps.count(1) == len(steps) - 1, steps
    assert steps.index(2) >= 2  # after the third message
    await done_notes(bybit_mock, "gap", "u skips one")


# -- market-data faults -----------------------------------------------------------------------------


async def test_book_reset_sends_a_u1_snapshot_then_deltas_from_2(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("linear"), "orderbook.50.BTCUSDT") as ws:
        before = [m for _, m in await topic_messages(ws, 0.3)]
        reset = ScenarioAction.market("book_reset", symbol="BTCUSDT", depth=50)
        bybit_mock.scenarios.push(Scenario("reset", ScenarioTrigger.NOW, reset))
        after = [m for _, m in await topic_messages(ws, 0.8)]
    assert before[0]["type"] == "snapshot" and before[0]["data"]["u"] > 1000
    got = before + after
    (at,) = [i for i, m in enumerate(got) if m["type"] == "snapshot" and i > 0]
    assert got[at]["data"]["u"] == 1
    assert [m["data"]["u"] for m in got[at : at + 4]] == [1, 2, 3, 4]
    book: dict[str, dict[str, str]] = {}
    for msg in got:
        apply_book(book, msg)  # a strict client: every delete names a level it holds


async def test_stale_topic_goes_silent_then_resnapshots(bybit_mock: MockExchange) -> None:
    url = bybit_mock.ws_public_url("linear")
    async with subscribed(url, "orderbook.50.BTCUSDT") as books, subscribed(url, "publicTrade.BTCUSDT") as trades:
        await topic_messages(books, 0.2)
        stale = ScenarioAction.market("stale", symbol="BTCUSDT", topic="orderbook.*", ms=600)
        bybit_mock.scenarios.push(Scenario("stale", ScenarioTrigger.NOW, stale))
        start = time.monotonic()
        got, trade_msgs = await asyncio.gather(topic_messages(books, 1.2), topic_messages(trades, 0.6))
    times = [start] + [t for t, _ in got]
    longest = max(b - a for a, b in itertools.pairwise(times))
    assert 0.45 <= longest <= 0.9, longest
    assert len(trade_msgs) >= 3  # another topic of the symbol kept streaming
    resumed = [m for t, m in got if t - start > 0.45]
    assert resumed[0]["type"] == "snapshot" and resumed[1]["type"] == "delta"
    assert resumed[1]["data"]["u"] == resumed[0]["data"]["u"] + 1


async def test_duplicate_trades(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as ws:
        await topic_messages(ws, 0.1)
        dup = ScenarioAction.market("duplicate_trades", symbol="BTCUSDT", count=3)
        bybit_mock.scenarios.push(Scenario("dup", ScenarioTrigger.NOW, dup))
        got = [m for _, m in await topic_messages(ws, 1.2)]
    repeats = sum(1 for a, b in itertools.pairwise(got) if a == b)
    assert repeats == 3, [m["data"][0]["seq"] for m in got]


async def test_reorder_trades(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as ws:
        await topic_messages(ws, 0.1)
        swap = ScenarioAction.market("reorder_trades", symbol="BTCUSDT", count=2)
        bybit_mock.scenarios.push(Scenario("swap", ScenarioTrigger.NOW, swap))
        got = [m for _, m in await topic_messages(ws, 1.2)]
    seqs = [m["data"][0]["seq"] for m in got]
    assert sum(1 for a, b in itertools.pairwise(seqs) if b < a) == 1, seqs
    assert sorted(seqs) == sorted(set(seqs))  # nothing lost or repeated


# -- order ops on /v5/trade ---------------------------------------------------------------------


async def test_order_create_over_trade_fails_by_scenario(bybit_mock: MockExchange) -> None:
    await arm(bybit_mock, Scenario("no", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(10016, "scripted outage")))
    async with connect(bybit_mock.ws_trade_url) as ws:
        assert (await call(ws, auth_msg(bybit_mock)))["retCode"] == 0
        refused = await call(ws, order_op("order.create", "r1", **LIMIT))
        assert (refused["retCode"], refused["retMsg"], refused["reqId"]) == (10016, "scripted outage", "r1")
        assert bybit_mock.state.open_orders(bybit_mock.api_key) == []
        placed = await call(ws, order_op("order.create", "r2", **LIMIT))
        assert placed["retCode"] == 0
    (entry,) = await done_notes(bybit_mock, "no", "answered retCode 10016")
    assert entry["matched"]["path"] == "/v5/order/create" and entry["matched"]["symbol"] == "BTCUSDT"


async def test_order_create_over_trade_gets_a_fill_plan(market: MockExchange) -> None:
    plan = ScenarioAction.fill_plan([OrderFillStep(50, "0.004"), OrderFillStep(50, "0.006", "59990")])
    await arm(market, Scenario("plan", ScenarioTrigger.ORDER_CREATE, plan))
    async with connect(market.ws_trade_url) as ws:
        assert (await call(ws, auth_msg(market)))["retCode"] == 0
        placed = await call(ws, order_op("order.create", "p1", **LIMIT))
    assert placed["retCode"] == 0
    order_id = placed["data"]["orderId"]
    deadline = time.monotonic() + 3
    while (order := market.state.order(market.api_key, order_id)) is not None and order.status != "Filled":
        assert time.monotonic() < deadline, order
        await asyncio.sleep(0.02)
    prices = sorted(str(e.price) for e in market.state.executions(market.api_key))
    assert prices == ["59990", "60000"]
    await done_notes(market, "plan", "filled 0.006")


async def test_ghost_order_over_trade_is_placed_and_the_answer_lost(bybit_mock: MockExchange) -> None:
    await arm(bybit_mock, Scenario("ghost", ScenarioTrigger.ORDER_CREATE, ScenarioAction.ghost("reset")))
    async with connect(bybit_mock.ws_trade_url) as ws:
        assert (await call(ws, auth_msg(bybit_mock)))["retCode"] == 0
        await ws.send(orjson.dumps(order_op("order.create", "g1", **LIMIT, orderLinkId="ghost-1")).decode())
        assert await closed(ws) is None
    assert [o.order_link_id for o in bybit_mock.state.open_orders(bybit_mock.api_key)] == ["ghost-1"]
    await done_notes(bybit_mock, "ghost", "trade connection was reset")


# -- several WS workers ---------------------------------------------------------------------------


def _worker_of(conn_id: str) -> str:
    return conn_id.split("-", 1)[0]  # each worker process draws its own prefix


async def test_once_only_ws_scenario_fires_once_across_two_ws_workers(custom_mock: MockExchange) -> None:
    ex = custom_mock
    assert ex.config.ws_workers == 2
    name = "once-across-workers"
    ex.scenarios.push(Scenario(name, ScenarioTrigger.ws_auth("private"), ScenarioAction.ws_close(4005, "once")))
    try:
        await asyncio.sleep(SETTLE)
        workers: set[str] = set()
        closes = 0
        async with asyncio.timeout(20):
            for _ in range(40):
                async with connect(ex.ws_private_url) as ws:
                    await ws.send(orjson.dumps(auth_msg(ex)).decode())
                    try:
                        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                        workers.add(_worker_of(ack["conn_id"]))
                    except websockets.ConnectionClosed as exc:
                        assert exc.rcvd is not None and exc.rcvd.code == 4005
                        closes += 1
                if len(workers) == 2 and closes:
                    break
        assert len(workers) == 2, "every connection landed on one worker"
        assert closes == 1
        assert len(ex.scenarios.journal(name)) == 1
    finally:
        ex.scenarios.clear()
        ex.scenarios.clear_journal()
