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

The channel is shared by every request of the worker, so the rules that keep one request from
hurting the others:

* **A command that cannot be sent fails alone.** A batch is pickled before it is written; if
  it cannot be (a value nested past the recursion limit), each command is tried on its own,
  the ones that do not pickle are answered :data:`UNPROCESSABLE`, and the rest go out on the
  same channel.
* **A channel given up is closed, and forgotten.** Each channel's callbacks carry the
  generation they were opened in; the generation moves on whenever the client gives a channel
  up, so a late reply or loss notice from an old channel is ignored rather than matched
  against another channel's batches.
* **An outage is answered at once, and logged once.** When the service is unreachable every
  waiting command gets ``(10016, ...)``, and while the client waits to retry, new commands
  get it at once instead of queueing. It reconnects by itself with a short backoff
  (:data:`RETRY_MIN` doubling to :data:`RETRY_MAX`); one warning starts an outage and one
  ends it, whatever the request rate. A worker never crashes because the state service went.
* **A restarted service is a new engine.** Every channel knows the engine's ``instance`` id;
  when a reconnect finds a different one, :attr:`StateClient.on_new_engine` runs (before any
  command reaches it), so the worker can drop what it held from the old engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .. import metrics
from ..bybit.errors import PARAMS_ERROR, SERVER_ERROR
from .wire import ManagerChannel, NotSent, WireReply, encode_call

log = logging.getLogger(__name__)

#: ``(retCode, value)``. One command answers a third item: ``rate_limited`` (a REST request under
#: Bybit's rate limits, ``engine/ratelimits.py``) replies ``(retCode, value, LimitInfo)``, so its
#: callback takes any tuple and reads the third item when there is one (an outage answers it,
#: like every command, with the plain pair :data:`UNAVAILABLE`).
Reply = tuple[int, Any]
ReplyCallback = Callable[[Reply], None]
Command = tuple[str, tuple[Any, ...]]

#: Pure reads whose replies depend only on their (hashable) arguments and the engine's state.
COALESCED_READS = frozenset({"wallet_balance", "position_list", "secret"})

UNAVAILABLE: Reply = (SERVER_ERROR, "Server error: state service unavailable")
#: The answer to a command that cannot cross the process boundary (it does not pickle).
UNPROCESSABLE: Reply = (PARAMS_ERROR, "params error: request cannot be processed")

#: Batches on the wire at once. The server answers a connection's calls in order, so a second
#: batch queued behind the first keeps the engine busy while the worker answers the first.
MAX_IN_FLIGHT = 2

#: Reconnect backoff, seconds: the first retry after a loss is immediate (a dropped connection
#: to a live service comes straight back), then RETRY_MIN doubling up to RETRY_MAX, short
#: enough that a restarted state service is in use again well within a second.
RETRY_MIN = 0.05
RETRY_MAX = 0.5


class Channel(Protocol):
    #: the engine instance this channel reaches
    instance: str

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
        #: moves on whenever a channel is given up; callbacks of other generations are stale
        self._generation = 0
        self._connecting: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._backoff = 0.0
        self._pending: list[tuple[str, tuple[Any, ...], ReplyCallback]] = []
        #: per batch in flight: for each command sent, the callbacks waiting on its reply
        self._in_flight: deque[list[list[ReplyCallback]]] = deque()
        self._flush_scheduled = False
        self._closed = False
        #: loop time the current outage began (None while connected), and what it has cost
        self._outage_since: float | None = None
        self._outage_answered = 0
        #: the engine instance of the latest channel (None before the first connects)
        self.instance: str | None = None
        #: called with the new instance id when a reconnect reaches a different engine
        self.on_new_engine: Callable[[str], None] | None = None
        self.round_trips = 0
        self.commands = 0
        self.max_batch = 0
        #: batch sizes and round-trip times (``metrics.py``); None when metrics are off
        self._metrics = metrics.current()
        #: when each batch in flight was sent (by its ``waiting`` list's id), with metrics on
        self._sent_at: dict[int, float] = {}

    def start(self) -> None:
        """Connect now rather than on the first command (a worker's first request is not slower)."""
        self._ensure_connecting()

    def close(self) -> None:
        self._closed = True
        self._generation += 1
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        self._fail_all()

    @property
    def connected(self) -> bool:
        """Whether a channel to the state service is open now."""
        return self._channel is not None

    def submit(self, op: str, args: tuple[Any, ...], callback: ReplyCallback) -> None:
        """Queue a command; ``callback`` runs on the event loop with its reply."""
        if self._closed:
            callback(UNAVAILABLE)
            return
        if self._waiting_to_retry():
            self._outage_answered += 1
            _deliver(callback, UNAVAILABLE)
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
        channel = self._channel
        if channel is None:
            if self._waiting_to_retry():
                self._fail_all()
            else:
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
        if self._metrics is not None:
            self._metrics.batch_sent(len(commands))
            self._sent_at[id(waiting)] = time.perf_counter()
        self._send(channel, commands, waiting)

    def _send(self, channel: Channel, commands: list[Command], waiting: list[list[ReplyCallback]]) -> None:
        self._in_flight.append(waiting)
        try:
            channel.call("apply_batch", (commands,))
        except NotSent as exc:
            self._in_flight.pop()  # nothing was written: the channel is as good as before
            self._send_sendable(channel, commands, waiting, exc)
        except Exception as exc:
            self._lost(str(exc) or type(exc).__name__)

    def _send_sendable(
        self, channel: Channel, commands: list[Command], waiting: list[list[ReplyCallback]], why: NotSent
    ) -> None:
        """The batch did not pickle: answer the commands that do not, send the others."""
        bad = [i for i, command in enumerate(commands) if not _sendable(command)]
        refused: list[ReplyCallback] = [callback for i in bad for callback in waiting[i]]
        unavailable: list[ReplyCallback] = []
        if bad:
            log.warning("%d command(s) cannot be sent to the state service (%s); answered 10001", len(bad), why)
            skip = set(bad)
            keep = [i for i in range(len(commands)) if i not in skip]
        else:  # each command pickles alone, the batch does not: no way to tell; fail it, keep the channel
            log.error("a batch of %d command(s) cannot be sent to the state service (%s)", len(commands), why)
            keep = []
            unavailable = [callback for callbacks in waiting for callback in callbacks]
        if keep:
            rest = [commands[i] for i in keep]
            self._in_flight.append([waiting[i] for i in keep])
            try:
                channel.call("apply_batch", (rest,))
            except NotSent as exc:
                log.error("a batch of %d command(s) cannot be sent to the state service (%s)", len(rest), exc)
                unavailable = [callback for callbacks in self._in_flight.pop() for callback in callbacks]
            except Exception as exc:
                self._lost(str(exc) or type(exc).__name__)
        # Callbacks run last: one may submit or even close the client.
        for callback in refused:
            _deliver(callback, UNPROCESSABLE)
        for callback in unavailable:
            _deliver(callback, UNAVAILABLE)

    def _on_reply(self, generation: int, reply: WireReply) -> None:
        if generation != self._generation:
            return  # a channel given up: its batches were answered when it was
        if not self._in_flight:
            log.error("state service sent a reply nobody waits for; ignored")
            return
        waiting = self._in_flight.popleft()
        if self._metrics is not None:
            sent = self._sent_at.pop(id(waiting), None)
            if sent is not None:
                self._metrics.round_trip(time.perf_counter() - sent)
            if not self._in_flight:
                self._sent_at.clear()  # (a batch that was split or failed is never answered here)
        kind, value = reply
        if kind == "#RETURN" and isinstance(value, list) and len(value) == len(waiting):
            replies: list[Reply] = value
        else:
            log.error("state service failed a batch: %s", value if kind != "#RETURN" else "reply of the wrong shape")
            replies = [UNAVAILABLE] * len(waiting)
        for callbacks, answer in zip(waiting, replies, strict=True):
            for callback in callbacks:
                _deliver(callback, answer)
        if self._pending:
            self._flush()

    # -- connection -------------------------------------------------------------------------

    def _waiting_to_retry(self) -> bool:
        """In an outage, between attempts: commands are answered at once, not queued."""
        return self._channel is None and self._connecting is None and self._outage_since is not None

    def _ensure_connecting(self) -> None:
        if self._closed or self._channel is not None or self._connecting is not None:
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._connecting = self._loop.create_task(self._connect(self._generation))

    async def _connect(self, generation: int) -> None:
        try:
            channel = await self._opener(
                lambda reply: self._on_reply(generation, reply), lambda why: self._on_lost(generation, why)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._connecting = None
            self._outage(str(exc) or type(exc).__name__)
            self._fail_all()
            self._schedule_retry()
            return
        self._connecting = None
        if generation != self._generation:  # closed, or the channel was lost before we got it
            channel.close()
            self._schedule_retry()
            return
        self._channel = channel
        self._backoff = 0.0
        if self._outage_since is not None:
            log.warning(
                "state service reachable again after %.1f s (%d command(s) answered 10016 meanwhile)",
                self._loop.time() - self._outage_since,
                self._outage_answered,
            )
            self._outage_since = None
        previous, self.instance = self.instance, channel.instance
        if previous is not None and previous != channel.instance and self.on_new_engine is not None:
            log.warning("the state service was restarted: a new engine (%s, was %s)", channel.instance, previous)
            try:
                self.on_new_engine(channel.instance)
            except Exception:
                log.exception("new-engine handler failed")
        if self._pending and self._channel is channel:
            self._flush()

    def _on_lost(self, generation: int, why: str) -> None:
        if generation == self._generation:
            self._lost(why)

    def _lost(self, why: str) -> None:
        """Give the current channel up: close it, answer what waited on it, reconnect."""
        channel, self._channel = self._channel, None
        self._generation += 1
        if channel is not None:
            channel.close()
        if self._closed:
            return
        self._outage(why)
        self._fail_all()
        self._schedule_retry()

    def _outage(self, why: str) -> None:
        if self._outage_since is None and not self._closed:
            self._outage_since = self._loop.time()
            self._outage_answered = 0
            log.warning(
                "state service unavailable (%s): state-backed requests answer 10016 until it is back; reconnecting",
                why,
            )

    def _schedule_retry(self) -> None:
        if self._closed or self._retry is not None or self._connecting is not None:
            return
        delay, self._backoff = self._backoff, min(max(self._backoff * 2, RETRY_MIN), RETRY_MAX)
        self._retry = self._loop.call_later(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._ensure_connecting()

    def _fail_all(self) -> None:
        waiting = [callback for batch in self._in_flight for callbacks in batch for callback in callbacks]
        waiting += [callback for _, _, callback in self._pending]
        self._in_flight.clear()
        self._pending = []
        if self._outage_since is not None:
            self._outage_answered += len(waiting)
        for callback in waiting:
            _deliver(callback, UNAVAILABLE)


def _sendable(command: Command) -> bool:
    """Whether ``command`` pickles as part of a batch: the frame is built exactly as the batch's
    is, so the nesting depth (what a ``RecursionError`` depends on) is the same."""
    try:
        encode_call("", "apply_batch", ([command],))
    except NotSent:
        return False
    return True


def _coalesce(slot: dict[tuple[str, tuple[Any, ...]], int], key: Command, next_index: int) -> int | None:
    """The index of an identical command already in the batch, else reserve ``next_index``."""
    op, args = key
    try:
        index = slot.setdefault((op, tuple([_frozen(arg) for arg in args])), next_index)
    except (TypeError, RecursionError):  # unhashable arguments (a list in a JSON body): never coalesced
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
