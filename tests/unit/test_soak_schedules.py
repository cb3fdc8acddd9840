"""Soak schedules (``docs/soak.md``): jittered periodic timers, probability shares, windows,
the stderr line per firing, and the documented minute-scale config armed on a moved clock."""

from __future__ import annotations

import itertools
import logging
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bybit_mock.config import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.scenarios import Scenario, ScenarioAction, ScenarioError, ScenarioTrigger
from bybit_mock.scenarios.registry import Registry

from .helpers import KEY, FixedClock
from .test_scenarios_engine import LIMIT, create, events, fixed_exchange, tick

SOAK_DOC = Path(__file__).resolve().parents[2] / "docs" / "soak.md"
MINUTE = 60_000


def timer_times(seed: int, every: int, jitter: int, until: int) -> list[int]:
    registry = Registry(seed)
    trigger = ScenarioTrigger.timer(after=every, every=every, jitter=jitter)
    registry.arm(Scenario("t", trigger, ScenarioAction.ws_reset(), times=None), 0)
    fired = []
    for now in range(until + 1):
        fired += [now for _ in registry.due_timers(now)]
    return fired


def test_a_jittered_period_stays_within_its_bounds_and_repeats_with_its_seed() -> None:
    times = timer_times(seed=1, every=100, jitter=30, until=5000)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 100 and len(gaps) > 30
    assert all(70 <= gap <= 130 for gap in gaps), gaps
    assert len(set(gaps)) > 10  # jittered, not a fixed period
    assert timer_times(seed=1, every=100, jitter=30, until=5000) == times
    assert timer_times(seed=2, every=100, jitter=30, until=5000) != times
    assert timer_times(seed=1, every=100, jitter=0, until=1000) == list(range(100, 1001, 100))


@pytest.mark.parametrize(
    ("trigger", "problem"),
    [
        ({"type": "timer", "after_ms": 5, "jitter_ms": 5}, "needs every_ms"),
        ({"type": "timer", "every_ms": 10, "jitter_ms": 11}, "must be <= every_ms"),
        ({"type": "timer", "every_ms": 10, "jitter_ms": -1}, "milliseconds >= 0"),
    ],
)
def test_a_bad_jitter_is_refused_with_its_field(trigger: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_json({"trigger": trigger, "action": {"type": "ws_reset"}})
    assert exc.value.field == "trigger.jitter_ms" and problem in exc.value.problem


def test_times_unlimited_is_the_toml_spelling_of_null() -> None:
    raw = {"trigger": {"type": "order_create"}, "action": {"type": "fail"}, "times": "unlimited"}
    assert Scenario.from_json(raw).times is None
    with pytest.raises(ScenarioError, match="times"):
        Scenario.from_json({**raw, "times": "forever"})


def failed_creates(seed: int, creates: int, jittered_clock: bool = False) -> list[int]:
    """Which of ``creates`` REST order creates a 1 % ``fail`` scenario refused, on an engine
    with scenario seed ``seed`` (optionally with a jittered timer firing in between)."""
    ex, clock = fixed_exchange()
    ex.scenarios.registry._seed = seed  # as [scenarios] seed = ... would
    ex.scenarios.reset()
    fail = Scenario(
        "one-percent", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(10016), times=None, probability=0.01
    )
    ex.scenario_push(fail)
    if jittered_clock:
        edit = ScenarioAction.edit_balance("USDT", "5000", api_key=KEY)
        ex.scenario_push(Scenario("edit", ScenarioTrigger.timer(1, every=5, jitter=4), edit, times=None))
    failed = []
    for i in range(creates):
        value, _ = create(ex, {**LIMIT, "price": "1000", "orderLinkId": f"c{i}"})
        before = value.get("before") or []
        if before:
            assert [b["action"]["ret_code"] for b in before] == [10016]
            failed.append(i)
        tick(ex, clock, 1)
    return failed


def test_one_percent_of_creates_fail_deterministically_with_the_seed() -> None:
    failed = failed_creates(seed=1, creates=3000)
    assert 12 <= len(failed) <= 50, len(failed)  # 30 expected; the seeded draw makes it exact
    assert failed_creates(seed=1, creates=3000) == failed
    assert failed_creates(seed=5, creates=3000) != failed
    # a jittered timer draws from its own stream: the same creates fail with it armed
    assert failed_creates(seed=1, creates=3000, jittered_clock=True) == failed


def test_a_window_limits_a_share_to_its_minutes() -> None:
    registry = Registry(3)
    window = {"after_ms": 10 * MINUTE, "for_ms": 2 * MINUTE}
    scenario = Scenario("w", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(), times=None, window=window)
    registry.arm(scenario, 0)
    fired = [t for t in range(0, 15 * MINUTE, 1000) if registry.take("order_create", {}, t)]
    assert fired == list(range(10 * MINUTE, 12 * MINUTE + 1, 1000))


def test_each_firing_logs_one_line_and_a_busy_scenario_is_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(1)
    registry.arm(Scenario("busy", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(10016), times=None), 0)
    ctx = {"api_key": "bot", "symbol": "BTCUSDT"}
    with caplog.at_level(logging.WARNING, logger="bybit_mock.scenarios.fired"):
        for i in range(100):
            assert registry.take("order_create", ctx, 1000 + i)
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 5
        assert lines[0] == "scenario s1 'busy' fired: order_create -> fail ret_code=10016 " + (
            "ret_msg=Internal System Error. http_status=200 (api_key=bot symbol=BTCUSDT)"
        )
        caplog.clear()
        registry.take("order_create", ctx, 2500)  # the next second: the summary, then the line
        assert [r.getMessage() for r in caplog.records] == [
            "scenario s1 'busy' fired: (+95 more)",
            lines[0],
        ]
    assert len(registry.journal("busy")) == 101  # the journal keeps every firing


def soak_config() -> MockExchangeConfig:
    """The minute-scale file ``docs/soak.md`` shows, as it is written there."""
    block = re.search(r"```toml\n(.*?)```", SOAK_DOC.read_text(), re.S)
    assert block is not None
    config = MockExchangeConfig.from_mapping(tomllib.loads(block.group(1)))
    config.validate()
    return config


def test_the_documented_soak_file_arms_the_five_schedules_and_they_fire_on_time() -> None:
    config = soak_config()
    assert [a.api_key for a in config.accounts] == ["bot"]
    clock = FixedClock()
    clock.now = 1_000_000
    ex = Exchange(config, clock=clock)
    ex.freeze_market()
    armed = {s["name"]: s for s in ex.scenario_list()}
    assert {n: (s["trigger"]["type"], s["action"]["type"], s["times"]) for n, s in armed.items()} == {
        "drop-private": ("timer", "ws_reset", None),
        "book-gap": ("timer", "book_gap", None),
        "create-fails": ("order_create", "fail", None),
        "refuse-reconnects": ("timer", "ws_refuse", 1),
        "balance-edit": ("timer", "edit_balance", None),
    }
    assert armed["create-fails"]["probability"] == 0.01
    ex.set_balance("bot", "USDT", "1")
    cursor = ex.events.cursor
    for _ in range(13 * 60):  # 13 minutes, a second at a time
        tick(ex, clock, 1000)
    faults = events(ex, cursor, "fault")
    drops = [f for f in faults if f["type"] == "ws_reset"]
    assert 24 <= len(drops) <= 28 and all(f["channel"] == "private" for f in drops)  # ~26 at 30 s +- 2 s
    gaps = [f for f in faults if f["type"] == "book_gap"]
    assert [(g["symbol"], g["category"]) for g in gaps] == [("BTCUSDT", "linear")] * 2  # minutes 5 and 10
    (refuse,) = [f for f in faults if f["type"] == "ws_refuse"]
    assert (refuse["what"], refuse["ms"]) == ("connect", 120000)
    assert ex.balances("bot")["USDT"] == 9000
    assert events(ex, cursor, "private") == []  # edited behind the client's back: no push
    journal = ex.scenario_journal()
    refused = [e for e in journal if e["scenario"] == "refuse-reconnects"]
    assert [e["time_ms"] - 1_000_000 for e in refused] == [10 * MINUTE]
    edits = [e for e in journal if e["scenario"] == "balance-edit"]
    assert [e["time_ms"] - 1_000_000 for e in edits] == [m * MINUTE for m in range(1, 14)]
    assert edits[0]["done"] == ["balance USDT of bot set to 9000"]
    ex.reset()  # re-armed: the clocks start again from the reset
    assert {s["name"] for s in ex.scenario_list()} == set(armed)


def test_a_state_edit_for_an_unknown_account_is_journaled_not_done() -> None:
    config = MockExchangeConfig(accounts=[AccountConfig("bot", "s", {})])
    ex = Exchange(config)
    edit = ScenarioAction.edit_balance("USDT", "1", api_key="nobody")
    ex.scenario_push(Scenario("edit", ScenarioTrigger.NOW, edit))
    (entry,) = ex.scenario_journal()
    assert entry["done"][0].startswith("not done:")
