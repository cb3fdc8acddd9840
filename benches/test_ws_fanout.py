"""WebSocket fan-out throughput and idle-connection memory (run on demand: ``pytest benches``).

Deliveries/s (messages received by all subscribers per second) to 50 and 500 subscribers for:

* bybit-mock's fan-out (``FanOut.publish_batch``, the stream publisher's path);
* (a) the raw ceiling: the same pre-framed bytes written straight to the same sockets;
* (b) the same fan-out with the ``websockets`` library's ``broadcast()``;

all with the same byte-counting clients, in ``BENCH_ROUNDS`` interleaved rounds (raw, fan-out,
websockets back to back: this VM's neighbours move absolute figures by +-30 % from one minute
to the next), reported as medians of the per-round ratios (targets: >= 0.9 of (a), >= 8x (b)).
The same rounds give (a) over (b): no server that writes these bytes can beat ``websockets``
by more than that on this machine, so it is the bound on the second ratio. Plus the WS
worker's memory per idle connection.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvloop

from bybit_mock import MockExchange, MockExchangeConfig
from procstat import cpu_seconds, rss_kib
from ws_clients import ClientRun, CountingClient, run_clients

HERE = Path(__file__).parent
FRAME_SIZE = 202  # 200-byte payload + 2-byte header (ws_fanout_server --size 200)
WARMUP, WINDOW = 0.5, 2.0
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
MODES = ("raw", "fanout", "websockets")  # each round; "fanout-per-message" once, for comparison
TARGET_RAW, TARGET_WEBSOCKETS = 0.9, 8.0


def measure(mode: str, subscribers: int) -> dict[str, float]:
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "ws_fanout_server.py"),
            "--mode",
            mode,
            "--size",
            "200",
            "--seconds",
            "30",
            "--expect",
            str(subscribers),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        cpu0 = cpu_seconds(server.pid)
        received = run_clients(ClientRun(port, "/", subscribers, WARMUP, WINDOW), processes=2)
        cpu = (cpu_seconds(server.pid) - cpu0) / (WARMUP + WINDOW)
    finally:
        server.kill()
        server.wait()
    return {"deliveries_per_s": received / FRAME_SIZE / WINDOW, "server_cpu": cpu}


@pytest.mark.parametrize("subscribers", [50, 500])
def test_fanout_deliveries(benchmark: Any, subscribers: int) -> None:
    rounds: list[dict[str, dict[str, float]]] = []

    def run() -> None:
        for _ in range(ROUNDS):
            rounds.append({mode: measure(mode, subscribers) for mode in MODES})
        rounds[0]["fanout-per-message"] = measure("fanout-per-message", subscribers)

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratios = round_ratios(rounds)
    benchmark.extra_info.update(
        {f"{m}_deliveries_per_s": round(statistics.median(r[m]["deliveries_per_s"] for r in rounds)) for m in MODES}
        | {f"{m}_server_cpu": round(statistics.median(r[m]["server_cpu"] for r in rounds), 2) for m in MODES}
        | {name: round(statistics.median(values), 3) for name, values in ratios.items()}
    )
    print(f"\nWS fan-out, {subscribers} subscribers, 200-byte messages, 20 per tick, {ROUNDS} interleaved rounds:")
    for mode in (*MODES, "fanout-per-message"):
        got = [r[mode] for r in rounds if mode in r]
        rate = statistics.median(g["deliveries_per_s"] for g in got)
        cpu = statistics.median(g["server_cpu"] for g in got)
        print(f"  {mode:20s} {rate:>12,.0f} deliveries/s   server CPU {cpu:.0%}")
    for name, target in (("vs_raw", TARGET_RAW), ("vs_websockets", TARGET_WEBSOCKETS), ("raw_vs_websockets", None)):
        values = ratios[name]
        aim = f"target >= {target:g}" if target else "the bound on vs_websockets"
        print(f"  {name:18s} {statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f}; {aim})")


def round_ratios(rounds: list[dict[str, dict[str, float]]]) -> dict[str, list[float]]:
    """Per round: fan-out over raw and over websockets, and raw over websockets (the bound)."""
    rate = [{mode: r[mode]["deliveries_per_s"] for mode in MODES} for r in rounds]
    return {
        "vs_raw": [r["fanout"] / r["raw"] for r in rate],
        "vs_websockets": [r["fanout"] / r["websockets"] for r in rate],
        "raw_vs_websockets": [r["raw"] / r["websockets"] for r in rate],
    }


async def open_idle(port: int, path: str, count: int) -> list[CountingClient]:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(count):
        fut: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(lambda f=fut: CountingClient(path, f), "127.0.0.1", port)
        await fut
        clients.append(proto)
    return clients


def test_idle_connection_memory(benchmark: Any) -> None:
    count = 2000
    cfg = MockExchangeConfig.default()
    with MockExchange(cfg) as ex:
        pid = ex.pids()["ws-0"]
        result: dict[str, float] = {}

        async def run() -> None:
            warm = await open_idle(ex.ws_port, "/v5/public/linear", 50)  # first-use allocations
            for c in warm:
                assert c.transport is not None
                c.transport.close()
            await asyncio.sleep(0.5)
            before = rss_kib(pid)
            clients = await open_idle(ex.ws_port, "/v5/public/linear", count)
            await asyncio.sleep(0.5)
            after = rss_kib(pid)
            result["kib_per_connection"] = (after - before) / count
            for c in clients:
                assert c.transport is not None
                c.transport.close()

        benchmark.pedantic(lambda: uvloop.run(run()), rounds=1, iterations=1)
    benchmark.extra_info["kib_per_idle_ws_connection"] = round(result["kib_per_connection"], 2)
    print(f"\nWS worker memory per idle connection: {result['kib_per_connection']:.2f} KiB (target <= 20 KiB)")
