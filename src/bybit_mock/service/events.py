"""The WS worker's event poller: a thread that long-polls the engine's event log.

It has its own Manager connection, because a long-poll blocks for up to a second and must
not hold up the batching client's round trips. Events reach the event loop in one
``call_soon_threadsafe`` per poll, in log order.

A cursor means something only to the engine that issued it, so the poller holds the pair
(engine instance, cursor). When the connection breaks it reconnects by itself (backoff
:data:`RETRY_MIN` doubling to :data:`RETRY_MAX`, one warning per outage). If the engine it
reaches is not the one its cursor belongs to (the state service was restarted), it does not
poll: the worker resynchronises on its own channel (``market_models`` answers with the engine's
instance id, its cursor and its models together) and hands the poller the new pair with
:meth:`EventPoller.resync`.
Polling the new engine with the old cursor would either block until the new log catches up
with a number it never had, or deliver another engine's events as if they were ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

POLL_TIMEOUT = 1.0
RETRY_MIN = 0.05
RETRY_MAX = 0.5

Event = tuple[str, Any]


class EventSource(Protocol):
    def instance(self) -> str: ...
    def wait_events(
        self, cursor: int, timeout: float, reader: str = "", bulk: bool = True
    ) -> tuple[int, list[Event]]: ...


Source = TypeVar("Source", bound=EventSource)


class EventPoller(Generic[Source]):
    """``connect`` makes a source (a proxy); ``discard`` retires one whose connection broke;
    ``bulk=False`` polls without the private stream's events (``engine/events.py``)."""

    def __init__(
        self,
        connect: Callable[[], Source],
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[list[Event]], None],
        cursor: int,
        instance: str,
        discard: Callable[[Source], None] | None = None,
        bulk: bool = True,
    ) -> None:
        self._connect = connect
        self._discard = discard
        self._loop = loop
        self._handle = handle
        self._cond = threading.Condition()
        self._cursor = cursor
        self._instance = instance
        self._stopping = False
        self._bulk = bulk
        #: how the engine knows this poller (a writer may wait until every reader took an event)
        self._reader = f"pid-{os.getpid()}"
        self._thread = threading.Thread(target=self._run, name="event-poller", daemon=True)

    @property
    def cursor(self) -> int:
        with self._cond:
            return self._cursor

    @property
    def instance(self) -> str:
        with self._cond:
            return self._instance

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it is a daemon, so a poll in flight never delays shutdown."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def resync(self, instance: str, cursor: int) -> None:
        """Poll ``instance`` from ``cursor`` on (from the loop, once the worker has reloaded)."""
        with self._cond:
            self._instance, self._cursor = instance, cursor
            self._cond.notify_all()

    def _run(self) -> None:
        source: Source | None = None
        source_instance = ""
        backoff = 0.0
        down_since: float | None = None
        while not self._stopping:
            try:
                if source is None:
                    source = self._connect()
                    source_instance = source.instance()
                    backoff = 0.0
                    if down_since is not None:
                        log.warning("event poller reconnected after %.1f s", time.monotonic() - down_since)
                        down_since = None
                with self._cond:
                    if self._instance != source_instance:
                        # A new engine: wait for the worker's resync to hand us its cursor.
                        self._cond.wait_for(partial(self._synced_to, source_instance), POLL_TIMEOUT)
                    polled = (self._instance, self._cursor)
                if self._stopping:
                    return
                if polled[0] != source_instance:
                    # Still no cursor for it; make sure it is still the engine we reach.
                    if source.instance() != source_instance:
                        raise ConnectionError("the state service changed engines")
                    continue
                cursor, events = source.wait_events(polled[1], POLL_TIMEOUT, self._reader, self._bulk)
            except Exception as exc:
                if self._stopping:
                    return
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "event poll failed (%s); reconnecting until the state service is back",
                        str(exc) or type(exc).__name__,
                    )
                if source is not None and self._discard is not None:
                    self._discard(source)
                source = None
                time.sleep(backoff)
                backoff = min(max(backoff * 2, RETRY_MIN), RETRY_MAX)
                continue
            with self._cond:
                if (self._instance, self._cursor) != polled:
                    continue  # resynced meanwhile: these events answer a cursor no longer ours
                self._cursor = cursor
            if events and not self._stopping:
                try:
                    self._loop.call_soon_threadsafe(self._deliver, polled[0], events)
                except RuntimeError:  # loop closed: the worker is shutting down
                    return

    def _synced_to(self, instance: str) -> bool:
        return self._stopping or self._instance == instance

    def _deliver(self, instance: str, events: list[Event]) -> None:
        # On the loop: a resync that ran after this poll returned makes its events stale.
        if instance == self._instance:
            self._handle(events)
