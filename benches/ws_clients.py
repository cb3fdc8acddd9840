"""WebSocket benchmark clients that count bytes, not frames, so they outrun any server.

Each client does a real RFC 6455 handshake on a raw ``asyncio.Protocol`` (uvloop) and then
only adds up received bytes; every benchmark frame has the same size, so frames = bytes /
frame size. ``run_clients`` spreads connections over processes and returns the bytes all of
them received inside a measurement window (after a warm-up), so connection set-up and
ramp-up are not counted.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import time
from dataclasses import dataclass

import uvloop


class CountingClient(asyncio.Protocol):
    def __init__(self, path: str, connected: asyncio.Future[None]) -> None:
        self.path = path
        self.connected = connected
        self.handshake_done = False
        self.head = b""
        self.received = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.handshake_done:
            self.received += len(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end >= 0:
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.connected.set_exception(ConnectionError(self.head[:80].decode(errors="replace")))
                return
            self.handshake_done = True
            self.received += len(self.head) - end - 4
            self.connected.set_result(None)

    def send_text(self, payload: bytes) -> None:
        """A masked client frame (all-zero mask, which RFC 6455 permits)."""
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes((0x81, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload)


@dataclass(frozen=True)
class ClientRun:
    port: int
    path: str
    connections: int
    warmup: float
    window: float
    subscribe: bytes | None = None


async def _run(run: ClientRun) -> int:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(run.connections):
        fut: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(lambda f=fut: CountingClient(run.path, f), "127.0.0.1", run.port)
        await fut
        if run.subscribe is not None:
            proto.send_text(run.subscribe)
        clients.append(proto)
    await asyncio.sleep(run.warmup)
    start = sum(c.received for c in clients)
    await asyncio.sleep(run.window)
    total = sum(c.received for c in clients) - start
    for c in clients:
        if c.transport is not None:
            c.transport.abort()
    return total


def _child(run: ClientRun, out: multiprocessing.queues.Queue[int]) -> None:  # type: ignore[name-defined]
    out.put(uvloop.run(_run(run)))


def run_clients(run: ClientRun, processes: int) -> int:
    """Bytes received by all connections in the window; connections split across processes."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    per = [run.connections // processes + (1 if i < run.connections % processes else 0) for i in range(processes)]
    procs = [
        ctx.Process(target=_child, args=(ClientRun(run.port, run.path, n, run.warmup, run.window, run.subscribe), out))
        for n in per
        if n
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + run.warmup + run.window + 60
    total = sum(out.get(timeout=max(1.0, deadline - time.monotonic())) for _ in procs)
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    return total
