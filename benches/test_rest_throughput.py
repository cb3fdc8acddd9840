"""REST throughput and latency, beside the canned-response ceiling (run on demand: ``pytest benches``).

One run measures, with the same load generator (``http_loadgen.py``: uvloop, keep-alive,
64 connections over 2 processes, closed loop):

* the ceiling: ``canned_server.py``, one uvloop + httptools process answering canned bytes;
* ``GET /v5/market/time`` on the mock (1 REST worker);
* signed ``GET /v5/account/wallet-balance`` on the mock (HMAC check, a state-service batch).

and reports req/s, p50/p99 latency and the ratio to the ceiling (targets: >= 0.7 for
market/time, >= 0.35 for wallet-balance). A second test reports the idle cluster's RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bybit_mock import MockExchange, MockExchangeConfig
from http_loadgen import Result, Target, run

HERE = Path(__file__).parent
TARGETS = {"market/time": 0.7, "wallet-balance (signed)": 0.35}


def measure_ceiling() -> Result:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "canned_server.py"), "--seconds", "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return run(Target("127.0.0.1", port, "/v5/market/time"))
    finally:
        server.terminate()
        server.wait(5)


def test_rest_throughput(benchmark: Any) -> None:
    results: dict[str, Result] = {}

    def measure() -> None:
        results["ceiling (canned httptools)"] = measure_ceiling()
        with MockExchange(MockExchangeConfig.default()) as ex:
            results["market/time"] = run(Target.from_url(f"{ex.rest_url}/v5/market/time"))
            wallet = f"{ex.rest_url}/v5/account/wallet-balance?accountType=UNIFIED"
            results["wallet-balance (signed)"] = run(Target.from_url(wallet, ex.api_key, ex.api_secret))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ceiling = results["ceiling (canned httptools)"].rps
    print("\nREST, 64 keep-alive connections, 2 generator processes:")
    for name, r in results.items():
        benchmark.extra_info[f"{name} req/s"] = round(r.rps)
        benchmark.extra_info[f"{name} p50 ms"] = round(r.p50_ms, 3)
        benchmark.extra_info[f"{name} p99 ms"] = round(r.p99_ms, 3)
        assert r.errors == 0, f"{name}: {r.errors} error responses"
        line = r.line(name)
        if name in TARGETS:
            ratio = r.rps / ceiling
            benchmark.extra_info[f"{name} ratio"] = round(ratio, 3)
            verdict = "PASS" if ratio >= TARGETS[name] else "MISS"
            line += f"   {ratio:.2f} of ceiling (target {TARGETS[name]}: {verdict})"
        print("  " + line)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@pytest.mark.parametrize("how", ["cli"])
def test_idle_cluster_rss(benchmark: Any, how: str) -> None:
    """``bybit-mock serve`` with the default (1 REST + 1 WS worker + state service), idle."""
    result: dict[str, int] = {}

    def measure() -> None:
        cli = Path(sys.executable).with_name("bybit-mock")
        proc = subprocess.Popen([str(cli), "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            time.sleep(2.0)  # idle, with the default synthetic markets streaming
            pids = {"supervisor": proc.pid} | ready["pids"]
            result.update({name: rss_kib(pid) for name, pid in pids.items()})
        finally:
            proc.terminate()
            proc.wait(10)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    total_mb = sum(result.values()) / 1024
    benchmark.extra_info.update({f"rss_kib_{k}": v for k, v in result.items()} | {"rss_total_mb": round(total_mb, 1)})
    parts = ", ".join(f"{k} {v / 1024:.1f}" for k, v in result.items())
    print(f"\nidle cluster RSS: {total_mb:.1f} MB ({parts}) (target <= 250 MB)")
