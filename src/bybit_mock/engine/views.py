"""Read-only snapshots the engine hands to tests (picklable, so they cross the Manager)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PositionView:
    category: str
    symbol: str
    side: str  # "Buy", "Sell" or "" when flat
    size: Decimal
    entry_price: Decimal
    leverage: Decimal
    mark_price: Decimal
    unrealised_pnl: Decimal
    cum_realised_pnl: Decimal


@dataclass(frozen=True, slots=True)
class CoinView:
    coin: str
    wallet_balance: Decimal
    equity: Decimal
    unrealised_pnl: Decimal
    cum_realised_pnl: Decimal
    position_im: Decimal
    position_mm: Decimal
    order_im: Decimal
    locked: Decimal
    usd_price: Decimal

    @property
    def usd_value(self) -> Decimal:
        return self.equity * self.usd_price
