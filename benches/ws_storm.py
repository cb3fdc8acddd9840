"""Reconnect-storm clients: many picows connections per process, driven from the benchmark.

``StormClients(processes)`` starts the client processes (spawned, uvloop) and drives them over
pipes; every process takes its share of the connections and answers with
``time.monotonic()`` stamps (CLOCK_MONOTONIC, one clock for every process on the machine), so
the benchmark can time an event across processes:

* ``echo(port, n)``: the reference. Open ``n`` connections at once to ``ws_echo_server.py``;
  each does the upgrade, sends one text frame and waits for its echo; then all are closed.
* ``open_private(url, n, key, secret)``: open ``n`` ``/v5/private`` connections at once, each
  authenticating and subscribing to ``order``; they stay open. A connection that goes away
  (not closed by us) reconnects at once and authenticates and subscribes again, as a bot does.
* ``expect_storm()`` then ``wait_storm()``: from the first, each connection counts its next
  drop and the subscribe ack after it; the second waits until every connection has both.
* ``close()``: every connection closed, every process gone (``with`` closes too).

Everything is bounded: each wait has a timeout, and the processes exit when told or when the
benchmark's end of the pipe goes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bybit_mock.bybit.auth import ws_auth_signature

#: seconds a storm or an echo round may take before it is reported as failed
ROUND_TIMEOUT = 60.0
#: seconds before a refused connect is tried again (a storm's listen queue may overflow)
RETRY_S = 0.01


# -- the reference: connect, upgrade, one echo ---------------------------------------------------


class EchoClient(WSListener):  # type: ignore[misc]
    def __init__(self, round_: EchoRound) -> None:
        self.round = round_

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, b'{"op":"ping"}')

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.round.echoed(transport)


@dataclass
class EchoRound:
    n: int
    done: asyncio.Future[None]
    last: float = 0.0
    count: int = 0
    transports: list[WSTransport] = field(default_factory=list)

    def echoed(self, transport: WSTransport) -> None:
        self.last = time.monotonic()
        self.count += 1
        self.transports.append(transport)
        if self.count == self.n and not self.done.done():
            self.done.set_result(None)


async def echo_round(port: int, n: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    round_ = EchoRound(n, loop.create_future())
    url = f"ws://127.0.0.1:{port}/"
    failures = 0

    async def one() -> None:
        nonlocal failures
        while True:
            try:
                await ws_connect(lambda: EchoClient(round_), url, websocket_handshake_timeout=30)
                return
            except Exception:
                failures += 1
                await asyncio.sleep(RETRY_S)

    start = time.monotonic()
    tasks = [loop.create_task(one()) for _ in range(n)]
    try:
        await asyncio.wait_for(round_.done, ROUND_TIMEOUT)
    finally:
        for task in tasks:
            task.cancel()
        for transport in round_.transports:
            transport.disconnect()
    await asyncio.sleep(0.1)  # let the closes go out before the next round
    return {"start": start, "end": round_.last, "count": round_.count, "failures": failures}


# -- the mock: private connections that reconnect, authenticate and subscribe -------------------


class PrivateClient(WSListener):  # type: ignore[misc]
    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        pool = self.slot.pool
        expires = int(time.time() * 1000) + 600_000
        signature = ws_auth_signature(pool.secret, expires)
        transport.send(WSMsgType.TEXT, b'{"op":"auth","args":["%s",%d,"%s"]}' % (pool.key, expires, signature.encode()))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if b'"op":"auth"' in payload:
            if b'"success":true' in payload:
                transport.send(WSMsgType.TEXT, b'{"op":"subscribe","args":["order"]}')
            else:
                self.slot.pool.refused += 1
                transport.disconnect()  # reconnects
        elif b'"op":"subscribe"' in payload:
            if b'"success":true' in payload:
                self.slot.subscribed()
            else:
                self.slot.pool.refused += 1
                transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.transport = None
        self.slot.dropped()


class Slot:
    """One bot's connection: whatever happens to it, it comes back (until the pool closes)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.client: PrivateClient | None = None
        self.ready = False
        self.counting = False  # a storm is expected: note the next drop and the ack after it
        self.drop_at: float | None = None
        self.ready_at: float | None = None

    async def connect(self) -> None:
        pool = self.pool
        while not pool.closing:
            try:
                _, client = await ws_connect(lambda: PrivateClient(self), pool.url, websocket_handshake_timeout=30)
            except Exception:
                pool.connect_failures += 1
                await asyncio.sleep(RETRY_S)
                continue
            self.client = client
            return

    def subscribed(self) -> None:
        self.ready = True
        if self.counting and self.drop_at is not None and self.ready_at is None:
            self.ready_at = time.monotonic()
            self.pool.storm_progress()
        self.pool.ready_progress()

    def dropped(self) -> None:
        self.ready = False
        self.client = None
        pool = self.pool
        if pool.closing:
            pool.closed_progress()
            return
        if self.counting and self.drop_at is None:
            self.drop_at = time.monotonic()
        pool.reconnects += 1
        pool.spawn(self.connect())


class Pool:
    def __init__(self, url: str, n: int, key: str, secret: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.url = url
        self.key = key.encode()
        self.secret = secret
        self.slots = [Slot(self) for _ in range(n)]
        self.closing = False
        self.reconnects = self.connect_failures = self.refused = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Future[None] | None = None
        self._storm: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    def spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self) -> dict[str, Any]:
        self._ready = self.loop.create_future()
        start = time.monotonic()
        for slot in self.slots:
            self.spawn(slot.connect())
        await asyncio.wait_for(self._ready, ROUND_TIMEOUT)
        return {"start": start, "end": time.monotonic(), "connect_failures": self.connect_failures}

    def ready_progress(self) -> None:
        if self._ready is not None and not self._ready.done() and all(s.ready for s in self.slots):
            self._ready.set_result(None)

    def expect_storm(self) -> None:
        self.reconnects = self.connect_failures = self.refused = 0
        self._storm = self.loop.create_future()
        for slot in self.slots:
            slot.counting, slot.drop_at, slot.ready_at = True, None, None

    def storm_progress(self) -> None:
        if self._storm is not None and not self._storm.done() and all(s.ready_at is not None for s in self.slots):
            self._storm.set_result(None)

    async def wait_storm(self) -> dict[str, Any]:
        assert self._storm is not None
        try:
            await asyncio.wait_for(self._storm, ROUND_TIMEOUT)
        finally:
            for slot in self.slots:
                slot.counting = False
        drops = [s.drop_at for s in self.slots if s.drop_at is not None]
        readies = [s.ready_at for s in self.slots if s.ready_at is not None]
        return {
            "first_drop": min(drops),
            "last_drop": max(drops),
            "last_ready": max(readies),
            "count": len(readies),
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "refused": self.refused,
        }

    def closed_progress(self) -> None:
        if self._closed is not None and not self._closed.done() and all(s.client is None for s in self.slots):
            self._closed.set_result(None)

    async def close(self) -> None:
        self.closing = True
        self._closed = self.loop.create_future()
        for task in list(self._tasks):
            task.cancel()
        for slot in self.slots:
            if slot.client is not None and slot.client.transport is not None:
                slot.client.transport.disconnect()
        self.closed_progress()
        try:
            await asyncio.wait_for(self._closed, 10)
        except TimeoutError:
            pass


# -- the client process --------------------------------------------------------------------------


async def _serve(conn: Any) -> None:
    loop = asyncio.get_running_loop()
    pool: Pool | None = None
    try:
        while True:
            try:
                command, args = await loop.run_in_executor(None, conn.recv)
            except (EOFError, OSError):
                return  # the benchmark went away
            try:
                if command == "echo":
                    reply: Any = await echo_round(*args)
                elif command == "open":
                    pool = Pool(*args)
                    reply = await pool.open()
                elif command == "expect":
                    assert pool is not None
                    pool.expect_storm()
                    reply = None
                elif command == "wait":
                    assert pool is not None
                    reply = await pool.wait_storm()
                elif command == "close":
                    if pool is not None:
                        await pool.close()
                    conn.send(("ok", None))
                    return
                else:
                    raise ValueError(f"unknown command {command!r}")
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
                continue
            conn.send(("ok", reply))
    finally:
        if pool is not None and not pool.closing:
            await pool.close()


def _child(conn: Any) -> None:
    uvloop.run(_serve(conn))


class StormClients:
    """The client processes, driven in lock step (each command goes to all, then all answers)."""

    def __init__(self, processes: int = 2) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns = []
        self._procs = []
        for _ in range(processes):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(theirs,), daemon=True)
            proc.start()
            theirs.close()
            self._conns.append(ours)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def __enter__(self) -> StormClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shares(self, n: int) -> list[int]:
        k = len(self._conns)
        return [n // k + (1 if i < n % k else 0) for i in range(k)]

    def _all(self, commands: list[tuple[str, tuple[Any, ...]]], timeout: float = ROUND_TIMEOUT + 10) -> list[Any]:
        for conn, command in zip(self._conns, commands, strict=True):
            conn.send(command)
        replies = []
        for conn in self._conns:
            if not conn.poll(timeout):
                raise TimeoutError("a storm client did not answer")
            kind, value = conn.recv()
            if kind != "ok":
                raise RuntimeError(f"storm client: {value}")
            replies.append(value)
        return replies

    def echo(self, port: int, n: int) -> dict[str, float]:
        """Connect + upgrade + one echo for ``n`` connections at once: start, end, rate."""
        replies = self._all([("echo", (port, share)) for share in self._shares(n)])
        start, end = min(r["start"] for r in replies), max(r["end"] for r in replies)
        count = sum(r["count"] for r in replies)
        assert count == n, f"{count} of {n} echoed"
        failures = sum(r["failures"] for r in replies)
        return {"seconds": end - start, "rate": n / (end - start), "failures": failures}

    def open_private(self, url: str, n: int, key: str, secret: str) -> dict[str, float]:
        replies = self._all([("open", (url, share, key, secret)) for share in self._shares(n)])
        start, end = min(r["start"] for r in replies), max(r["end"] for r in replies)
        return {"seconds": end - start, "rate": n / (end - start)}

    def expect_storm(self) -> None:
        self._all([("expect", ())] * len(self._conns))

    def wait_storm(self, n: int) -> dict[str, float]:
        """From the first drop any client noticed to the last subscribe ack after it."""
        replies = self._all([("wait", ())] * len(self._conns))
        first, last = min(r["first_drop"] for r in replies), max(r["last_ready"] for r in replies)
        count = sum(r["count"] for r in replies)
        assert count == n, f"{count} of {n} came back"
        return {
            "first_drop": first,
            "last_drop": max(r["last_drop"] for r in replies),
            "last_ready": last,
            "seconds": last - first,
            "rate": n / (last - first),
            "reconnects": sum(r["reconnects"] for r in replies),
            "connect_failures": sum(r["connect_failures"] for r in replies),
            "refused": sum(r["refused"] for r in replies),
        }

    def close(self) -> None:
        """Close every connection, then stop every process (killed if it does not go)."""
        try:
            if all(p.is_alive() for p in self._procs):
                self._all([("close", ())] * len(self._conns), timeout=15)
        except Exception:
            pass
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self._conns, self._procs = [], []
