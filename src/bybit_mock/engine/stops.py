"""Conditional orders and TP/SL: the request rules and the trigger arithmetic (no state).

Each contract has three prices (``market/prices.py``): the last trade, the index and the mark.
A conditional order or TP/SL watches the one its ``triggerBy`` names (``LastPrice`` by default),
and its ``triggerDirection`` is checked against that price when it is placed or amended;
trailing stops follow the last price.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import NamedTuple

from ..bybit import errors, params
from ..bybit.errors import BybitError
from ..bybit.numbers import fmt
from .orders import ZERO, Order, TpSl

TRIGGER_BY = ("LastPrice", "IndexPrice", "MarkPrice")
LAST = "LastPrice"
RISE, FALL = 1, 2
#: stop order types that belong to a position (cleared when it closes or flips)
POSITION_STOPS = frozenset({"TakeProfit", "StopLoss", "TrailingStop", "PartialTakeProfit", "PartialStopLoss"})
#: what a triggered stop's order is created by
CREATE_TYPES = {
    "TakeProfit": "CreateByTakeProfit",
    "StopLoss": "CreateByStopLoss",
    "TrailingStop": "CreateByTrailingStop",
    "PartialTakeProfit": "CreateByPartialTakeProfit",
    "PartialStopLoss": "CreateByPartialStopLoss",
}


class Leg(NamedTuple):
    """One stop to place for a position: what it is, where it triggers, what it closes."""

    kind: str  # a POSITION_STOPS member
    trigger: Decimal
    by: str  # triggerBy
    qty: Decimal = ZERO  # 0: the whole position, whatever its size when it triggers
    order_type: str = "Market"
    limit: Decimal = ZERO  # a Limit leg's price
    trailing: Decimal = ZERO  # a trailing stop's distance


def price_param(query: params.Params, name: str) -> Decimal | None:
    """A price field: None when absent or empty; "0" is a real value (it clears TP/SL)."""
    value = params.decimal(query, name)
    if value is not None and value < 0:
        raise errors.params_error(f"params error: {name} invalid")
    return value


def trigger_by(query: params.Params, name: str) -> str:
    value = params.text(query, name) or "LastPrice"
    if value not in TRIGGER_BY:
        raise errors.params_error(f"params error: {name} invalid")
    return value


def direction(query: params.Params, trigger: Decimal, last: Decimal, required: bool) -> int:
    """``triggerDirection`` (linear requires it; spot infers it from the last price), checked."""
    raw = query.get("triggerDirection")
    if raw in (None, "", 0):
        if required:
            raise errors.params_error("params error: triggerDirection is required for a conditional order")
        return RISE if trigger > last else FALL
    if raw not in (1, 2, "1", "2"):
        raise errors.params_error("params error: triggerDirection invalid")
    way = int(raw)
    check_direction(way, trigger, last)
    return way


def check_direction(way: int, trigger: Decimal, last: Decimal) -> None:
    """Bybit refuses a trigger the market has already passed (110092 / 110093)."""
    if way == RISE and trigger <= last:
        raise BybitError(110092, f"expect Rising, but trigger_price[{fmt(trigger)}] <= current[{fmt(last)}]")
    if way == FALL and trigger >= last:
        raise BybitError(110093, f"expect Falling, but trigger_price[{fmt(trigger)}] >= current[{fmt(last)}]")


def stop_direction(kind: str, position_side: str) -> int:
    """Which way the price must move to hit a position's take-profit or stop-loss."""
    profit = kind in ("TakeProfit", "PartialTakeProfit")
    return RISE if profit == (position_side == "Buy") else FALL


def check_stop_price(kind: str, price: Decimal, position_side: str, base: Decimal) -> None:
    """A long's TP above the base price and SL below it; a short's the other way (10001)."""
    way = stop_direction(kind, position_side)
    if (way == RISE and price <= base) or (way == FALL and price >= base):
        higher = "higher" if way == RISE else "lower"
        name = "TakeProfit" if "TakeProfit" in kind else "StopLoss"
        raise errors.params_error(
            f"{name}:{fmt(price)} set for {position_side} position should be {higher} than base_price:{fmt(base)}"
        )


def tpsl_of(query: params.Params, side: str, base: Decimal) -> TpSl | None:
    """TP/SL attached to a linear order (``takeProfit``/``stopLoss`` and their options)."""
    if "takeProfit" not in query and "stopLoss" not in query:  # most orders: no parsing
        return None
    tp = price_param(query, "takeProfit") or ZERO
    sl = price_param(query, "stopLoss") or ZERO
    if not tp and not sl:
        return None
    mode = params.text(query, "tpslMode") or "Full"
    if mode not in ("Full", "Partial"):
        raise errors.params_error("params error: tpslMode invalid")
    if tp:
        check_stop_price("TakeProfit", tp, side, base)
    if sl:
        check_stop_price("StopLoss", sl, side, base)
    types = []
    for name in ("tpOrderType", "slOrderType"):
        kind = params.text(query, name) or "Market"
        if kind not in ("Market", "Limit") or (kind == "Limit" and mode == "Full"):
            raise errors.params_error(f"params error: {name} invalid (Limit needs tpslMode Partial)")
        types.append(kind)
    limits = [price_param(query, name) or ZERO for name in ("tpLimitPrice", "slLimitPrice")]
    for kind, limit, name in zip(types, limits, ("tpLimitPrice", "slLimitPrice"), strict=True):
        if kind == "Limit" and not limit:
            raise errors.params_error(f"params error: {name} is required for a Limit TP/SL")
    return TpSl(
        mode,
        tp,
        sl,
        trigger_by(query, "tpTriggerBy") if tp else "",
        trigger_by(query, "slTriggerBy") if sl else "",
        types[0],
        types[1],
        limits[0] if types[0] == "Limit" else ZERO,
        limits[1] if types[1] == "Limit" else ZERO,
    )


def crossed(order: Order, last: Decimal) -> bool:
    if order.trigger_direction == RISE:
        return last >= order.trigger_price
    return last <= order.trigger_price


def trail(order: Order, last: Decimal) -> None:
    """Move a trailing stop's trigger with the price, never back."""
    if order.trigger_direction == FALL:  # protects a long: follows the price up
        order.trigger_price = max(order.trigger_price, last - order.trailing)
    else:
        order.trigger_price = min(order.trigger_price, last + order.trailing)


def amend_tpsl(cur: TpSl | None, tp: Decimal | None, sl: Decimal | None, side: str, base: Decimal) -> TpSl | None:
    """An order's TP/SL after an amend: a new price replaces, "0" clears, None keeps."""
    out = replace(cur) if cur is not None else TpSl("Full", ZERO, ZERO, "", "", "Market", "Market", ZERO, ZERO)
    if tp is not None:
        if tp:
            check_stop_price("TakeProfit", tp, side, base)
        out.take_profit, out.tp_trigger_by = tp, (out.tp_trigger_by or "LastPrice") if tp else ""
    if sl is not None:
        if sl:
            check_stop_price("StopLoss", sl, side, base)
        out.stop_loss, out.sl_trigger_by = sl, (out.sl_trigger_by or "LastPrice") if sl else ""
    return out if out.take_profit or out.stop_loss else None
