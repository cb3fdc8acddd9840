"""The regression guard: every speed target in one short run, each figure beside its target.

    python benches/guard.py --quick     # about 20-30 s: run it before you stop
    python benches/guard.py             # the same with more and longer rounds (about 2 min)

Each figure is a ratio to a reference measured in the same run, on the same machine, with the
same load generator (``docs/benchmarks.md``), or a latency percentile:

* REST, 64 keep-alive connections: ``GET /v5/market/time``, signed wallet-balance and signed
  order create + cancel, each over the canned httptools ceiling (``canned_server.py``), medians
  of interleaved rounds;
* WS fan-out to 50 and 500 subscribers: bybit-mock's fan-out over raw pre-framed writes and
  over ``websockets``' ``broadcast()`` (``test_ws_fanout.py``);
* the tail: market orders one at a time, from writing ``POST /v5/order/create`` to its
  ``execution`` push on a private socket, p50 / p99 / p99.9 / max from an HDR histogram.

``--quick`` figures swing more than the full run's (one short round each); a MISS there is a
reason to run the full bench of that area (``pytest benches/<file> -s``), not a verdict. Exit
status 0 unless ``--strict`` and something missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

import canned_server
import test_rest_throughput
import test_tail
import test_trading
import test_ws_fanout
from bybit_mock import MockExchange
from http_loadgen import OrderCycle, Target, run
from order_probe import event_samples


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    target: float
    unit: str  # "x" for a ratio (higher is better), "ms" for a latency (lower is better)
    #: a reference figure printed beside the targets (what bounds one), not a target itself
    info: bool = False

    @property
    def ok(self) -> bool:
        return self.value >= self.target if self.unit == "x" else self.value <= self.target

    def line(self) -> str:
        sign = ">=" if self.unit == "x" else "<="
        shown = f"{self.value:.2f}{self.unit}" if self.unit == "x" else f"{self.value:.2f} ms"
        aim = f"{self.target:g}{self.unit}" if self.unit == "x" else f"{self.target:g} ms"
        if self.info:
            return f"  {self.name:44s} {shown:>10s}   (reference, no target)"
        return f"  {self.name:44s} {shown:>10s}   target {sign} {aim:<8s} {'PASS' if self.ok else 'MISS'}"


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: float  # per REST measurement
    warmup: float
    fanout_window: float
    orders: int  # for the tail


QUICK = Plan(rounds=1, seconds=0.8, warmup=0.3, fanout_window=0.8, orders=1_000)
FULL = Plan(rounds=5, seconds=2.0, warmup=1.0, fanout_window=3.0, orders=3_000)


def rest_checks(plan: Plan) -> list[Check]:
    names = ("market/time", "wallet-balance (signed)", "order create + cancel (signed)")
    targets = dict(zip(names, (*test_rest_throughput.TARGETS.values(), test_trading.CYCLE_TARGET), strict=True))
    ratios: dict[str, list[float]] = {name: [] for name in names}
    with canned_server.running() as port, MockExchange(test_rest_throughput.UNLIMITED) as ex:
        key, secret = ex.api_key, ex.api_secret
        ceiling = Target("127.0.0.1", port, "/v5/market/time")
        mine: dict[str, Target] = {
            names[0]: Target.from_url(f"{ex.rest_url}/v5/market/time"),
            names[1]: Target.from_url(f"{ex.rest_url}/v5/account/wallet-balance?accountType=UNIFIED", key, secret),
            names[2]: OrderCycle("127.0.0.1", ex.rest_port, "/", key, secret),
        }
        # the ceiling of a signed cycle: the same generator signing the same requests
        signed_ceiling = OrderCycle("127.0.0.1", port, "/", key, secret)
        for _ in range(plan.rounds):
            base = run(ceiling, warmup=plan.warmup, seconds=plan.seconds).rps
            for name, target in mine.items():
                ref = run(signed_ceiling, warmup=plan.warmup, seconds=plan.seconds).rps if name == names[2] else base
                ratios[name].append(run(target, warmup=plan.warmup, seconds=plan.seconds).rps / ref)
                ex.state.reset()  # a cycle cut mid-way leaves orders open; keep below the 500 cap
    return [Check(f"REST {name} / ceiling", statistics.median(r), targets[name], "x") for name, r in ratios.items()]


def fanout_checks(plan: Plan) -> list[Check]:
    test_ws_fanout.WARMUP, test_ws_fanout.WINDOW = plan.warmup, plan.fanout_window
    checks: list[Check] = []
    for subscribers in (50, 500):
        rounds = [
            {mode: test_ws_fanout.measure(mode, subscribers) for mode in test_ws_fanout.MODES}
            for _ in range(plan.rounds)
        ]
        ratios = test_ws_fanout.round_ratios(rounds)
        checks.append(
            Check(
                f"WS fan-out {subscribers} / raw pre-framed",
                statistics.median(ratios["vs_raw"]),
                test_ws_fanout.TARGET_RAW,
                "x",
            )
        )
        checks.append(
            Check(
                f"WS fan-out {subscribers} / websockets",
                statistics.median(ratios["vs_websockets"]),
                test_ws_fanout.TARGET_WEBSOCKETS,
                "x",
            )
        )
        bound = statistics.median(ratios["raw_vs_websockets"])
        checks.append(Check(f"  bound: raw pre-framed {subscribers} / websockets", bound, 0, "x", info=True))
    return checks


def tail_checks(plan: Plan) -> list[Check]:
    with MockExchange(test_rest_throughput.UNLIMITED) as ex:
        uvloop.run(event_samples(ex, 200))  # warm-up: the first orders after a start are slower
        samples = uvloop.run(event_samples(ex, plan.orders))
    name = f"REST -> execution push ({plan.orders} orders)"
    figures = test_tail.percentiles(samples)
    return [Check(f"{name} {key}", figures[key], target, "ms") for key, target in test_tail.TARGETS.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round of each (about 20-30 s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any figure misses its target")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    checks: list[Check] = []
    for area in (rest_checks, fanout_checks, tail_checks):
        found = area(plan)
        for check in found:
            print(check.line(), flush=True)
        checks += found
    targets = [c for c in checks if not c.info]
    missed = [c.name for c in targets if not c.ok]
    print(
        f"{len(targets) - len(missed)} of {len(targets)} targets met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
