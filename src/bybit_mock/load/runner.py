"""Worker processes, each a uvloop running its share of the load, and the parent that
starts them together, shows progress and merges what they measured.

Every process connects first and reports ready; the parent then hands all of them one
start time on ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for every process on the
machine), so the open-loop schedules line up and set-up time is never measured. Each
process stops by itself at start + duration; the parent kills any that overstays.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue as queue_mod
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import uvloop

from .mix import Mix
from .report import Recorder, progress_line
from .rest import RestSession, RestTarget
from .schedule import OpenLoopSchedule, closed_loop, drive_open_loop, serve_queue
from .ws import WsClient

#: connections a process opens for the open loop when --connections is not given
OPEN_LOOP_CONNECTIONS = 64
#: how long past the end an operation still in flight may take before the process gives up
DRAIN_S = 2.0
PROGRESS_EVERY_S = 0.5
#: subscribers a process connects at once (one by one, 10 000 take minutes; all at once
#: overflow the server's listen backlog)
CONNECT_BATCH = 64
#: a ready process waits this long at most for the others and the parent's start signal
START_WAIT_S = 120.0


@dataclass(frozen=True)
class Plan:
    """One process's share of the run (the whole run's, before :func:`split`)."""

    rest: RestTarget
    ws_url: str
    mix: Mix
    duration_s: float
    connections: int = 0  # REST connections (closed loop: one operation in flight on each)
    rate: float = 0.0  # open loop: REST operations per second; 0 = closed loop
    ws_public: int = 0
    ws_private: int = 0
    ws_trade_rate: float = 0.0  # /v5/trade create+cancel cycles per second (one connection)
    public_topics: tuple[str, ...] = ()
    private_topics: tuple[str, ...] = ()
    seed: int = 0
    #: each public subscriber takes one of ``public_topics``, round-robin over the whole run
    #: (``public_offset``: this process's first subscriber's place in that round), not all of them
    spread_topics: bool = False
    public_offset: int = 0


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def split(plan: Plan, processes: int) -> list[Plan]:
    """The per-process plans; processes with nothing to do are left out."""
    plans = []
    public_offset = 0
    for i in range(processes):
        part = replace(
            plan,
            connections=_share(plan.connections, processes, i),
            rate=plan.rate / processes,
            ws_public=_share(plan.ws_public, processes, i),
            public_offset=public_offset,
            ws_private=_share(plan.ws_private, processes, i),
            ws_trade_rate=plan.ws_trade_rate / processes,
            seed=plan.seed * 1000 + i,
        )
        public_offset += part.ws_public
        if part.rate and not part.connections:
            part = replace(part, connections=1)
        busy = part.mix.names and (part.connections or part.rate)
        if busy or part.ws_public or part.ws_private or part.ws_trade_rate:
            plans.append(part)
    return plans


async def _process_main(
    plan: Plan, ready: Callable[[], None], start_ns: Callable[[], int], out: Any
) -> tuple[Recorder, int]:
    """Connect, report ready, wait for the common start, load until the end; what was
    measured and the ns from the start to the end of the drain."""
    recorder = Recorder()
    clock = time.monotonic_ns
    rng = random.Random(plan.seed)
    rest_on = bool(plan.mix.names) and bool(plan.connections)
    sessions = [RestSession(plan.rest, recorder, clock) for _ in range(plan.connections if rest_on else 0)]
    for session in sessions:
        await session.connect()
    subscribers = await _connect_subscribers(plan, recorder)
    trader: WsClient | None = None
    if plan.ws_trade_rate:
        trader = WsClient("ws_trade", recorder, clock)
        await trader.connect(f"{plan.ws_url}/v5/trade")
        await trader.auth(plan.rest.api_key, plan.rest.api_secret)
    ready()
    start = await asyncio.get_running_loop().run_in_executor(None, start_ns)
    end = start + int(plan.duration_s * 1e9)
    for client in subscribers:
        client.measuring = True
    tasks: list[asyncio.Task[Any]] = []  # each returns once its last operation is answered
    servers: list[asyncio.Task[None]] = []  # open-loop connections: cancelled at the end

    def run_op(session: RestSession) -> Callable[[int], Any]:
        return lambda t: session.run(plan.mix.pick(rng), t)

    if rest_on and plan.rate:
        backlog: asyncio.Queue[int] = asyncio.Queue()
        schedule = OpenLoopSchedule(plan.rate, start)
        servers += [asyncio.create_task(serve_queue(backlog, run_op(s))) for s in sessions]
        driver = drive_open_loop(schedule, backlog, clock, _sleep, end)
        tasks.append(asyncio.create_task(_open_loop(driver, backlog, recorder)))
    elif rest_on:
        tasks += [asyncio.create_task(closed_loop(run_op(s), clock, end)) for s in sessions]
    if trader is not None:
        tasks.append(asyncio.create_task(_trade_loop(trader, plan.ws_trade_rate, start, end)))
    progress = asyncio.create_task(_report_progress(recorder, out))
    await asyncio.sleep(max(0.0, (end - clock()) / 1e9))
    # operations started before the end may finish (closed loops return by themselves)
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S) if tasks else (set(), set())
    for task in [*pending, *servers, progress]:
        task.cancel()
    for session in sessions:
        session.close()
    for client in [*subscribers, *([trader] if trader else [])]:
        client.close()
    count_subscribers(subscribers, recorder)
    return recorder, clock() - start


def count_subscribers(subscribers: list[WsClient], recorder: Recorder) -> None:
    """``<channel>.subscribers`` and ``<channel>.silent_subscribers`` (none received while
    measuring); both present, 0 included, for every channel that had subscribers."""
    for client in subscribers:
        recorder.counters[f"{client.name}.subscribers"] += 1
        recorder.counters[f"{client.name}.silent_subscribers"] += client.received == 0


async def _connect_subscribers(plan: Plan, recorder: Recorder) -> list[WsClient]:
    """Every subscriber connected (and authenticated) and subscribed, ``CONNECT_BATCH`` at a time."""
    topics = plan.public_topics

    async def public(k: int) -> WsClient:
        client = WsClient("ws_public", recorder)
        await client.connect(f"{plan.ws_url}/v5/public/linear")
        mine = (topics[(plan.public_offset + k) % len(topics)],) if plan.spread_topics and topics else topics
        await client.subscribe(mine)
        return client

    async def private(_: int) -> WsClient:
        client = WsClient("ws_private", recorder)
        await client.connect(f"{plan.ws_url}/v5/private")
        await client.auth(plan.rest.api_key, plan.rest.api_secret)
        await client.subscribe(plan.private_topics)
        return client

    clients: list[WsClient] = []
    for make, count in ((public, plan.ws_public), (private, plan.ws_private)):
        for first in range(0, count, CONNECT_BATCH):
            batch = range(first, min(count, first + CONNECT_BATCH))
            clients += await asyncio.gather(*(make(k) for k in batch))
    return clients


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _open_loop(driver: Any, backlog: asyncio.Queue[int], recorder: Recorder) -> None:
    """The schedule to its end, then until every operation it queued is answered."""
    dropped = await driver
    if dropped:
        recorder.counters["rest.dropped_backlog_full"] += dropped
    await backlog.join()


async def _trade_loop(trader: WsClient, rate: float, start: int, end: int) -> None:
    """Open loop on one /v5/trade connection: each cycle its own task, replies matched by reqId."""
    backlog: asyncio.Queue[int] = asyncio.Queue()
    inflight: set[asyncio.Task[None]] = set()

    async def spawn() -> None:
        while True:
            task = asyncio.create_task(trader.trade_cycle(await backlog.get()))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

    spawner = asyncio.create_task(spawn())
    try:
        await drive_open_loop(OpenLoopSchedule(rate, start), backlog, time.monotonic_ns, _sleep, end)
        await asyncio.sleep(0)
        if inflight:
            await asyncio.wait(list(inflight))
    finally:
        spawner.cancel()


async def _report_progress(recorder: Recorder, out: Any) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        out.put(("progress", recorder.answered(), recorder.failed()))


def _child(index: int, plan: Plan, out: Any, go: Any, start: Any) -> None:
    def ready() -> None:
        out.put(("ready", index))

    def start_ns() -> int:
        if not go.wait(START_WAIT_S):  # the parent is gone (or failed): do not wait forever
            raise LoadError("no start signal from the parent")
        return int(start.value)

    try:
        recorder, elapsed_ns = uvloop.run(_process_main(plan, ready, start_ns, _Tagged(out, index)))
        out.put(("done", index, recorder.export(), elapsed_ns))
    except BaseException:  # the parent reports it and fails the run
        out.put(("failed", index, traceback.format_exc()))


class _Tagged:
    """The queue, with this process's index added to every progress message."""

    def __init__(self, out: Any, index: int) -> None:
        self.out, self.index = out, index

    def put(self, item: tuple[Any, ...]) -> None:
        self.out.put((item[0], self.index, *item[1:]))


class LoadError(RuntimeError):
    """The run could not be carried out (a process failed to connect or crashed)."""


def run(plan: Plan, processes: int, progress: bool = True, setup_timeout: float = 30.0) -> tuple[Recorder, float]:
    """Run ``plan`` over ``processes`` processes; the merged measurements and the elapsed time."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    go = ctx.Event()
    start = ctx.Value("q", 0)
    plans = split(plan, processes)
    if not plans:
        raise LoadError("nothing to run: give --connections or --rate with a --mix, or WebSocket clients")
    procs = [ctx.Process(target=_child, args=(i, p, out, go, start), daemon=True) for i, p in enumerate(plans)]
    for proc in procs:
        proc.start()
    finished = False
    try:
        _await_ready(out, len(procs), setup_timeout)
        start.value = time.monotonic_ns() + 50_000_000  # all processes see go before it passes
        go.set()
        result = _collect(out, len(procs), plan.duration_s, progress)
        finished = True
        return result
    finally:
        for proc in procs:  # after a failure the others may wait for a start that never comes
            proc.join(5 if finished else 0)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _await_ready(out: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    ready = 0
    while ready < count:
        try:
            msg = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue_mod.Empty:
            raise LoadError(f"only {ready} of {count} load processes connected within {timeout:.0f} s") from None
        if msg[0] == "failed":
            raise LoadError(f"load process {msg[1]} failed while connecting:\n{msg[2]}")
        ready += msg[0] == "ready"


def _collect(out: Any, count: int, duration_s: float, progress: bool) -> tuple[Recorder, float]:
    merged = Recorder()
    deadline = time.monotonic() + duration_s + DRAIN_S + 30
    began = time.monotonic()
    latest: dict[int, tuple[int, int]] = {}
    done = 0
    shown = (0.0, 0)
    tty = sys.stderr.isatty()
    elapsed_ns = 0
    while done < count:
        try:
            msg = out.get(timeout=max(0.1, min(PROGRESS_EVERY_S, deadline - time.monotonic())))
        except queue_mod.Empty:
            if time.monotonic() > deadline:
                raise LoadError("load processes did not finish in time") from None
            continue
        if msg[0] == "failed":
            raise LoadError(f"load process {msg[1]} failed:\n{msg[2]}")
        if msg[0] == "done":
            done += 1
            merged.merge(msg[2])
            elapsed_ns = max(elapsed_ns, msg[3])
        elif msg[0] == "progress":
            latest[msg[1]] = (msg[2], msg[3])
            now = time.monotonic()
            if progress and now - shown[0] >= (PROGRESS_EVERY_S if tty else 1.0):
                answered = sum(a for a, _ in latest.values())
                rate = (answered - shown[1]) / (now - shown[0]) if shown[0] else answered / (now - began)
                line = progress_line(now - began, duration_s, answered, sum(f for _, f in latest.values()), rate)
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
                shown = (now, answered)
    if progress and tty:
        print(file=sys.stderr)
    with contextlib.suppress(Exception):
        out.close()
    return merged, min(elapsed_ns / 1e9, duration_s) if elapsed_ns else duration_s
