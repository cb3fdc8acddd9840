"""What every worker process does around its server: logging, signals, the loop, readiness.

A worker is started by the supervisor with the ``spawn`` method (uvloop and threads do not
survive ``fork``). It:

1. ignores SIGINT (Ctrl-C reaches the whole process group; the supervisor orders the stop)
   and stops gracefully on SIGTERM;
2. runs a uvloop event loop with its batching state client (which reconnects by itself if
   the state service dies and is replaced);
3. binds its listening socket with ``SO_REUSEPORT`` on the shared port, so N workers share one
   port and the kernel spreads connections across them;
4. reports ``("ready", pid)`` on its pipe, or ``("error", message)`` if it could not start;
5. exits by itself if the supervisor disappears (no orphans after a SIGKILL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from . import metrics
from .config import MockExchangeConfig
from .service import gc_policy
from .service.client import StateClient, manager_opener

PARENT_CHECK_INTERVAL = 0.5


@dataclass
class WorkerSpec:
    role: str  # "rest" or "ws"
    index: int
    config: MockExchangeConfig
    port: int
    state_address: Any
    authkey: bytes
    parent_pid: int
    #: prometheus-client's multiprocess directory (``metrics.py``); None when metrics are off
    metrics_dir: str | None = None

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"


Serve = Callable[[WorkerSpec, StateClient], Awaitable[Callable[[], Awaitable[None]]]]


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _quiet_flow_control(record: logging.LogRecord) -> bool:
    """Drop picows' WARNING at each write pause and resume: a slow subscriber crosses the
    watermarks hundreds of times a second, and the worker already handles one that falls too
    far behind (``ws_max_buffer_bytes``). picows' other warnings (a listener's exception) stay."""
    return not (record.name.startswith("picows") and str(record.msg).startswith("Protocol writing"))


def run_worker(spec: WorkerSpec, ready: Connection, serve: Serve) -> None:
    """Process entry point shared by the REST and WS workers."""
    if spec.metrics_dir is not None:  # before anything imports prometheus_client
        metrics.enable(spec.metrics_dir, spec.name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=spec.config.log_level,
        format=f"%(asctime)s {spec.name}[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_flow_control)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_main(spec, ready, serve))
    except Exception:
        logging.getLogger("bybit_mock.worker").exception("%s failed", spec.name)
        raise SystemExit(1) from None
    finally:
        loop.close()


async def _main(spec: WorkerSpec, ready: Connection, serve: Serve) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def check_parent() -> None:
        if os.getppid() != spec.parent_pid:
            stop.set()
        else:
            loop.call_later(PARENT_CHECK_INTERVAL, check_parent)

    check_parent()
    state = StateClient(manager_opener(spec.state_address, spec.authkey), loop)
    state.start()
    try:
        shutdown = await serve(spec, state)
    except Exception as exc:
        ready.send(("error", f"{spec.name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        state.close()
        raise
    gc_policy.freeze_startup()
    ready.send(("ready", os.getpid()))
    ready.close()
    meter = metrics.current()
    lag = meter.lag_timer(loop) if meter is not None else None
    if lag is not None:
        lag.start()
    await stop.wait()
    if meter is not None and lag is not None:
        lag.stop()
        meter.flush()  # what was counted since the last tick
    await shutdown()
    state.close()


async def fetch_secrets(state: StateClient) -> dict[str, str]:
    code, value = await state.call("secrets")
    if code != 0:
        raise RuntimeError(f"could not load API secrets from the state service: {value}")
    secrets: dict[str, str] = value
    return secrets
