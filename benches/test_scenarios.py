"""What the scenario engine costs when it is armed but not firing, a reconnect storm, and the
cluster's cold start and reset (run on demand: ``pytest benches/test_scenarios.py -s -p no:cacheprovider``).

Every figure sits beside a reference measured in the same run, and the verdict is on their ratio:

* **REST throughput with scenarios armed**: signed ``GET /v5/account/wallet-balance`` on 64
  keep-alive connections (``http_loadgen.py``), in interleaved rounds, with (a) nothing armed,
  (b) a scenario armed on another route and (c) one armed on the same route whose match never
  fits. Targets: b/a >= 0.9, c/a >= 0.8. Beside each, the cluster's CPU per request (sampled
  from ``/proc``), which other load on the machine moves far less than req/s.
* **Reconnect storm**: 1 000 authenticated ``/v5/private`` connections subscribed to ``order``
  are dropped at once (``ws_reset`` fired by ``ScenarioTrigger.NOW``); each client reconnects,
  authenticates and subscribes at once. The rate (connections/s, from the first drop a client
  noticed to the last subscribe ack) beside a bare picows echo server's connect + upgrade + one
  echo for 1 000 connections opened at once by the same client processes (``ws_storm.py``,
  ``ws_echo_server.py``), in interleaved rounds. Target >= 0.5.
* **REST -> execution push latency with scenarios armed**: ``test_trading.py``'s measure (a
  market order written, its ``execution`` push received) with five scenarios armed that never
  fire for the account that trades (another route; order creates, fills and private messages of
  another account; a private-stream fault installed for another account) beside the same with
  nothing armed, in interleaved rounds. Targets p50 <= 1 ms, p99 <= 3 ms.
* **Cold start and reset**: ``MockExchange(MockExchangeConfig.default()).start()`` to ready
  (target <= 1 s) beside the same start-up with nothing inside (``startup_skeleton.py``: a
  spawned Manager, then two spawned processes that report ready) and a bare ``python -c
  pass``; ``state.reset()`` round trips (target <= 5 ms) beside ``state.account_keys()``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import uvloop

import startup_skeleton
import ws_echo_server
from bybit_mock import (
    AccountConfig,
    Match,
    MockExchange,
    MockExchangeConfig,
    Scenario,
    ScenarioAction,
    ScenarioTrigger,
)
from bybit_mock.supervisor import _children_skip_main
from http_loadgen import Result, Target, run
from order_probe import event_samples
from procstat import CLOCK_TICKS, cpu_ticks
from ws_storm import StormClients

#: A load test, far over Bybit's per-UID rate limits by design: the mock without them.
UNLIMITED = MockExchangeConfig.default().copy(rate_limits="off")
#: interleaved rounds of the REST cases (7: other load on this 2-core VM moves a 2 s figure by
#: +-30 %; the median of 7 per-round ratios is steadier than of 5)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SECONDS = 2.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- REST throughput with scenarios armed ----------------------------------------------------------

WALLET = "/v5/account/wallet-balance"
NONE, OTHER, SAME = "none armed", "armed, another route", "armed, same route, no match"
REST_TARGETS = {OTHER: 0.9, SAME: 0.8}


def _rest_scenarios(case: str) -> list[Scenario]:
    fail = ScenarioAction.fail(ret_code=10016, ret_msg="scripted")
    if case == OTHER:
        return [Scenario("other-route", ScenarioTrigger.rest("/v5/order/cancel"), fail, times=None)]
    if case == SAME:
        return [Scenario("no-match", ScenarioTrigger.rest(WALLET), fail, match=Match(api_key="nobody"), times=None)]
    return []


def _cpu_ticks(pids: list[int]) -> int:
    return sum(cpu_ticks(pid) for pid in pids)


class CpuSampler:
    """The summed CPU time of some processes, sampled every few ms on a thread, so that the CPU
    spent inside a load generator's measurement window can be read afterwards."""

    def __init__(self, pids: list[int], period: float = 0.01) -> None:
        self.pids = pids
        self.period = period
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), _cpu_ticks(self.pids)))
            self._stop.wait(self.period)

    def seconds(self, window: tuple[float, float]) -> float:
        """CPU seconds spent between the window's two instants (the nearest samples inside it)."""
        inside = [(t, c) for t, c in self.samples if window[0] <= t <= window[1]]
        if len(inside) < 2:
            return float("nan")
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / CLOCK_TICKS * (window[1] - window[0]) / (t1 - t0)


def _serving_pids(ex: MockExchange) -> list[int]:
    """The processes a REST request costs: the state service and the REST workers (the WS
    worker's market streaming costs the same whatever the request rate; it is left out)."""
    return [pid for name, pid in ex.pids().items() if name == "state" or name.startswith("rest")]


def test_rest_throughput_with_scenarios(benchmark: Any) -> None:
    rounds: list[dict[str, tuple[Result, float]]] = []  # case -> (result, cluster CPU µs per request)

    def measure() -> None:
        with MockExchange(UNLIMITED) as ex, CpuSampler(_serving_pids(ex)) as cpu:
            target = Target.from_url(f"{ex.rest_url}{WALLET}?accountType=UNIFIED", ex.api_key, ex.api_secret)
            cases = [NONE, OTHER, SAME]
            for i in range(ROUNDS):
                results: dict[str, tuple[Result, float]] = {}
                for case in cases[i % 3 :] + cases[: i % 3]:  # each case in each position in turn
                    ex.scenarios.clear()
                    for scenario in _rest_scenarios(case):
                        ex.scenarios.push(scenario)
                    assert len(ex.scenarios.list()) == len(_rest_scenarios(case))
                    result = run(target, seconds=SECONDS)
                    results[case] = (result, cpu.seconds(result.window) / result.requests * 1e6)
                rounds.append(results)
            assert not ex.scenarios.journal(), "an armed scenario fired: the bench measured faults"

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(
        f"\nsigned GET {WALLET}, 64 keep-alive connections, 2 generator processes,"
        f" {ROUNDS} interleaved rounds of {SECONDS:.0f} s (CPU: state service + REST worker, per request):"
    )
    for case in (NONE, OTHER, SAME):
        results = [r[case][0] for r in rounds]
        assert all(r.errors == 0 for r in results), f"{case}: error responses"
        rps = [r.rps for r in results]
        cost = statistics.median(r[case][1] for r in rounds)
        line = (
            f"{case:28s} {statistics.median(rps):>7,.0f} req/s ({min(rps):,.0f}-{max(rps):,.0f})"
            f"  p50 {statistics.median(r.p50_ms for r in results):.2f} ms"
            f"  p99 {statistics.median(r.p99_ms for r in results):.2f} ms"
            f"  CPU {cost:5.1f} µs/req"
        )
        benchmark.extra_info[f"{case} req/s"] = round(statistics.median(rps))
        benchmark.extra_info[f"{case} cpu us/req"] = round(cost, 2)
        if case in REST_TARGETS:
            ratios = [r[case][0].rps / r[NONE][0].rps for r in rounds]
            ratio = statistics.median(ratios)
            cost_ratio = statistics.median(r[case][1] / r[NONE][1] for r in rounds)
            benchmark.extra_info[f"{case} ratio"] = round(ratio, 3)
            benchmark.extra_info[f"{case} cpu ratio"] = round(cost_ratio, 3)
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            line += (
                f"\n    {'':26s} / none armed: req/s {ratio:.2f} ({spread}; target {REST_TARGETS[case]}:"
                f" {verdict(ratio >= REST_TARGETS[case])}), CPU per request x{cost_ratio:.2f}"
            )
        print("  " + line)


# -- reconnect storm ------------------------------------------------------------------------------

STORM_CONNECTIONS = int(os.environ.get("BENCH_STORM_CONNECTIONS", "1000"))
STORM_ROUNDS = int(os.environ.get("BENCH_STORM_ROUNDS", "5"))
STORM_TARGET = 0.5
#: every authenticated private connection dropped at once, no close frame
DROP_PRIVATE = ScenarioAction.ws_reset(channel="private")


def _enough_files(needed: int) -> None:
    """The WS worker holds every connection, each client process half of them: raise the soft
    limit to the hard one if need be (children inherit it), else skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"ulimit -n is {soft} (hard {hard}); the storm needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def cpu_ms(ticks: int) -> float:
    return ticks / CLOCK_TICKS * 1000


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_reconnect_storm(benchmark: Any) -> None:
    n = STORM_CONNECTIONS
    _enough_files(n + 1024)
    rounds: list[tuple[dict[str, float], dict[str, float], float]] = []  # (echo, storm, push -> first drop)
    opened: dict[str, float] = {}
    fds: dict[str, int] = {}

    def measure() -> None:
        with ws_echo_server.running() as (echo_port, echo_pid), MockExchange(MockExchangeConfig.default()) as ex:
            ws_pid = ex.pids()["ws-0"]
            state_pid = ex.pids()["state"]
            fds_before = _open_fds(ws_pid)
            with StormClients(processes=2) as clients:
                opened.update(clients.open_private(ex.ws_private_url, n, ex.api_key, ex.api_secret))
                for i in range(STORM_ROUNDS):
                    echo0, clients0 = _cpu_ticks([echo_pid]), _cpu_ticks(clients.pids)
                    reference = clients.echo(echo_port, n)
                    ws0, state0, clients1 = _cpu_ticks([ws_pid]), _cpu_ticks([state_pid]), _cpu_ticks(clients.pids)
                    reference.update(
                        server_cpu=cpu_ms(_cpu_ticks([echo_pid]) - echo0), client_cpu=cpu_ms(clients1 - clients0)
                    )
                    clients.expect_storm()
                    pushed = time.monotonic()
                    ex.scenarios.push(Scenario(f"storm-{i}", ScenarioTrigger.NOW, DROP_PRIVATE))
                    storm = clients.wait_storm(n)
                    storm.update(
                        ws_cpu=cpu_ms(_cpu_ticks([ws_pid]) - ws0),
                        state_cpu=cpu_ms(_cpu_ticks([state_pid]) - state0),
                        client_cpu=cpu_ms(_cpu_ticks(clients.pids) - clients1),
                    )
                    rounds.append((reference, storm, storm["first_drop"] - pushed))
                    time.sleep(0.3)  # the journal notes of the resets settle before the next round
            for i in range(STORM_ROUNDS):
                (entry,) = ex.scenarios.journal(f"storm-{i}")
                resets = [d for d in entry["done"] if d.startswith("reset private")]
                assert len(resets) == n, f"storm {i} reset {len(resets)} connections, not {n}"
            # every connection the clients opened is closed on the mock's side too
            deadline = time.monotonic() + 5
            while _open_fds(ws_pid) > fds_before and time.monotonic() < deadline:
                time.sleep(0.05)
            fds["before"], fds["after"] = fds_before, _open_fds(ws_pid)
            assert fds["after"] <= fds_before, f"the WS worker holds {fds['after'] - fds_before} more files than before"

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratios = [s["rate"] / e["rate"] for e, s, _ in rounds]
    ratio = statistics.median(ratios)
    echo_rate = statistics.median(e["rate"] for e, _, _ in rounds)
    storm_rate = statistics.median(s["rate"] for _, s, _ in rounds)
    benchmark.extra_info.update(echo_rate=round(echo_rate), storm_rate=round(storm_rate), ratio=round(ratio, 3))
    print(f"\nreconnect storm, {n} connections over 2 client processes, {STORM_ROUNDS} interleaved rounds:")
    print(
        f"  (initial open of {n} private connections: {opened['seconds'] * 1000:.0f} ms, {opened['rate']:,.0f}/s;"
        f" WS worker's open files before {fds['before']}, after closing {fds['after']})"
    )
    for i, (echo, storm, lag) in enumerate(rounds):
        spread = (storm["last_drop"] - storm["first_drop"]) * 1000
        print(
            f"  round {i}: echo {echo['seconds'] * 1000:4.0f} ms = {echo['rate']:5,.0f}/s"
            f"   storm {storm['seconds'] * 1000:4.0f} ms = {storm['rate']:5,.0f}/s"
            f"   ratio {storm['rate'] / echo['rate']:.2f}"
            f"\n           CPU ms: echo server {echo['server_cpu']:.0f}, its clients {echo['client_cpu']:.0f};"
            f" mock WS worker {storm['ws_cpu']:.0f} + state service {storm['state_cpu']:.0f},"
            f" its clients {storm['client_cpu']:.0f}\n"
            f"           (push -> first drop {lag * 1000:.1f} ms, drops spread over {spread:.0f} ms,"
            f" {storm['reconnects']:.0f} reconnects, {storm['connect_failures']:.0f} failed connects,"
            f" {storm['refused']:.0f} auths or subscribes refused)"
        )
    print(
        f"  reference, bare picows echo (connect + upgrade + 1 echo) {echo_rate:>7,.0f} connections/s\n"
        f"  mock, drop -> reconnect + auth + subscribe ack           {storm_rate:>7,.0f} connections/s\n"
        f"  ratio {ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f};"
        f" target {STORM_TARGET}: {verdict(ratio >= STORM_TARGET)})"
    )


# -- REST -> execution push latency with scenarios armed --------------------------------------------

OTHER_KEY = "bench-other"
LATENCY_CONFIG = UNLIMITED.with_account(AccountConfig(OTHER_KEY, "bench-other-secret", {"USDT": Decimal(100_000)}))
LATENCY_ROUNDS = int(os.environ.get("BENCH_LATENCY_ROUNDS", "4"))
EVENTS_PER_ROUND = int(os.environ.get("BENCH_LATENCY_EVENTS", "200"))


def _unrelated_scenarios() -> list[Scenario]:
    """Armed, never firing for the account that trades, each on a path the order takes."""
    other = Match(api_key=OTHER_KEY)
    inject = ScenarioAction.inject_private_event({"topic": "bench"}, api_key=OTHER_KEY)
    return [
        # a REST route the order does not use
        Scenario("other-route", ScenarioTrigger.rest("/v5/order/realtime"), ScenarioAction.fail(), times=None),
        # the order's own route, for another account (the REST worker tests the match)
        Scenario("other-creates", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reject(), match=other, times=None),
        # every order status change is looked at (created, filled ...)
        Scenario("other-fills", ScenarioTrigger.order_event("filled"), inject, match=other, times=None),
        # every private message is counted
        Scenario("other-messages", ScenarioTrigger.message("private"), inject, match=other, times=None),
        # fires at once and installs a fault: every private message is routed through it
        Scenario(
            "other-drops",
            ScenarioTrigger.NOW,
            ScenarioAction.private_stream("drop", api_key=OTHER_KEY, for_ms=3_600_000),
        ),
    ]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


def test_execution_push_latency_with_scenarios(benchmark: Any) -> None:
    samples: dict[str, list[float]] = {"none armed": [], "5 unrelated scenarios armed": []}

    def measure() -> None:
        with MockExchange(LATENCY_CONFIG) as ex:
            for i in range(LATENCY_ROUNDS):
                order = list(samples) if i % 2 == 0 else list(reversed(samples))
                for case in order:
                    ex.state.reset()  # nothing armed, no stream fault left, a flat position
                    if case != "none armed":
                        for scenario in _unrelated_scenarios():
                            ex.scenarios.push(scenario)
                        assert len(ex.scenarios.list()) == 4  # the fifth fired as it was armed
                    samples[case] += uvloop.run(event_samples(ex, EVENTS_PER_ROUND))
                    if case != "none armed":
                        fired = {e["scenario"] for e in ex.scenarios.journal()}
                        assert fired == {"other-drops"}, f"an unrelated scenario fired: {fired}"

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(
        f"\nREST -> private execution push, one market order at a time,"
        f" {LATENCY_ROUNDS} interleaved rounds of {EVENTS_PER_ROUND}:"
    )
    (p50_ref, p99_ref), (p50, p99) = (_percentiles(s) for s in samples.values())
    for case, values in samples.items():
        q50, q99 = _percentiles(values)
        benchmark.extra_info[f"{case} p50 ms"] = round(q50, 3)
        benchmark.extra_info[f"{case} p99 ms"] = round(q99, 3)
        print(f"  {case:28s} p50 {q50:.3f} ms   p99 {q99:.3f} ms   ({len(values)} orders)")
    print(
        f"  armed / none: p50 x{p50 / p50_ref:.2f}, p99 x{p99 / p99_ref:.2f}"
        f"   (targets with scenarios armed: p50 <= 1 ms, p99 <= 3 ms: {verdict(p50 <= 1.0 and p99 <= 3.0)})"
    )


# -- cold start and reset ---------------------------------------------------------------------------

STARTS = int(os.environ.get("BENCH_STARTS", "5"))
RESETS = int(os.environ.get("BENCH_RESETS", "200"))


def test_cold_start_and_reset(benchmark: Any) -> None:
    times: dict[str, list[float]] = {"python -c pass": [], "skeleton": [], "mock start": [], "mock close": []}
    calls: dict[str, list[float]] = {"account_keys": [], "reset": []}

    def measure() -> None:
        for i in range(STARTS):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            times["python -c pass"].append(time.perf_counter() - t)
            times["skeleton"].append(startup_skeleton.start_and_stop(2, _children_skip_main))
            ex = MockExchange(MockExchangeConfig.default())
            t = time.perf_counter()
            ex.start()
            times["mock start"].append(time.perf_counter() - t)
            try:
                if i == STARTS - 1:  # the reset round trips, on the last cluster
                    state = ex.state
                    state.account_keys()
                    state.reset()
                    for _ in range(RESETS):
                        for name, call in (("account_keys", state.account_keys), ("reset", state.reset)):
                            t = time.perf_counter()
                            call()
                            calls[name].append(time.perf_counter() - t)
            finally:
                t = time.perf_counter()
                ex.close()
                times["mock close"].append(time.perf_counter() - t)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    print(f"\ncold start, {STARTS} times each (median, max):")
    for name, values in times.items():
        print(f"  {name:16s} {statistics.median(values) * 1000:6.0f} ms  {max(values) * 1000:6.0f} ms")
        benchmark.extra_info[f"{name} median ms"] = round(statistics.median(values) * 1000)
    start, skeleton = statistics.median(times["mock start"]), statistics.median(times["skeleton"])
    bare = statistics.median(times["python -c pass"])
    print(
        f"  mock start / skeleton x{start / skeleton:.2f}, / python -c pass x{start / bare:.1f}"
        f"   (target: start <= 1 s, median and max: {verdict(max(times['mock start']) <= 1.0)})"
    )
    print(f"state round trips, {RESETS} each, interleaved (median, p99):")
    summary = {}
    for name, values in calls.items():
        ordered = sorted(values)
        summary[name] = (statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000)
        benchmark.extra_info[f"{name} median ms"] = round(summary[name][0], 3)
        benchmark.extra_info[f"{name} p99 ms"] = round(summary[name][1], 3)
        print(f"  {name:16s} {summary[name][0]:6.2f} ms  {summary[name][1]:6.2f} ms")
    reset, keys = summary["reset"], summary["account_keys"]
    print(
        f"  reset / account_keys: median x{reset[0] / keys[0]:.1f}, p99 x{reset[1] / keys[1]:.1f}"
        f"   (target: reset <= 5 ms, median and p99: {verdict(reset[1] <= 5.0)})"
    )
