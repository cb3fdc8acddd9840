"""The batching state client: the only way a worker's event loop talks to the state service.

Every command a worker's handlers submit is queued; the client drains the queue into one
``apply_batch`` call on the engine and hands each reply to its caller's callback, on the loop.

* Idle, a command goes out on the next loop iteration (lowest latency; commands parsed in
  the same iteration already share the trip).
* Under load, everything queued while a batch is in flight rides the next one: one pickle,
  one write, one server dispatch per batch instead of per request.
* Identical read commands in one batch (the same account's wallet polled from 64
  connections) go out once and every caller gets that reply: concurrent reads are answered
  as of one instant either way. Only the ops in :data:`COALESCED_READS` qualify.

The client speaks the Manager's wire protocol on the event loop itself (``wire.py``), so the
loop never blocks on the Manager and no thread hands replies over: the first version used a
drain thread, and the GIL handoffs and cross-thread wakeups cost more than the round trips.
``round_trips``, ``commands`` and ``max_batch`` count the batching, for tests and benchmarks.

If the service is unreachable, every waiting command gets ``(10016, ...)`` and the next
command reconnects; a worker never crashes because the state service hiccuped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..bybit.errors import SERVER_ERROR
from .wire import ManagerChannel, WireReply

log = logging.getLogger(__name__)

Reply = tuple[int, Any]
ReplyCallback = Callable[[Reply], None]
Command = tuple[str, tuple[Any, ...]]

#: Pure reads whose replies depend only on their (hashable) arguments and the engine's state.
COALESCED_READS = frozenset({"wallet_balance", "position_list", "secret"})

UNAVAILABLE: Reply = (SERVER_ERROR, "Server error: state service unavailable")

#: Batches on the wire at once. The server answers a connection's calls in order, so a second
#: batch queued behind the first keeps the engine busy while the worker answers the first.
MAX_IN_FLIGHT = 2


class Channel(Protocol):
    def call(self, method: str, args: tuple[Any, ...]) -> None: ...
    def close(self) -> None: ...


#: ``open(on_reply, on_lost)``: connect to the engine (``wire.ManagerChannel`` in a worker).
Opener = Callable[[Callable[[WireReply], None], Callable[[str], None]], Awaitable[Channel]]


def manager_opener(address: Any, authkey: bytes, typeid: str = "exchange") -> Opener:
    def open_channel(on_reply: Callable[[WireReply], None], on_lost: Callable[[str], None]) -> Awaitable[Channel]:
        return ManagerChannel.open(address, authkey, typeid, on_reply, on_lost)

    return open_channel


class StateClient:
    def __init__(self, opener: Opener, loop: asyncio.AbstractEventLoop) -> None:
        self._opener = opener
        self._loop = loop
        self._channel: Channel | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, tuple[Any, ...], ReplyCallback]] = []
        #: per batch in flight: for each command sent, the callbacks waiting on its reply
        self._in_flight: deque[list[list[ReplyCallback]]] = deque()
        self._flush_scheduled = False
        self._closed = False
        self.round_trips = 0
        self.commands = 0
        self.max_batch = 0

    def start(self) -> None:
        """Connect now rather than on the first command (a worker's first request is not slower)."""
        self._ensure_connecting()

    def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._channel is not None:
            self._channel.close()
        self._fail_all("state client closed")

    def submit(self, op: str, args: tuple[Any, ...], callback: ReplyCallback) -> None:
        """Queue a command; ``callback`` runs on the event loop with its reply."""
        if self._closed:
            callback(UNAVAILABLE)
            return
        self._pending.append((op, args, callback))
        if not self._flush_scheduled and len(self._in_flight) < MAX_IN_FLIGHT:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def call(self, op: str, *args: Any) -> asyncio.Future[Reply]:
        """Awaitable form of :meth:`submit`, for code off the hot path."""
        fut: asyncio.Future[Reply] = self._loop.create_future()

        def done(reply: Reply) -> None:
            if not fut.done():
                fut.set_result(reply)

        self.submit(op, args, done)
        return fut

    # -- batching ---------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending or len(self._in_flight) >= MAX_IN_FLIGHT:
            return
        if self._channel is None:
            self._ensure_connecting()
            return
        commands: list[Command] = []
        waiting: list[list[ReplyCallback]] = []
        slot: dict[Command, int] = {}
        for op, args, callback in self._pending:
            key = (op, args)
            index = _coalesce(slot, key, len(commands)) if op in COALESCED_READS else None
            if index is None:
                commands.append(key)
                waiting.append([callback])
            else:
                waiting[index].append(callback)
        self.commands += len(self._pending)
        self.max_batch = max(self.max_batch, len(self._pending))
        self._pending = []
        self.round_trips += 1
        self._in_flight.append(waiting)
        try:
            self._channel.call("apply_batch", (commands,))
        except Exception as exc:
            self._lost(str(exc))

    def _on_reply(self, reply: WireReply) -> None:
        waiting = self._in_flight.popleft()
        kind, value = reply
        if kind == "#RETURN":
            replies: list[Reply] = value
        else:
            log.error("state service failed a batch: %s", value)
            replies = [UNAVAILABLE] * len(waiting)
        for callbacks, answer in zip(waiting, replies, strict=True):
            for callback in callbacks:
                _deliver(callback, answer)
        if self._pending:
            self._flush()

    # -- connection -------------------------------------------------------------------------

    def _ensure_connecting(self) -> None:
        if self._closed or self._channel is not None or self._connecting is not None:
            return
        self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            self._channel = await self._opener(self._on_reply, self._lost)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("cannot reach the state service (%s); %d command(s) answered 10016", exc, len(self._pending))
            self._fail_all(str(exc))
        finally:
            self._connecting = None
        if self._pending:
            self._flush()

    def _lost(self, why: str) -> None:
        if self._channel is not None and not self._closed:
            log.warning("state service connection lost (%s)", why)
        self._channel = None
        self._fail_all(why)

    def _fail_all(self, why: str) -> None:
        waiting = [callback for batch in self._in_flight for callbacks in batch for callback in callbacks]
        waiting += [callback for _, _, callback in self._pending]
        self._in_flight.clear()
        self._pending = []
        for callback in waiting:
            _deliver(callback, UNAVAILABLE)


def _coalesce(slot: dict[tuple[str, tuple[Any, ...]], int], key: Command, next_index: int) -> int | None:
    """The index of an identical command already in the batch, else reserve ``next_index``."""
    op, args = key
    try:
        index = slot.setdefault((op, tuple(_frozen(arg) for arg in args)), next_index)
    except TypeError:  # unhashable arguments (a list in a JSON body): never coalesced
        return None
    return None if index == next_index else index


def _frozen(arg: Any) -> Any:
    """A parsed query (``dict``) as a hashable value; two orderings of one query are one read."""
    return tuple(sorted(arg.items())) if isinstance(arg, dict) else arg


def _deliver(callback: ReplyCallback, reply: Reply) -> None:
    try:
        callback(reply)
    except Exception:
        log.exception("state reply callback failed")
