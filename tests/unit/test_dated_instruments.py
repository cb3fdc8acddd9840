"""Dated instruments: Bybit's expiry calendar and names, and their config knobs."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from bybit_mock import MockExchangeConfig
from bybit_mock.bybit import shapes
from bybit_mock.config_checks import ConfigError, instrument_from
from bybit_mock.instruments import (
    default_instruments,
    inverse_future_symbol,
    linear_future_symbol,
    option_symbol,
    quarterly_expiries,
    weekly_expiries,
)

DEC_2025 = 1_766_736_000_000  # Friday 26 Dec 2025 08:00 UTC
BASE = {"base_coin": "BTC", "quote_coin": "USDT", "price": 65000, "tick_size": "0.5", "qty_step": "0.001",
        "min_qty": "0.001", "max_qty": "100"}  # fmt: skip


def test_quarterly_and_weekly_expiries_and_names() -> None:
    # 1 Dec 2025 00:00 UTC: next quarterlies are 26 Dec 2025 and 27 Mar 2026, 08:00 UTC
    assert quarterly_expiries(1_764_547_200_000) == [DEC_2025, 1_774_598_400_000]
    assert quarterly_expiries(DEC_2025) == [1_774_598_400_000, 1_782_460_800_000]  # strictly after
    assert weekly_expiries(1_764_547_200_000) == [1_764_921_600_000, 1_765_526_400_000]  # 5 and 12 Dec
    assert linear_future_symbol("BTC", "USDT", DEC_2025) == "BTCUSDT-26DEC25"
    assert inverse_future_symbol("BTC", DEC_2025) == "BTCUSDZ25"
    assert inverse_future_symbol("BTC", 1_774_598_400_000) == "BTCUSDH26"
    assert option_symbol("BTC", 1_764_921_600_000, Decimal(70000), "Call") == "BTC-5DEC25-70000-C-USDT"


def test_default_dated_instruments_and_their_listing() -> None:
    listed = {(i.category, i.symbol): i for i in default_instruments(1_764_547_200_000)}
    future = listed[("linear", "BTCUSDT-26DEC25")]
    item = shapes.instrument(future)
    assert (item["contractType"], item["deliveryTime"], item["deliveryFeeRate"]) == (
        "LinearFutures", str(DEC_2025), "0.0005",
    )  # fmt: skip
    assert shapes.instrument(listed[("inverse", "BTCUSDH26")])["contractType"] == "InverseFutures"
    assert shapes.instrument(listed[("inverse", "BTCUSD")])["contractType"] == "InversePerpetual"
    put = shapes.instrument(listed[("option", "BTC-12DEC25-60000-P-USDT")])
    assert (put["optionsType"], put["settleCoin"], put["deliveryTime"]) == ("Put", "USDT", "1765526400000")


def test_expires_in_s_and_option_knobs() -> None:
    before = time.time_ns() // 1_000_000
    inst = instrument_from({"symbol": "BTCUSDT-T", "category": "linear", "expires_in_s": 30, **BASE})
    assert before + 30_000 <= inst.delivery_time_ms <= time.time_ns() // 1_000_000 + 30_000
    assert inst.contract_type == "LinearFutures"
    option = {"symbol": "BTC-X-C", "category": "option", "delivery_time_ms": DEC_2025, "strike": 70000, **BASE}
    assert instrument_from(option | {"option_type": "Call"}).strike == 70000
    with pytest.raises(ConfigError, match="option_type must be"):
        instrument_from(option)
    with pytest.raises(ConfigError, match="not both"):
        instrument_from({"symbol": "F", "expires_in_s": 3, "delivery_time_ms": DEC_2025, **BASE})
    with pytest.raises(ConfigError, match="options only"):
        instrument_from({"symbol": "F", "strike": 3, **BASE})
    with pytest.raises(ConfigError, match="spot has no delivery"):
        instrument_from({"symbol": "F", "category": "spot", "delivery_time_ms": DEC_2025, **BASE})


def test_toml_dated_instrument(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        '[[instruments]]\nsymbol = "BTCUSDZ25"\ncategory = "inverse"\nbase_coin = "BTC"\nquote_coin = "USD"\n'
        'price = 65000\ntick_size = "0.5"\nqty_step = "1"\nmin_qty = "1"\nmax_qty = "1000000"\n'
        f'delivery_time_ms = {DEC_2025}\ndelivery_fee_rate = "0.0005"\n'
    )
    (inst,) = MockExchangeConfig.from_toml(path).instruments
    assert (inst.delivery_time_ms, inst.delivery_fee_rate, inst.contract_type) == (
        DEC_2025, Decimal("0.0005"), "InverseFutures",
    )  # fmt: skip


def test_a_dated_future_has_its_perpetuals_index() -> None:
    """BTCUSDT-25DEC26's index is BTCUSDT's (and BTCUSDZ26's is BTCUSD's): one underlying, one
    index, so the basis is to the index the perpetual shows; the last prices stay apart."""
    from bybit_mock.engine.exchange import Exchange  # noqa: PLC0415

    now = [1_800_000_000_000]
    ex = Exchange(MockExchangeConfig.default(), clock=lambda: now[0])
    models = ex.markets.models
    dated = {(i.category, i.symbol) for i in ex.instruments.values() if i.dated and i.category != "option"}
    assert len(dated) == 4
    lasts = set()
    for _ in range(5):
        now[0] += 60_000
        ex.advance_markets()
        for category, symbol in dated:
            perpetual = models[(category, symbol.split("-")[0] if "-" in symbol else symbol[:-3])]
            assert models[(category, symbol)].index_price() == perpetual.index_price()
            lasts.add(models[(category, symbol)].last_price() == perpetual.last_price())
    assert lasts != {True}  # their own trades: the markets are not copies
