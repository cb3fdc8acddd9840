"""``MockExchange``: start the whole mock from Python, sync or async, and stop it.

with MockExchange(MockExchangeConfig.default()) as ex:
    session = pybit.unified_trading.HTTP(api_key=ex.api_key, api_secret=ex.api_secret)
    session.endpoint = ex.rest_url
    ...
    ex.state.set_balance(ex.api_key, "USDT", 5)

async with MockExchange(config) as ex:   # or: ex = await MockExchange(config).astart()
    ...
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from .config import Category, MockExchangeConfig
from .scenarios.control import Scenarios
from .state import MockExchangeState
from .supervisor import Restart, Supervisor


class MockExchange:
    def __init__(self, config: MockExchangeConfig | None = None) -> None:
        self.config = config if config is not None else MockExchangeConfig.default()
        self._supervisor: Supervisor | None = None
        self._state: MockExchangeState | None = None
        self._scenarios: Scenarios | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start every process; return when all are ready (raises ``StartError`` otherwise)."""
        if self._supervisor is not None:
            raise RuntimeError("this MockExchange is already running")
        supervisor = Supervisor(self.config)
        supervisor.start()
        self._supervisor = supervisor
        return self

    async def astart(self) -> Self:
        """``start()`` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Stop every process. Idempotent."""
        supervisor, self._supervisor, self._state, self._scenarios = self._supervisor, None, None, None
        if supervisor is not None:
            supervisor.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        return self._supervisor is not None

    def _sup(self) -> Supervisor:
        if self._supervisor is None:
            raise RuntimeError("the MockExchange is not running; call start() or use it as a context manager")
        return self._supervisor

    # -- where to connect -------------------------------------------------------------------

    @property
    def host(self) -> str:
        host = self.config.host
        return f"[{host}]" if ":" in host else host

    @property
    def rest_port(self) -> int:
        return self._sup().rest_port

    @property
    def ws_port(self) -> int:
        return self._sup().ws_port

    @property
    def rest_url(self) -> str:
        """Base URL for REST (pybit: ``session.endpoint = rest_url``)."""
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        """Base URL for WebSocket; append ``/v5/public/linear``, ``/v5/private`` ..."""
        return f"ws://{self.host}:{self.ws_port}"

    def ws_public_url(self, category: Category = "linear") -> str:
        return f"{self.ws_url}/v5/public/{category}"

    @property
    def ws_private_url(self) -> str:
        return f"{self.ws_url}/v5/private"

    @property
    def ws_trade_url(self) -> str:
        return f"{self.ws_url}/v5/trade"

    @property
    def admin_url(self) -> str:
        """Base URL of the HTTP admin API (``docs/admin.md``): ``rest_url + "/__admin"``."""
        return f"{self.rest_url}/__admin"

    @property
    def metrics_url(self) -> str:
        """Prometheus' scrape URL (``docs/metrics.md``): ``rest_url + "/metrics"``; it answers
        with ``metrics=True`` in the config (otherwise it is an unknown Bybit route)."""
        return f"{self.rest_url}/metrics"

    # -- accounts and state -----------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The first configured account's key (the demo account by default)."""
        if not self.config.accounts:
            raise RuntimeError("this config has no accounts")
        return self.config.accounts[0].api_key

    @property
    def api_secret(self) -> str:
        if not self.config.accounts:
            raise RuntimeError("this config has no accounts")
        return self.config.accounts[0].api_secret

    @property
    def state(self) -> MockExchangeState:
        """Read and change balances, positions and prices from the test process."""
        if self._state is None:
            sup = self._sup()
            self._state = MockExchangeState(sup.state_address, sup.authkey)
        return self._state

    @property
    def scenarios(self) -> Scenarios:
        """Arm scripted faults and events, and read the journal of what fired (``scenarios.md``)."""
        if self._scenarios is None:
            self._scenarios = Scenarios(self.state.proxy)
        return self._scenarios

    def pids(self) -> dict[str, int]:
        """Role -> pid of every child process (``state``, ``rest-0``, ``ws-0`` ...)."""
        return self._sup().pids()

    @property
    def restarts(self) -> list[Restart]:
        """Processes the supervisor has replaced since start, oldest first: workers, and the
        state service (``name == "state"``; a new one starts from the configured start)."""
        return list(self._sup().restarts)
