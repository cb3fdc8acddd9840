"""The process topology: state service, N REST workers, M WS workers; start, watch, stop.

Start order and why:

1. **State service** first (a Manager server process holding the engine): every worker
   loads the API secrets from it before it reports ready.
2. **Ports are reserved** by the supervisor with a bound, *non-listening* ``SO_REUSEPORT``
   socket. This fixes the port number when the user asked for port 0, and keeps the port
   ours while a crashed worker is being replaced. The kernel only hands connections to
   *listening* members of a reuseport group, so the reservation never steals a connection.
3. **Workers** (spawned, not forked) bind the same port with ``SO_REUSEPORT`` and report
   ready over a pipe. ``start()`` returns only when every process is ready, and raises
   :class:`StartError` with the worker's own error text if one fails.

A watcher thread waits on the workers' sentinels and replaces any that exits while we are
not stopping (logged, with its exit code). ``close()`` sends SIGTERM to every worker, then
SIGKILL to any still alive after a grace period, then shuts the Manager down; each child also
polls its parent pid and exits if the supervisor vanished, so no process outlives it.

The watcher also waits on the state service. Its death is logged once, as CRITICAL: every
state-backed request answers 10016 until a new one is up, and the state it held is lost. A new
state service is started at once from the configured start, **on the same address and
authkey**, so workers and test proxies find it where they look and reconnect by themselves
(``service/client.py``, ``service/events.py``, ``service/manager.StateProxy``); they tell it
from the old one by the engine's ``instance`` id. The address is a Unix socket in a directory
the supervisor owns: the dead server leaves its socket file behind, which is unlinked before
the new one binds. Restarts of any process are recorded in ``restarts`` and bounded: one that
died :data:`RESTART_BURST` times within :data:`RESTART_WINDOW` seconds waits a second first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from . import metrics
from .config import MockExchangeConfig
from .rest import worker as rest_worker
from .service.manager import StateManager, init_state_service
from .worker import WorkerSpec, reuseport_socket
from .ws import worker as ws_worker

log = logging.getLogger(__name__)

WorkerMain = Callable[[WorkerSpec, Connection], None]

#: Seconds a worker gets to exit after SIGTERM before it is killed.
STOP_GRACE = 3.0
#: A process that dies this many times within RESTART_WINDOW seconds is restarted with a pause.
RESTART_BURST = 5
RESTART_WINDOW = 10.0
#: Seconds between attempts when a new state service fails to start.
STATE_RETRY_DELAY = 1.0


_SPAWN_LOCK = threading.Lock()


@contextmanager
def _children_skip_main() -> Iterator[None]:
    """Spawn without making the child re-import the caller's ``__main__``.

    ``spawn`` normally re-runs the parent's main script in every child so that pickled
    references to it resolve. Our children need nothing from it (their targets and arguments
    are all ``bybit_mock`` objects), and re-running it breaks scripts that start the mock at
    top level without an ``if __name__ == "__main__":`` guard, or code piped to ``python -``.
    multiprocessing reads ``__main__.__spec__`` and ``__main__.__file__`` synchronously in
    ``Process.start()``, so hiding them for that moment is enough.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _SPAWN_LOCK:
        saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class StartError(RuntimeError):
    """The mock could not start; the message says which process failed and why."""


@dataclass
class _Worker:
    spec: WorkerSpec
    main: WorkerMain
    process: BaseProcess | None = None
    deaths: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Restart:
    """A replaced process: ``name`` is ``state``, ``rest-0``, ``ws-1`` ..."""

    name: str
    old_pid: int | None
    exitcode: int | None
    new_pid: int | None


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit code unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _recent_deaths(deaths: list[float], now: float) -> list[float]:
    return [t for t in deaths if now - t < RESTART_WINDOW] + [now]


class Supervisor:
    def __init__(self, config: MockExchangeConfig) -> None:
        config.validate()
        self.config = config
        self._ctx = multiprocessing.get_context("spawn")
        self._manager: StateManager | None = None
        self._state_dir: str | None = None
        self._state_address = ""
        self._metrics_dir: str | None = None
        self._state_deaths: list[float] = []
        self._reserved: list[socket.socket] = []
        self._workers: list[_Worker] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self.rest_port = 0
        self.ws_port = 0
        self.restarts: list[Restart] = []
        self.authkey = os.urandom(32)

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        cfg = self.config
        self._state_dir = tempfile.mkdtemp(prefix="bybit-mock-")
        self._state_address = os.path.join(self._state_dir, "state")
        if cfg.metrics:  # every process's samples, summed by /metrics (``metrics.py``)
            self._metrics_dir = os.path.join(self._state_dir, "metrics")
            os.mkdir(self._metrics_dir)
        manager = self._start_state(self._state_address)
        self._manager = manager
        try:
            rest_sock = reuseport_socket(cfg.host, cfg.rest_port)
            self._reserved.append(rest_sock)
            ws_sock = reuseport_socket(cfg.host, cfg.ws_port)
            self._reserved.append(ws_sock)
        except OSError as exc:
            raise StartError(f"cannot bind {cfg.host}: {exc.strerror or exc}") from None
        self.rest_port = rest_sock.getsockname()[1]
        self.ws_port = ws_sock.getsockname()[1]
        for role, count, port, main in (
            ("rest", cfg.rest_workers, self.rest_port, rest_worker.main),
            ("ws", cfg.ws_workers, self.ws_port, ws_worker.main),
        ):
            for index in range(count):
                spec = WorkerSpec(
                    role, index, cfg, port, self._state_address, self.authkey, os.getpid(), self._metrics_dir
                )
                self._workers.append(_Worker(spec, main))
        pending = [(w, self._spawn(w)) for w in self._workers]
        deadline = time.monotonic() + cfg.start_timeout
        for worker, ready in pending:
            self._await_ready(worker, ready, deadline)
        self._watcher = threading.Thread(target=self._watch, name="bybit-mock-supervisor", daemon=True)
        self._watcher.start()
        log.info("bybit-mock ready: REST port %d, WS port %d", self.rest_port, self.ws_port)

    def _start_state(self, address: str) -> StateManager:
        """Start a state service on ``address``; returns once it serves (its engine is built)."""
        try:
            os.unlink(address)  # a dead server's socket file: binding over it fails
        except FileNotFoundError:
            pass
        manager = StateManager(address=address, authkey=self.authkey, ctx=self._ctx)
        with _children_skip_main():
            if self._metrics_dir is None:
                manager.start(init_state_service, (self.config, os.getpid()))
            else:
                args = (self._metrics_dir, init_state_service, self.config, os.getpid())
                manager.start(metrics.run_with_metrics, args)
        return manager

    def _spawn(self, worker: _Worker) -> Connection:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=worker.main, args=(worker.spec, writer), name=f"bybit-mock-{worker.spec.name}", daemon=True
        )
        with _children_skip_main():
            process.start()
        writer.close()
        worker.process = process
        return reader

    def _await_ready(self, worker: _Worker, ready: Connection, deadline: float) -> None:
        name = worker.spec.name
        try:
            if not ready.poll(max(0.0, deadline - time.monotonic())):
                raise StartError(f"{name} did not become ready within {self.config.start_timeout:g} s")
            kind, detail = ready.recv()
        except EOFError:
            assert worker.process is not None
            worker.process.join(1.0)
            raise StartError(f"{name} exited during start-up (exit code {worker.process.exitcode})") from None
        finally:
            ready.close()
        if kind != "ready":
            raise StartError(str(detail).strip())

    # -- watch and restart ------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                sentinels = {w.process.sentinel: w for w in self._workers if w.process is not None}
                manager = self._manager
            state: BaseProcess | None = manager._process if manager is not None else None  # type: ignore[attr-defined]
            watched: list[Any] = list(sentinels)
            if state is not None:
                watched.append(state.sentinel)
            ready = wait(watched, timeout=0.25)
            if self._stopping.is_set():
                return
            # The state service first: a worker restarted without it could not load its secrets.
            if manager is not None and state is not None and state.sentinel in ready:
                self._restart_state(manager, state)
            for sentinel in ready:
                if self._stopping.is_set():
                    return
                worker = sentinels.get(sentinel) if isinstance(sentinel, int) else None
                if worker is not None:
                    self._restart(worker)

    def _restart_state(self, manager: StateManager, old: BaseProcess) -> None:
        old.join(0.1)
        self._forget_gauges(old)
        self._state_deaths = _recent_deaths(self._state_deaths, time.monotonic())
        log.critical(
            "the state service (pid %s) died (%s): its state is lost and every state-backed request answers "
            "10016 until it is back; starting a new one from the configured start",
            old.pid,
            describe_exit(old.exitcode),
        )
        # The old manager's finalizer would, at interpreter exit, talk to whatever then serves
        # the address; run it now, while it can only find the process dead.
        manager.shutdown()
        if len(self._state_deaths) >= RESTART_BURST and self._wait_after_burst("the state service"):
            return
        address = self._state_address
        new: StateManager | None = None
        while new is None:
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    new = self._start_state(address)
                except Exception as exc:
                    log.error("a new state service failed to start (%s); retrying", exc)
                else:
                    self._manager = new
            if new is None and self._stopping.wait(STATE_RETRY_DELAY):
                return
        pid = new._process.pid  # type: ignore[attr-defined]
        log.warning("a new state service (pid %s) is serving at the same address", pid)
        self.restarts.append(Restart("state", old.pid, old.exitcode, pid))

    def _forget_gauges(self, dead: BaseProcess) -> None:
        """A dead process's live gauges (its WS connections) leave the metrics' sums."""
        if self._metrics_dir is not None:
            metrics.mark_dead(self._metrics_dir, dead.pid)

    def _wait_after_burst(self, name: str) -> bool:
        """Pause before restarting something that keeps dying; True if we are stopping instead."""
        log.error("%s keeps dying; waiting 1 s before the next restart", name)
        return self._stopping.wait(1.0)

    def _restart(self, worker: _Worker) -> None:
        old = worker.process
        assert old is not None
        old.join(0.1)
        self._forget_gauges(old)
        worker.deaths = _recent_deaths(worker.deaths, time.monotonic())
        log.warning("%s (pid %s) exited (%s); restarting", worker.spec.name, old.pid, describe_exit(old.exitcode))
        if len(worker.deaths) >= RESTART_BURST and self._wait_after_burst(worker.spec.name):
            return
        with self._lock:
            if self._stopping.is_set():
                return
            ready = self._spawn(worker)
        try:
            self._await_ready(worker, ready, time.monotonic() + self.config.start_timeout)
        except StartError as exc:
            log.error("restart of %s failed: %s", worker.spec.name, exc)
        new = worker.process
        self.restarts.append(Restart(worker.spec.name, old.pid, old.exitcode, new.pid if new else None))

    # -- introspection ----------------------------------------------------------------------

    @property
    def state_address(self) -> str:
        """Where the state service listens; a restarted one listens at the same address."""
        if self._manager is None:
            raise RuntimeError("the supervisor is not running")
        return self._state_address

    def pids(self) -> dict[str, int]:
        """Role name -> pid for every live child: ``state``, ``rest-0`` ..., ``ws-0`` ..."""
        result: dict[str, int] = {}
        state = self._manager._process if self._manager is not None else None  # type: ignore[attr-defined]
        if state is not None and state.pid is not None:
            result["state"] = state.pid
        with self._lock:
            for w in self._workers:
                if w.process is not None and w.process.pid is not None:
                    result[w.spec.name] = w.process.pid
        return result

    # -- stop -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process; safe to call twice and from any thread but the watcher."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(5.0)
        with self._lock:
            processes = [w.process for w in self._workers if w.process is not None]
        for p in processes:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("%s did not stop within %.0f s; killing it", p.name, STOP_GRACE)
                p.kill()
                p.join(1.0)
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is not None:
            try:
                manager.shutdown()
            except Exception as exc:  # already gone
                log.debug("state service shutdown: %s", exc)
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
