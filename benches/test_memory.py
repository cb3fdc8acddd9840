"""What the engine keeps per order a busy account makes (run on demand).

One account with a private connection (its pushes are built and logged) loops limit create +
cancel and a market order, as the issue's measurement did; ``tracemalloc`` measures what a
batch of them adds while nothing is forgotten yet, split into the event log (the pushes the WS
workers read) and the rest (orders, fills, ledger rows, indexes). Steady state is then the
history's share times ``history_limit`` plus the log's times its capacity in events.

The same-run reference is the size of those orders and fills as Bybit's own REST answers
encode them (``/v5/order/history`` and ``/v5/execution/list`` items): what the mock must at
least remember to answer them.
"""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal
from typing import Any

import orjson

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.events import EventLog
from bybit_mock.engine.exchange import Exchange

KEY = "busy"
LINEAR = {"category": "linear", "symbol": "BTCUSDT"}
CYCLES = 1_500  # 3 000 orders, ~15 000 events: under every limit, so everything is retained


def ok(ex: Exchange, op: str, query: dict[str, Any]) -> Any:
    ((code, value),) = ex.apply_batch([(op, (KEY, query))])
    assert code == 0, value
    return value


def cycle(ex: Exchange, i: int) -> None:
    ok(ex, "order_create", {**LINEAR, "side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "60000",
                            "orderLinkId": f"l{i}"})  # fmt: skip
    ok(ex, "order_cancel_all", {"category": "linear", "symbol": "BTCUSDT"})
    ok(ex, "order_create", {**LINEAR, "side": "Buy" if i % 2 else "Sell", "orderType": "Market", "qty": "0.001"})


def test_bytes_per_retained_order(benchmark: Any) -> None:
    account = AccountConfig(KEY, "secret", {"USDT": Decimal(10**9)})
    config = MockExchangeConfig(accounts=[account])
    ex = Exchange(config)
    ex.watch("bench", [KEY])
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 65000)
    warm = 200  # caches and first-use allocations out of the way
    for i in range(warm):
        cycle(ex, i)
    results: dict[str, float] = {}

    def measure() -> None:
        n = CYCLES
        events = ex.events.cursor
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(warm, warm + n):
            cycle(ex, i)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        diff = after.compare_to(before, "filename")
        log = sum(s.size_diff for s in diff if s.traceback[0].filename.endswith(("pushes.py", "events.py")))
        total = sum(s.size_diff for s in diff)
        results["total"] = total / (2 * n)  # two orders per cycle
        results["log"] = log / (2 * n)
        results["per_event"] = log / (ex.events.cursor - events)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    history = ex.queries.order_history(KEY, {"category": "linear", "limit": "50"})["list"]
    fills = ex.queries.execution_list(KEY, {"category": "linear", "limit": "50"})["list"]
    reference = (len(orjson.dumps(history)) + len(orjson.dumps(fills)) / 2) / len(history)
    history_share = results["total"] - results["log"]
    steady = (history_share * config.history_limit + results["per_event"] * EventLog.CAPACITY) / 2**20
    print(
        f"\nper order (limit create+cancel and a market order, alternating; {CYCLES} cycles):"
        f"\n  retained per order          {results['total']:7.0f} B"
        f"\n    history (orders, fills, ledger, indexes)  {history_share:7.0f} B"
        f"\n    event log (its pushes)                     {results['log']:7.0f} B"
        f"  ({results['per_event']:.0f} B/event)"
        f"\n  reference: the order (and half a fill) as Bybit's REST JSON  {reference:.0f} B"
        f"  -> history / reference {history_share / reference:.1f}x"
        f"\n  one busy account at the defaults (history_limit {config.history_limit}, event log"
        f" {EventLog.CAPACITY} events): ~{steady:.0f} MB"
    )
