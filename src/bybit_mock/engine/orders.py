"""Orders and executions: their state and their legal transitions (their JSON: ``shapes.py``).

An order's life (Bybit's ``orderStatus``)::

    Untriggered ──► New ──► PartiallyFilled ──► Filled
         │           │             │
         │           │             └──► Cancelled     (linear; spot says PartiallyFilledCanceled)
         │           └──► Cancelled / Rejected
         └──► Deactivated                               (cancelled before its trigger)

Conditional, TP/SL and trailing-stop orders start ``Untriggered``; the market reaching their
trigger price makes them ``New`` and they execute like any order. ``Filled``, ``Cancelled``,
``PartiallyFilledCanceled``, ``Rejected`` and ``Deactivated`` are final: no fill, amend or
cancel reaches a final order (:meth:`Order.fill` asserts it, so a bug cannot slip one
through).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..bybit.numbers import shared
from .accounts import notional

ZERO = Decimal(0)

#: on the book (or taking): can fill
ACTIVE = frozenset({"New", "PartiallyFilled"})
#: can be amended and cancelled; what ``realtime`` lists as open
OPEN = ACTIVE | {"Untriggered"}
FINAL = frozenset({"Filled", "Cancelled", "PartiallyFilledCanceled", "Rejected", "Deactivated"})


@dataclass
class TpSl:
    """Take-profit / stop-loss attached to an entry order; armed when the entry first fills.

    ``Full`` sets the position's TP/SL (closing the whole position); ``Partial`` places
    reduce-only conditional orders for the entry's quantity.
    """

    mode: str  # "Full" | "Partial"
    take_profit: Decimal
    stop_loss: Decimal
    tp_trigger_by: str
    sl_trigger_by: str
    tp_order_type: str  # "Market" | "Limit"
    sl_order_type: str
    tp_limit_price: Decimal
    sl_limit_price: Decimal
    armed: bool = False


@dataclass(slots=True)
class Order:
    order_id: str
    link_id: str
    api_key: str
    category: str
    symbol: str
    side: str  # "Buy" | "Sell"
    order_type: str  # "Market" | "Limit"
    qty: Decimal
    price: Decimal  # the limit price; a market order's protection price
    time_in_force: str
    reduce_only: bool
    created_ms: int
    last_price_on_created: Decimal
    #: a spot market order's qty unit: "baseCoin" or "quoteCoin" ("" elsewhere)
    market_unit: str = ""
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    fee_coin: str = ""
    closed_pnl: Decimal = ZERO
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    updated_ms: int = 0
    #: margin (linear) or coin (spot) this order holds while it rests
    held: Decimal = ZERO
    #: conditional orders: the price that releases them, 1 = rising to it, 2 = falling to it
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    #: "" plain; "Stop" conditional; "tpslOrder" spot TP/SL; "TakeProfit", "StopLoss",
    #: "TrailingStop" (a position's, qty 0 = all of it); "PartialTakeProfit", "PartialStopLoss"
    stop_order_type: str = ""
    create_type: str = "CreateByUser"
    close_on_trigger: bool = False
    #: trailing stops: the distance the trigger keeps from the best price since placing
    trailing: Decimal = ZERO
    tpsl: TpSl | None = None
    #: the position this order trades: 0 one-way; 1 long, 2 short in hedge mode
    position_idx: int = 0
    #: the engine-wide record sequence at registration: newest-first lists and their cursors
    seq: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status in FINAL else self.qty - self.cum_qty

    @property
    def avg_price(self) -> Decimal:
        if not self.cum_qty:
            return ZERO
        if self.category == "inverse":  # cum_value is in coin: the average is harmonic
            return self.cum_qty / self.cum_value
        return self.cum_value / self.cum_qty

    def fill(self, qty: Decimal, price: Decimal, fee: Decimal, now_ms: int) -> None:
        assert self.status in ACTIVE, f"fill on a {self.status} order {self.order_id}"
        assert ZERO < qty <= self.qty - self.cum_qty, f"fill {qty} beyond leaves {self.qty - self.cum_qty}"
        # shared: kept for the order's life in the history, and the same few values recur
        self.cum_qty = shared(self.cum_qty + qty)
        self.cum_value = shared(self.cum_value + notional(self.category, qty, price))
        self.cum_fee = shared(self.cum_fee + fee)
        self.status = "Filled" if self.cum_qty == self.qty else "PartiallyFilled"
        self.updated_ms = now_ms

    def close(self, now_ms: int, cancel_type: str = "CancelByUser", reject_reason: str = "EC_NoError") -> None:
        """End an open order: cancelled by the user, by IOC/FOK rules, or rejected."""
        assert self.status in OPEN, f"close on a {self.status} order {self.order_id}"
        if self.status == "Untriggered":
            self.status = "Deactivated"
        elif self.cum_qty and self.category == "spot":
            self.status = "PartiallyFilledCanceled"
        else:
            self.status = "Cancelled"
        self.cancel_type = cancel_type
        self.reject_reason = reject_reason
        self.updated_ms = now_ms

    def trigger(self, now_ms: int) -> None:
        """The market reached the trigger price: the order becomes a live one."""
        assert self.status == "Untriggered", f"trigger on a {self.status} order {self.order_id}"
        self.status = "New"
        self.updated_ms = now_ms


@dataclass(slots=True)
class Execution:
    exec_id: str
    order: Order  # the order as of this fill (its fields are read at encode time)
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    fee_coin: str
    is_maker: bool
    time_ms: int
    mark_price: Decimal
    closed_size: Decimal
    pnl: Decimal
    seq: int
    #: the order's quantity, price and leaves as of this fill (an amend may change them later)
    order_qty: Decimal
    order_price: Decimal
    leaves_qty: Decimal
    #: Bybit's ``execType``: ``Trade``, ``Funding`` for a funding payment (``funding.py``) or
    #: ``BustTrade`` for a liquidation takeover (``liquidation.py``)
    exec_type: str = "Trade"
