"""Liquidation and bankruptcy prices: what a position shows as ``liqPrice`` and ``bustPrice``,
and the margin figures the liquidation check reads (the formulas: ``liquidation.py``).

Pure functions of an account, a position and the marks: the pushes and the position list
show them, the takeover (``liquidation.py``) closes at them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ..config import InstrumentConfig
from .accounts import ZERO, Account, Position
from .book import Ident
from .margin import Margin

_ONE = Decimal(1)


def isolated_prices(pos: Position, inst: InstrumentConfig) -> tuple[Decimal | None, Decimal | None]:
    """(liquidation, bankruptcy) price of an isolated position, exact (the module docstring)."""
    if not pos.size:
        return None, None
    im = _ONE / pos.leverage
    mmr = inst.maintenance_margin_rate
    e = pos.entry_price
    long = pos.side == "Buy"
    liq_factor = _ONE - im + mmr if long else _ONE + im - mmr
    bust_factor = _ONE - im if long else _ONE + im
    if inst.category == "inverse":  # the factors divide: the coin value moves as 1 / price
        liq_factor = _ONE + im - mmr if long else _ONE - im + mmr
        bust_factor = _ONE + im if long else _ONE - im
        return _positive(e / liq_factor if liq_factor > 0 else None), _positive(
            e / bust_factor if bust_factor > 0 else None
        )
    return _positive(e * liq_factor), _positive(e * bust_factor)


def solve_price(category: str, signed_size: Decimal, mark: Decimal, headroom: Decimal) -> Decimal | None:
    """The price at which ``signed_size``'s PnL, from ``mark``, has lost ``headroom`` (in the
    settle coin); None if no positive price does."""
    if not signed_size or mark <= 0:
        return None
    if category == "inverse":
        inverse = _ONE / mark + headroom / signed_size
        return _ONE / inverse if inverse > 0 else None
    return _positive(mark - headroom / signed_size)


def account_margin(
    account: Account,
    margin: Margin,
    marks: Mapping[Ident, Decimal] | None = None,
    usd: dict[str, Decimal] | None = None,
) -> tuple[Decimal, Decimal]:
    """The account's margin balance and total MM, in USD (``Valuation``'s figures, without
    building its views: a position push asks for them). ``marks`` and ``usd`` (filled as it
    goes) save looking prices up again when many accounts are checked at one instant."""
    per_coin: dict[str, tuple[Decimal, Decimal]] = {c: (b.wallet, ZERO) for c, b in account.coins.items()}
    for key, pos in account.positions.items():
        if pos.size:
            ident = key[:2]
            inst = margin.instruments[ident]
            equity, mm = per_coin.get(inst.settle_coin, (ZERO, ZERO))
            upl = pos.unrealised_pnl(marks[ident] if marks is not None else margin.mark(ident))
            per_coin[inst.settle_coin] = (equity + upl, mm + pos.maintenance_margin(inst))
    usd = {} if usd is None else usd
    total, total_mm = ZERO, ZERO
    for coin, (equity, mm) in per_coin.items():
        if equity or mm:
            price = usd.get(coin)
            if price is None:
                price = usd[coin] = margin.usd_price(coin)
            total += equity * price
            total_mm += mm * price
    return total, total_mm


def cross_prices(
    pos: Position, inst: InstrumentConfig, mark: Decimal, balance: Decimal, total_mm: Decimal, usd: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """(liquidation, bankruptcy) estimate of a cross position: the module docstring."""
    if not pos.size or usd <= 0:
        return None, None
    q = pos.signed_size
    liq = solve_price(inst.category, q, mark, (balance - total_mm) / usd)
    bust = solve_price(inst.category, q, mark, balance / usd)
    return liq, bust


def prices(account: Account, pos: Position, inst: InstrumentConfig, margin: Margin) -> tuple[Decimal | None, ...]:
    """A position's (liqPrice, bustPrice) as shown: rounded to the tick (module docstring)."""
    if not pos.size:
        return None, None
    if account.isolated:
        liq, bust = isolated_prices(pos, inst)
    else:
        balance, total_mm = account_margin(account, margin)
        mark = margin.mark((inst.category, inst.symbol))
        liq, bust = cross_prices(pos, inst, mark, balance, total_mm, margin.usd_price(inst.settle_coin))
    return to_tick(liq, inst, pos.side), to_tick(bust, inst, pos.side)


def to_tick(price: Decimal | None, inst: InstrumentConfig, side: str) -> Decimal | None:
    """``price`` on the tick grid, rounded up for a long and down for a short; None stays."""
    if price is None:
        return None
    ticks = (price / inst.tick_size).to_integral_value(ROUND_CEILING if side == "Buy" else ROUND_FLOOR)
    return _positive(ticks * inst.tick_size)


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None
