"""Orders and executions: their state, their legal transitions and their Bybit JSON shapes.

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
through). Shapes follow the real responses in ccxt's fixtures, field for field; the private
stream adds ``category``, ``closedPnl`` and ``feeCurrency`` as Bybit's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..bybit.numbers import fmt, fmt_scale
from ..config import InstrumentConfig
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
        self.cum_qty += qty
        self.cum_value += notional(self.category, qty, price)
        self.cum_fee += fee
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


def order_item(o: Order, inst: InstrumentConfig, stream: bool = False) -> dict[str, Any]:
    """One order as ``/v5/order/realtime`` and ``/history`` list it (``stream``: as ``order`` pushes it)."""
    ps = inst.price_scale
    leaves = o.leaves_qty
    tpsl = o.tpsl
    item: dict[str, Any] = {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "orderLinkId": o.link_id,
        "slLimitPrice": _price(tpsl.sl_limit_price if tpsl else ZERO, ps),
        "orderId": o.order_id,
        "cancelType": o.cancel_type,
        "avgPrice": fmt(o.avg_price) if o.cum_qty else ("0" if o.category == "spot" else ""),
        "stopOrderType": o.stop_order_type,
        "lastPriceOnCreated": fmt_scale(o.last_price_on_created, ps),
        "orderStatus": o.status,
        "createType": o.create_type,
        "takeProfit": _price(tpsl.take_profit, ps) if tpsl else "",
        "cumExecValue": fmt(o.cum_value),
        "tpslMode": tpsl.mode if tpsl else "",
        "smpType": "None",
        "triggerDirection": o.trigger_direction,
        "blockTradeId": "",
        "cumFeeDetail": {o.fee_coin: fmt(o.cum_fee)} if o.cum_fee else {},
        "rejectReason": o.reject_reason,
        "isLeverage": "0" if o.category == "spot" else "",
        "price": fmt_scale(o.price, ps) if o.price else "0",
        "orderIv": "",
        "createdTime": str(o.created_ms),
        "tpTriggerBy": tpsl.tp_trigger_by if tpsl else "",
        "positionIdx": o.position_idx,
        "timeInForce": o.time_in_force,
        "leavesValue": fmt(notional(o.category, leaves, o.price)),
        "updatedTime": str(o.updated_ms),
        "side": o.side,
        "smpGroup": 0,
        "triggerPrice": fmt_scale(o.trigger_price, ps) if o.trigger_price else "",
        "tpLimitPrice": _price(tpsl.tp_limit_price if tpsl else ZERO, ps),
        "cumExecFee": fmt(o.cum_fee),
        "slTriggerBy": tpsl.sl_trigger_by if tpsl else "",
        "leavesQty": fmt(leaves),
        "closeOnTrigger": o.close_on_trigger,
        "slippageToleranceType": "UNKNOWN",
        "placeType": "",
        "cumExecQty": fmt(o.cum_qty),
        "reduceOnly": o.reduce_only,
        "qty": fmt(o.qty),
        "stopLoss": _price(tpsl.stop_loss, ps) if tpsl else "",
        "marketUnit": o.market_unit,
        "smpOrderId": "",
        "slippageTolerance": "0",
        "triggerBy": o.trigger_by,
        "extraFees": "",
        "parentOrderLinkId": "",
        "rpiTakerAccess": False,
        "rpiMatchedQty": "0",
    }
    if stream:
        item["category"] = o.category
        item["closedPnl"] = fmt(o.closed_pnl)
        item["feeCurrency"] = o.fee_coin if o.category == "spot" else ""
    return item


def execution_item(e: Execution, inst: InstrumentConfig, stream: bool = False) -> dict[str, Any]:
    """One fill as ``/v5/execution/list`` lists it (``stream``: as ``execution`` pushes it)."""
    o = e.order
    ps = inst.price_scale
    spot = o.category == "spot"
    item: dict[str, Any] = {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "underlyingPrice": "",
        "orderLinkId": o.link_id,
        "orderId": o.order_id,
        "stopOrderType": o.stop_order_type or ("" if spot else "UNKNOWN"),
        "execTime": str(e.time_ms),
        "feeCurrency": e.fee_coin if spot else "",
        "createType": o.create_type,
        "feeRate": fmt(e.fee_rate),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": "" if spot else fmt_scale(e.mark_price, ps),
        "execPrice": fmt_scale(e.price, ps),
        "markIv": "",
        "orderQty": fmt(e.order_qty),
        "orderPrice": fmt_scale(e.order_price, ps) if e.order_price else "0",
        "execValue": fmt(notional(e.order.category, e.qty, e.price)),
        "closedSize": "" if spot else fmt(e.closed_size),
        "execType": "Trade",
        "seq": e.seq,
        "side": o.side,
        "indexPrice": "",
        "leavesQty": fmt(e.leaves_qty),
        "isMaker": e.is_maker,
        "execFee": fmt(e.fee),
        "execId": e.exec_id,
        "marketUnit": o.market_unit,
        "execQty": fmt(e.qty),
        "execPnl": fmt(e.pnl),
        "extraFees": "",
    }
    if stream:
        item["category"] = o.category
        item["isLeverage"] = "0"
    return item


def _price(value: Decimal, scale: int) -> str:
    return fmt_scale(value, scale) if value else "0"
