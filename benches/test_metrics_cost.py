"""What ``metrics = true`` costs a REST worker (run on demand: ``pytest benches/test_metrics_cost.py``).

Two clusters side by side, one with metrics off and one with them on (1 REST worker each, no
rate limits), driven in interleaved rounds by the same load generator as
``test_rest_throughput.py``. Reported: req/s of each and the median of the per-round on/off
ratios, for ``/v5/market/time`` (answered in the worker) and the signed wallet balance (a
state-service batch as well). ``docs/metrics.md`` quotes the figures.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from bybit_mock import MockExchange, MockExchangeConfig
from http_loadgen import Result, Target, run

UNLIMITED = MockExchangeConfig.default().copy(rate_limits="off")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
SECONDS = 2.0
ENDPOINTS = {
    "market/time": ("/v5/market/time", False),
    "wallet-balance (signed)": ("/v5/account/wallet-balance?accountType=UNIFIED", True),
}


def target(ex: MockExchange, path: str, signed: bool) -> Target:
    return Target.from_url(ex.rest_url + path, ex.api_key if signed else None, ex.api_secret if signed else None)


def test_metrics_cost(benchmark: Any) -> None:
    rounds: list[dict[tuple[str, str], Result]] = []

    def measure() -> None:
        with MockExchange(UNLIMITED) as off, MockExchange(UNLIMITED.copy(metrics=True)) as on:
            for _ in range(ROUNDS):
                rounds.append(
                    {
                        (name, mode): run(target(ex, path, signed), seconds=SECONDS)
                        for name, (path, signed) in ENDPOINTS.items()
                        for mode, ex in (("off", off), ("on", on))
                    }
                )

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(f"\nmetrics on vs off, 64 keep-alive connections, {ROUNDS} interleaved rounds of {SECONDS:.0f} s:")
    for name in ENDPOINTS:
        for mode in ("off", "on"):
            results = [r[(name, mode)] for r in rounds]
            assert all(r.errors == 0 for r in results), f"{name} {mode}: error responses"
            rps = statistics.median(r.rps for r in results)
            p99 = statistics.median(r.p99_ms for r in results)
            print(f"  {name:26s} metrics {mode:3s} {rps:>8,.0f} req/s   p99 {p99:.2f} ms")
        ratios = [r[(name, "on")].rps / r[(name, "off")].rps for r in rounds]
        benchmark.extra_info[f"{name} on/off"] = round(statistics.median(ratios), 3)
        spread = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"  {name:26s} on/off ratio {statistics.median(ratios):.2f} ({spread})")
