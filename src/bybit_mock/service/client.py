"""The batching state client: the only way a worker's event loop talks to the state service.

A Manager proxy call blocks for a full round trip, so it must never run on the event-loop
thread. Each worker has one client thread that:

1. blocks until at least one command is queued;
2. drains *every* command queued so far into one ``apply_batch`` call;
3. hands all replies back to the loop with a single ``call_soon_threadsafe``.

Idle, a command goes out at once (lowest latency). Under load, everything queued during one
round trip rides the next one (highest throughput: one trip, one GIL handoff, one loop wakeup
per batch instead of per request). ``round_trips`` and ``commands`` count both, so tests and
benchmarks can see the batching.

If the service is unreachable, every command in the batch gets ``(10016, ...)`` and the next
batch reconnects; a worker never crashes because the state service hiccuped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..bybit.errors import SERVER_ERROR

log = logging.getLogger(__name__)

Reply = tuple[int, Any]
ReplyCallback = Callable[[Reply], None]


class Backend(Protocol):
    def apply_batch(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Reply]: ...


_STOP = object()


class StateClient:
    def __init__(self, connect: Callable[[], Backend], loop: asyncio.AbstractEventLoop) -> None:
        self._connect = connect
        self._loop = loop
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="state-client", daemon=True)
        self.round_trips = 0
        self.commands = 0
        self.max_batch = 0

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, op: str, args: tuple[Any, ...], callback: ReplyCallback) -> None:
        """Queue a command; ``callback`` runs on the event loop with its reply."""
        self._queue.put((op, args, callback))

    def call(self, op: str, *args: Any) -> asyncio.Future[Reply]:
        """Awaitable form of :meth:`submit`, for code off the hot path."""
        fut: asyncio.Future[Reply] = self._loop.create_future()

        def done(reply: Reply) -> None:
            if not fut.done():
                fut.set_result(reply)

        self.submit(op, args, done)
        return fut

    # -- client thread ----------------------------------------------------------------------

    def _run(self) -> None:
        backend: Backend | None = None
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            first = get()
            if first is _STOP:
                return
            batch = [first]
            stopping = False
            while True:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                if backend is None:
                    backend = self._connect()
                replies = backend.apply_batch([(op, args) for op, args, _ in batch])
            except Exception as exc:
                log.warning("state service call failed (%s); %d command(s) answered 10016", exc, len(batch))
                backend = None
                replies = [(SERVER_ERROR, "Server error: state service unavailable")] * len(batch)
            self.round_trips += 1
            self.commands += len(batch)
            self.max_batch = max(self.max_batch, len(batch))
            try:
                self._loop.call_soon_threadsafe(_deliver, [cb for _, _, cb in batch], replies)
            except RuntimeError:  # loop closed: the worker is shutting down
                return
            if stopping:
                return


def _deliver(callbacks: list[ReplyCallback], replies: list[Reply]) -> None:
    for callback, reply in zip(callbacks, replies, strict=True):
        try:
            callback(reply)
        except Exception:
            log.exception("state reply callback failed")
