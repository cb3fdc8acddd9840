"""The engine's outgoing event log, long-polled by the WS workers.

Events are ``(kind, data)`` with a global sequence number. A worker keeps a cursor (the next
sequence it wants) and calls :meth:`EventLog.wait` from a dedicated thread: the call returns
at once if anything is newer than the cursor, or blocks up to ``timeout`` seconds for the next
append. Waiting uses the log's own condition, never the engine lock, so a parked poller costs
the engine nothing.

Each reader names itself (its worker's pid), so a writer can wait until every live reader has
taken an event (:meth:`EventLog.wait_taken`): arming a scenario returns only once every worker
knows it is armed, so a request sent right after is sure to meet it.

The log is bounded. A worker whose cursor has fallen out of it gets a ``("gap", None)`` event
first, so it can resynchronise (reload markets; later, re-read account state) instead of
silently missing events.

Most events are one account's private stream (:data:`BULK`): thousands a second under load,
wanted only by the WS workers. A reader that does not want them (a REST worker follows only
what scenarios arm) polls with ``bulk=False``: it waits on a condition of its own, which
only the other kinds wake, and reads them from a short log of their own. Before, every
REST worker was woken, sent and handed every private push, to drop it: a wakeup, a pickle,
a thread handoff and a GIL contender on each order's way to its push.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

Event = tuple[str, Any]

#: the per-account stream events: most of the log, read only by the readers that ask for them
BULK = frozenset({"private", "private_raw"})

#: a reader that has not polled for this long (seconds) is gone: nobody waits for it
READER_STALE_S = 3.0


class EventLog:
    #: Events kept. Pollers read the log as it is written (a worker's poller is rarely more than
    #: a batch behind), so this only bounds how far a stalled worker may fall before it must
    #: resynchronise; each private push is ~1-4 KB, so 20 000 keep the log under ~80 MB.
    CAPACITY = 20_000
    #: Non-bulk events kept for the readers that skip the bulk ones: they are rare (scenario
    #: changes, market reloads), and such a reader is never more than a poll behind.
    CONTROL_CAPACITY = 1_024

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        self._next = 0  # sequence number of the next event appended
        lock = threading.Lock()
        self._cond = threading.Condition(lock)
        #: woken only by the events that are not :data:`BULK`, for the readers that skip those
        self._control_cond = threading.Condition(lock)
        #: the events that are not :data:`BULK`, with their sequence numbers
        self._control: deque[tuple[int, Event]] = deque(maxlen=min(capacity, self.CONTROL_CAPACITY))
        #: the newest non-bulk event that fell out of ``_control`` (-1: none)
        self._control_lost = -1
        #: reader -> (the cursor it last asked from, when)
        self._readers: dict[str, tuple[int, float]] = {}

    @property
    def cursor(self) -> int:
        """Where a new reader starts: after everything logged so far."""
        with self._cond:
            return self._next

    def append(self, kind: str, data: Any) -> int:
        with self._cond:
            self._events.append((kind, data))
            seq = self._next
            self._next += 1
            self._cond.notify_all()
            if kind not in BULK:
                control = self._control
                if len(control) == control.maxlen:
                    self._control_lost = control[0][0]
                control.append((seq, (kind, data)))
                self._control_cond.notify_all()
            return seq

    def wait(self, cursor: int, timeout: float, reader: str = "", bulk: bool = True) -> tuple[int, list[Event]]:
        """Events from ``cursor`` on, waiting up to ``timeout`` s for one; returns the new cursor.
        With ``bulk=False``, only the events that are not :data:`BULK` (the cursor still moves
        past the others)."""
        with self._cond:
            if reader:
                # asking from ``cursor`` means it has taken everything before it
                self._readers[reader] = (cursor, time.monotonic())
                self._cond.notify_all()
            if not bulk:
                return self._wait_control(cursor, timeout)
            if cursor >= self._next and timeout > 0:
                self._cond.wait_for(lambda: cursor < self._next, timeout)
            first = self._next - len(self._events)
            if cursor >= self._next:
                return cursor, []
            out: list[Event] = []
            if cursor < first:
                out.append(("gap", None))
                cursor = first
            events = self._events
            out.extend(events[i - first] for i in range(cursor, self._next))
            return self._next, out

    def _wait_control(self, cursor: int, timeout: float) -> tuple[int, list[Event]]:
        """:meth:`wait` without the bulk events (the lock is held)."""
        control = self._control

        def newer() -> bool:
            return bool(control) and control[-1][0] >= cursor

        if not newer() and timeout > 0:
            self._control_cond.wait_for(newer, timeout)
        newest: list[Event] = []
        for seq, event in reversed(control):  # the newest few, without walking the rest
            if seq < cursor:
                break
            newest.append(event)
        out: list[Event] = [("gap", None)] if cursor <= self._control_lost else []
        out.extend(reversed(newest))
        return self._next, out

    def wait_taken(self, seq: int, timeout: float) -> bool:
        """Wait until every live reader has taken event ``seq`` (False if one had not in time)."""

        def taken() -> bool:
            fresh = time.monotonic() - READER_STALE_S
            return all(cursor > seq for cursor, when in self._readers.values() if when >= fresh)

        with self._cond:
            return self._cond.wait_for(taken, timeout)
