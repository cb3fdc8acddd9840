"""WebSocket fan-out throughput and idle-connection memory (run on demand: ``pytest benches``).

Deliveries/s (messages received by all subscribers per second) to 50 and 500 subscribers for:

* bybit-mock's fan-out (``FanOut.publish_batch``, the stream publisher's path);
* (a) the raw ceiling: the same pre-framed bytes written straight to the same sockets;
* (b) the same fan-out with the ``websockets`` library's ``broadcast()``;

all measured in one run with the same byte-counting clients, and reported as ratios
(targets: >= 0.7 of (a), >= 3x (b)). Plus the WS worker's memory per idle connection.
"""

from __future__ import annotations

import asyncio
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
WARMUP, WINDOW = 1.0, 3.0
MODES = ("raw", "fanout", "fanout-per-message", "websockets")


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
    results: dict[str, dict[str, float]] = {}

    def run() -> None:
        for mode in MODES:
            results[mode] = measure(mode, subscribers)

    benchmark.pedantic(run, rounds=1, iterations=1)
    raw = results["raw"]["deliveries_per_s"]
    ours = results["fanout"]["deliveries_per_s"]
    ws = results["websockets"]["deliveries_per_s"]
    benchmark.extra_info.update(
        {f"{m}_deliveries_per_s": round(r["deliveries_per_s"]) for m, r in results.items()}
        | {f"{m}_server_cpu": round(r["server_cpu"], 2) for m, r in results.items()}
        | {"ratio_vs_raw": round(ours / raw, 3), "ratio_vs_websockets": round(ours / ws, 2)}
    )
    print(f"\nWS fan-out, {subscribers} subscribers, 200-byte messages, 20 per tick:")
    for mode, r in results.items():
        print(f"  {mode:20s} {r['deliveries_per_s']:>12,.0f} deliveries/s   server CPU {r['server_cpu']:.0%}")
    print(f"  bybit-mock / raw ceiling = {ours / raw:.2f} (target >= 0.7)")
    print(f"  bybit-mock / websockets  = {ours / ws:.1f}x (target >= 3x)")


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
