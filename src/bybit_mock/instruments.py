"""What can be listed: the categories, the order-book depths, and the instrument itself.

This module imports neither :mod:`bybit_mock.config` nor :mod:`bybit_mock.market`, so both
(and the wire format, the engine, the workers) can depend on it without a cycle. Each fact
about Bybit's categories and books is written here once; the rest of the package reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, get_args

Category = Literal["linear", "inverse", "spot", "option"]

#: Every category, in the order Bybit's docs list them (error messages list them so too).
CATEGORIES: tuple[Category, ...] = get_args(Category)
#: The categories the engine trades (options are listed, not traded).
TRADED: tuple[Category, ...] = ("linear", "inverse", "spot")
#: The categories with positions, leverage and margin: the contracts.
CONTRACTS: tuple[Category, ...] = ("linear", "inverse")

#: ``orderbook.{depth}.{S}`` depths per category, as Bybit publishes them (read-only).
BOOK_DEPTHS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "linear": (1, 50, 200, 1000),
        "inverse": (1, 50, 200, 1000),
        "spot": (1, 50, 200, 1000),
        "option": (25, 100),
    }
)
#: Every depth of any category, ascending.
ALL_BOOK_DEPTHS: tuple[int, ...] = tuple(sorted({d for depths in BOOK_DEPTHS.values() for d in depths}))


@dataclass(frozen=True)
class InstrumentConfig:
    """A tradable instrument and Bybit's filters for it.

    ``price`` is the reference price the instrument starts at: the synthetic market starts
    there and, until market data drives it, it is the mark price for accounting.
    """

    symbol: str
    category: Category
    base_coin: str
    quote_coin: str
    price: Decimal
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_mkt_qty: Decimal
    min_notional: Decimal = Decimal("5")
    max_leverage: Decimal = Decimal("100")
    max_price: Decimal = Decimal("1999999.80")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.00055")
    maintenance_margin_rate: Decimal = Decimal("0.005")
    launch_time_ms: int = 1585526400000
    symbol_id: int = 0
    #: perpetuals: seconds between funding settlements (Bybit's 8 h; seconds, for soak tests)
    funding_interval_s: int = 28800

    @property
    def settle_coin(self) -> str:
        return self.base_coin if self.category == "inverse" else self.quote_coin

    @property
    def price_scale(self) -> int:
        exponent = self.tick_size.as_tuple().exponent  # "0.10" -> 2, as Bybit shows it
        return max(0, -exponent) if isinstance(exponent, int) else 0


def default_instruments() -> list[InstrumentConfig]:
    """BTCUSDT and ETHUSDT, linear and spot, with the filters Bybit publishes for them."""
    d = Decimal
    return [
        InstrumentConfig(
            "BTCUSDT",
            "linear",
            "BTC",
            "USDT",
            price=d("65000"),
            tick_size=d("0.10"),
            qty_step=d("0.001"),
            min_qty=d("0.001"),
            max_qty=d("1190.000"),
            max_mkt_qty=d("500.000"),
            min_notional=d("5"),
            max_leverage=d("100.00"),
            symbol_id=5,
        ),
        InstrumentConfig(
            "ETHUSDT",
            "linear",
            "ETH",
            "USDT",
            price=d("3500"),
            tick_size=d("0.01"),
            qty_step=d("0.01"),
            min_qty=d("0.01"),
            max_qty=d("7240.00"),
            max_mkt_qty=d("3620.00"),
            min_notional=d("5"),
            max_leverage=d("100.00"),
            max_price=d("199999.98"),
            symbol_id=6,
        ),
        InstrumentConfig(
            "BTCUSDT",
            "spot",
            "BTC",
            "USDT",
            price=d("65000"),
            tick_size=d("0.01"),
            qty_step=d("0.000001"),
            min_qty=d("0.000011"),
            max_qty=d("83"),
            max_mkt_qty=d("41.5"),
            min_notional=d("5"),
            max_leverage=d("10"),
            maker_fee=d("0.001"),
            taker_fee=d("0.001"),
            symbol_id=9,
        ),
        InstrumentConfig(
            "ETHUSDT",
            "spot",
            "ETH",
            "USDT",
            price=d("3500"),
            tick_size=d("0.01"),
            qty_step=d("0.00001"),
            min_qty=d("0.00062"),
            max_qty=d("1229.2336343"),
            max_mkt_qty=d("614.6168171"),
            min_notional=d("5"),
            max_leverage=d("10"),
            maker_fee=d("0.001"),
            taker_fee=d("0.001"),
            symbol_id=10,
        ),
    ]
