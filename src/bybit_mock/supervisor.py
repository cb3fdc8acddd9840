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
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .config import MockExchangeConfig
from .rest import worker as rest_worker
from .service.manager import StateManager, init_state_service
from .worker import WorkerSpec, reuseport_socket
from .ws import worker as ws_worker

log = logging.getLogger(__name__)

WorkerMain = Callable[[WorkerSpec, Connection], None]

#: Seconds a worker gets to exit after SIGTERM before it is killed.
STOP_GRACE = 3.0
#: A worker that dies this many times within RESTART_WINDOW seconds is restarted with a pause.
RESTART_BURST = 5
RESTART_WINDOW = 10.0


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
    name: str
    old_pid: int | None
    exitcode: int | None
    new_pid: int | None


class Supervisor:
    def __init__(self, config: MockExchangeConfig) -> None:
        config.validate()
        self.config = config
        self._ctx = multiprocessing.get_context("spawn")
        self._manager: StateManager | None = None
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
        manager = StateManager(authkey=self.authkey, ctx=self._ctx)
        with _children_skip_main():
            manager.start(init_state_service, (cfg, os.getpid()))
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
                spec = WorkerSpec(role, index, cfg, port, manager.address, self.authkey, os.getpid())
                self._workers.append(_Worker(spec, main))
        pending = [(w, self._spawn(w)) for w in self._workers]
        deadline = time.monotonic() + cfg.start_timeout
        for worker, ready in pending:
            self._await_ready(worker, ready, deadline)
        self._watcher = threading.Thread(target=self._watch, name="bybit-mock-supervisor", daemon=True)
        self._watcher.start()
        log.info("bybit-mock ready: REST port %d, WS port %d", self.rest_port, self.ws_port)

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
        state_reported = False  # say it once: a dead process's sentinel stays ready forever
        while not self._stopping.is_set():
            with self._lock:
                sentinels = {w.process.sentinel: w for w in self._workers if w.process is not None}
            state = self._manager._process if self._manager is not None else None  # type: ignore[attr-defined]
            watched: list[Any] = list(sentinels)
            if state is not None and not state_reported:
                watched.append(state.sentinel)
            else:
                state = None
            for ready in wait(watched, timeout=0.25):
                if self._stopping.is_set():
                    return
                if state is not None and ready == state.sentinel:
                    log.critical("the state service exited (code %s); REST and WS answer 10016", state.exitcode)
                    state_reported = True
                    state = None
                    continue
                worker = sentinels.get(ready) if isinstance(ready, int) else None
                if worker is not None:
                    self._restart(worker)

    def _restart(self, worker: _Worker) -> None:
        old = worker.process
        assert old is not None
        old.join(0.1)
        now = time.monotonic()
        worker.deaths = [t for t in worker.deaths if now - t < RESTART_WINDOW] + [now]
        log.warning("%s (pid %s) exited with code %s; restarting", worker.spec.name, old.pid, old.exitcode)
        if len(worker.deaths) >= RESTART_BURST:
            log.error("%s keeps dying; waiting 1 s before the next restart", worker.spec.name)
            if self._stopping.wait(1.0):
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
    def state_address(self) -> Any:
        if self._manager is None:
            raise RuntimeError("the supervisor is not running")
        return self._manager.address

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
        if self._manager is not None:
            try:
                self._manager.shutdown()
            except Exception as exc:  # already gone
                log.debug("state service shutdown: %s", exc)
            self._manager = None
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
