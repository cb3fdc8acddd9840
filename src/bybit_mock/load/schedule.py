"""Closed and open loops, written against an injected clock so tests can drive them on a
fake one.

Closed loop: each connection starts its next operation when the previous one is answered;
throughput is whatever the server sustains, and latency is measured from the actual send.

Open loop: operations are due at fixed *intended* times (``start + i / rate``) whatever the
server does; a due operation waits in a queue for a free connection, and its latency is
measured from its intended time. A server that stalls for a second therefore shows a
second of latency on every operation that fell due during the stall (the coordinated-omission
correction); a closed loop would show one slow request and simply send fewer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

ClockNs = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]
#: runs one operation, measured from the given start (ns on the clock)
RunOp = Callable[[int], Awaitable[None]]

#: due operations waiting for a connection beyond this many are dropped (and counted): a dead
#: server must not make the generator's memory grow for an hour
BACKLOG_CAP = 100_000


@dataclass
class OpenLoopSchedule:
    """Intended start times at ``rate`` per second from ``start_ns``."""

    rate: float
    start_ns: int
    issued: int = 0

    @property
    def interval_ns(self) -> float:
        return 1e9 / self.rate

    def due(self, now_ns: int) -> list[int]:
        """The intended times, not yet handed out, at or before ``now_ns``."""
        if now_ns < self.start_ns:
            return []
        upto = int((now_ns - self.start_ns) / self.interval_ns) + 1
        times = [self.start_ns + round(i * self.interval_ns) for i in range(self.issued, upto)]
        self.issued = max(self.issued, upto)
        return times

    def next_ns(self) -> int:
        return self.start_ns + round(self.issued * self.interval_ns)


async def drive_open_loop(
    schedule: OpenLoopSchedule,
    queue: asyncio.Queue[int],
    clock_ns: ClockNs,
    sleep: Sleep,
    end_ns: int,
) -> int:
    """Put every intended time before ``end_ns`` on ``queue`` when it falls due; returns how
    many were dropped because the backlog was full."""
    dropped = 0
    while True:
        now = clock_ns()
        for intended in schedule.due(min(now, end_ns - 1)):
            if queue.qsize() >= BACKLOG_CAP:
                dropped += 1
            else:
                queue.put_nowait(intended)
        nxt = schedule.next_ns()
        if nxt >= end_ns:
            return dropped
        await sleep(max(0.0, (nxt - clock_ns()) / 1e9))


async def serve_queue(queue: asyncio.Queue[int], run_op: RunOp) -> None:
    """A connection of the open loop: run each due operation, measured from its intended time."""
    while True:
        intended = await queue.get()
        try:
            await run_op(intended)
        finally:
            queue.task_done()  # (so the run can wait for the backlog to empty: queue.join())


async def closed_loop(run_op: RunOp, clock_ns: ClockNs, end_ns: int) -> None:
    """A connection of the closed loop: the next operation as soon as the previous is done."""
    while clock_ns() < end_ns:
        await run_op(clock_ns())
