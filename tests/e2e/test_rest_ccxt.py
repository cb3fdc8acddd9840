"""ccxt's bybit class, unmodified but for its URLs, against the running mock."""

from __future__ import annotations

import time

import ccxt
import pytest

from bybit_mock import MockExchange


def ccxt_bybit(ex: MockExchange, **options: object) -> ccxt.bybit:
    client = ccxt.bybit({"apiKey": ex.api_key, "secret": ex.api_secret, "options": options})
    client.urls["api"] = dict.fromkeys(client.urls["api"], ex.rest_url)
    return client


def test_fetch_time(bybit_mock: MockExchange) -> None:
    assert abs(ccxt_bybit(bybit_mock).fetch_time() - time.time() * 1000) < 2000


def test_load_markets_with_default_options(bybit_mock: MockExchange) -> None:
    client = ccxt_bybit(bybit_mock)
    markets = client.load_markets()  # signed coin/query-info + instruments for every category
    assert {"BTC", "ETH", "USDT"} <= set(client.currencies)
    btc = markets["BTC/USDT:USDT"]
    assert btc["type"] == "swap" and btc["linear"] and btc["precision"]["price"] == 0.1
    assert btc["limits"]["amount"]["min"] == 0.001
    assert markets["ETH/USDT"]["spot"]


def test_fetch_balance_with_default_options(bybit_mock: MockExchange) -> None:
    client = ccxt_bybit(bybit_mock)  # runs is_unified_enabled(): query-api + account/info
    balance = client.fetch_balance()
    assert balance["USDT"]["total"] == 100000
    assert balance["USDT"]["free"] == 100000


def test_auth_error_maps_to_ccxt_exception(bybit_mock: MockExchange) -> None:
    client = ccxt_bybit(bybit_mock, enableUnifiedAccount=True, enableUnifiedMargin=False)
    client.secret = "wrong"
    with pytest.raises(ccxt.AuthenticationError):
        client.fetch_balance()
