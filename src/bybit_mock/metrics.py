"""Prometheus metrics (``[server] metrics = true``; ``docs/metrics.md``).

prometheus-client's multiprocess mode: every process writes its samples to memory-mapped files
in one directory the supervisor owns (``PROMETHEUS_MULTIPROC_DIR``), and ``GET /metrics`` on
any REST worker sums them, so a scrape sees the whole cluster whichever worker answers.

Rules this module keeps, and why:

* **Nothing when off.** ``prometheus_client`` is imported only by :func:`enable`, which a child
  calls at its very start (the library reads ``PROMETHEUS_MULTIPROC_DIR`` when it is imported,
  so the variable must be set first). Off, every hook site holds ``None`` and pays one
  ``is not None`` test; the pytest plugin and the server stack never import the library.
* **Bounded labels.** A hostile client must not create label values: a REST route is its
  path only if it is a known route (else ``unknown``), a method one of :data:`METHODS` (else
  ``other``), a retCode the digits the envelope starts with; a WS topic loses its symbol
  (``orderbook.50``), and the public topics a worker serves are the configured ones.
* **Dead processes.** Counters and histograms of a dead worker stay in the sums (they did
  happen); its live gauges are removed by :func:`mark_dead`, which the supervisor calls when
  it replaces a process.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rest.protocol import Request, Respond

ENV = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"
#: request methods that get their own label value; any other is ``other``
METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: seconds between two event-loop lag samples (and two flushes of the buffered samples)
LAG_INTERVAL = 0.25
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_RET_CODE_HEAD = b'{"retCode":'

#: this process's metrics, once :func:`enable` ran (None: metrics are off here)
_current: Metrics | None = None


def current() -> Metrics | None:
    """This process's metrics, or None when they are off (what every hook site keeps)."""
    return _current


def enable(directory: str, process: str) -> Metrics:
    """Turn metrics on in this process (a child's first act): samples go to ``directory``."""
    global _current
    if _current is None:
        os.environ[ENV] = directory
        _current = Metrics(process)
    return _current


def run_with_metrics(directory: str, initializer: Callable[..., None], *args: Any) -> None:
    """A Manager's initializer with metrics on first (the state service's scenario firings)."""
    enable(directory, "state")
    initializer(*args)


def mark_dead(directory: str, pid: int | None) -> None:
    """Forget a dead process's live gauges (its counters stay in the sums)."""
    if pid is None:
        return
    from prometheus_client import multiprocess  # noqa: PLC0415  # only ever with metrics on

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# -- label values ---------------------------------------------------------------------------------


def route_label(path: str, routes: Collection[str]) -> str:
    return path if path in routes else "unknown"


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def ret_code_of(body: bytes) -> str:
    """The retCode an envelope starts with (``none`` for a body that is not one)."""
    if not body.startswith(_RET_CODE_HEAD):
        return "none"
    end = body.find(b",", len(_RET_CODE_HEAD), len(_RET_CODE_HEAD) + 12)
    code = body[len(_RET_CODE_HEAD) : end] if end > 0 else b""
    return code.decode() if code.lstrip(b"-").isdigit() else "none"


def topic_label(topic: str, symbols: Collection[str]) -> str:
    """A public topic without its symbol (``orderbook.50.BTCUSDT`` -> ``orderbook.50``)."""
    head, _, last = topic.rpartition(".")
    return head if head and last in symbols else topic


# -- the event-loop lag timer ---------------------------------------------------------------------


class LagTimer:
    """Every ``interval`` seconds, how late the loop ran a timer due then (``observe(lag)``).

    Lateness is measured on ``time.perf_counter``: uvloop's clock has millisecond steps."""

    def __init__(self, loop: asyncio.AbstractEventLoop, observe: Callable[[float], None], interval: float) -> None:
        self._loop = loop
        self._observe = observe
        self._interval = interval
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._handle = self._loop.call_later(self._interval, self._tick, time.perf_counter() + self._interval)

    def _tick(self, due: float) -> None:
        self._observe(max(0.0, time.perf_counter() - due))
        self._schedule()


# -- the metrics ----------------------------------------------------------------------------------


class _Counts:
    """A counter's increments, per label values, kept here until :meth:`flush` writes them."""

    def __init__(self, counter: Any) -> None:
        self._counter = counter
        self.pending: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...], n: float = 1) -> None:
        pending = self.pending
        pending[labels] = pending.get(labels, 0) + n

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for labels, n in pending.items():
            self._counter.labels(*labels).inc(n)


class _Observations:
    """A histogram's observations, per label values, as bucket counts and a sum until :meth:`flush`."""

    def __init__(self, histogram: Any, buckets: tuple[float, ...]) -> None:
        self._histogram = histogram
        self._bounds = (*buckets, math.inf)
        self.pending: dict[tuple[str, ...], list[float]] = {}  # [sum, count in each bucket ...]

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        row = self.pending.get(labels)
        if row is None:
            row = self.pending[labels] = [0.0] * (len(self._bounds) + 1)
        row[0] += value
        row[1 + bisect_left(self._bounds, value)] += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for labels, row in pending.items():
            child = self._histogram.labels(*labels) if labels else self._histogram
            # No bulk observe in prometheus-client: these are the values its ``observe`` adds to
            # (the sum, and the first bucket whose bound is >= the value; ``le`` sums at collect).
            child._sum.inc(row[0])
            for bucket, n in zip(child._buckets, row[1:], strict=True):
                if n:
                    bucket.inc(n)


class Metrics:
    """The process's instruments; built only with ``PROMETHEUS_MULTIPROC_DIR`` set.

    A multiprocess-mode increment takes a lock and writes a memory-mapped file (about 2 us, a
    histogram's twice that), several per request: half a worker's ``/v5/market/time``
    throughput. So the hot paths count into plain dicts (:class:`_Counts`,
    :class:`_Observations`) and :meth:`flush` writes them every :data:`LAG_INTERVAL`, on the
    lag timer's tick, and when the worker stops: a scrape is at most that much behind.
    """

    def __init__(self, process: str) -> None:
        from prometheus_client import Counter, Gauge, Histogram  # noqa: PLC0415  # only with metrics on

        self.process = process
        self.rest_requests = _Counts(
            Counter("bybit_mock_rest_requests", "REST requests answered", ["route", "method", "ret_code"])
        )
        self.rest_seconds = _Observations(
            Histogram(
                "bybit_mock_rest_request_seconds",
                "REST request time from dispatch to response",
                ["route"],
                buckets=_LATENCY_BUCKETS,
            ),
            _LATENCY_BUCKETS,
        )
        self.ws_connections = Gauge(
            "bybit_mock_ws_connections", "open WebSocket connections", ["channel"], multiprocess_mode="livesum"
        )
        self.ws_messages = _Counts(
            Counter("bybit_mock_ws_messages_out", "WebSocket messages queued to clients", ["channel", "topic"])
        )
        self.scenario_firings = Counter("bybit_mock_scenario_firings", "scenario firings", ["scenario", "action"])
        self.state_batch = _Observations(
            Histogram("bybit_mock_state_batch_size", "commands per state-service batch", buckets=_BATCH_BUCKETS),
            _BATCH_BUCKETS,
        )
        self.state_round_trip = _Observations(
            Histogram(
                "bybit_mock_state_round_trip_seconds", "state-service batch round-trip time", buckets=_LATENCY_BUCKETS
            ),
            _LATENCY_BUCKETS,
        )
        self.loop_lag = Histogram(
            "bybit_mock_event_loop_lag_seconds",
            "how late a worker's event loop runs a timer",
            ["process"],
            buckets=_LAG_BUCKETS,
        )
        self._buffers = (
            self.rest_requests,
            self.rest_seconds,
            self.ws_messages,
            self.state_batch,
            self.state_round_trip,
        )
        self._registry: Any = None

    def flush(self) -> None:
        """Write what the hot paths counted since the last flush to the shared files."""
        for buffer in self._buffers:
            buffer.flush()

    # -- REST -------------------------------------------------------------------------------

    def meter(self, request: Request, respond: Respond, routes: Collection[str]) -> Respond:
        """``respond``, counting and timing the answer under bounded labels."""
        route = (route_label(request.path, routes),)
        method = method_label(request.method)
        started = time.perf_counter()
        requests, seconds = self.rest_requests, self.rest_seconds

        def metered(status: int, body: bytes, extra: bytes = b"", content_type: bytes | None = None) -> None:
            seconds.observe(route, time.perf_counter() - started)
            requests.add((route[0], method, ret_code_of(body)))
            respond(status, body, extra, content_type)

        return metered

    def render(self) -> tuple[bytes, bytes]:
        """The whole cluster's samples in the text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: PLC0415
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

        if self._registry is None:
            self._registry = CollectorRegistry()
            MultiProcessCollector(self._registry)  # type: ignore[no-untyped-call]
        return generate_latest(self._registry), CONTENT_TYPE_LATEST.encode()

    # -- WS ---------------------------------------------------------------------------------

    def ws_sent(self, channel: str, topic: str, count: int) -> None:
        self.ws_messages.add((channel, topic), count)

    def ws_public_batches(
        self,
        category: str,
        batches: Mapping[str, list[bytes]],
        subscribers: Callable[[str], int],
        symbols: Collection[str],
    ) -> None:
        """A tick's public messages: each topic's messages times its subscribers on this worker."""
        for topic, payloads in batches.items():
            n = len(payloads) * subscribers(topic)
            if n:
                self.ws_messages.add((category, topic_label(topic, symbols)), n)

    # -- the rest ---------------------------------------------------------------------------

    def fired(self, scenario: str, action: str) -> None:
        """Written at once: firings are rare, and the state service has no loop to flush on."""
        self.scenario_firings.labels(scenario, action).inc()

    def batch_sent(self, size: int) -> None:
        self.state_batch.observe((), size)

    def round_trip(self, seconds: float) -> None:
        self.state_round_trip.observe((), seconds)

    def lag_timer(self, loop: asyncio.AbstractEventLoop) -> LagTimer:
        """The worker's lag timer; each tick also flushes the buffered samples."""
        lag = self.loop_lag.labels(self.process)

        def tick(seconds: float) -> None:
            lag.observe(seconds)
            self.flush()

        return LagTimer(loop, tick, LAG_INTERVAL)


class CountedListeners(set[Any]):
    """A worker's set of open WS connections that keeps ``bybit_mock_ws_connections`` in step
    (each listener's ``CHANNEL``: public, private, trade)."""

    def __init__(self, metrics: Metrics, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self._gauge = metrics.ws_connections

    def add(self, listener: Any) -> None:
        if listener not in self:
            super().add(listener)
            self._gauge.labels(listener.CHANNEL).inc()

    def discard(self, listener: Any) -> None:
        if listener in self:
            super().discard(listener)
            self._gauge.labels(listener.CHANNEL).dec()


def fired(scenario: str, action: str) -> None:
    """A scenario fired (the engine's registry, in the state service); nothing when off."""
    if _current is not None:
        _current.fired(scenario, action)
