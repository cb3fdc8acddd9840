"""Engine cost of private activity per event (run on demand: ``pytest benches/test_activity.py -s``).

The engine alone, with an injected clock stepped 10 ms at a time as the state service's clock
thread steps it, at 10 000 events/s: the time per event of canned activity (a message
rendered and logged), of consistent activity on a watched account (a real order operation
and its pushes) and on an unwatched one (no pushes built), beside a same-run reference: one
bot order operation (``order_create`` or ``order_cancel``) through ``apply_batch`` on a watched
account. The figure is each one's ratio to the reference; the implied ceiling (events/s one
core could run, the engine doing nothing else) is printed too, but on a shared VM only the
ratios are steady.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal
from typing import Any

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.config import ActivityConfig
from bybit_mock.engine.exchange import Exchange

KEY = "bench"
ROUNDS = 5
SIMULATED_MS = 500  # per round: 5 000 events at 10 000/s


class Clock:
    now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def engine(activity: ActivityConfig | None, watched: bool) -> tuple[Exchange, Clock]:
    clock = Clock()
    account = AccountConfig(KEY, "s", {"USDT": Decimal(10**9)}, activity=activity)
    ex = Exchange(MockExchangeConfig(accounts=[account]), clock=clock)
    if watched:
        ex.watch("bench", [KEY])
    ex.freeze_market()
    return ex, clock


def per_activity_event(mode: str, watched: bool) -> float:
    ex, clock = engine(ActivityConfig(mode, 10_000), watched)
    started = time.perf_counter()
    for _ in range(SIMULATED_MS // 10):
        clock.now += 10
        ex.advance_markets()
        ex.events.wait(ex.events.cursor, 0)  # nothing kept: the log stays small
    elapsed = time.perf_counter() - started
    counts = ex.activity.counts()[KEY]
    assert counts.failed == 0 and counts.done == SIMULATED_MS * 10
    return elapsed / counts.done


def per_bot_operation() -> float:
    ex, _ = engine(None, True)
    query: dict[str, Any] = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
    query |= {"qty": "0.001", "price": "60000"}
    n = SIMULATED_MS * 5
    started = time.perf_counter()
    for _ in range(n):
        ((code, value),) = ex.apply_batch([("order_create", (KEY, query))])
        order_id = value[value.index(b'"orderId":"') + 11 :].split(b'"', 1)[0].decode()
        ((code2, _),) = ex.apply_batch([("order_cancel", (KEY, {**query, "orderId": order_id}))])
        assert code == code2 == 0
    return (time.perf_counter() - started) / (2 * n)


def test_activity_cost_per_event(benchmark: Any) -> None:
    rows: dict[str, list[float]] = {"reference": [], "canned": [], "consistent": [], "consistent-unwatched": []}

    def measure() -> None:
        for _ in range(ROUNDS):  # interleaved, so a busy neighbour slows every kind alike
            rows["reference"].append(per_bot_operation())
            rows["canned"].append(per_activity_event("canned", True))
            rows["consistent"].append(per_activity_event("consistent", True))
            rows["consistent-unwatched"].append(per_activity_event("consistent", False))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(f"\nengine cost per event, median of {ROUNDS} interleaved rounds (10 000/s, 10 ms ticks):")
    for name, times in rows.items():
        cost = statistics.median(times)
        ratio = statistics.median(t / r for t, r in zip(times, rows["reference"], strict=True))
        benchmark.extra_info[name] = {"us": round(cost * 1e6, 1), "ratio": round(ratio, 3)}
        print(f"  {name:<22} {cost * 1e6:8.1f} us  = {ratio:5.2f} x a bot order op   ~{1 / cost:>9,.0f} /s per core")
