"""The WS worker's event poller: a thread that long-polls the engine's event log.

It has its own Manager connection, because a long-poll blocks for up to a second and must
not hold up the batching client's round trips. Events reach the event loop in one
``call_soon_threadsafe`` per poll, in log order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

POLL_TIMEOUT = 1.0
RETRY_DELAY = 0.5

Event = tuple[str, Any]


class EventSource(Protocol):
    def wait_events(self, cursor: int, timeout: float) -> tuple[int, list[Event]]: ...


class EventPoller:
    def __init__(
        self,
        connect: Callable[[], EventSource],
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[list[Event]], None],
        cursor: int,
    ) -> None:
        self._connect = connect
        self._loop = loop
        self._handle = handle
        self.cursor = cursor
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="event-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it is a daemon, so a poll in flight never delays shutdown."""
        self._stopping = True

    def _run(self) -> None:
        source: EventSource | None = None
        while not self._stopping:
            try:
                if source is None:
                    source = self._connect()
                cursor, events = source.wait_events(self.cursor, POLL_TIMEOUT)
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("event poll failed (%s); retrying", exc)
                source = None
                time.sleep(RETRY_DELAY)
                continue
            self.cursor = cursor
            if events and not self._stopping:
                try:
                    self._loop.call_soon_threadsafe(self._handle, events)
                except RuntimeError:  # loop closed: the worker is shutting down
                    return
