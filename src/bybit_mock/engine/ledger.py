"""How a fill moves an account's money and positions, the way Bybit's unified account does.

Linear (USDT-settled) and inverse (coin-settled, quantity in USD) contracts: the position
keeps a signed size and an average entry price. A fill in the position's direction (or from
flat) averages in; a fill against it closes ``min(size, qty)`` at ``(price - entry) *
closed`` (opposite sign for a short) and, if larger, opens the rest the other way at the
fill price. Realised PnL and the fee move the settle coin's wallet balance, so ``wallet =
start + realised PnL - fees`` always holds, and ``cumRealisedPnl`` (position and coin)
counts both, as Bybit's does. Inverse contracts do the same in the coin: value ``qty /
price``, PnL ``qty x (1/entry - 1/exit)``, and the average entry is harmonic (it keeps the
position's coin value).

Spot: a buy pays ``qty * price`` of the quote coin and receives ``qty`` of the base coin less
the fee (charged in the coin received); a sell pays ``qty`` base and receives the value less
the fee in quote.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from ..config import InstrumentConfig
from .accounts import HEDGE_SIDES, ZERO, Account, Position, notional, pnl_of

DEFAULT_LEVERAGE = Decimal(10)


class FillResult(NamedTuple):
    closed_size: Decimal
    pnl: Decimal  # realised by this fill, before fees
    fee_coin: str


def position_of(account: Account, inst: InstrumentConfig, now_ms: int, idx: int = 0) -> Position:
    """The account's position ``idx`` in this instrument, created flat on first use."""
    key = (inst.category, inst.symbol, idx)
    pos = account.positions.get(key)
    if pos is None:
        pos = account.positions[key] = flat_position(inst.category, inst.symbol, idx, now_ms)
    return pos


def flat_position(category: str, symbol: str, idx: int, now_ms: int) -> Position:
    side = HEDGE_SIDES.get(idx, "")
    return Position(category, symbol, side, ZERO, ZERO, DEFAULT_LEVERAGE, now_ms, now_ms, position_idx=idx)


def apply_fill(
    account: Account,
    inst: InstrumentConfig,
    side: str,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    now_ms: int,
    seq: int,
    idx: int = 0,
) -> FillResult:
    """Move money (and, for linear, the position) for one fill (module docstring: how)."""
    if inst.category == "spot":
        return _spot_fill(account, inst, side, qty, price, fee)
    pos = position_of(account, inst, now_ms, idx)
    current = pos.signed_size
    trade = qty if side == "Buy" else -qty
    closed = ZERO
    realised = ZERO
    if current == 0 or (current > 0) == (trade > 0):
        new = current + trade
        # the average entry keeps the position's value: for inverse, value is qty / price
        value = notional(inst.category, abs(current), pos.entry_price) + notional(inst.category, qty, price)
        entry = abs(new) / value if inst.category == "inverse" else value / abs(new)
    else:
        closed = min(abs(current), qty)
        realised = pnl_of(inst.category, closed if current > 0 else -closed, pos.entry_price, price)
        new = current + trade
        if new == 0:
            entry = ZERO
        elif (new > 0) != (current > 0):
            entry = price  # flipped: the remainder opened at this fill's price
        else:
            entry = pos.entry_price
    pos.size = abs(new)
    if new:
        pos.side = "Buy" if new > 0 else "Sell"
    pos.entry_price = entry
    pos.updated_ms = now_ms
    pos.seq = seq
    net = realised - fee
    pos.cur_realised_pnl = net
    pos.cum_realised_pnl += net
    coin = account.coin(inst.settle_coin)
    coin.wallet += net
    coin.cum_realised_pnl += net
    return FillResult(closed, realised, inst.settle_coin)


def _spot_fill(
    account: Account, inst: InstrumentConfig, side: str, qty: Decimal, price: Decimal, fee: Decimal
) -> FillResult:
    base = account.coin(inst.base_coin)
    quote = account.coin(inst.quote_coin)
    value = qty * price
    if side == "Buy":
        quote.wallet -= value
        base.wallet += qty - fee
        return FillResult(ZERO, ZERO, inst.base_coin)
    base.wallet -= qty
    quote.wallet += value - fee
    return FillResult(ZERO, ZERO, inst.quote_coin)


def fee_of(inst: InstrumentConfig, side: str, qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """The fee of a fill: on the value (in the settle coin for contracts, the quote coin for
    spot sells), or on the coins received for spot buys."""
    if inst.category == "spot" and side == "Buy":
        return qty * rate
    return notional(inst.category, qty, price) * rate
