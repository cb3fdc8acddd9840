"""Private activity at 10 000 events/s for a minute, end to end (run on demand:
``pytest benches/test_activity_rate.py -s``; ``BENCH_ACTIVITY_SECONDS`` shortens it).

A mock (1 REST, 1 WS worker) runs one account's activity at 10 000 events/s while a private
``websockets`` client listens. Each event's item carries the engine time it ran at (``order``
items' ``updatedTime`` for consistent activity, ``creationTime`` for canned), so the rate the
engine kept is read from what arrived: the events received in the span between the first and
last engine time, beside the configured rate times that span (the ratio must be within 2 %).
Also reported: the worst one-second window, the delivery lag (receive time less engine time
of a frame's newest item, p50/p99/max), and the state service's and WS worker's CPU share
over the minute. Same run, same machine, one after the other: consistent (real orders through
the engine, one push per account per tick) and canned (one pre-encoded frame per event), the
reference, which costs the engine next to nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from bybit_mock import AccountConfig, MockExchange, MockExchangeConfig
from bybit_mock.bybit.auth import ws_auth_signature
from bybit_mock.config import ActivityConfig
from procstat import cpu_seconds

RATE = 10_000
SECONDS = float(os.environ.get("BENCH_ACTIVITY_SECONDS", "60"))


async def listen(ex: MockExchange, account: AccountConfig, seconds: float) -> tuple[list[int], list[float]]:
    """Engine times of every event received in ``seconds``, and each frame's delivery lag (ms)."""
    times: list[int] = []
    lags: list[float] = []
    async with connect(ex.ws_private_url, max_size=None) as ws:
        expires = int(time.time() * 1000) + 10_000
        auth = {"op": "auth", "args": [account.api_key, expires, ws_auth_signature(account.api_secret, expires)]}
        await ws.send(orjson.dumps(auth))
        await ws.recv()
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["order", "execution", "position", "wallet"]}))
        await ws.recv()
        canned = account.activity is not None and account.activity.mode == "canned"
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                break
            if "topic" not in msg:  # an ack
                continue
            if canned:  # one event per message (whatever its topic), stamped when sent
                stamps = [int(msg["creationTime"])]
            elif msg.get("topic") == "order":  # one item per event, stamped when it ran
                stamps = [int(item["updatedTime"]) for item in msg["data"]]
            else:
                continue
            times += stamps
            lags.append(time.time() * 1000 - max(stamps))
    return times, lags


def run(mode: str) -> dict[str, Any]:
    account = AccountConfig("bench", "s", {"USDT": Decimal(10**7)}, activity=ActivityConfig(mode, RATE))
    with MockExchange(MockExchangeConfig(accounts=[account], rest_workers=1, ws_workers=1)) as ex:
        ex.state.freeze_market()
        pids = ex.pids()
        cpu = {role: cpu_seconds(pids[role]) for role in ("state", "ws-0")}
        started = time.monotonic()
        times, lags = asyncio.run(listen(ex, account, SECONDS))
        wall = time.monotonic() - started
        cpu = {role: (cpu_seconds(pids[role]) - cpu[role]) / wall for role in cpu}
        status = ex.state.activity()["bench"]
    times.sort()
    span_s = (times[-1] - times[0]) / 1000
    received = sum(times[0] < t <= times[-1] for t in times)
    windows = [sum(s < t <= s + 1000 for t in times) for s in range(times[0], times[-1] - 1000, 1000)]
    lags.sort()
    return {
        "ratio": received / (RATE * span_s),
        "received": received,
        "span_s": round(span_s, 2),
        "worst_second": min(windows, key=lambda n: abs(n - RATE)),
        "lag_ms": [round(lags[len(lags) // 2], 1), round(lags[int(len(lags) * 0.99)], 1), round(lags[-1], 1)],
        "cpu": {role: round(share, 3) for role, share in cpu.items()},
        "engine": {k: status[k] for k in ("done", "failed", "skipped")},
    }


@pytest.mark.timeout(2 * SECONDS + 120)
def test_activity_rate_over_a_minute(benchmark: Any) -> None:
    results: dict[str, dict[str, Any]] = {}

    def measure() -> None:
        results["consistent"] = run("consistent")
        results["canned (reference)"] = run("canned")

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(f"\nprivate activity at {RATE:,}/s for {SECONDS:g} s, end to end (1 REST, 1 WS worker):")
    for name, r in results.items():
        benchmark.extra_info[name] = r
        print(
            f"  {name:<20} received/configured {r['ratio']:.4f} over {r['span_s']} s  "
            f"worst second {r['worst_second']:,}  lag p50/p99/max {r['lag_ms']} ms  "
            f"cpu state {r['cpu']['state']:.0%} ws {r['cpu']['ws-0']:.0%}  engine {r['engine']}"
        )
    consistent = results["consistent"]
    assert abs(consistent["ratio"] - 1) <= 0.02
    assert consistent["engine"]["failed"] == consistent["engine"]["skipped"] == 0
    reference = results["canned (reference)"]["cpu"]["state"]
    print(f"  state-service CPU, consistent / canned: {consistent['cpu']['state'] / reference:.2f}")
