"""The state service: one process whose Manager server holds the :class:`Exchange`.

``StateManager.start(initializer=...)`` spawns the server process; the initializer builds the
engine there, so the engine never crosses a process boundary. Workers and tests connect with
the address and authkey and get a proxy whose calls are blocking round trips (30-60 us each),
which is why workers batch (see ``client.py``) and tests call coarse methods.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.managers import BaseManager, BaseProxy
from typing import Any

from ..config import MockExchangeConfig
from ..engine.exchange import Exchange

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
    def run() -> None:
        while True:
            time.sleep(interval)
            try:
                exchange.advance_markets()
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
    manager = StateManager(address=address, authkey=authkey)
    manager.connect()
    proxy: ExchangeProxy = manager.exchange()  # type: ignore[attr-defined]
    return proxy
