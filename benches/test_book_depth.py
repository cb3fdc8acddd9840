"""What an order costs as the book grows (run on demand: ``pytest benches/test_book_depth.py -s``).

An in-process micro-bench of the engine (``Exchange.apply_batch``, one command per call, as a
lone REST request reaches it): create then cancel one resting ETHUSDT limit order, with 0,
1 000, 20 000 and 100 000 BTCUSDT limit orders resting far from the market (buys at half the
price, sells at one and a half times it, over 4 000 price levels), from 40 accounts (200 for
100 000: an account may have 500 open orders per symbol). Markets are live on the wall clock,
so every call advances them and sweeps the resting orders, as in the state service.

The four engines are built first, then measured in interleaved rounds (a shared VM drifts);
each case's figure is its median round. Times are the thread's CPU time (on a shared two-core
VM other processes preempt this one for milliseconds: wall time would measure them), so
"pairs/s" is pairs per CPU second of the engine. Target: the 100 000 case does >= 0.8 of the
empty case's create + cancel pairs per second.
"""

from __future__ import annotations

import os
import statistics
import time
from decimal import Decimal
from typing import Any

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange

DEPTHS = (0, 1_000, 20_000, 100_000)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "0.4"))
PER_ACCOUNT = 500  # the engine's cap on one account's open orders in one symbol
LEVELS = 2_000  # distinct prices per side
TAKER = "bench-eth"
FUNDS = {"USDT": Decimal(10_000_000)}


def build(depth: int) -> Exchange:
    """An engine with ``depth`` BTCUSDT orders resting far from the market."""
    makers = max(40, -(-depth // PER_ACCOUNT))
    keys = [f"bench-{i}" for i in range(makers)]
    accounts = [AccountConfig(k, "secret", dict(FUNDS)) for k in [TAKER, *keys]]
    ex = Exchange(MockExchangeConfig.default().copy(accounts=accounts, rate_limits="off"))
    mark = Decimal(ex.markets.models[("linear", "BTCUSDT")].mark_price())
    low, high = (mark / 2).quantize(Decimal(1)), (mark * 3 / 2).quantize(Decimal(1))
    batches: list[list[Any]] = [[] for _ in keys]
    for i in range(depth):
        buy = i % 2 == 0
        level = Decimal(i // 2 % LEVELS) / 2
        price = low - level if buy else high + level
        query = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy" if buy else "Sell"}
        query |= {"orderType": "Limit", "qty": "0.001", "price": str(price)}
        batches[i % makers].append(("order_create", (keys[i % makers], query)))
    for batch in batches:  # one call per account: building stays quick on the old engine too
        for code, reply in ex.apply_batch(batch):
            assert code == 0, reply
    assert sum(len(o) for o in ex.book.resting.values()) == depth
    return ex


def cycle(ex: Exchange, query: dict[str, Any]) -> None:
    """One create then one cancel of a resting ETHUSDT order, each its own engine call."""
    ((code, reply),) = ex.apply_batch([("order_create", (TAKER, query))])
    assert code == 0, reply
    order_id = reply.split(b'"orderId":"', 1)[1].split(b'"', 1)[0].decode()
    cancel = {"category": "linear", "symbol": "ETHUSDT", "orderId": order_id}
    ((code, reply),) = ex.apply_batch([("order_cancel", (TAKER, cancel))])
    assert code == 0, reply


def measure(ex: Exchange, seconds: float) -> list[int]:
    """Each create + cancel pair's CPU time (ns) for ``seconds`` of wall time, after a warm-up."""
    eth = Decimal(ex.markets.models[("linear", "ETHUSDT")].mark_price())
    query = {"category": "linear", "symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01"}
    query["price"] = str((eth / 2).quantize(Decimal(1)))
    for _ in range(50):
        cycle(ex, query)
    times: list[int] = []
    cpu = time.thread_time_ns
    end = time.perf_counter_ns() + int(seconds * 1e9)
    while time.perf_counter_ns() < end:
        start = cpu()
        cycle(ex, query)
        times.append(cpu() - start)
    return times


def test_order_cost_against_book_depth(benchmark: Any) -> None:
    rounds: dict[int, list[list[int]]] = {d: [] for d in DEPTHS}

    def run() -> None:
        engines = {d: build(d) for d in DEPTHS}
        for _ in range(ROUNDS):
            for depth, ex in engines.items():
                rounds[depth].append(measure(ex, SECONDS))

    benchmark.pedantic(run, rounds=1, iterations=1)
    rates = {d: statistics.median(len(r) / (sum(r) / 1e9) for r in rs) for d, rs in rounds.items()}
    empty = rates[0]
    print(
        f"\norder create + cancel (ETHUSDT), in-process, {ROUNDS} interleaved rounds of {SECONDS} s, CPU time per pair:"
    )
    for depth, rs in rounds.items():
        p50 = statistics.median(statistics.median(r) for r in rs) / 1e3
        p99 = statistics.median(sorted(r)[int(len(r) * 0.99)] for r in rs) / 1e3
        print(
            f"  {depth:>7,} resting BTCUSDT  {rates[depth]:>8,.0f} pairs/s   p50 {p50:6.1f} µs"
            f"   p99 {p99:6.1f} µs   ratio {rates[depth] / empty:.2f}"
        )
    ratio = rates[DEPTHS[-1]] / empty
    benchmark.extra_info.update({f"pairs_per_s_{d}": round(r) for d, r in rates.items()} | {"ratio": ratio})
    print(f"  100 000 / empty: {ratio:.2f} (target 0.8: {'PASS' if ratio >= 0.8 else 'MISS'})")
