"""Capacity: 10 000 concurrent WebSocket subscribers on one mock (run on demand: ``pytest benches``).

The load generator (``python -m bybit_mock.load``, 4 processes) holds 9 000 public subscribers,
spread round-robin over five topics of the mock's default rates (tickers 10/s, orderbook.200
10/s, kline 1/s: 5.4 pushes/s per subscriber on average), and 1 000 authenticated private
subscribers of the demo account (order, execution, position, wallet), fed by one
create+cancel cycle a second on ``/v5/trade``, for 30 s against a mock with 2 WS workers and
rate limits off. (``orderbook.50``/``publicTrade``, 50 and 20 pushes/s, to 9 000 subscribers
are ~240 000 deliveries/s: on a 2-core machine shared with the generator's Python clients
that measures the generator, whose processes then fall behind and miss their end.) Reported:

* connections established and subscribers that received nothing in the window (must be 0);
* delivery lag per channel (receive time less the push's ``ts`` / ``creationTime``);
* beside the lag, the same-run reference: the same load at a tenth of the subscribers (900
  public, 100 private, 10 s), where neither the mock nor the generator is short of CPU;
* the WS workers' RSS idle and at its peak while holding the connections, so memory per
  connection, beside the same-run reference: a bare picows echo server (same picows and
  uvloop, no subscriptions, nothing sent; picows' default 10 MiB ``max_frame_size`` where
  the mock sets 64 KiB) holding the same number of idle connections.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import ws_echo_server
from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.soak.sampler import sample_process
from ws_clients import ClientRun, run_clients

PUBLIC, PRIVATE = 9_000, 1_000
DURATION_S = 30
TOPICS = "tickers.BTCUSDT,tickers.ETHUSDT,orderbook.200.BTCUSDT,kline.1.BTCUSDT,kline.1.ETHUSDT"


def rss(pids: list[int]) -> int:
    return sum(sample_process(pid).rss_bytes or 0 for pid in pids)


@contextmanager
def peak_rss(pids: list[int]) -> Iterator[Callable[[], int]]:
    """Samples the processes' summed RSS every 0.2 s while the block runs; yields the peak's getter."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], rss(pids))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def run_mock(out: Path, public: int, private: int, duration_s: int) -> dict[str, Any]:
    config = MockExchangeConfig.default().copy(rate_limits="off", ws_workers=2)
    with MockExchange(config) as ex:
        pids = [pid for role, pid in ex.pids().items() if role.startswith("ws-")]
        time.sleep(1.0)
        idle = rss(pids)
        command = [
            sys.executable, "-m", "bybit_mock.load", "--rest-url", ex.rest_url, "--ws-url", ex.ws_url,
            "--key", ex.api_key, "--secret", ex.api_secret, "--duration", str(duration_s), "--mix", "",
            "--ws-public", str(public), "--ws-private", str(private), "--ws-trade-rate", "1",
            "--spread-topics", "--public-topics", TOPICS, "--processes", "4", "--quiet", "--out", str(out),
        ]  # fmt: skip
        with peak_rss(pids) as peak:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=duration_s + 150)
        return {"doc": json.loads(out.read_text()), "idle": idle, "peak": peak()}


def run_reference() -> dict[str, int]:
    with ws_echo_server.running(seconds=120) as (port, pid):
        time.sleep(0.5)
        idle = rss([pid])
        with peak_rss([pid]) as peak:
            run_clients(ClientRun(port, "/", PUBLIC + PRIVATE, warmup=2.0, window=1.0), processes=2)
        return {"idle": idle, "peak": peak()}


@pytest.mark.timeout(300)
def test_capacity(benchmark: Any, tmp_path: Path) -> None:
    results: dict[str, Any] = {}

    def run() -> None:
        results["mock"] = run_mock(tmp_path / "capacity.json", PUBLIC, PRIVATE, DURATION_S)
        results["small"] = run_mock(tmp_path / "small.json", PUBLIC // 10, PRIVATE // 10, 10)
        results["reference"] = run_reference()

    benchmark.pedantic(run, rounds=1, iterations=1)
    mock, ref = results["mock"], results["reference"]
    counters, lags = mock["doc"]["counters"], mock["doc"]["delivery_lag"]
    small_lags = results["small"]["doc"]["delivery_lag"]
    connections = counters.get("ws_public.subscribers", 0) + counters.get("ws_private.subscribers", 0)
    silent = counters.get("ws_public.silent_subscribers", 0) + counters.get("ws_private.silent_subscribers", 0)
    per_conn = (mock["peak"] - mock["idle"]) / connections / 1024
    ref_per_conn = (ref["peak"] - ref["idle"]) / (PUBLIC + PRIVATE) / 1024
    benchmark.extra_info.update(
        {
            "connections": connections,
            "silent_subscribers": silent,
            "kib_per_connection": round(per_conn, 2),
            "reference_kib_per_connection": round(ref_per_conn, 2),
            "errors": mock["doc"]["errors"],
            "delivery_lag_ms": {name: v["lag_ms"] for name, v in lags.items()},
            "reference_delivery_lag_ms": {name: v["lag_ms"] for name, v in small_lags.items()},
        }
    )
    print(f"\nCapacity: {connections:,} subscribers held for {DURATION_S} s, {silent} received nothing")
    print(f"  errors: {mock['doc']['errors']}")
    for label, table in (("10 000 subscribers", lags), ("reference, 1 000 subscribers", small_lags)):
        print(f"  delivery lag, {label}:")
        for name, value in table.items():
            lag = value["lag_ms"]
            print(
                f"    {name:24s} {value['count']:>10,} pushes  ms p50 {lag['p50']}  p90 {lag['p90']}  "
                f"p99 {lag['p99']}  p99.9 {lag['p99.9']}  max {lag['max']}"
            )
    print(
        f"  WS workers RSS idle {mock['idle'] / 2**20:.1f} MiB, peak {mock['peak'] / 2**20:.1f} MiB: "
        f"{per_conn:.1f} KiB per connection"
    )
    print(
        f"  reference (bare picows echo server, idle connections): {ref_per_conn:.1f} KiB per connection; "
        f"ratio {per_conn / ref_per_conn:.1f}"
    )
    assert connections == PUBLIC + PRIVATE
    assert silent == 0
