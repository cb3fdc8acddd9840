"""What can be listed: the categories, the order-book depths, and the instrument itself.

This module imports neither :mod:`bybit_mock.config` nor :mod:`bybit_mock.market`, so both
(and the wire format, the engine, the workers) can depend on it without a cycle. Each fact
about Bybit's categories and books is written here once; the rest of the package reads it.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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
    #: dated futures and options: when the contract is delivered (ms); 0 is a perpetual
    delivery_time_ms: int = 0
    #: dated futures and options: the fee on the delivered value (``engine/delivery.py``)
    delivery_fee_rate: Decimal = Decimal("0")
    #: options: ``Call`` or ``Put``, and the strike (in the quote coin)
    option_type: str = ""
    strike: Decimal = Decimal("0")

    @property
    def dated(self) -> bool:
        """A dated future or an option: delivered at ``delivery_time_ms``, never funded."""
        return self.delivery_time_ms > 0

    @property
    def perpetual(self) -> bool:
        """A ``LinearPerpetual`` or ``InversePerpetual``: the contracts funding settles on."""
        return self.category in CONTRACTS and not self.dated

    @property
    def contract_type(self) -> str:
        """Bybit's ``contractType`` (linear and inverse only)."""
        kind = "Linear" if self.category == "linear" else "Inverse"
        return kind + ("Futures" if self.dated else "Perpetual")

    @property
    def settle_coin(self) -> str:
        return self.base_coin if self.category == "inverse" else self.quote_coin

    @property
    def price_scale(self) -> int:
        exponent = self.tick_size.as_tuple().exponent  # "0.10" -> 2, as Bybit shows it
        return max(0, -exponent) if isinstance(exponent, int) else 0


#: Bybit's futures month codes (inverse dated futures: BTCUSDH26 is March 2026)
MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
#: futures and options are delivered at 08:00 UTC
DELIVERY_HOUR = 8


def _friday_0800(day: datetime) -> datetime:
    return day.replace(hour=DELIVERY_HOUR, minute=0, second=0, microsecond=0)


def quarterly_expiries(now_ms: int, count: int = 2) -> list[int]:
    """The next ``count`` quarterly delivery times after ``now_ms``: the last Friday of March,
    June, September and December at 08:00 UTC, as Bybit lists its dated futures."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    found: list[int] = []
    year, month = now.year, now.month
    while len(found) < count:
        if month in MONTH_CODES:
            last = datetime(year, month, calendar.monthrange(year, month)[1], tzinfo=UTC)
            friday = _friday_0800(last - timedelta(days=(last.weekday() - calendar.FRIDAY) % 7))
            if friday > now:
                found.append(int(friday.timestamp() * 1000))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def weekly_expiries(now_ms: int, count: int = 2) -> list[int]:
    """The next ``count`` Fridays at 08:00 UTC after ``now_ms`` (Bybit's weekly options)."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    friday = _friday_0800(now + timedelta(days=(calendar.FRIDAY - now.weekday()) % 7))
    if friday <= now:
        friday += timedelta(days=7)
    return [int((friday + timedelta(days=7 * i)).timestamp() * 1000) for i in range(count)]


def expiry_code(delivery_ms: int) -> str:
    """``26DEC25``: the date in Bybit's dated symbols (the day has no leading zero)."""
    day = datetime.fromtimestamp(delivery_ms / 1000, UTC)
    return f"{day.day}{day.strftime('%b').upper()}{day.strftime('%y')}"


def linear_future_symbol(base: str, quote: str, delivery_ms: int) -> str:
    """``BTCUSDT-26DEC25``."""
    return f"{base}{quote}-{expiry_code(delivery_ms)}"


def inverse_future_symbol(base: str, delivery_ms: int) -> str:
    """``BTCUSDZ25``: the month's futures code and the year."""
    day = datetime.fromtimestamp(delivery_ms / 1000, UTC)
    return f"{base}USD{MONTH_CODES[day.month]}{day.strftime('%y')}"


def option_symbol(base: str, delivery_ms: int, strike: Decimal, option_type: str, settle: str = "USDT") -> str:
    """``BTC-30MAY25-70000-C-USDT``: a USDT-settled option, as Bybit names them."""
    return f"{base}-{expiry_code(delivery_ms)}-{strike:f}-{option_type[0]}-{settle}"


def default_instruments(now_ms: int | None = None) -> list[InstrumentConfig]:
    """What Bybit lists, in little: BTCUSDT and ETHUSDT linear perpetuals and spot, the BTCUSD
    inverse perpetual, BTC dated futures (linear and inverse) delivered at the next two
    quarterly Fridays, and a BTC option chain (2 weekly expiries x 3 strikes x call/put).

    Delivery times are relative to ``now_ms`` (the wall clock by default), so they are always
    in the future when the mock starts."""
    now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    return base_instruments() + dated_futures(now) + option_chain(now)


def dated_futures(now_ms: int) -> list[InstrumentConfig]:
    """BTC linear and inverse futures delivered at the next two quarterly Fridays: each its
    perpetual (BTCUSDT, BTCUSD) with Bybit's futures filters, a delivery time and fee."""
    d = Decimal
    perpetual = {(i.category, i.symbol): i for i in base_instruments()}
    linear, inverse = perpetual[("linear", "BTCUSDT")], perpetual[("inverse", "BTCUSD")]
    out: list[InstrumentConfig] = []
    for n, delivery in enumerate(quarterly_expiries(now_ms, 2)):
        launch = min(now_ms, delivery - 180 * 86_400_000)
        out.append(
            replace(
                linear,
                symbol=linear_future_symbol("BTC", "USDT", delivery),
                tick_size=d("0.50"),
                max_qty=d("500.000"),
                max_mkt_qty=d("100.000"),
                max_leverage=d("50.00"),
                symbol_id=20 + n,
                launch_time_ms=launch,
                delivery_time_ms=delivery,
                delivery_fee_rate=d("0.0005"),
            )
        )
        symbol = inverse_future_symbol("BTC", delivery)
        out.append(
            replace(
                inverse,
                symbol=symbol,
                symbol_id=30 + n,
                launch_time_ms=launch,
                delivery_time_ms=delivery,
                delivery_fee_rate=d("0.0005"),
            )
        )
    return out


#: the default option chain's strikes, around BTC's reference price
OPTION_STRIKES = (Decimal("60000"), Decimal("65000"), Decimal("70000"))


def option_chain(now_ms: int) -> list[InstrumentConfig]:
    """BTC USDT-settled options: the next two Fridays x :data:`OPTION_STRIKES` x call/put.

    ``price`` is the strike here (an option has no reference trade price: its mark comes from
    Black-Scholes on the underlying's index, ``market/options.py``)."""
    d = Decimal
    out: list[InstrumentConfig] = []
    for delivery in weekly_expiries(now_ms, 2):
        for strike in OPTION_STRIKES:
            for kind in ("Call", "Put"):
                out.append(
                    InstrumentConfig(
                        option_symbol("BTC", delivery, strike, kind),
                        "option",
                        "BTC",
                        "USDT",
                        price=strike,
                        tick_size=d("5"),
                        qty_step=d("0.01"),
                        min_qty=d("0.01"),
                        max_qty=d("500"),
                        max_mkt_qty=d("500"),
                        min_notional=d("0"),
                        max_leverage=d("1"),
                        max_price=d("10000000"),
                        maker_fee=d("0.0002"),
                        taker_fee=d("0.0003"),
                        launch_time_ms=min(now_ms, delivery - 14 * 86_400_000),
                        delivery_time_ms=delivery,
                        delivery_fee_rate=d("0.00015"),
                        option_type=kind,
                        strike=strike,
                    )
                )
    return out


def base_instruments() -> list[InstrumentConfig]:
    """BTCUSDT and ETHUSDT, linear and spot, and the BTCUSD inverse perpetual, with the
    filters Bybit publishes for them."""
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
        InstrumentConfig(
            "BTCUSD",
            "inverse",
            "BTC",
            "USD",
            price=d("65000"),
            tick_size=d("0.50"),
            qty_step=d("1"),
            min_qty=d("1"),
            max_qty=d("1000000"),
            max_mkt_qty=d("200000"),
            min_notional=d("0"),
            max_leverage=d("100.00"),
            symbol_id=1,
        ),
    ]
