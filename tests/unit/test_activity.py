"""Private activity (``engine/activity.py``, ``engine/private_replay.py``) on an engine with an
injected clock: the rate is exact, REST agrees with the consistent pushes, canned messages get
fresh ids and times."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.config import ActivityConfig, ConfigError
from bybit_mock.engine.exchange import Exchange
from bybit_mock.engine.private_replay import PrivateReplay, RawJson, shifted

from .helpers import LINEAR, FixedClock

KEY = "busy"
START = 1_700_000_000_000
MINUTE_MS = 60_000
TICK_MS = 10  # the state service's clock thread advances about this often


def exchange(mode: str, rate: float, **kwargs: Any) -> tuple[Exchange, FixedClock]:
    clock = FixedClock()
    clock.now = START
    account = AccountConfig(KEY, "secret", {"USDT": Decimal(100000)}, activity=ActivityConfig(mode, rate, **kwargs))
    ex = Exchange(MockExchangeConfig(accounts=[account]), clock=clock)
    ex.watch("test", [KEY])
    ex.freeze_market()  # the activity's orders rest 5 % away; a still market never fills them
    return ex, clock


def advance(ex: Exchange, clock: FixedClock, ms: int, step: int = TICK_MS) -> None:
    for _ in range(ms // step):
        clock.now += step
        ex.advance_markets()


def private_messages(ex: Exchange, cursor: int) -> tuple[int, list[tuple[str, list[dict[str, Any]]]]]:
    """The ``private`` events since ``cursor`` as ``(topic, items)``, whichever form the log keeps
    (the items as dicts, or already encoded as ``(topic, category, json)``)."""
    cursor, events = ex.events.wait(cursor, 0)
    out = []
    for kind, data in events:
        if kind == "private":
            assert data[0] == KEY
            for message in data[1]:
                items = orjson.loads(message[-1]) if isinstance(message[-1], bytes) else message[-1]
                out.append((message[0], items))
    return cursor, out


def raw_messages(ex: Exchange, cursor: int) -> list[dict[str, Any]]:
    _, events = ex.events.wait(cursor, 0)
    out = []
    for _, (key, message) in (e for e in events if e[0] == "private_raw"):
        assert key == KEY and isinstance(message, RawJson)
        out.append(orjson.loads(bytes(message)))
    return out


@pytest.mark.parametrize(("rate", "seconds"), [(1, 60), (7.5, 60), (333, 60), (2500, 60), (10_000, 6)])
def test_rate_is_exact_over_a_minute(rate: float, seconds: int) -> None:
    ex, clock = exchange("canned", rate)
    cursor, got = ex.events.cursor, 0
    ticks = seconds * 1000 // 20
    # ticks of uneven length, as a real clock thread's are
    for n in range(ticks):
        clock.now += 7 if n % 2 else 33
        ex.advance_markets()
        if n % 50 == 49 or n == ticks - 1:  # counted every second, before the bounded log wraps
            cursor, events = ex.events.wait(cursor, 0)
            got += sum(kind == "private_raw" for kind, _ in events)
    assert got == int(rate * seconds)  # exactly: due times are computed, never accumulated
    assert abs(got - rate * seconds) <= 0.02 * rate * seconds


def test_a_stall_drops_its_backlog_beyond_a_second() -> None:
    ex, clock = exchange("canned", 100)
    cursor = ex.events.cursor
    advance(ex, clock, 1000)
    clock.now += 10_000  # the state service stalled for 10 s
    ex.advance_markets()
    counts = ex.activity.counts()[KEY]
    assert counts.skipped == 900 and counts.done == 200 == len(raw_messages(ex, cursor))


def test_consistent_activity_is_real_orders_that_rest_agrees_with() -> None:
    ex, clock = exchange("consistent", 200)
    cursor = ex.events.cursor
    advance(ex, clock, 2000)
    counts = ex.activity.counts()[KEY]
    assert counts.done == 400 and counts.failed == 0
    _, messages = private_messages(ex, cursor)
    orders = [item for topic, items in messages if topic == "order" for item in items]
    fills = [item for topic, items in messages if topic == "execution" for item in items]
    statuses = [o["orderStatus"] for o in orders]
    assert statuses.count("New") == 200 and statuses.count("Filled") == 100 and statuses.count("Cancelled") == 100
    # REST agrees: every order pushed, in its last pushed state; the fills; the position
    last = {o["orderId"]: o for o in orders}
    open_ids = {i for i, o in last.items() if o["orderStatus"] == "New"}
    rest_open = {o.order_id for o in ex.open_orders(KEY)}
    assert rest_open == open_ids and len(open_ids) <= 8
    for order_id, pushed in last.items():
        view = ex.order(KEY, order_id)
        assert view is not None and view.status == pushed["orderStatus"]
    rest_fills = {e.exec_id for e in ex.executions_between(KEY)}
    assert rest_fills == {f["execId"] for f in fills} and len(fills) == 100
    position = next(items[0] for topic, items in reversed(messages) if topic == "position")
    (held,) = ex.positions(KEY) or [None]
    assert Decimal(position["size"]) == (held.size if held is not None else 0)  # flat or one qty


def test_consistent_activity_keeps_going_when_a_bot_cancels_its_orders() -> None:
    ex, clock = exchange("consistent", 100)
    advance(ex, clock, 500)
    ex.apply_batch([("order_cancel_all", (KEY, LINEAR))])
    advance(ex, clock, 500)
    counts = ex.activity.counts()[KEY]
    assert counts.done == 100 and counts.failed == 0


def test_a_refused_operation_changes_and_pushes_nothing() -> None:
    ex, clock = exchange("consistent", 100)
    ex.set_balance(KEY, "USDT", 0)  # no margin: every placement is refused
    cursor = ex.events.cursor
    advance(ex, clock, 200)
    counts = ex.activity.counts()[KEY]
    assert counts.failed == 20 and counts.done == 0
    assert private_messages(ex, cursor)[1] == [] and ex.open_orders(KEY) == []


def test_reset_restarts_the_schedule() -> None:
    ex, clock = exchange("consistent", 100)
    advance(ex, clock, 500)
    assert ex.open_orders(KEY)
    ex.reset()
    ex.freeze_market()
    advance(ex, clock, 100)
    assert ex.activity.counts()[KEY].done == 10


def test_canned_ids_and_times_are_rewritten_per_loop() -> None:
    ex, clock = exchange("canned", 1000)
    replay = PrivateReplay.load(None)
    size = len(replay.templates)
    cursor = ex.events.cursor
    advance(ex, clock, size * 2, step=1)  # two loops of the sample, 1 ms apart
    messages = raw_messages(ex, cursor)
    assert len(messages) == 2 * size
    first, second = messages[:size], messages[size:]
    for n, message in enumerate(messages):
        assert message["creationTime"] == START + n + 1  # now, as a number, as the file has it
        for item in message["data"]:
            for key in ("createdTime", "updatedTime", "execTime"):
                if key in item:
                    assert item[key] == str(START + n + 1)
    for a, b in zip(first, second, strict=True):
        assert a["topic"] == b["topic"] and a["id"] != b["id"]
        for x, y in zip(a["data"], b["data"], strict=True):
            for key in ("orderId", "execId"):
                if key in x:
                    assert x[key] != y[key] and y[key] == shifted(x[key], 1)

    def ids(batch: list[dict[str, Any]], key: str) -> set[str]:
        return {item[key] for m in batch for item in m["data"] if key in item}

    assert not ids(first, "execId") & ids(second, "execId")
    # an execution still names its order's (new) id
    assert ids(second, "orderId") == {i for m in second if m["topic"] == "execution" for i in [m["data"][0]["orderId"]]}
    # and REST knows none of it
    assert ex.open_orders(KEY) == [] and ex.executions_between(KEY) == []


def test_raw_json_reaches_a_worker_as_a_fragment_it_sends_as_is() -> None:
    raw = RawJson(b'{"topic":"order","data":[]}')
    assert orjson.dumps(pickle.loads(pickle.dumps(raw))) == bytes(raw)


def test_shifted_keeps_uuids_and_tags_other_ids() -> None:
    uuid = "87751d4c-a850-1e2c-44dc-da6a797d76de"
    assert shifted(uuid, 0) == uuid
    assert shifted(uuid, 1) == "87751d4c-a850-1e2c-44dc-da6a797d76df"
    assert shifted("ffffffffffff", 1) == "000000000000"
    assert shifted("1234", 3) == "1234-3"


def test_activity_config_from_toml_and_its_checks() -> None:
    config = MockExchangeConfig.from_mapping(
        {
            "accounts": [
                {"api_key": "k", "api_secret": "s", "activity": {"mode": "consistent", "rate": 50, "qty": "0.002"}}
            ]
        }
    )
    assert config.accounts[0].activity == ActivityConfig("consistent", 50, "BTCUSDT", "linear", Decimal("0.002"))
    for bad, message in [
        ({"mode": "noisy", "rate": 5}, "mode"),
        ({"mode": "canned", "rate": 20_000}, "rate"),
        ({"mode": "canned", "rate": 0}, "rate"),
        ({"mode": "consistent", "rate": 5, "file": "x.jsonl"}, "file"),
        ({"mode": "canned", "rate": 5, "file": "/nonexistent/x.jsonl"}, "no file"),
        ({"mode": "consistent", "rate": 5, "colour": "red"}, "colour"),
    ]:
        with pytest.raises(ConfigError, match=message):
            MockExchangeConfig.from_mapping({"accounts": [{"api_key": "k", "api_secret": "s", "activity": bad}]})
    with pytest.raises(ConfigError, match="unknown instrument"):
        MockExchangeConfig(
            accounts=[AccountConfig("k", "s", activity=ActivityConfig("consistent", 5, symbol="NOPEUSDT"))]
        ).validate()


def test_a_canned_file_must_hold_private_messages(tmp_path: Any) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"topic": "order", "data": []}\n\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        PrivateReplay.load(str(path))


def test_one_tick_of_an_account_is_one_push_with_the_state_at_its_end() -> None:
    ex, clock = exchange("consistent", 1000)  # 10 events per 10 ms tick
    cursor = ex.events.cursor
    advance(ex, clock, 50)
    _, events = ex.events.wait(cursor, 0)
    pushes = [data[1] for kind, data in events if kind == "private"]
    assert len(pushes) == 5  # one per tick, not one per event
    for push in pushes:
        topics = [message[0] for message in push]
        assert topics == ["order", "execution", "position", "wallet"]
    orders = [item for push in pushes for item in orjson.loads(push[0][2])]
    assert len(orders) == 50 == ex.activity.counts()[KEY].done  # every event's order item, in order
    assert [o["orderStatus"] for o in orders[:4]] == ["New", "New", "Filled", "Cancelled"]
    # the wallet and position are pushed once per tick, as they stand after its last event
    wallet = orjson.loads(pushes[-1][3][2])[0]
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    assert Decimal(usdt["walletBalance"]) == ex.balances(KEY)["USDT"]
    (position,) = orjson.loads(pushes[-1][2][2])
    (held,) = ex.positions(KEY) or [None]
    assert Decimal(position["size"]) == (held.size if held is not None else 0)


def test_a_refused_event_within_a_tick_pushes_nothing_of_its_own() -> None:
    ex, clock = exchange("consistent", 1000)
    ex.set_balance(KEY, "USDT", 10)  # room for one order's margin (and its fill's fee), not two
    cursor = ex.events.cursor
    advance(ex, clock, 10)
    counts = ex.activity.counts()[KEY]
    assert counts.failed and counts.done  # some placements fit, some did not
    _, events = ex.events.wait(cursor, 0)
    (push,) = [data[1] for kind, data in events if kind == "private"]
    orders = orjson.loads(push[0][2])
    assert len(orders) == counts.done  # the refused ones left no item
    assert {o["orderId"] for o in orders if o["orderStatus"] == "New"} >= {o.order_id for o in ex.open_orders(KEY)}
