"""Every trading request ccxt's own fixtures record (``request-bybit.json``), sent by ccxt.

Each recorded case calls the same ccxt method with the same arguments against a mock that
lists the symbols the fixtures use. A case passes when Bybit's answer is ``retCode`` 0 or a
business refusal the market and account explain (an unknown order id, a reduce-only order
with no position, ...), never a parameter error: that is what "accepts every request ccxt
sends" means.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from bybit_mock import AccountConfig, MockExchange, MockExchangeConfig
from bybit_mock.config import InstrumentConfig
from tests.fixtures import HERE

from .test_rest_ccxt import ccxt_bybit

FIXTURES = HERE / "ccxt" / "request-bybit.json"
TRADING_PATHS = ("/v5/",)  # every recorded request
#: refusals the state explains: unknown order (linear, spot), reduce-only with no position,
#: leverage or position mode already so, not enough in the funding wallet to transfer
BUSINESS = {110001, 170213, 110017, 110043, 110025, 131212}
#: cases whose recorded request Bybit itself refuses at our prices, with the code it gives
REFUSED = {
    # stop-loss 50 on a buy at 50: Bybit wants a long's SL below the entry price
    "Create swap limit order with tp+sl limit orders attached": 10001,
    # BTC-27DEC24-55000-P expired in 2024: these fixtures' instruments list no options
    "Fetch an option contract": 10001,
}


def _cases() -> list[Any]:
    methods = json.loads(FIXTURES.read_text())["methods"]
    cases = []
    for method, recorded in methods.items():
        for case in recorded:
            url = str(case.get("url", ""))
            if any(p in url for p in TRADING_PATHS):
                cases.append(pytest.param(method, case, id=case["description"]))
    return cases


def _instrument(symbol: str, category: Any, price: str, tick: str, step: str, **kw: Any) -> InstrumentConfig:
    base = symbol.removesuffix("USDT").removesuffix("USD")
    quote = "USD" if category == "inverse" else "USDT"
    d = Decimal
    return InstrumentConfig(
        symbol, category, base, quote, d(price), d(tick), d(step), d(step), d("1000000"), d("1000000"), **kw
    )


@pytest.fixture(scope="module")
def fixture_market() -> Iterator[MockExchange]:
    """The symbols the fixtures trade, priced so their trigger and TP/SL prices make sense."""
    instruments = [
        _instrument("BTCUSDT", "linear", "36000", "0.10", "0.001"),
        _instrument("BTCUSDT", "spot", "36000", "0.01", "0.000001"),
        _instrument("LTCUSDT", "linear", "80", "0.01", "0.1"),
        _instrument("LTCUSDT", "spot", "80", "0.01", "0.00001"),
        _instrument("ADAUSDT", "linear", "0.4", "0.0001", "1"),
        _instrument("ADAUSDT", "spot", "0.4", "0.0001", "0.01"),
        _instrument("XRPUSDT", "spot", "0.5", "0.0001", "0.01"),
        _instrument("TRXUSDT", "linear", "0.1", "0.00001", "1"),
        _instrument("BTCUSD", "inverse", "36000", "0.50", "1"),
    ]
    account = AccountConfig("ccxt-fixtures", "ccxt-fixtures-secret", {"USDT": 1_000_000, "LTC": 100, "BTC": 1})
    # every case in one module-scoped mock, back to back: far over Bybit's 10 orders/s, and
    # rate limits are not what this module tests (test_rate_limits.py does)
    config = MockExchangeConfig(accounts=[account], instruments=instruments, rate_limits="off")
    with MockExchange(config) as ex:
        ex.state.freeze_market()
        yield ex


@pytest.fixture(scope="module")
def client(fixture_market: MockExchange) -> ccxt.bybit:
    """One ccxt client for every case: ``load_markets`` once."""
    bybit = ccxt_bybit(fixture_market)
    bybit.enableLastJsonResponse = True
    bybit.load_markets()
    return bybit


@pytest.mark.parametrize(("method", "case"), _cases())
def test_ccxt_recorded_request_is_accepted(
    fixture_market: MockExchange, client: ccxt.bybit, method: str, case: dict[str, Any]
) -> None:
    client.last_json_response = None
    if method == "createOrder" and "trading-stop" in case["url"]:  # a trailing stop needs a position
        client.create_order("BTC/USDT:USDT", "market", "buy", 0.001)
    hedge = method == "setPositionMode" and case["input"][0] is True
    if hedge:  # a symbol switches mode only with no position and no order (110024, 110028)
        client.cancel_all_orders("BTC/USDT:USDT")
        fixture_market.state.set_position(client.apiKey, "BTCUSDT", "Buy", 0, 1)
    try:
        getattr(client, method)(*case["input"])  # ccxt has the camelCase names too
    except ccxt.BaseError as exc:
        answer = client.last_json_response
        # ccxt raises on its own for some empty answers (fetchOpenOrder of an unknown id)
        if not isinstance(answer, dict) or answer.get("retCode") in (None, 0):
            assert isinstance(exc, ccxt.OrderNotFound), exc
    answer = client.last_json_response
    assert isinstance(answer, dict), answer
    code = answer["retCode"]
    expected = REFUSED.get(case["description"])
    if expected is not None:
        assert code == expected, answer
    else:
        assert code == 0 or code in BUSINESS, answer
    path = case["url"].split("?")[0].split("bybit.com")[-1]
    assert client.last_request_url.startswith(fixture_market.rest_url + path)
    if hedge:  # the cases after this one trade BTCUSDT without a positionIdx: back to one-way
        assert code == 0, answer
        client.set_position_mode(False, "BTC/USDT:USDT")
