"""Read-only snapshots the engine hands to tests (picklable, so they cross the Manager)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # views are built from orders; orders.py imports accounts, which imports views
    from .orders import Execution, Order


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
    position_idx: int = 0  # 0 one-way; 1 long and 2 short in hedge mode


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


@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: str
    order_link_id: str
    category: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    status: str  # Bybit's orderStatus
    qty: Decimal
    price: Decimal
    filled_qty: Decimal
    avg_price: Decimal
    fee: Decimal
    reduce_only: bool
    created_ms: int
    updated_ms: int
    cancel_type: str  # Bybit's cancelType ("UNKNOWN" while open)
    reject_reason: str  # Bybit's rejectReason ("EC_NoError" unless rejected)

    @classmethod
    def of(cls, o: Order) -> OrderView:
        return cls(
            o.order_id, o.link_id, o.category, o.symbol, o.side, o.order_type, o.time_in_force, o.status,
            o.qty, o.price, o.cum_qty, o.avg_price, o.cum_fee, o.reduce_only, o.created_ms, o.updated_ms,
            o.cancel_type, o.reject_reason,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExecutionView:
    exec_id: str
    order_id: str
    order_link_id: str
    category: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_coin: str
    is_maker: bool
    closed_size: Decimal
    realised_pnl: Decimal  # before fees
    time_ms: int
    exec_type: str = "Trade"  # or "Funding": ``fee`` is then the payment (> 0 paid, < 0 received)

    @classmethod
    def of(cls, e: Execution) -> ExecutionView:
        o = e.order
        return cls(
            e.exec_id, o.order_id, o.link_id, o.category, o.symbol, o.side, e.price, e.qty, e.fee, e.fee_coin,
            e.is_maker, e.closed_size, e.pnl, e.time_ms, e.exec_type,
        )  # fmt: skip
