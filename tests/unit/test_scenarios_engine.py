"""Scenario effects inside the engine: order actions, order events, the private stream, state edits.

Each test drives the engine the way a REST worker does (``scenario_rest``) or the way the state
service's clock does (``advance_markets``), on a clock the test moves, and asserts on the
engine's state and on the events it logged for the WS workers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from bybit_mock.engine.exchange import Exchange
from bybit_mock.scenarios import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger

from .helpers import KEY, LINEAR, FixedClock, decoded, new_exchange, ok, pushes

LIMIT = {**LINEAR, "side": "Buy", "orderType": "Limit", "qty": "0.002", "price": "64000"}


def fixed_exchange() -> tuple[Exchange, FixedClock]:
    ex = new_exchange()
    clock = FixedClock()
    clock.now = ex._clock()  # type: ignore[attr-defined]
    ex._clock = clock  # type: ignore[assignment]  # the test moves time from here on
    for part in (ex.trading, ex.stops, ex.queries, ex.funds, ex.position_settings, ex.pushes):
        part._clock = clock  # type: ignore[attr-defined]
    return ex, clock


def create(ex: Exchange, query: dict[str, Any] | None = None) -> tuple[dict[str, Any], str | None]:
    """A REST create on an armed route: the engine's answer, and the new order's id."""
    q = query or LIMIT
    ((code, value),) = ex.apply_batch(
        [("scenario_rest", ("POST", "/v5/order/create", KEY, q, "order_create", (KEY, q)))]
    )
    assert code == 0, value
    reply = value.get("reply")
    order_id = orjson.loads(reply[1])["orderId"] if reply and reply[0] == 0 else None
    return value, order_id


def tick(ex: Exchange, clock: FixedClock, ms: int) -> None:
    clock.now += ms
    ex.advance_markets()


def events(ex: Exchange, cursor: int, kind: str) -> list[Any]:
    _, logged = ex.events.wait(cursor, 0)
    return [data for k, data in logged if k == kind]


def test_fill_plan_steps_in_time_and_stops_at_a_cancelled_order() -> None:
    ex, clock = fixed_exchange()
    steps = [OrderFillStep(25, "0.001", "64000"), OrderFillStep(25, "0.0005"), OrderFillStep(25, "0.0005")]
    ex.scenario_push(Scenario("plan", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fill_plan(steps)))
    _, oid = create(ex)
    assert oid is not None
    tick(ex, clock, 24)
    assert ex.order(KEY, oid).status == "New"  # type: ignore[union-attr]
    tick(ex, clock, 1)
    assert ex.order(KEY, oid).filled_qty == Decimal("0.001")  # type: ignore[union-attr]
    tick(ex, clock, 25)
    assert ex.order(KEY, oid).filled_qty == Decimal("0.0015")  # type: ignore[union-attr]
    ok(ex, "order_cancel", {**LINEAR, "orderId": oid})
    tick(ex, clock, 25)  # the last step finds it cancelled: no fill (the crate filled on)
    order = ex.order(KEY, oid)
    assert order is not None and order.status == "Cancelled" and order.filled_qty == Decimal("0.0015")
    done = ex.scenario_journal("plan")[0]["done"]
    assert done[-1].endswith("is Cancelled: not filled further"), done
    assert ex.positions(KEY)[0].size == Decimal("0.0015")


def test_two_fill_plans_fill_two_orders_and_a_flat_round_trip() -> None:
    ex, clock = fixed_exchange()
    for name, price in (("entry", "64000"), ("exit", "66000")):
        plan = ScenarioAction.fill_plan([OrderFillStep(25, "0.002", price)])
        ex.scenario_push(Scenario(name, ScenarioTrigger.ORDER_CREATE, plan))
    start = ex.balances(KEY)["USDT"]
    create(ex)
    create(ex, {**LIMIT, "side": "Sell", "price": "66000"})  # both rest: the market is at 65 000
    tick(ex, clock, 30)
    assert ex.positions(KEY) == []  # bought 0.002 at 64 000, sold 0.002 at 66 000
    fills = ex.executions_between(KEY)
    assert [(f.side, f.price, f.is_maker) for f in fills] == [("Buy", 64000, True), ("Sell", 66000, True)]
    fees = sum((e.fee for e in fills), Decimal(0))
    assert ex.balances(KEY)["USDT"] == start + Decimal("4") - fees


def test_auto_fill_fills_every_order_at_the_rule_price() -> None:
    ex, clock = fixed_exchange()
    ex.scenario_push(Scenario("auto", ScenarioTrigger.ORDER_CREATE, ScenarioAction.auto_fill(10, "63000"), times=None))
    ids = [create(ex)[1] for _ in range(3)]
    tick(ex, clock, 10)
    for oid in ids:
        order = ex.order(KEY, oid)  # type: ignore[arg-type]
        assert order is not None and order.status == "Filled" and order.avg_price == Decimal(63000)


def test_reject_after_acceptance_pushes_rejected_and_releases_margin() -> None:
    ex, _ = fixed_exchange()
    ex.scenario_push(
        Scenario("no", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reject("EC_PostOnlyWillTakeLiquidity"))
    )
    cursor = ex.events.cursor
    answer, oid = create(ex)
    assert answer["reply"][0] == 0  # the REST answer accepted it
    order = ex.order(KEY, oid)  # type: ignore[arg-type]
    assert order is not None and order.status == "Rejected" and order.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    statuses = [i["orderStatus"] for topic, items in pushes(ex, cursor) if topic == "order" for i in items]
    assert statuses == ["New", "Rejected"]
    assert ex.open_orders(KEY) == []
    assert all(c.order_im == 0 for c in ex.coin_views(KEY))


def test_partial_fill_then_cancel() -> None:
    ex, clock = fixed_exchange()
    action = ScenarioAction.partial_fill_then_cancel("0.0005", after=5)
    ex.scenario_push(Scenario("pc", ScenarioTrigger.ORDER_CREATE, action))
    _, oid = create(ex)
    tick(ex, clock, 5)
    order = ex.order(KEY, oid)  # type: ignore[arg-type]
    assert order is not None and order.status == "Cancelled" and order.filled_qty == Decimal("0.0005")
    assert order.cancel_type == "CancelByAdmin"


def test_a_refused_request_carries_no_order_action_and_a_delay_holds_them() -> None:
    ex, clock = fixed_exchange()
    ex.scenario_push(Scenario("plan", ScenarioTrigger.ORDER_CREATE, ScenarioAction.auto_fill()))
    ex.scenario_push(Scenario("wait", ScenarioTrigger.ORDER_CREATE, ScenarioAction.delay(50)))
    answer, oid = create(ex)
    assert oid is None and [b["action"]["type"] for b in answer["before"]] == ["delay"]
    assert ex.open_orders(KEY) == []  # nothing happens until the worker resumes
    ((_, resumed),) = ex.apply_batch([("scenario_resume", (answer["token"], KEY, "order_create", (KEY, LIMIT)))])
    oid = orjson.loads(resumed["reply"][1])["orderId"]
    tick(ex, clock, 1)
    assert ex.order(KEY, oid).status == "Filled"  # type: ignore[union-attr]
    ex.scenario_push(Scenario("plan", ScenarioTrigger.ORDER_CREATE, ScenarioAction.auto_fill()))
    ex.scenario_push(Scenario("no", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(10001, "no")))
    answer, oid = create(ex)
    assert oid is None and answer["before"][0]["action"]["type"] == "fail"
    assert "not done: the request was refused" in ex.scenario_journal("plan")[-1]["done"]


def test_order_events_fire_on_status_changes() -> None:
    ex, clock = fixed_exchange()
    ex.scenario_push(
        Scenario(
            "on-fill", ScenarioTrigger.order_event("filled"), ScenarioAction.edit_balance("USDT", "1", api_key=KEY)
        )
    )
    ex.scenario_push(Scenario("on-new", ScenarioTrigger.order_event("created"), ScenarioAction.auto_fill(5)))
    ok(ex, "order_create", LIMIT)
    assert ex.balances(KEY)["USDT"] != Decimal(1)
    tick(ex, clock, 5)  # created -> auto-fill -> filled -> the balance edit
    assert ex.balances(KEY)["USDT"] == Decimal(1)
    assert [e["scenario"] for e in ex.scenario_journal()] == ["on-new", "on-fill"]
    assert ex.scenario_journal()[1]["matched"]["event"] == "filled"


def test_private_stream_drop_duplicate_reorder_delay() -> None:
    def orders_after(action: ScenarioAction, moves: int = 0) -> list[str]:
        ex, clock = fixed_exchange()
        ex.scenario_push(Scenario("fault", ScenarioTrigger.NOW, action))
        cursor = ex.events.cursor
        ok(ex, "order_create", LIMIT)
        ok(ex, "order_create", {**LIMIT, "orderLinkId": "second"})
        for _ in range(moves):
            tick(ex, clock, 100)
        return [
            ("2" if items[0]["orderLinkId"] else "1") + ":" + topic
            for _, wire in events(ex, cursor, "private")
            for topic, items in decoded(wire)
            if topic in ("order", "execution")
        ]

    assert orders_after(ScenarioAction.private_stream("drop", topic="order")) == ["2:order"]
    assert orders_after(ScenarioAction.private_stream("duplicate", topic="order")) == ["1:order", "1:order", "2:order"]
    assert orders_after(ScenarioAction.private_stream("reorder", topic="order")) == ["2:order", "1:order"]
    assert orders_after(ScenarioAction.private_stream("delay", topic="order", ms=150)) == ["2:order"]
    assert orders_after(ScenarioAction.private_stream("delay", topic="order", ms=150), moves=2) == [
        "2:order",
        "1:order",
    ]
    unfaulted = orders_after(ScenarioAction.private_stream("drop", topic="order", api_key="someone-else"))
    assert unfaulted == ["1:order", "2:order"]


def test_inject_and_state_edits_with_and_without_a_push() -> None:
    ex, _ = fixed_exchange()
    cursor = ex.events.cursor
    event = {"topic": "order", "data": [{"orderId": "MOCK-ORDER-1", "orderStatus": "Rejected"}]}
    ex.scenario_push(Scenario("inj", ScenarioTrigger.NOW, ScenarioAction.inject_private_event(event, api_key=KEY)))
    assert events(ex, cursor, "private_raw") == [(KEY, event)]
    cursor = ex.events.cursor
    ex.scenario_push(Scenario("quiet", ScenarioTrigger.NOW, ScenarioAction.edit_balance("USDT", "123", api_key=KEY)))
    assert ex.balances(KEY)["USDT"] == Decimal(123) and pushes(ex, cursor) == []
    ex.scenario_push(
        Scenario(
            "loud", ScenarioTrigger.NOW, ScenarioAction.edit_balance("USDT", "7", push=True), match=Match(api_key=KEY)
        )
    )
    ((topic, (wallet,)),) = pushes(ex, cursor)
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    assert topic == "wallet" and usdt["walletBalance"] == "7"
    cursor = ex.events.cursor
    edit = ScenarioAction.edit_position("BTCUSDT", "Sell", "0.5", "60000", api_key=KEY, push=True)
    ex.scenario_push(Scenario("pos", ScenarioTrigger.NOW, edit))
    ((topic, (pos,)),) = pushes(ex, cursor)
    assert (topic, pos["side"], pos["size"], pos["entryPrice"]) == ("position", "Sell", "0.5", "60000")


def test_socket_actions_from_a_timer_are_broadcast_and_reset_clears_everything() -> None:
    ex, clock = fixed_exchange()
    cursor = ex.events.cursor
    close = ScenarioAction.ws_close(4000, "maintenance", channel="private")
    ex.scenario_push(Scenario("drop", ScenarioTrigger.timer(after=100), close, match=Match(api_key=KEY)))
    tick(ex, clock, 99)
    assert events(ex, cursor, "fault") == []
    tick(ex, clock, 1)
    (fault,) = events(ex, cursor, "fault")
    assert fault == {
        "type": "ws_close",
        "code": 4000,
        "reason": "maintenance",
        "channel": "private",
        "api_key": KEY,
        "seq": 1,
    }
    ex.scenario_push(Scenario("x", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reset(), times=None))
    assert ex.scenario_list() and ex.scenario_journal()
    summaries = events(ex, cursor, "scenarios")
    ex.reset()
    assert ex.scenario_list() == [] and ex.scenario_journal() == []
    after = events(ex, cursor, "scenarios")[-1]
    assert after["rest"] == {} and after["version"] > summaries[-1]["version"]


def test_config_scenarios_are_armed_at_start_and_after_reset() -> None:
    ex = new_exchange()
    raw = {"name": "cfg", "trigger": {"type": "order_cancel"}, "action": {"type": "delay", "ms": 5}, "times": None}
    ex._config = ex._config.copy(scenarios=[raw])  # type: ignore[attr-defined]
    ex.reset()
    (armed,) = ex.scenario_list()
    assert armed["name"] == "cfg" and armed["remaining"] is None
