"""The state service: one process whose Manager server holds the :class:`Exchange`.

``StateManager.start(initializer=...)`` spawns the server process; the initializer builds the
engine there, so the engine never crosses a process boundary. Workers and tests connect with
the address and authkey and get a proxy whose calls are blocking round trips (30-60 us each),
which is why workers batch (see ``client.py``) and tests call coarse methods.

The supervisor restarts a state service that dies, on the same address. A plain proxy does not
survive that, and multiprocessing makes it worse: by default every proxy of an address shares
one connection per thread, so a new proxy would go on using the dead server's socket, and an
old one would quietly reconnect to the new server and call it with an object id it never
issued. So a proxy from :func:`connect` has connections of its own, :func:`discard` retires one
cleanly, and :class:`StateProxy` (the test process's handle) reconnects when a call finds its
connection broken.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from multiprocessing import util
from multiprocessing.connection import Connection
from multiprocessing.managers import BaseManager, BaseProxy
from typing import Any

from ..config import MockExchangeConfig
from ..engine.exchange import Exchange
from . import gc_policy

#: Methods the proxy may call; anything else on the engine stays private to its process.
EXPOSED = (
    "apply_batch",
    "ping",
    "instance",
    "reset",
    "secrets",
    "secret",
    "account_keys",
    "add_account",
    "balances",
    "coin_views",
    "set_balance",
    "positions",
    "set_position",
    "set_mark_price",
    "set_price",
    "freeze_market",
    "wait_events",
    "open_orders",
    "order",
    "executions_between",
    "fill_order",
    "event_cursor",
    "deposit",
    "funding_balances",
    "scenario_push",
    "scenario_list",
    "scenario_get",
    "scenario_remove",
    "scenario_clear",
    "scenario_journal",
    "scenario_journal_clear",
    "market_append",
    "market_step",
    "activity_status",
    "add_maintenance",
)

#: How often the state service brings the market models to now (so matching never has a long
#: backlog of stream events to catch up on).
MARKET_CLOCK_INTERVAL = 0.01

_exchange: Exchange | None = None


def _get_exchange() -> Exchange:
    if _exchange is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("state service not initialised")
    return _exchange


class ExchangeProxy(BaseProxy):
    """Typed-enough proxy: every exposed method is a plain remote call."""

    _exposed_ = EXPOSED

    def __getattr__(self, name: str) -> Any:
        if name in EXPOSED:
            return lambda *args, **kwargs: self._callmethod(name, args, kwargs)
        raise AttributeError(name)


class StateManager(BaseManager):
    pass


StateManager.register("exchange", callable=_get_exchange, proxytype=ExchangeProxy, exposed=EXPOSED)


def init_state_service(config: MockExchangeConfig, parent_pid: int) -> None:
    """Runs inside the state-service process before it serves."""
    global _exchange
    # Ctrl-C reaches the whole process group; the supervisor decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s state[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    _exchange = Exchange(config)
    # The Manager serves each connection from its own thread; a thread woken by a request
    # waits for the GIL up to the switch interval (5 ms by default) while the market clock
    # or another connection's thread runs. 0.5 ms keeps a request's wait short.
    sys.setswitchinterval(0.0005)
    watch_parent(parent_pid)
    run_market_clock(_exchange)


def run_market_clock(exchange: Exchange, interval: float = MARKET_CLOCK_INTERVAL) -> None:
    """Bring the markets to now every ``interval``, and keep the garbage collector off the
    engine's long-lived objects (``gc_policy.py``)."""

    def run() -> None:
        frozen_at = time.monotonic()
        while True:
            time.sleep(interval)
            try:
                exchange.advance_markets()
                if time.monotonic() - frozen_at >= gc_policy.FREEZE_INTERVAL:
                    gc_policy.freeze_survivors()
                    frozen_at = time.monotonic()
            except Exception:  # pragma: no cover - a model bug must not stop the clock
                logging.getLogger(__name__).exception("market clock failed")

    threading.Thread(target=run, name="market-clock", daemon=True).start()


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Exit when the supervisor is gone, so a SIGKILLed test run leaves no orphans."""

    def run() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def connect(address: Any, authkey: bytes) -> ExchangeProxy:
    """A proxy of the engine, on per-thread connections of its own (see the module docstring)."""
    manager = StateManager(address=address, authkey=authkey)
    manager.connect()
    proxy: ExchangeProxy = manager.exchange()  # type: ignore[attr-defined]
    proxy._tls = util.ForkAwareLocal()  # type: ignore[attr-defined]
    return proxy


def discard(proxy: BaseProxy) -> None:
    """Retire a proxy whose server is gone (or going): close the calling thread's connection
    and cancel its decref finalizer, which would otherwise run against whatever serves the
    address next; a restarted server may well hold its engine under the same object id (ids
    are addresses, in identically started processes) and lose a reference somebody else holds.
    """
    finalizer = getattr(proxy, "_close", None)
    if finalizer is not None:
        finalizer.cancel()
    tls = proxy._tls  # type: ignore[attr-defined]
    conn: Connection | None = getattr(tls, "connection", None)
    if conn is not None:
        del tls.connection
        try:
            conn.close()
        except OSError:
            pass


#: What a broken connection to the state service looks like from a proxy call (a dead peer,
#: a socket file gone, a refused connect). Errors the engine raises arrive as their own types.
_CONNECTION_ERRORS = (EOFError, OSError)


class StateProxy:
    """A proxy of the engine that outlives a restart of the state service.

    Each call goes to the current :class:`ExchangeProxy`. If the connection turns out to be
    broken the proxy is discarded and a new one made; if that one reaches a *new* engine the
    call is made there, once (whatever it did on the old engine died with it); if the same
    engine answers, the call may already have run, so the error is raised rather than risk
    doing it twice. While the service is down calls raise ``ConnectionError``; the first
    call after it is back reconnects. Safe to share between threads.
    """

    def __init__(self, address: Any, authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._lock = threading.Lock()
        self._proxy: ExchangeProxy | None = None
        self._instance = ""
        self._current()

    def __getattr__(self, name: str) -> Any:
        if name not in EXPOSED:
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, args, kwargs)

    def _current(self) -> tuple[ExchangeProxy, str]:
        with self._lock:
            if self._proxy is None:
                proxy = connect(self._address, self._authkey)
                try:
                    self._instance = str(proxy.instance())
                except BaseException:
                    discard(proxy)
                    raise
                self._proxy = proxy
            return self._proxy, self._instance

    def _drop(self, proxy: ExchangeProxy) -> None:
        with self._lock:
            if self._proxy is proxy:
                self._proxy = None
                discard(proxy)

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        proxy, instance = self._current()
        try:
            return proxy._callmethod(name, args, kwargs)
        except _CONNECTION_ERRORS as exc:
            self._drop(proxy)
            try:
                fresh, fresh_instance = self._current()
            except _CONNECTION_ERRORS:
                raise ConnectionError(f"state service unavailable ({type(exc).__name__}: {exc})") from exc
            if fresh_instance == instance:
                raise
            return fresh._callmethod(name, args, kwargs)
