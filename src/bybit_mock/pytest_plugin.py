"""pytest fixtures, registered through the ``pytest11`` entry point (no import needed).

* ``bybit_mock_config`` (session): the config to start with; override it in your conftest.
* ``bybit_mock_server`` (session): the running mock, started once per session (~0.5 s).
* ``bybit_mock`` (function): the same mock, reset to the configured start before each test,
  so tests stay independent without paying for a restart.

    def test_balance(bybit_mock):
        session = HTTP(api_key=bybit_mock.api_key, api_secret=bybit_mock.api_secret)
        session.endpoint = bybit_mock.rest_url
        assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .config import MockExchangeConfig
from .mock import MockExchange


@pytest.fixture(scope="session")
def bybit_mock_config() -> MockExchangeConfig:
    return MockExchangeConfig.default()


@pytest.fixture(scope="session")
def bybit_mock_server(bybit_mock_config: MockExchangeConfig) -> Iterator[MockExchange]:
    with MockExchange(bybit_mock_config) as exchange:
        yield exchange


@pytest.fixture
def bybit_mock(bybit_mock_server: MockExchange) -> MockExchange:
    bybit_mock_server.state.reset()
    return bybit_mock_server
