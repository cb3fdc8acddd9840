"""The scenario model: its one JSON form, field checks that name the field, and the registry's rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bybit_mock import MockExchangeConfig
from bybit_mock.config import ConfigError
from bybit_mock.scenarios import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioError, ScenarioTrigger
from bybit_mock.scenarios.fields import ACTIONS, TRIGGERS
from bybit_mock.scenarios.registry import Registry

NOW = 1_700_000_000_000


def every_kind() -> list[Scenario]:
    """One scenario per trigger type and per action type, built with the Python constructors."""
    triggers = [
        ScenarioTrigger.ORDER_CREATE,
        ScenarioTrigger.ORDER_CANCEL,
        ScenarioTrigger.ORDER_AMEND,
        ScenarioTrigger.PRIVATE_DISCONNECT,
        ScenarioTrigger.PUBLIC_STREAM,
        ScenarioTrigger.NOW,
        ScenarioTrigger.rest("/v5/order/realtime", "GET"),
        ScenarioTrigger.ws_connect("private"),
        ScenarioTrigger.ws_auth("trade"),
        ScenarioTrigger.ws_subscribe(),
        ScenarioTrigger.message("public", nth=10),
        ScenarioTrigger.order_event("filled"),
        ScenarioTrigger.timer(timedelta(seconds=1), every=500),
    ]
    actions = [
        ScenarioAction.delay(timedelta(milliseconds=250)),
        ScenarioAction.fail(10006, "Too many visits!"),
        ScenarioAction.inject_private_event({"topic": "order", "data": []}),
        ScenarioAction.fill_plan([OrderFillStep(25, 1, 1001), OrderFillStep(timedelta(milliseconds=5), "0.5")]),
        ScenarioAction.auto_fill(25, "market"),
        ScenarioAction.http_error(503),
        ScenarioAction.reset(),
        ScenarioAction.hang(),
        ScenarioAction.slow(100),
        ScenarioAction.rate_limit(),
        ScenarioAction.ip_ban(1000),
        ScenarioAction.reject("EC_PostOnlyWillTakeLiquidity"),
        ScenarioAction.partial_fill_then_cancel("0.5", after=10),
        ScenarioAction.ghost("timeout"),
        ScenarioAction.private_stream("drop", topic="order", count=2),
        ScenarioAction.private_stream("duplicate", for_ms=1000),
        ScenarioAction.private_stream("reorder"),
        ScenarioAction.private_stream("delay", ms=300),
        ScenarioAction.ws_close(4000, "bye", channel="private"),
        ScenarioAction.ws_reset(api_key="k"),
        ScenarioAction.ws_stall(2000),
        ScenarioAction.ws_refuse(1000, "auth"),
        ScenarioAction.market("book_gap", "BTCUSDT", depth=50),
        ScenarioAction.market("book_reset", "BTCUSDT"),
        ScenarioAction.market("stale", "BTCUSDT", ms=500),
        ScenarioAction.market("price_jump", "BTCUSDT", percent="-5"),
        ScenarioAction.market("duplicate_trades", "BTCUSDT", count=2),
        ScenarioAction.market("reorder_trades", "BTCUSDT"),
        ScenarioAction.edit_balance("USDT", "5", api_key="k", push=True),
        ScenarioAction.edit_position("BTCUSDT", "Buy", "1", "65000", api_key="k"),
    ]
    assert {t.type for t in triggers} == set(TRIGGERS), "a trigger type has no constructor case here"
    assert {a.type for a in actions} == set(ACTIONS), "an action type has no constructor case here"
    return [
        Scenario(f"s{i}", triggers[i % len(triggers)], action, Match(symbol="BTCUSDT"), times=None if i % 2 else 3)
        for i, action in enumerate(actions)
    ]


def test_every_type_round_trips_through_its_json_form() -> None:
    for scenario in every_kind():
        raw = scenario.to_json()
        assert Scenario.from_json(raw) == scenario, raw
        assert Scenario.from_json(raw).to_json() == raw


def test_the_crate_names_read_naturally() -> None:
    plan = ScenarioAction.fill_plan([OrderFillStep(after=timedelta(milliseconds=25), quantity=1, price=1001)])
    assert plan.to_json() == {"type": "fill_plan", "steps": [{"after_ms": 25.0, "quantity": "1", "price": "1001"}]}
    fail = Scenario.fail("boom", ScenarioTrigger.ORDER_CREATE, 500, "exchange down")
    assert fail.action.params == {"ret_code": 10016, "ret_msg": "exchange down", "http_status": 500}
    assert Scenario.fail("bad", ScenarioTrigger.ORDER_CANCEL, 200, "no").action.params["ret_code"] == 10001


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"action": {"type": "delay", "ms": 1}}, "trigger"),
        ({"trigger": {"type": "order_create"}}, "action"),
        ({"trigger": {"type": "nope"}, "action": {"type": "reset"}}, "trigger.type"),
        ({"trigger": {"type": "rest"}, "action": {"type": "reset"}}, "trigger.path"),
        ({"trigger": {"type": "rest", "path": "/x", "method": "PUT"}, "action": {"type": "reset"}}, "trigger.method"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": -1}}, "action.ms"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": "1"}}, "action.ms"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": True}}, "action.ms"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": 1, "x": 1}}, "action.x"),
        (
            {"trigger": {"type": "order_create"}, "action": {"type": "fill_plan", "steps": [{"quantity": "0"}]}},
            "action.steps[0].quantity",
        ),
        ({"trigger": {"type": "order_create"}, "action": {"type": "fill_plan", "steps": []}}, "action.steps"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "http_error", "status": 99}}, "action.status"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "ws_close", "code": 1}}, "action.code"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "reset"}, "times": 0}, "times"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "reset"}, "probability": 1.5}, "probability"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "reset"}, "match": {"side": "buy"}}, "match.side"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "reset"}, "window": {"for": 1}}, "window.for"),
        ({"trigger": {"type": "order_create"}, "action": {"type": "reset"}, "colour": "red"}, "colour"),
        ("not an object", "scenario"),
    ],
)
def test_a_bad_field_is_named(raw: Any, field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_json(raw)
    assert err.value.field == field, str(err.value)


def test_config_scenarios_are_checked_and_both_toml_forms_load() -> None:
    good = {"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": 5}}
    listed = MockExchangeConfig.from_mapping({"scenarios": [good]})
    assert listed.scenarios == [good]
    table = MockExchangeConfig.from_mapping({"scenarios": {"seed": 7, "journal_limit": 50, "armed": [good]}})
    assert (table.scenarios, table.scenario_seed, table.journal_limit) == ([good], 7, 50)
    with pytest.raises(ConfigError, match=r"scenarios\[0\]\.action\.ms"):
        MockExchangeConfig.from_mapping({"scenarios": [{**good, "action": {"type": "delay"}}]})
    with pytest.raises(ConfigError, match="unknown key"):
        MockExchangeConfig.from_mapping({"scenarios": {"sead": 1}})


# -- the registry --------------------------------------------------------------------------------

CREATE = {"method": "POST", "path": "/v5/order/create", "api_key": "a", "symbol": "BTCUSDT", "side": "Buy"}


def arm(reg: Registry, trigger: ScenarioTrigger, action: ScenarioAction, **kw: Any) -> str:
    return reg.arm(Scenario(kw.pop("name", "s"), trigger, action, **kw), NOW)


def test_fifo_one_firing_per_action_type_and_times_consumed() -> None:
    reg = Registry(seed=1)
    plan = ScenarioAction.fill_plan([OrderFillStep(25, 1, 1001)])
    arm(reg, ScenarioTrigger.ORDER_CREATE, plan, name="entry")
    arm(reg, ScenarioTrigger.ORDER_CREATE, plan, name="exit")
    arm(reg, ScenarioTrigger.ORDER_CREATE, ScenarioAction.delay(5), name="slow", times=None)
    first = reg.take("order_create", CREATE, NOW)
    assert [f.name for f in first] == ["entry", "slow"]  # one fill plan per order, the delay too
    second = reg.take("order_create", CREATE, NOW)
    assert [f.name for f in second] == ["exit", "slow"]
    assert [f.name for f in reg.take("order_create", CREATE, NOW)] == ["slow"]
    assert [a["name"] for a in reg.listing()] == ["slow"]
    assert [e["scenario"] for e in reg.journal()] == ["entry", "slow", "exit", "slow", "slow"]


def test_match_fields_and_patterns() -> None:
    reg = Registry(seed=1)
    arm(reg, ScenarioTrigger.ORDER_CREATE, ScenarioAction.reset(), match=Match(order_link_id="bot-*", side="Sell"))
    assert reg.take("order_create", {**CREATE, "order_link_id": "bot-1"}, NOW) == []  # a Buy
    assert reg.take("order_create", {**CREATE, "side": "Sell", "order_link_id": "man-1"}, NOW) == []
    assert reg.take("order_create", {**CREATE, "side": "Sell"}, NOW) == []  # no link id at all
    (fired,) = reg.take("order_create", {**CREATE, "side": "Sell", "order_link_id": "bot-7"}, NOW)
    assert fired.ctx["order_link_id"] == "bot-7"
    assert reg.journal()[0]["matched"]["order_link_id"] == "bot-7"


def test_rest_trigger_method_and_window() -> None:
    reg = Registry(seed=1)
    window = {"after_ms": 100, "for_ms": 100}
    arm(reg, ScenarioTrigger.rest("/v5/order/create", "GET"), ScenarioAction.reset())
    arm(reg, ScenarioTrigger.rest("/v5/order/create"), ScenarioAction.hang(), times=None, window=window)
    assert reg.take("rest", CREATE, NOW) == []  # POST, and the window opens at +100
    assert [f.action["type"] for f in reg.take("rest", CREATE, NOW + 150)] == ["hang"]
    assert reg.take("rest", CREATE, NOW + 250) == []  # closed again
    assert reg.summary()["rest"] == {"/v5/order/create": ["GET", "*"]}


def test_probability_is_drawn_from_the_seed_and_a_miss_consumes_nothing() -> None:
    def outcomes(seed: int) -> list[bool]:
        reg = Registry(seed=seed)
        arm(reg, ScenarioTrigger.ORDER_CREATE, ScenarioAction.reset(), times=None, probability=0.5)
        return [bool(reg.take("order_create", CREATE, NOW)) for _ in range(200)]

    a, b = outcomes(7), outcomes(7)
    assert a == b  # deterministic
    assert 60 < sum(a) < 140  # and about half
    assert a != outcomes(8)
    reg = Registry(seed=3)
    arm(reg, ScenarioTrigger.ORDER_CREATE, ScenarioAction.reset(), times=1, probability=0.5)
    fired = [bool(reg.take("order_create", CREATE, NOW)) for _ in range(50)]
    assert sum(fired) == 1 and not reg.armed  # misses kept it armed until its one firing


def test_nth_message_counts_per_scenario() -> None:
    reg = Registry(seed=1)
    arm(
        reg,
        ScenarioTrigger.message("public", nth=3),
        ScenarioAction.ws_close(),
        times=2,
        match=Match(topic="orderbook.*"),
    )
    ctx = {"channel": "public", "topic": "orderbook.50.BTCUSDT"}
    fired = [bool(reg.take("message", ctx, NOW)) for _ in range(9)]
    assert fired == [False, False, True, False, False, True, False, False, False]
    assert reg.take("message", {"channel": "public", "topic": "publicTrade.BTCUSDT"}, NOW) == []


def test_timers_fire_once_or_every_period_within_their_window() -> None:
    reg = Registry(seed=1)
    arm(reg, ScenarioTrigger.timer(after=100), ScenarioAction.ws_reset(), name="once")
    arm(
        reg,
        ScenarioTrigger.timer(after=0, every=50),
        ScenarioAction.ws_stall(1),
        name="tick",
        window={"for_ms": 120},
        times=None,
    )
    assert [f.name for f in reg.due_timers(NOW)] == ["tick"]
    assert [f.name for f in reg.due_timers(NOW + 60)] == ["tick"]
    assert [f.name for f in reg.due_timers(NOW + 110)] == ["once", "tick"]
    assert reg.due_timers(NOW + 200) == []  # tick's window closed: it is gone, and so is once
    assert reg.armed == []


def test_summary_versions_only_grow_and_clear_resets_everything_else() -> None:
    reg = Registry(seed=1)
    v0 = reg.summary()["version"]
    arm(reg, ScenarioTrigger.ws_connect("private"), ScenarioAction.ws_close())
    arm(reg, ScenarioTrigger.ORDER_CANCEL, ScenarioAction.delay(1))
    summary = reg.summary()
    assert summary["version"] > v0
    assert summary["ws"] == {"ws_connect": ["private"], "trade_op": ["order_cancel"]}
    assert summary["rest"] == {"/v5/order/cancel": ["POST"]}
    reg.take("order_cancel", {"path": "/v5/order/cancel"}, NOW)
    reg.clear()
    assert reg.summary()["version"] > summary["version"]
    assert reg.armed == [] and reg.journal() == []
