"""The option chain (``market/options.py``): Black-Scholes figures, the ticker's shape, the book."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson
import pytest

from bybit_mock import MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.instruments import option_chain
from bybit_mock.market.options import OPTION_TICKER_KEYS, OptionQuote, atm_vol, black_scholes, implied_vol
from tests.unit.helpers import FixedClock

NOW = 1_796_083_200_000 - 3 * 86_400_000  # Sunday 29 Nov 2026 00:00 UTC: the chain's first expiry is 4 Dec


def test_black_scholes_at_the_money_call_exact() -> None:
    # S = K = 65 000, 7 days, 50 %: sigma sqrt(T) = 0.0692389, d1 = 0.0346195
    call = black_scholes(True, 65000.0, 65000.0, 7 / 365, 0.5)
    assert call["price"] == pytest.approx(1795.18521083, abs=1e-6)
    assert call["delta"] == pytest.approx(0.51380912, abs=1e-8)
    assert call["gamma"] == pytest.approx(0.0000885857442, abs=1e-12)
    assert call["vega"] == pytest.approx(35.88936142, abs=1e-6)  # per 1 % of volatility
    assert call["theta"] == pytest.approx(-128.17629079, abs=1e-6)  # per day
    put = black_scholes(False, 65000.0, 65000.0, 7 / 365, 0.5)
    assert put["price"] == pytest.approx(call["price"], abs=1e-6)  # parity at the money, no rate
    assert call["delta"] - put["delta"] == pytest.approx(1.0)
    assert implied_vol(True, call["price"], 65000.0, 65000.0, 7 / 365) == pytest.approx(0.5, abs=1e-9)


def test_expired_option_is_worth_its_intrinsic_value() -> None:
    assert black_scholes(True, 66000.0, 65000.0, 0.0, 0.5) == {
        "price": 1000.0, "delta": 1.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0,
    }  # fmt: skip
    assert black_scholes(False, 66000.0, 65000.0, 0.0, 0.5)["price"] == 0.0


def test_option_ticker_figures_and_key_order() -> None:
    (put,) = [i for i in option_chain(NOW) if i.symbol == "BTC-4DEC26-70000-P-USDT"]
    quote = OptionQuote(put, Decimal("65000"), NOW, 1)
    ticker = quote.ticker()
    assert tuple(ticker) == OPTION_TICKER_KEYS
    smile = 0.8 * math.log(70000 / 65000) ** 2
    assert float(ticker["markIv"]) == pytest.approx(atm_vol(1, "BTC", put.delivery_time_ms) + smile, abs=5e-5)
    assert ticker["markIv"] == "0.4116"
    assert (ticker["markPrice"], ticker["delta"], ticker["gamma"]) == ("5144.15449896", "-0.9098382", "0.00004614")
    assert (ticker["vega"], ticker["theta"]) == ("13.92270487", "-45.24075888")
    assert (ticker["bid1Price"], ticker["ask1Price"]) == ("5040", "5250")  # 2 % either side, on 5-tick steps
    assert float(ticker["bid1Iv"]) < float(ticker["markIv"]) < float(ticker["ask1Iv"])
    assert (ticker["indexPrice"], ticker["underlyingPrice"], ticker["lastPrice"]) == ("65000", "65000.00", "0")


def test_option_endpoints_through_the_engine() -> None:
    clock = FixedClock()
    clock.now = NOW
    config = MockExchangeConfig.default()
    ex = Exchange(config, clock=clock)
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 65000)

    def query(path: str, q: dict[str, str]) -> tuple[int, object]:
        ((code, value),) = ex.apply_batch([("market_query", (path, q))])
        return code, orjson.loads(value) if code == 0 else value

    code, result = query("/v5/market/tickers", {"category": "option", "baseCoin": "BTC"})
    assert code == 0 and isinstance(result, dict)
    assert len(result["list"]) == 12 and {t["underlyingPrice"] for t in result["list"]} == {"65000.00"}
    code, book = query(
        "/v5/market/orderbook", {"category": "option", "symbol": "BTC-4DEC26-65000-C-USDT", "limit": "25"}
    )
    assert code == 0 and isinstance(book, dict)
    assert len(book["a"]) == 25 and len(book["b"]) == 25
    assert float(book["b"][0][0]) < float(book["a"][0][0])
    assert query("/v5/market/orderbook", {"category": "option", "symbol": "BTC-4DEC26-65000-C-USDT", "limit": "26"})[0]
    assert query("/v5/market/tickers", {"category": "option", "symbol": "NOPE"}) == (
        10001,
        "params error: symbol invalid",
    )
    order = {
        "category": "option",
        "symbol": "BTC-4DEC26-65000-C-USDT",
        "side": "Buy",
        "orderType": "Market",
        "qty": "1",
    }
    ((code, _),) = ex.apply_batch([("order_create", (config.accounts[0].api_key, order))])
    assert code == 10001  # option trading is not simulated: the category is refused
