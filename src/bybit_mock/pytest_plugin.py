"""pytest fixtures and a marker, registered through the ``pytest11`` entry point (no import needed).

* ``bybit_mock_config`` (session): the config to start with; override it in your conftest.
* ``bybit_mock_server`` (session): the running mock, started once per session (~0.5 s) when a
  test first needs it.
* ``bybit_mock`` (function): the same mock, reset to the configured start before each test
  (``state.reset()``), so tests stay independent without paying for a restart.
* ``bybit_mock_factory`` (function): ``bybit_mock_factory(config=None, **changes)`` starts a
  mock of the test's own, from ``config`` (default: ``bybit_mock_config``) with ``changes``
  applied through :meth:`MockExchangeConfig.copy`; every mock it started is closed when the
  test ends, passed or failed.
* ``@pytest.mark.bybit_mock_config(config=None, **changes)``: that test's ``bybit_mock`` is a
  dedicated mock started by the factory with this config, not the shared one. On a class or
  module too (``pytestmark``); when several apply, the closest wins: its keywords override
  farther ones, and a config passed positionally starts over from that config.

    def test_balance(bybit_mock):
        session = HTTP(api_key=bybit_mock.api_key, api_secret=bybit_mock.api_secret)
        session.endpoint = bybit_mock.rest_url
        assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0

    @pytest.mark.bybit_mock_config(rest_workers=2)
    def test_two_rest_workers(bybit_mock):
        assert "rest-1" in bybit_mock.pids()

Under pytest-xdist each worker is its own session, so it starts its own mock: ports are picked
by the kernel (port 0, unless your config fixes them), the state service listens on a Unix
socket in a fresh temporary directory with a random authkey, so workers never share or collide.

Every pytest run where the package is installed loads this module, so it imports only the
configuration at load time; :class:`~bybit_mock.mock.MockExchange` (uvloop, picows, httptools,
the multiprocessing manager) is imported when a test first asks for a mock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from .config import MockExchangeConfig

if TYPE_CHECKING:
    from .mock import MockExchange

__all__ = ["MockExchangeFactory"]

MARKER = "bybit_mock_config"


class MockExchangeFactory(Protocol):
    """The ``bybit_mock_factory`` fixture's type, for annotations."""

    def __call__(self, config: MockExchangeConfig | None = None, **changes: Any) -> MockExchange: ...


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(config=None, **changes): give this test's bybit_mock a dedicated mock exchange, "
        "started from config (default: the bybit_mock_config fixture) with changes applied",
    )


def _configured(base: MockExchangeConfig, changes: dict[str, Any], what: str) -> MockExchangeConfig:
    if not isinstance(base, MockExchangeConfig):
        raise TypeError(f"{what}: expected a MockExchangeConfig, got {type(base).__name__}")
    unknown = set(changes) - {f.name for f in fields(MockExchangeConfig)}
    if unknown:
        raise TypeError(f"{what}: MockExchangeConfig has no field(s) {', '.join(sorted(unknown))}")
    return base.copy(**changes)


@pytest.fixture(scope="session")
def bybit_mock_config() -> MockExchangeConfig:
    return MockExchangeConfig.default()


@pytest.fixture(scope="session")
def bybit_mock_server(bybit_mock_config: MockExchangeConfig) -> Iterator[MockExchange]:
    from .mock import MockExchange  # noqa: PLC0415  # here, not at load: see the module docstring

    with MockExchange(bybit_mock_config) as exchange:
        yield exchange


@pytest.fixture
def bybit_mock_factory(bybit_mock_config: MockExchangeConfig) -> Iterator[MockExchangeFactory]:
    from .mock import MockExchange  # noqa: PLC0415  # here, not at load: see the module docstring

    started: list[MockExchange] = []

    def start(config: MockExchangeConfig | None = None, **changes: Any) -> MockExchange:
        cfg = _configured(bybit_mock_config if config is None else config, changes, "bybit_mock_factory")
        exchange = MockExchange(cfg)
        started.append(exchange)  # close() is idempotent, and a failed start() cleans up itself
        return exchange.start()

    yield start
    errors: list[BaseException] = []
    for exchange in reversed(started):
        try:
            exchange.close()
        except BaseException as exc:  # close the others first
            errors.append(exc)
    if errors:
        raise errors[0]


def _marked_config(markers: list[pytest.Mark], base: MockExchangeConfig) -> MockExchangeConfig | None:
    """The config ``bybit_mock_config`` markers (closest first) ask for, or None if there are none."""
    if not markers:
        return None
    changes: dict[str, Any] = {}
    for marker in reversed(markers):
        kwargs = dict(marker.kwargs)
        args = [*marker.args, kwargs.pop("config")] if "config" in kwargs else list(marker.args)
        if len(args) > 1:
            raise TypeError(f"@pytest.mark.{MARKER}: takes one config at most (a MockExchangeConfig)")
        if args:
            base, changes = args[0], {}
        changes.update(kwargs)
    return _configured(base, changes, f"@pytest.mark.{MARKER}")


@pytest.fixture
def bybit_mock(request: pytest.FixtureRequest, bybit_mock_config: MockExchangeConfig) -> MockExchange:
    config = _marked_config(list(request.node.iter_markers(MARKER)), bybit_mock_config)
    if config is not None:
        factory: MockExchangeFactory = request.getfixturevalue("bybit_mock_factory")
        return factory(config)
    server: MockExchange = request.getfixturevalue("bybit_mock_server")
    server.state.reset()
    return server
