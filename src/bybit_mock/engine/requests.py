"""Trading requests as Bybit reads them: parsed and checked, with no state (as ``stops.py`` is).

Each function takes a request's parameters, and what it must know besides (the instrument,
the last price, the position mode, the order it names), and returns a typed request or
raises Bybit's refusal. Nothing here changes anything: the engine parses a request whole,
then checks it against the account (margin, limits, duplicates), and only then applies it,
so a refused request has changed nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from ..bybit import errors, params
from ..bybit.errors import BybitError
from ..bybit.numbers import fmt
from ..instruments import CATEGORIES, TRADED, InstrumentConfig
from . import stops
from .accounts import HEDGE_SIDES, ZERO, Position
from .orders import Order, TpSl
from .stops import Leg

DAY_MS = 86_400_000
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
ORDER_FILTERS = ("Order", "StopOrder", "tpslOrder")
#: most entries a batch call takes, per category
BATCH_MAX = {"linear": 20, "inverse": 20, "spot": 10}
_LINK_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_LEVERAGE_STEP = Decimal("0.01")


def traded(
    instruments: dict[tuple[str, str], InstrumentConfig], query: params.Params, allowed: tuple[str, ...]
) -> InstrumentConfig:
    """The instrument a trading request names (``category`` and ``symbol``), 10001 if none."""
    category = params.category(query, allowed)
    symbol = params.required(query, "symbol")
    inst = instruments.get((category, symbol))
    if inst is None:
        raise BybitError(errors.PARAMS_ERROR, f"params error: symbol invalid: {symbol}")
    return inst


def flag(query: params.Params, name: str) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return False
    if isinstance(raw, bool):
        return raw
    if raw in (0, 1, "0", "1", "true", "false"):
        return raw in (1, "1", "true")
    raise errors.params_error(f"params error: {name} must be a boolean")


def order_filter(query: params.Params, default: str | None) -> str | None:
    """``orderFilter`` (``Order``, ``StopOrder``, ``tpslOrder``), checked."""
    kind = params.text(query, "orderFilter") or default
    if kind not in (None, *ORDER_FILTERS):
        raise errors.params_error("params error: orderFilter invalid")
    return kind


def position_idx(query: params.Params, inst: InstrumentConfig, indices: tuple[int, ...]) -> int:
    """``positionIdx``, which must match the symbol's mode (``indices``): 0 one-way, 1 or 2 hedge."""
    idx = params.integer(query, "positionIdx") or 0
    if inst.category == "spot":
        return 0
    if idx not in indices:
        raise errors.params_error("position idx not match position mode")
    return idx


def order_ref(query: params.Params) -> tuple[str | None, str | None]:
    """The ``orderId`` or ``orderLinkId`` an amend or cancel names (one is required)."""
    order_id, link_id = params.text(query, "orderId"), params.text(query, "orderLinkId")
    if order_id is None and link_id is None:
        raise errors.params_error("params error: orderId or orderLinkId is required")
    return order_id, link_id


def not_found(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170213, "Order does not exist.")
    return BybitError(errors.ORDER_NOT_EXISTS, "order not exists or too late to cancel")


def check_qty(inst: InstrumentConfig, qty: Decimal, order_type: str, in_quote: bool) -> None:
    if qty <= 0:
        raise errors.params_error("params error: qty must be greater than 0")
    if in_quote:
        return
    if qty % inst.qty_step:
        raise errors.params_error(f"params error: qty must be a multiple of qtyStep {inst.qty_step}")
    if qty < inst.min_qty:
        if inst.category == "spot":
            raise BybitError(170136, "Order quantity is lower than the minimum.")
        raise errors.params_error(f"params error: qty below minOrderQty {inst.min_qty}")
    maximum = inst.max_mkt_qty if order_type == "Market" else inst.max_qty
    if qty > maximum:
        raise errors.params_error(f"params error: qty above the maximum {maximum}")


def check_price(inst: InstrumentConfig, price: Decimal) -> None:
    if price <= 0 or price > inst.max_price:
        raise errors.params_error("params error: price out of range")
    if price % inst.tick_size:
        raise errors.params_error(f"params error: price must be a multiple of tickSize {inst.tick_size}")


# -- order/create ---------------------------------------------------------------------------


class NewOrder(NamedTuple):
    """An ``order/create`` request, checked against its instrument but not yet the account."""

    inst: InstrumentConfig
    side: str
    order_type: str
    qty: Decimal
    price: Decimal
    time_in_force: str
    link_id: str
    reduce_only: bool
    close_on_trigger: bool
    market_unit: str
    position_idx: int
    tpsl: TpSl | None
    #: conditional orders: the trigger (0 for a plain order), its direction and price type
    trigger: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    stop_order_type: str = ""

    def order(self, order_id: str, api_key: str, now_ms: int, last: Decimal) -> Order:
        inst = self.inst
        # hedge mode: an order against its position's side (a Sell on the long) closes it
        closing = HEDGE_SIDES.get(self.position_idx, self.side) != self.side
        order = Order(
            order_id=order_id,
            link_id=self.link_id,
            api_key=api_key,
            category=inst.category,
            symbol=inst.symbol,
            side=self.side,
            order_type=self.order_type,
            qty=self.qty,
            price=self.price,
            time_in_force=self.time_in_force,
            reduce_only=self.reduce_only or self.close_on_trigger or closing,
            created_ms=now_ms,
            last_price_on_created=last,
            market_unit=self.market_unit,
            updated_ms=now_ms,
            close_on_trigger=self.close_on_trigger,
            position_idx=self.position_idx,
        )
        order.tpsl = self.tpsl
        if self.trigger:
            order.trigger_price = self.trigger
            order.trigger_direction = self.trigger_direction
            order.trigger_by = self.trigger_by
            order.stop_order_type = self.stop_order_type
        return order


def new_order(
    query: params.Params,
    inst: InstrumentConfig,
    last: Decimal,
    indices: tuple[int, ...],
    watch: Mapping[str, Decimal] | None = None,
) -> NewOrder:
    """Parse an ``order/create`` for ``inst`` (last price ``last``, position mode ``indices``;
    ``watch``: the prices by ``triggerBy`` a trigger direction is checked against, default last)."""
    category = inst.category
    side = params.required(query, "side")
    if side not in ("Buy", "Sell"):
        raise errors.params_error("params error: side invalid")
    order_type = params.required(query, "orderType")
    if order_type not in ("Market", "Limit"):
        raise errors.params_error("params error: orderType invalid")
    tif = params.text(query, "timeInForce") or "GTC"
    if tif not in TIME_IN_FORCE:
        raise errors.params_error("params error: timeInForce invalid")
    if order_type == "Market":
        tif = "IOC"
    if category == "spot":  # refused clearly: placing a plain order instead would surprise
        for name in ("takeProfit", "stopLoss"):
            if params.text(query, name) not in (None, "0"):
                raise errors.params_error(f"params error: {name} on spot orders is not supported by bybit-mock yet")
    link_id = params.text(query, "orderLinkId") or ""
    if len(link_id) > 36 or not _LINK_ID_CHARS.issuperset(link_id):
        raise errors.params_error("params error: orderLinkId invalid")
    qty = params.decimal(query, "qty", required=True)
    assert qty is not None
    market_unit = ""
    if category == "spot" and order_type == "Market":
        market_unit = params.text(query, "marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin")
        if market_unit not in ("baseCoin", "quoteCoin"):
            raise errors.params_error("params error: marketUnit invalid")
    check_qty(inst, qty, order_type, market_unit == "quoteCoin")
    price = ZERO
    if order_type == "Limit":
        price = params.decimal(query, "price", required=True) or ZERO
        check_price(inst, price)
        if category != "inverse" and market_unit == "" and qty * price < inst.min_notional:
            raise BybitError(110094, f"Order does not meet minimum order value {inst.min_notional}USDT")
    reduce_only = flag(query, "reduceOnly")
    close_on_trigger = flag(query, "closeOnTrigger")
    if (reduce_only or close_on_trigger) and category == "spot":
        raise errors.params_error("params error: reduceOnly is not supported for spot")
    idx = position_idx(query, inst, indices)
    tpsl = stops.tpsl_of(query, side, price or last) if category != "spot" else None
    spec = NewOrder(
        inst, side, order_type, qty, price, tif, link_id, reduce_only, close_on_trigger, market_unit, idx, tpsl
    )
    if "triggerPrice" not in query and "orderFilter" not in query:  # most orders: no more parsing
        return spec
    kind = order_filter(query, "Order")
    trigger = stops.price_param(query, "triggerPrice") or ZERO
    if category == "spot" and kind != "Order" and not trigger:
        raise errors.params_error(f"params error: triggerPrice is required for orderFilter {kind}")
    if not trigger:
        return spec
    check_price(inst, trigger)
    by = stops.trigger_by(query, "triggerBy")
    current = watch.get(by, last) if watch is not None else last
    return spec._replace(
        trigger=trigger,
        trigger_direction=stops.direction(query, trigger, current, required=category != "spot"),
        trigger_by=by,
        stop_order_type="tpslOrder" if kind == "tpslOrder" else "Stop",
    )


# -- order/amend ----------------------------------------------------------------------------


class Amend(NamedTuple):
    """What an ``order/amend`` changes (None: unchanged; ``trigger`` 0: unchanged)."""

    qty: Decimal | None
    price: Decimal | None
    trigger: Decimal
    tpsl: TpSl | None


def amend(
    query: params.Params,
    order: Order,
    inst: InstrumentConfig,
    last: Decimal,
    watch: Mapping[str, Decimal] | None = None,
) -> Amend:
    """Parse an amend of the open ``order`` (last price ``last``; ``watch``: the prices by
    ``triggerBy`` a new trigger price is checked against, default last)."""
    qty = params.decimal(query, "qty")
    price = params.decimal(query, "price")
    trigger = stops.price_param(query, "triggerPrice") or ZERO
    tp, sl = stops.price_param(query, "takeProfit"), stops.price_param(query, "stopLoss")
    if qty is None and price is None and not trigger and tp is None and sl is None:
        raise errors.params_error("params error: nothing to amend")
    if qty is not None:
        if order.stop_order_type in stops.POSITION_STOPS and not order.qty:
            raise errors.params_error("params error: a position's TP/SL closes all of it; it has no qty")
        check_qty(inst, qty, order.order_type, False)
        if qty <= order.cum_qty:
            raise BybitError(110012, "The new quantity is not above the filled quantity")
    if price is not None:
        if order.order_type != "Limit":
            raise errors.params_error("params error: a market order has no price to amend")
        check_price(inst, price)
    if trigger:
        if order.status != "Untriggered":
            raise errors.params_error("params error: triggerPrice can be amended only before the order triggers")
        check_price(inst, trigger)
        current = watch.get(order.trigger_by, last) if watch is not None else last
        stops.check_direction(order.trigger_direction, trigger, current)
    tpsl = order.tpsl
    if tp is not None or sl is not None:
        if inst.category == "spot" or (tpsl is not None and tpsl.armed):
            raise errors.params_error(
                "params error: TP/SL can be amended on a contract order before it fills; "
                "a position's TP/SL is set with /v5/position/trading-stop"
            )
        tpsl = stops.amend_tpsl(tpsl, tp, sl, order.side, price or order.price or last)
    return Amend(qty, price, trigger, tpsl)


# -- position/trading-stop ------------------------------------------------------------------


class StopChange(NamedTuple):
    """One change ``trading-stop`` makes: ``set`` the position's own TP/SL/trailing stop
    (a 0 trigger or distance removes it), ``place`` a partial one, ``clear`` the partial ones
    of ``leg.kind``."""

    action: str
    leg: Leg


def trading_stop(query: params.Params, pos: Position, inst: InstrumentConfig, last: Decimal) -> list[StopChange]:
    """Parse a ``trading-stop`` for the open position ``pos`` into the changes it makes."""
    mode = params.text(query, "tpslMode") or "Full"
    if mode not in ("Full", "Partial"):
        raise errors.params_error("params error: tpslMode invalid")
    if params.text(query, "activePrice") not in (None, "0"):
        raise errors.params_error("params error: activePrice is not supported by bybit-mock yet")
    tp, sl, ts = (stops.price_param(query, k) for k in ("takeProfit", "stopLoss", "trailingStop"))
    if tp is None and sl is None and ts is None:
        raise errors.params_error("params error: takeProfit, stopLoss or trailingStop is required")
    if ts and mode != "Full":
        raise errors.params_error("params error: trailingStop needs tpslMode Full")
    changes: list[StopChange] = []
    for kind, value, prefix in (("TakeProfit", tp, "tp"), ("StopLoss", sl, "sl")):
        if value is None:
            continue
        if value:
            stops.check_stop_price(kind, value, pos.side, last)
        by = stops.trigger_by(query, f"{prefix}TriggerBy")
        if mode == "Full":
            changes.append(StopChange("set", Leg(kind, value, by)))
            continue
        size = params.decimal(query, f"{prefix}Size", required=bool(value)) or ZERO
        order_type = params.text(query, f"{prefix}OrderType") or "Market"
        if order_type not in ("Market", "Limit"):
            raise errors.params_error(f"params error: {prefix}OrderType invalid")
        limit = params.decimal(query, f"{prefix}LimitPrice", required=order_type == "Limit") or ZERO
        if value:
            check_qty(inst, size, order_type, False)
            changes.append(StopChange("place", Leg("Partial" + kind, value, by, size, order_type, limit)))
        else:  # "0" in Partial mode removes that side's partial stops
            changes.append(StopChange("clear", Leg("Partial" + kind, ZERO, by)))
    if ts is not None:
        changes.append(StopChange("set", Leg("TrailingStop", ZERO, "LastPrice", trailing=ts)))
    return changes


# -- the rest -------------------------------------------------------------------------------


def leverage(query: params.Params, inst: InstrumentConfig) -> Decimal:
    """``set-leverage``'s leverage: buy and sell equal (cross margin), within the instrument's range."""
    buy = params.decimal(query, "buyLeverage", required=True)
    sell = params.decimal(query, "sellLeverage", required=True)
    assert buy is not None and sell is not None
    if buy != sell:
        raise errors.params_error("params error: buyLeverage must equal sellLeverage in cross margin mode")
    if not 1 <= buy <= inst.max_leverage or buy % _LEVERAGE_STEP:
        raise errors.params_error(f"params error: leverage must be in [1, {fmt(inst.max_leverage)}]")
    return buy


def batch(query: params.Params) -> tuple[str, list[Any]]:
    """A batch call's category and entries (each entry is checked as its single call is)."""
    category = params.category(query, TRADED)
    entries = query.get("request")
    if not isinstance(entries, list) or not entries:
        raise errors.params_error("params error: request must be a non-empty list")
    most = BATCH_MAX[category]
    if len(entries) > most:
        raise errors.params_error(f"params error: a {category} batch takes at most {most} orders")
    return category, entries


def window(query: params.Params, now_ms: int, days: int = 7) -> tuple[int, int]:
    """``startTime``/``endTime`` with Bybit's span rule (default: the last ``days`` days)."""
    start, end = params.integer(query, "startTime"), params.integer(query, "endTime")
    span = days * DAY_MS
    if start is not None and end is not None and end - start > span:
        raise errors.params_error(
            f"params error: The time range between startTime and endTime cannot exceed {days} days"
        )
    if end is None:
        end = start + span if start is not None else now_ms
    if start is None:
        start = end - span
    return start, end


class OrderFilter(NamedTuple):
    """The order filters ``realtime``, ``history``, ``execution/list`` and ``cancel-all`` share.

    Priority as Bybit documents it: ``orderId`` > ``orderLinkId`` > ``symbol`` > ``baseCoin``.
    """

    category: str
    symbol: str | None
    base: str | None
    settle: str | None
    order_id: str | None
    link_id: str | None
    #: ``orderFilter``: "Order" (plain), "StopOrder" (conditional, TP/SL), "tpslOrder" (spot TP/SL)
    kind: str | None = None
    stop_order_type: str | None = None

    @classmethod
    def of(cls, query: params.Params, default_kind: str | None = None) -> OrderFilter:
        category = params.category(query, CATEGORIES)
        kind = order_filter(query, default_kind)
        text = params.text
        return cls(
            category,
            text(query, "symbol"),
            text(query, "baseCoin"),
            text(query, "settleCoin"),
            text(query, "orderId"),
            text(query, "orderLinkId"),
            kind,
            text(query, "stopOrderType"),
        )

    def scoped(self) -> OrderFilter:
        """Linear needs ``symbol``, ``baseCoin`` or ``settleCoin`` (realtime, cancel-all): 10001 otherwise."""
        if self.category == "linear" and self.symbol is None and self.base is None and self.settle is None:
            raise errors.params_error("params error: symbol, baseCoin or settleCoin is required")
        return self

    def matches(self, o: Order, instruments: dict[tuple[str, str], InstrumentConfig]) -> bool:
        if o.category != self.category or self.symbol not in (None, o.symbol):
            return False
        if self.kind is not None and filter_kind(o) != self.kind:
            return False
        if self.stop_order_type not in (None, o.stop_order_type):
            return False
        if self.order_id is not None:
            return o.order_id == self.order_id
        if self.link_id is not None:
            return o.link_id == self.link_id
        if self.base is None and self.settle is None:
            return True
        inst = instruments[(o.category, o.symbol)]
        return self.base in (None, inst.base_coin) and self.settle in (None, inst.settle_coin)


def filter_kind(o: Order) -> str:
    """The ``orderFilter`` an order answers to."""
    if not o.stop_order_type:
        return "Order"
    return "tpslOrder" if o.stop_order_type == "tpslOrder" else "StopOrder"
