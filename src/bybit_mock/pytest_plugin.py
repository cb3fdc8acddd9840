"""pytest fixtures, registered through the ``pytest11`` entry point (no import needed).

* ``bybit_mock_config`` (session): the config to start with; override it in your conftest.
* ``bybit_mock_server`` (session): the running mock, started once per session (~0.5 s).
* ``bybit_mock`` (function): the same mock, reset to the configured start before each test,
  so tests stay independent without paying for a restart.

    def test_balance(bybit_mock):
        session = HTTP(api_key=bybit_mock.api_key, api_secret=bybit_mock.api_secret)
        session.endpoint = bybit_mock.rest_url
        assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0

Every pytest run where the package is installed loads this module, so it imports only the
configuration at load time; :class:`~bybit_mock.mock.MockExchange` (uvloop, picows, httptools,
the multiprocessing manager) is imported when a session first asks for the mock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .config import MockExchangeConfig

if TYPE_CHECKING:
    from .mock import MockExchange


@pytest.fixture(scope="session")
def bybit_mock_config() -> MockExchangeConfig:
    return MockExchangeConfig.default()


@pytest.fixture(scope="session")
def bybit_mock_server(bybit_mock_config: MockExchangeConfig) -> Iterator[MockExchange]:
    from .mock import MockExchange  # noqa: PLC0415  # here, not at load: see the module docstring

    with MockExchange(bybit_mock_config) as exchange:
        yield exchange


@pytest.fixture
def bybit_mock(bybit_mock_server: MockExchange) -> MockExchange:
    bybit_mock_server.state.reset()
    return bybit_mock_server
