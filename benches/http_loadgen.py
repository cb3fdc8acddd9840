"""A keep-alive HTTP/1.1 load generator: uvloop, raw protocols, several processes.

Each connection sends one request, waits for the whole response (Content-Length framing),
records the latency and sends the next: a closed loop, as a trading bot's connection pool
behaves. Connections are split over processes so the generator can outrun one server core.

Requests come from a ``RequestFactory``: a fixed request, or one signed per request (a Bybit
signature is only valid for a few seconds, so signed requests cannot be prebuilt for a run).
Responses that are not HTTP 200 with ``"retCode":0`` count as errors: a benchmark of error
responses would be worthless.

CLI: ``python benches/http_loadgen.py --url http://127.0.0.1:PORT/v5/market/time``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

from bybit_mock.load.rest import split_response

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bybit_mock.bybit.auth import rest_headers


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str  # with query string
    api_key: str | None = None
    api_secret: str | None = None

    @classmethod
    def from_url(cls, url: str, api_key: str | None = None, api_secret: str | None = None) -> Target:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, path, api_key, api_secret)

    def request(self) -> bytes:
        """The request bytes; signed ones are re-signed every 100 ms (well inside Bybit's
        5 s receive window), so signing never makes the generator the bottleneck."""
        if not self.signed:
            return self._build()
        now = time.monotonic()
        cached = _SIGNED.get(self)
        if cached is None or now - cached[0] > 0.1:
            cached = _SIGNED[self] = (now, self._build())
        return cached[1]

    def next_request(self, step: int, last_body: bytes) -> bytes:
        """The request a connection sends at ``step`` (0, 1, ...), after ``last_body``."""
        return self.request()

    def _build(self) -> bytes:
        head = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if self.api_key and self.api_secret:
            query = self.path.split("?", 1)[1] if "?" in self.path else ""
            headers = rest_headers(self.api_key, self.api_secret, query, time.time_ns() // 1_000_000)
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (head + "\r\n").encode()

    @property
    def signed(self) -> bool:
        return bool(self.api_key)


_SIGNED: dict[Target, tuple[float, bytes]] = {}


@dataclass(frozen=True)
class OrderCycle(Target):
    """Signed ``POST /v5/order/create`` of a resting limit order, then ``/v5/order/cancel`` of it.

    Every request is signed on its own (each body differs). Both answers count; an order
    cycle is two requests.
    """

    body: str = (
        '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"30000"}'
    )

    def next_request(self, step: int, last_body: bytes) -> bytes:
        if step % 2 == 0:
            return self._post("/v5/order/create", self.body)
        start = last_body.find(b'"orderId":"') + 11
        order_id = last_body[start : last_body.find(b'"', start)].decode() if start > 10 else ""
        return self._post("/v5/order/cancel", f'{{"category":"linear","symbol":"BTCUSDT","orderId":"{order_id}"}}')

    def _post(self, path: str, body: str) -> bytes:
        assert self.api_key and self.api_secret
        headers = rest_headers(self.api_key, self.api_secret, body, time.time_ns() // 1_000_000)
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


class Client(asyncio.Protocol):
    def __init__(self, target: Target, stats: Stats) -> None:
        self.target = target
        self.stats = stats
        self.fixed = None if target.signed else target.request()
        self.buf = b""
        self.sent = 0
        self.step = 0
        self.last_body = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter_ns()
        self.transport.write(
            self.fixed if self.fixed is not None else self.target.next_request(self.step, self.last_body)
        )
        self.step += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            whole = split_response(self.buf)
            if whole is None:
                return
            head, body, self.buf = whole
            ok = head.startswith(b"HTTP/1.1 200") and (b'"retCode":0' in body or not body.startswith(b'{"retCode"'))
            self.last_body = body
            self.stats.record(time.perf_counter_ns() - self.sent, ok)
            if not self.stats.stopping:
                self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed += 1


class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False
        self.latencies: list[int] = []
        self.errors = 0
        self.closed = 0

    def record(self, ns: int, ok: bool) -> None:
        if self.measuring:
            self.latencies.append(ns)
            if not ok:
                self.errors += 1


@dataclass(frozen=True)
class Job:
    target: Target
    connections: int
    warmup: float
    seconds: float


async def _run(job: Job) -> tuple[list[int], int, float, float, float]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    conns = [
        await loop.create_connection(lambda: Client(job.target, stats), job.target.host, job.target.port)
        for _ in range(job.connections)
    ]
    await asyncio.sleep(job.warmup)
    cpu0 = time.process_time()
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    stats.measuring = True
    await asyncio.sleep(job.seconds)
    stats.measuring = False
    end = time.monotonic()
    cpu = time.process_time() - cpu0
    stats.stopping = True
    for transport, _ in conns:
        transport.close()
    return stats.latencies, stats.errors, cpu, start, end


def _worker(job: Job, out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put(uvloop.run(_run(job)))


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    generator_cpu: float  # CPU seconds per second, summed over generator processes
    #: the measurement window (``time.monotonic()``, common to all processes), for a caller
    #: that samples the server's CPU alongside
    window: tuple[float, float] = (0.0, 0.0)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def line(self, name: str) -> str:
        return (
            f"{name:32s} {self.rps:>10,.0f} req/s   p50 {self.p50_ms:6.3f} ms   p99 {self.p99_ms:6.3f} ms"
            f"   errors {self.errors}   generator CPU {self.generator_cpu:.0%}"
        )


def run(target: Target, connections: int = 64, processes: int = 2, warmup: float = 1.0, seconds: float = 3.0) -> Result:
    """Drive ``target`` with ``connections`` keep-alive connections over ``processes`` processes."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(Job(target, n, warmup, seconds), out)) for n in share if n]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=warmup + seconds + 30) for _ in procs]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    latencies = sorted(ns for lat, *_ in results for ns in lat)
    if not latencies:
        raise RuntimeError("no responses: is the server up?")
    return Result(
        requests=len(latencies),
        seconds=seconds,
        errors=sum(r[1] for r in results),
        p50_ms=latencies[len(latencies) // 2] / 1e6,
        p99_ms=latencies[int(len(latencies) * 0.99)] / 1e6,
        generator_cpu=sum(r[2] for r in results) / seconds,
        window=(max(r[3] for r in results), min(r[4] for r in results)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--api-secret")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    target = Target.from_url(args.url, args.api_key, args.api_secret)
    print(run(target, args.connections, args.processes, args.warmup, args.seconds).line(target.path))


if __name__ == "__main__":
    main()
