"""Order entry, matching, resting orders and the private events they cause.

:class:`Trading` is mixed into :class:`~bybit_mock.engine.exchange.Exchange`; every public
method here runs under the engine lock (``apply_batch`` or the state API takes it).

* A **taker** (a market order, or the marketable part of a limit order) walks the displayed
  book (``matching.walk``) and pays the taker fee on each level it takes.
* A **resting** limit order holds margin (linear: ``leaves * price / leverage``) or coin
  (spot: the quote a buy would pay, the base a sell would deliver) and fills in full, as
  maker, at its own price when the market moves through it: best ask at or below a buy's
  price, best bid at or above a sell's. The engine checks after every market advance.
* IOC cancels what did not fill at once; FOK fills in full or cancels without a fill;
  PostOnly that would take is cancelled with ``EC_PostOnlyWillTakeLiquidity``, as Bybit does
  (the create call itself succeeds).

Every change appends one ``("private", (api_key, [(topic, items), ...]))`` event: the
``order``, ``execution``, ``position`` and ``wallet`` messages of that change, in that order.
The WS workers deliver them to the account's authenticated connections.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ..bybit import errors, params, shapes
from ..bybit.errors import BybitError
from ..bybit.numbers import fmt
from ..config import InstrumentConfig, to_decimal
from ..market.markets import Markets
from . import stops
from .accounts import HEDGE_SIDES, ZERO, Account, Position, Valuation, notional
from .events import EventLog
from .funds import log_fill, trim_history
from .ledger import DEFAULT_LEVERAGE, apply_fill, fee_of, position_of
from .matching import filled_qty, walk
from .orders import Execution, Order, execution_item, order_item
from .stops import Leg
from .views import ExecutionView, OrderView

MAX_OPEN_ORDERS = 500
#: Untriggered conditional orders an account may have per symbol (a position's own TP/SL
#: and an entry's attached ones do not count)
MAX_CONDITIONAL_ORDERS = 10
_USER_STOPS = ("Stop", "tpslOrder")
DAY_MS = 86_400_000
_TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
_ORDER_FILTERS = ("Order", "StopOrder", "tpslOrder")
_MAX_SWEEP_PASSES = 8
#: most entries a batch call takes, per category
_BATCH_MAX = {"linear": 20, "inverse": 20, "spot": 10}
#: the categories bybit-mock trades (option is market data only), and its contract ones
TRADED = ("linear", "inverse", "spot")
CONTRACTS = ("linear", "inverse")
#: the Position attribute that shows each of a position's own stops
_POSITION_FIELDS = {"TakeProfit": "take_profit", "StopLoss": "stop_loss", "TrailingStop": "trailing_stop"}
_LINK_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _insufficient(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170131, "Insufficient balance.")
    return BybitError(errors.AB_NOT_ENOUGH, "ab not enough for new order")


def _not_found(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170213, "Order does not exist.")
    return BybitError(errors.ORDER_NOT_EXISTS, "order not exists or too late to cancel")


def _refuse_unmodelled(query: params.Params, category: str) -> None:
    """Refuse clearly what is not modelled (placing a plain order instead would surprise)."""
    if category == "spot":
        for name in ("takeProfit", "stopLoss"):
            if params.text(query, name) not in (None, "0"):
                raise errors.params_error(f"params error: {name} on spot orders is not supported by bybit-mock yet")


def _position_idx(query: params.Params, account: Account, inst: InstrumentConfig) -> int:
    """``positionIdx``, which must match the symbol's mode: 0 one-way, 1 or 2 hedge (10001)."""
    idx = params.integer(query, "positionIdx") or 0
    if inst.category == "spot":
        return 0
    if idx not in account.position_indices(inst.category, inst.symbol):
        raise errors.params_error("position idx not match position mode")
    return idx


def _order_filter(query: params.Params, default: str | None) -> str | None:
    """``orderFilter`` (``Order``, ``StopOrder``, ``tpslOrder``), checked."""
    kind = params.text(query, "orderFilter") or default
    if kind not in (None, *_ORDER_FILTERS):
        raise errors.params_error("params error: orderFilter invalid")
    return kind


def _flag(query: params.Params, name: str) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return False
    if isinstance(raw, bool):
        return raw
    if raw in (0, 1, "0", "1", "true", "false"):
        return raw in (1, "1", "true")
    raise errors.params_error(f"params error: {name} must be a boolean")


class OrderFilter(NamedTuple):
    """The order filters ``realtime``, ``history`` and ``execution/list`` share.

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
        category = params.category(query, ("linear", "spot", "inverse", "option"))
        kind = _order_filter(query, default_kind)
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
        if self.kind is not None and _filter_kind(o) != self.kind:
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


class Trading:
    # Provided by Exchange.
    accounts: dict[str, Account]
    instruments: dict[tuple[str, str], InstrumentConfig]
    events: EventLog
    markets: Markets
    _clock: Callable[[], int]
    _lock: threading.RLock
    _history_limit: int
    watched: frozenset[str]

    if TYPE_CHECKING:

        def _touch(self) -> None: ...
        def _account(self, api_key: str) -> Account: ...
        def _valuation(self, account: Account) -> Valuation: ...
        def _available(self, account: Account) -> Decimal: ...
        def _free_by_coin(self, account: Account) -> dict[str, Decimal]: ...
        def _flat(self, category: str, symbol: str, idx: int = 0) -> Position: ...
        def _position_json(self, pos: Position, inst: InstrumentConfig) -> dict[str, Any]: ...

    def _reset_trading(self) -> None:
        self.orders: dict[str, Order] = {}
        self.account_orders: dict[str, list[Order]] = {}
        self.link_ids: dict[tuple[str, str], Order] = {}
        self.resting: dict[tuple[str, str], dict[str, Order]] = {}
        #: per symbol, (best bid, best ask, rest count) at its last sweep: an unchanged top of
        #: book with no order rested since cannot cross anything new, so the sweep skips it
        self._swept: dict[tuple[str, str], tuple[int | None, int | None, int]] = {}
        self._rest_count = 0
        #: resting orders per (api key, category, symbol): the 500-open-orders check on every
        #: create must not scan the book
        self._open_counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        #: Untriggered orders per symbol, and (last price, arm count) at each symbol's last check
        self.triggers: dict[tuple[str, str], dict[str, Order]] = {}
        self._trigger_seen: dict[tuple[str, str], tuple[int, int]] = {}
        self._arm_count = 0
        #: a position's own TP/SL/trailing stop, by (api key, category, symbol, positionIdx)
        #: and stop type
        self.position_stops: dict[tuple[str, str, str, int], dict[str, Order]] = {}
        #: orders changed as a side effect (stops armed or cleared); the next push carries them
        self._side_changes: list[Order] = []
        self.executions: dict[str, list[Execution]] = {}
        self._exec_seq = itertools.count(1)
        self._ids_rng = random.Random()  # order ids: unique, not secret (os.urandom per id costs)
        self._spot_ids = itertools.count(1_900_000_000_000_000_000 + self._clock() % 10**9 * 1000)

    # -- order entry ------------------------------------------------------------------------

    def order_create(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        now = self._clock()
        account = self._account(api_key)
        order = self._new_order(account, query, now)
        inst = self.instruments[(order.category, order.symbol)]
        changes: list[Execution] = []
        if order.trigger_price:
            self._arm(account, inst, order)
        else:
            changes = self._execute(account, inst, order, now)
        self._register(order)
        self._emit(account, inst, [order], changes)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _new_order(self, account: Account, query: dict[str, Any], now: int) -> Order:
        """An ``order/create`` request, checked, as an order not yet placed."""
        api_key = account.api_key
        category = params.category(query, TRADED)
        inst = self._traded(category, params.required(query, "symbol"))
        side = params.required(query, "side")
        if side not in ("Buy", "Sell"):
            raise errors.params_error("params error: side invalid")
        order_type = params.required(query, "orderType")
        if order_type not in ("Market", "Limit"):
            raise errors.params_error("params error: orderType invalid")
        tif = params.text(query, "timeInForce") or "GTC"
        if tif not in _TIME_IN_FORCE:
            raise errors.params_error("params error: timeInForce invalid")
        if order_type == "Market":
            tif = "IOC"
        _refuse_unmodelled(query, category)
        link_id = params.text(query, "orderLinkId") or ""
        if len(link_id) > 36 or not _LINK_ID_CHARS.issuperset(link_id):
            raise errors.params_error("params error: orderLinkId invalid")
        if link_id and (api_key, link_id) in self.link_ids:
            raise BybitError(errors.DUPLICATE_ORDER_LINK_ID, "OrderLinkedID is duplicate")
        qty = params.decimal(query, "qty", required=True)
        assert qty is not None
        market_unit = ""
        if category == "spot" and order_type == "Market":
            market_unit = params.text(query, "marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin")
            if market_unit not in ("baseCoin", "quoteCoin"):
                raise errors.params_error("params error: marketUnit invalid")
        self._check_qty(inst, qty, order_type, market_unit == "quoteCoin")
        last = self.markets.models[(category, inst.symbol)].mark_price()
        price = ZERO
        if order_type == "Limit":
            price = params.decimal(query, "price", required=True) or ZERO
            self._check_price(inst, price)
            if category != "inverse" and market_unit == "" and qty * price < inst.min_notional:
                raise BybitError(110094, f"Order does not meet minimum order value {inst.min_notional}USDT")
        reduce_only = _flag(query, "reduceOnly")
        close_on_trigger = _flag(query, "closeOnTrigger")
        if (reduce_only or close_on_trigger) and category == "spot":
            raise errors.params_error("params error: reduceOnly is not supported for spot")
        idx = _position_idx(query, account, inst)
        # hedge mode: an order against its position's side (a Sell on the long) closes it
        closing = HEDGE_SIDES.get(idx, side) != side
        if self._open_counts[(api_key, category, inst.symbol)] >= MAX_OPEN_ORDERS:
            raise BybitError(110020, "Not allowed to have more than 500 active orders.")
        order = Order(
            order_id=self._new_order_id(category),
            link_id=link_id,
            api_key=api_key,
            category=category,
            symbol=inst.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only or close_on_trigger or closing,
            created_ms=now,
            last_price_on_created=last,
            market_unit=market_unit,
            updated_ms=now,
            close_on_trigger=close_on_trigger,
            position_idx=idx,
        )
        if category != "spot":
            order.tpsl = stops.tpsl_of(query, side, price or last)
        self._conditional(query, inst, order, last)
        return order

    def _conditional(self, query: dict[str, Any], inst: InstrumentConfig, order: Order, last: Decimal) -> None:
        """``triggerPrice`` (and spot's ``orderFilter``) make the order conditional."""
        if "triggerPrice" not in query and "orderFilter" not in query:  # most orders: no parsing
            return
        order_filter = _order_filter(query, "Order")
        trigger = stops.price_param(query, "triggerPrice") or ZERO
        if inst.category == "spot" and order_filter != "Order" and not trigger:
            raise errors.params_error(f"params error: triggerPrice is required for orderFilter {order_filter}")
        if not trigger:
            return
        self._check_price(inst, trigger)
        waiting = self.triggers.get((inst.category, inst.symbol), {}).values()
        mine = sum(1 for o in waiting if o.api_key == order.api_key and o.stop_order_type in _USER_STOPS)
        if mine >= MAX_CONDITIONAL_ORDERS:
            raise BybitError(110009, "The number of stop orders exceeds maximum limit allowed")
        order.trigger_price = trigger
        order.trigger_direction = stops.direction(query, trigger, last, required=inst.category != "spot")
        order.trigger_by = stops.trigger_by(query, "triggerBy")
        order.stop_order_type = "tpslOrder" if order_filter == "tpslOrder" else "Stop"

    def _execute(self, account: Account, inst: InstrumentConfig, order: Order, now: int) -> list[Execution]:
        """Match a new (or just triggered) order against the book: take, then rest or close it.

        ``order.qty`` is what was asked (quote units for a spot market order in ``quoteCoin``);
        it becomes the base quantity the book can give.
        """
        limit = order.price if order.order_type == "Limit" else None
        in_quote = order.market_unit == "quoteCoin"
        plan = self._walk(inst, order.side, order.qty, limit, in_quote)
        if order.order_type == "Market":
            # Bybit shows a market order's protection price; the worst level it may reach.
            order.price = plan[-1][0] if plan else self.markets.models[(inst.category, inst.symbol)].mark_price()
        if in_quote:
            order.qty = filled_qty(plan)
        if order.reduce_only:
            closable = _closable(account, inst, order)
            if closable <= 0:
                raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
            order.qty = min(order.qty, closable)
            plan = _truncate(plan, order.qty)
        self._check_funds(account, inst, order, plan)
        return self._take(account, inst, order, plan, now)

    def _walk(
        self, inst: InstrumentConfig, side: str, qty: Decimal, limit: Decimal | None, by_value: bool = False
    ) -> list[tuple[Decimal, Decimal]]:
        """The fills taking ``qty`` from the book's other side would get (the book is untouched)."""
        model = self.markets.models[(inst.category, inst.symbol)]
        book = model.book.asks if side == "Buy" else model.book.bids
        return walk(book, model.prices, model.sizes, qty, limit, by_value)

    def _take(
        self, account: Account, inst: InstrumentConfig, order: Order, plan: list[tuple[Decimal, Decimal]], now: int
    ) -> list[Execution]:
        """Fill ``plan`` as taker under the order's time in force, then rest or close the rest."""
        tif = order.time_in_force
        changes: list[Execution] = []
        if tif == "PostOnly" and plan:
            order.close(now, "UNKNOWN", "EC_PostOnlyWillTakeLiquidity")
        elif tif == "FOK" and filled_qty(plan) < order.qty:
            order.close(now, "UNKNOWN", "EC_FOKCannotFill" if plan else "EC_NoImmediateQtyToFill")
        elif order.qty <= 0:
            order.close(now, "UNKNOWN", "EC_NoImmediateQtyToFill")
        else:
            for fill_price, fill_qty in plan:
                changes.append(self._fill(account, inst, order, fill_qty, fill_price, False, now))
            if order.is_open:
                if tif in ("GTC", "PostOnly"):
                    self._rest(account, inst, order)
                else:
                    order.close(now, "UNKNOWN", "EC_NoImmediateQtyToFill" if not changes else "EC_NoError")
        return changes

    def order_amend(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        now, account, inst, order = self._open_order(api_key, query)
        qty = params.decimal(query, "qty")
        price = params.decimal(query, "price")
        trigger = stops.price_param(query, "triggerPrice")
        tp, sl = stops.price_param(query, "takeProfit"), stops.price_param(query, "stopLoss")
        if qty is None and price is None and not trigger and tp is None and sl is None:
            raise errors.params_error("params error: nothing to amend")
        if qty is not None:
            if order.stop_order_type in stops.POSITION_STOPS and not order.qty:
                raise errors.params_error("params error: a position's TP/SL closes all of it; it has no qty")
            self._check_qty(inst, qty, order.order_type, False)
            if qty <= order.cum_qty:
                raise BybitError(110012, "The new quantity is not above the filled quantity")
        if price is not None:
            if order.order_type != "Limit":
                raise errors.params_error("params error: a market order has no price to amend")
            self._check_price(inst, price)
        last = self.markets.models[(inst.category, inst.symbol)].mark_price()
        if trigger:
            if order.status != "Untriggered":
                raise errors.params_error("params error: triggerPrice can be amended only before the order triggers")
            self._check_price(inst, trigger)
            stops.check_direction(order.trigger_direction, trigger, last)
        tpsl = order.tpsl
        if tp is not None or sl is not None:
            if inst.category == "spot" or (tpsl is not None and tpsl.armed):
                raise errors.params_error(
                    "params error: TP/SL can be amended on a contract order before it fills; "
                    "a position's TP/SL is set with /v5/position/trading-stop"
                )
            tpsl = stops.amend_tpsl(tpsl, tp, sl, order.side, price or order.price or last)
        self._release(account, inst, order)
        before = (order.qty, order.price, order.trigger_price)
        order.qty = qty if qty is not None else order.qty
        order.price = price if price is not None else order.price
        order.trigger_price = trigger or order.trigger_price
        try:
            if order.status == "Untriggered":
                self._arm(account, inst, order)
            else:
                self._check_funds(account, inst, order, [])
        except BybitError:
            order.qty, order.price, order.trigger_price = before
            if order.status == "Untriggered":
                self._arm(account, inst, order)
            else:
                self._rest(account, inst, order)
            raise
        order.tpsl = tpsl
        order.updated_ms = now
        changes: list[Execution] = []
        if order.is_active:  # a resting (GTC or PostOnly) order: a new price may take now
            plan = _truncate(self._walk(inst, order.side, order.leaves_qty, order.price), order.leaves_qty)
            changes = self._take(account, inst, order, plan, now)
        self._emit(account, inst, [order], changes)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def order_cancel(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        now, account, inst, order = self._open_order(api_key, query)
        self._release(account, inst, order)
        order.close(now)
        self._emit(account, inst, [order], [])
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def order_cancel_all(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        account = self._account(api_key)
        category = params.category(query, TRADED)
        # spot cancels plain orders unless told otherwise; contracts every kind
        which = OrderFilter.of(query, "Order" if category == "spot" else None)
        which = which._replace(order_id=None, link_id=None).scoped()
        cancelled = [
            o
            for books in (self.resting, self.triggers)
            for book in books.values()
            for o in book.values()
            if o.api_key == api_key and which.matches(o, self.instruments)
        ]
        cancelled.sort(key=lambda o: o.created_ms)
        by_symbol: dict[str, list[Order]] = {}
        for order in cancelled:
            inst = self.instruments[(category, order.symbol)]
            self._release(account, inst, order)
            order.close(now)
            by_symbol.setdefault(order.symbol, []).append(order)
        for sym, orders in by_symbol.items():
            self._emit(account, self.instruments[(category, sym)], orders, [])
        items = [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in cancelled]
        return {"list": items, "success": "1"}

    def order_batch(self, op: str, api_key: str, query: dict[str, Any]) -> tuple[bytes, bytes]:
        """``/v5/order/{create,amend,cancel}-batch``: each entry as its single call, each answered.

        Returns the encoded ``result`` and ``retExtInfo`` (one ``{code, msg}`` per entry).
        """
        category = params.category(query, TRADED)
        entries = query.get("request")
        if not isinstance(entries, list) or not entries:
            raise errors.params_error("params error: request must be a non-empty list")
        most = _BATCH_MAX[category]
        if len(entries) > most:
            raise errors.params_error(f"params error: a {category} batch takes at most {most} orders")
        single = {"create": self.order_create, "amend": self.order_amend, "cancel": self.order_cancel}[op]
        items: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        for entry in entries:
            result, code, msg = {"orderId": "", "orderLinkId": ""}, 0, "OK"
            try:
                if not isinstance(entry, dict):
                    raise errors.params_error("params error: each request entry must be an object")
                result = single(api_key, entry | {"category": category})
            except BybitError as exc:
                code, msg = exc.code, exc.msg
            item = {"category": category, "symbol": entry.get("symbol", "") if isinstance(entry, dict) else ""}
            item |= result
            if op == "create":
                item["createAt"] = str(self._clock()) if code == 0 else ""
            items.append(item)
            outcomes.append({"code": code, "msg": msg})
        return orjson.dumps({"list": items}), orjson.dumps({"list": outcomes})

    # -- position settings ------------------------------------------------------------------

    def set_leverage(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/set-leverage``: buy and sell leverage are equal (cross margin);
        in hedge mode both of the symbol's positions take it."""
        account = self._account(api_key)
        category = params.category(query, CONTRACTS)
        inst = self._traded(category, params.required(query, "symbol"))
        buy = params.decimal(query, "buyLeverage", required=True)
        sell = params.decimal(query, "sellLeverage", required=True)
        assert buy is not None and sell is not None
        if buy != sell:
            raise errors.params_error("params error: buyLeverage must equal sellLeverage in cross margin mode")
        if not 1 <= buy <= inst.max_leverage or buy % Decimal("0.01"):
            raise errors.params_error(f"params error: leverage must be in [1, {fmt(inst.max_leverage)}]")
        now = self._clock()
        positions = [position_of(account, inst, now, i) for i in account.position_indices(category, inst.symbol)]
        if all(pos.leverage == buy for pos in positions):
            raise BybitError(110043, "Set leverage not modified")
        before = [(pos, pos.leverage) for pos in positions]
        self._relever(account, inst, [(pos, buy) for pos in positions])
        valuation = self._valuation(account)
        if valuation.unclipped_available < 0:
            self._relever(account, inst, before)
            raise BybitError(110044, "Available margin is insufficient")
        for pos in positions:
            pos.updated_ms = now
        self._emit(account, inst, [], [])
        return {}

    def _relever(self, account: Account, inst: InstrumentConfig, changes: list[tuple[Position, Decimal]]) -> None:
        """New leverage: the positions' margin and their open orders' holds follow."""
        for pos, leverage in changes:
            pos.leverage = leverage
        for order in list(self.resting.get((inst.category, inst.symbol), {}).values()):
            if order.api_key == account.api_key:
                self._release(account, inst, order)
                self._rest(account, inst, order)
        self._touch()

    def switch_mode(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/switch-mode``: one-way (0) or hedge (3), by symbol or settle coin.

        A symbol switches only with no position and no open order (110024, 110028); by coin,
        the symbols that can switch do and the others stay, as Bybit does. Inverse contracts
        are one-way only in the unified account (110029).
        """
        account = self._account(api_key)
        category = params.category(query, CONTRACTS)
        mode = params.integer(query, "mode")
        if mode not in (0, 3):
            raise errors.params_error("params error: mode must be 0 or 3")
        hedge = mode == 3
        symbol, coin = params.text(query, "symbol"), params.text(query, "coin")
        if symbol is None and coin is None:
            raise errors.params_error("params error: symbol or coin is required")
        if hedge and category == "inverse":
            raise BybitError(110029, "Hedge mode is not available for this symbol")
        if symbol is not None:  # a symbol takes priority over a coin
            inst = self._traded(category, symbol)
            if ((category, symbol) in account.hedged) == hedge:
                raise BybitError(110025, "Position mode is not modified")
            if _holds_position(account, inst):
                raise BybitError(110024, "You have an existing position, so position mode cannot be switched")
            if self._has_open_orders(account, inst):
                raise BybitError(110028, "Open orders exist, so you cannot change position mode")
            self._switch(account, inst, hedge)
            return {}
        for inst in [i for i in self.instruments.values() if i.category == category and i.settle_coin == coin]:
            if not _holds_position(account, inst) and not self._has_open_orders(account, inst):
                self._switch(account, inst, hedge)
        return {}

    def _has_open_orders(self, account: Account, inst: InstrumentConfig) -> bool:
        ident = (inst.category, inst.symbol)
        return any(
            o.api_key == account.api_key for book in (self.resting, self.triggers) for o in book.get(ident, {}).values()
        )

    def _switch(self, account: Account, inst: InstrumentConfig, hedge: bool) -> None:
        """Flat positions of the old mode give way to the new mode's, at the same leverage."""
        now = self._clock()
        old = [account.positions.pop((inst.category, inst.symbol, i), None) for i in (0, 1, 2)]
        leverage = next((p.leverage for p in old if p is not None), DEFAULT_LEVERAGE)
        (account.hedged.add if hedge else account.hedged.discard)((inst.category, inst.symbol))
        for idx in account.position_indices(inst.category, inst.symbol):
            position_of(account, inst, now, idx).leverage = leverage
        self._touch()

    # -- queries ----------------------------------------------------------------------------

    def order_realtime(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = OrderFilter.of(query).scoped()
        category = which.category
        open_only = params.integer(query, "openOnly") or 0
        by_id = which.order_id is not None or which.link_id is not None
        orders = [
            o
            for o in reversed(self.account_orders.get(api_key, []))
            if which.matches(o, self.instruments) and (by_id or (o.is_open if open_only == 0 else not o.is_open))
        ]
        if open_only and not by_id:
            orders = orders[:500]
        return self._order_page(orders, query, category, 50)

    def order_history(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = OrderFilter.of(query)
        category = which.category
        status = params.text(query, "orderStatus")
        start, end = self._window(query)
        orders = [
            o
            for o in reversed(self.account_orders.get(api_key, []))
            if which.matches(o, self.instruments)
            and (status is None or o.status == status)
            and start <= o.created_ms <= end
        ]
        return self._order_page(orders, query, category, 50)

    def execution_list(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = OrderFilter.of(query)
        category = which.category
        exec_type = params.text(query, "execType")
        start, end = self._window(query)
        found = [
            e
            for e in reversed(self.executions.get(api_key, []))
            if which.matches(e.order, self.instruments) and exec_type in (None, "Trade") and start <= e.time_ms <= end
        ]
        chunk, cursor = params.page(found, query, default=50, maximum=100)
        items = [execution_item(e, self.instruments[(e.order.category, e.order.symbol)]) for e in chunk]
        return {"nextPageCursor": cursor, "category": category, "list": items}

    def _order_page(self, orders: list[Order], query: dict[str, Any], category: str, maximum: int) -> dict[str, Any]:
        chunk, cursor = params.page(orders, query, default=20, maximum=maximum)
        items = [order_item(o, self.instruments[(o.category, o.symbol)]) for o in chunk]
        return {"nextPageCursor": cursor, "category": category, "list": items}

    def _window(self, query: dict[str, Any], days: int = 7) -> tuple[int, int]:
        """``startTime``/``endTime`` with Bybit's span rule (default: the last ``days`` days)."""
        start, end = params.integer(query, "startTime"), params.integer(query, "endTime")
        span = days * DAY_MS
        if start is not None and end is not None and end - start > span:
            raise errors.params_error(
                f"params error: The time range between startTime and endTime cannot exceed {days} days"
            )
        if end is None:
            end = start + span if start is not None else self._clock()
        if start is None:
            start = end - span
        return start, end

    # -- resting orders ---------------------------------------------------------------------

    def _sweep(self, now_ms: int) -> None:
        """Trigger the conditional orders the price reached and fill every resting order the
        market has moved through (after each market advance).

        A fill can arm new stops (an entry's TP/SL) and a trigger can rest a new order, so
        passes repeat until nothing changes (bounded: each pass needs a new order to go on).
        """
        for _ in range(_MAX_SWEEP_PASSES):
            counts = (self._arm_count, self._rest_count)
            for ident, pending in list(self.triggers.items()):
                if pending:
                    self._check_triggers(ident, pending, now_ms)
            for ident, book in list(self.resting.items()):
                if book:
                    self._check_resting(ident, book, now_ms)
            if counts == (self._arm_count, self._rest_count):
                return

    def _check_resting(self, ident: tuple[str, str], book: dict[str, Order], now_ms: int) -> None:
        model = self.markets.models[ident]
        ask, bid = model.book.asks.best_tick(), model.book.bids.best_tick()
        seen = (bid, ask, self._rest_count)
        if self._swept.get(ident) == seen:
            return
        self._swept[ident] = seen
        best_ask = model.prices.decimal(ask) if ask is not None else None
        best_bid = model.prices.decimal(bid) if bid is not None else None
        crossed = [
            o
            for o in book.values()
            if (o.side == "Buy" and best_ask is not None and best_ask <= o.price)
            or (o.side == "Sell" and best_bid is not None and best_bid >= o.price)
        ]
        for order in sorted(crossed, key=lambda o: o.created_ms):
            if order.is_active:  # an earlier fill may have cancelled it (its position closed)
                self._fill_resting(order, order.leaves_qty, order.price, now_ms)

    def _check_triggers(self, ident: tuple[str, str], pending: dict[str, Order], now_ms: int) -> None:
        model = self.markets.models[ident]
        seen = (model.last_tick, self._arm_count)
        if self._trigger_seen.get(ident) == seen:
            return
        self._trigger_seen[ident] = seen
        last = model.mark_price()
        due = []
        for order in pending.values():
            if order.trailing:
                stops.trail(order, last)
            if stops.crossed(order, last):
                due.append(order)
        for order in sorted(due, key=lambda o: o.created_ms):
            if order.status == "Untriggered":  # an earlier trigger may have cleared it
                self._trigger(order, now_ms)

    def _trigger(self, order: Order, now_ms: int) -> None:
        """The price reached a conditional order: it becomes live and executes like a new one."""
        account = self.accounts[order.api_key]
        inst = self.instruments[(order.category, order.symbol)]
        self._release(account, inst, order)
        order.trigger(now_ms)
        order.create_type = stops.CREATE_TYPES.get(order.stop_order_type, order.create_type)
        if not order.qty:  # a position's TP/SL: all of it
            order.qty = _closable(account, inst, order)
        if account.api_key in self.watched:  # Bybit pushes the instantaneous Triggered state
            order.status = "Triggered"
            self._emit(account, inst, [order], [])
            order.status = "New"
        changes: list[Execution] = []
        try:
            changes = self._execute(account, inst, order, now_ms)
        except BybitError as exc:
            # what a new order would be refused for ends a triggered one
            reason = "EC_ReduceOnlyNoPosition" if exc.code == 110017 else "EC_InsufficientBalance"
            if order.is_open:
                order.close(now_ms, "UNKNOWN", reason)
        self._emit(account, inst, [order], changes)

    def _arm(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Put a conditional order in wait for its trigger price.

        It holds nothing (Bybit takes margin when it triggers), except a spot ``tpslOrder``,
        which holds its coin from the start.
        """
        order.status = "Untriggered"
        if order.stop_order_type == "tpslOrder":
            ref = order.price or order.trigger_price
            qty = order.qty / ref if order.market_unit == "quoteCoin" else order.qty
            needed = self._needed(account, inst, order, qty, ref)
            bal = account.coin(_spent_coin(inst, order.side))
            if needed > bal.wallet - bal.locked:
                raise _insufficient("spot")
            order.held = needed
            bal.locked += needed
        self.triggers.setdefault((inst.category, inst.symbol), {})[order.order_id] = order
        self._arm_count += 1
        self._touch()

    def _fill_resting(self, order: Order, qty: Decimal, price: Decimal, now_ms: int) -> None:
        account = self.accounts[order.api_key]
        inst = self.instruments[(order.category, order.symbol)]
        self._release(account, inst, order)
        if order.reduce_only:
            qty = min(qty, _closable(account, inst, order))
        changes: list[Execution] = []
        if qty > 0:
            changes.append(self._fill(account, inst, order, qty, price, True, now_ms))
        if order.is_open:
            if order.reduce_only and not changes:
                order.close(now_ms, "CancelByReduceOnly", "EC_ReduceOnlyNoPosition")
            else:
                self._rest(account, inst, order)
        self._emit(account, inst, [order], changes)

    # -- state API (tests) ------------------------------------------------------------------

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[OrderView]:
        with self._lock:
            self._account(api_key)
            found = [o for o in self.account_orders.get(api_key, []) if o.is_open and symbol in (None, o.symbol)]
            return [_order_view(o) for o in found]

    def order(self, api_key: str, order_id: str | None = None, order_link_id: str | None = None) -> OrderView | None:
        with self._lock:
            found = self.orders.get(order_id) if order_id else self.link_ids.get((api_key, order_link_id or ""))
            return _order_view(found) if found is not None and found.api_key == api_key else None

    def executions_between(
        self, api_key: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[ExecutionView]:
        """Fills in time order, ``start_ms <= execTime <= end_ms`` (either bound optional)."""
        with self._lock:
            return [
                _execution_view(e)
                for e in self.executions.get(api_key, [])
                if (start_ms is None or e.time_ms >= start_ms) and (end_ms is None or e.time_ms <= end_ms)
            ]

    def fill_order(
        self,
        api_key: str,
        order_id: str,
        qty: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> None:
        """Fill an open order (all of it by default) at ``price`` (its own by default), as maker.

        Money, position and the private pushes move exactly as for a market-driven fill.
        """
        with self._lock:
            order = self.orders.get(order_id)
            if order is None or order.api_key != api_key:
                raise ValueError(f"no order {order_id!r} for this account")
            if not order.is_active:
                raise ValueError(f"order {order_id} is {order.status}; only live (triggered) orders can fill")
            amount = order.leaves_qty if qty is None else to_decimal(qty, "qty")
            if not ZERO < amount <= order.leaves_qty:
                raise ValueError(f"qty must be in (0, {order.leaves_qty}]")
            at = order.price if price is None else to_decimal(price, "price")
            if at <= 0:
                raise ValueError("price must be > 0")
            self._fill_resting(order, amount, at, self._clock())

    # -- mechanics --------------------------------------------------------------------------

    def _fill(
        self,
        account: Account,
        inst: InstrumentConfig,
        order: Order,
        qty: Decimal,
        price: Decimal,
        maker: bool,
        now: int,
    ) -> Execution:
        rate = inst.maker_fee if maker else inst.taker_fee
        fee = fee_of(inst, order.side, qty, price, rate)
        seq = next(self._exec_seq)
        key = (inst.category, inst.symbol, order.position_idx)
        held = account.positions.get(key)
        side_before = held.side if held is not None and held.size else ""
        result = apply_fill(account, inst, order.side, qty, price, fee, now, seq, order.position_idx)
        order_price = order.price
        order.fill(qty, price, fee, now)
        order.fee_coin = result.fee_coin
        order.closed_pnl += result.pnl - fee if result.closed_size else ZERO
        model = self.markets.models[(inst.category, inst.symbol)]
        execution = Execution(
            exec_id=_uuid4(self._ids_rng),
            order=order,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            fee_coin=result.fee_coin,
            is_maker=maker,
            time_ms=now,
            mark_price=model.mark_price(),
            closed_size=result.closed_size,
            pnl=result.pnl,
            seq=seq,
            order_qty=order.qty,
            order_price=order_price,
            leaves_qty=order.leaves_qty,
        )
        fills = self.executions.setdefault(account.api_key, [])
        fills.append(execution)
        trim_history(fills, self._history_limit)
        log_fill(account, inst, execution, result)
        trim_history(account.log, self._history_limit)
        if inst.category != "spot":
            pos = account.positions[key]
            if side_before and (not pos.size or pos.side != side_before):
                self._clear_stops(account, inst, pos, now)  # closed or flipped: its TP/SL go
            # an entry's TP/SL protect a position on its side (not one it only reduced)
            if order.tpsl is not None and not order.tpsl.armed and pos.size and pos.side == order.side:
                self._arm_tpsl(account, inst, pos, order, now)
        self._touch()
        return execution

    # -- TP/SL ------------------------------------------------------------------------------

    def trading_stop(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/trading-stop``: a position's TP, SL and trailing stop ("0" clears)."""
        now = self._clock()
        account = self._account(api_key)
        category = params.category(query, CONTRACTS)
        inst = self._traded(category, params.required(query, "symbol"))
        pos = account.positions.get((category, inst.symbol, _position_idx(query, account, inst)))
        if pos is None or not pos.size:
            raise errors.params_error("can not set tp/sl/ts for zero position")
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
        last = self.markets.models[(category, inst.symbol)].mark_price()
        for kind, value, prefix in (("TakeProfit", tp, "tp"), ("StopLoss", sl, "sl")):
            if value is None:
                continue
            if value:
                stops.check_stop_price(kind, value, pos.side, last)
            by = stops.trigger_by(query, f"{prefix}TriggerBy")
            if mode == "Full":
                self._set_stop(account, inst, pos, Leg(kind, value, by), now)
                continue
            size = params.decimal(query, f"{prefix}Size", required=bool(value)) or ZERO
            order_type = params.text(query, f"{prefix}OrderType") or "Market"
            if order_type not in ("Market", "Limit"):
                raise errors.params_error(f"params error: {prefix}OrderType invalid")
            limit = params.decimal(query, f"{prefix}LimitPrice", required=order_type == "Limit") or ZERO
            if value:
                self._check_qty(inst, size, order_type, False)
                self._place_stop(account, inst, pos, Leg("Partial" + kind, value, by, size, order_type, limit), now)
            else:  # "0" in Partial mode removes that side's partial stops
                self._clear_stops(account, inst, pos, now, ("Partial" + kind,))
        if ts is not None:
            self._set_stop(account, inst, pos, Leg("TrailingStop", ZERO, "LastPrice", trailing=ts), now)
        pos.updated_ms = now
        self._touch()
        self._emit(account, inst, [], [])
        return {}

    def _arm_tpsl(self, account: Account, inst: InstrumentConfig, pos: Position, entry: Order, now: int) -> None:
        """An entry order's first fill: its TP/SL now protect the position."""
        t = entry.tpsl
        assert t is not None
        t.armed = True
        legs = (
            ("TakeProfit", t.take_profit, t.tp_trigger_by, t.tp_order_type, t.tp_limit_price),
            ("StopLoss", t.stop_loss, t.sl_trigger_by, t.sl_order_type, t.sl_limit_price),
        )
        for kind, price, by, order_type, limit in legs:
            if not price:
                continue
            if t.mode == "Full":
                self._set_stop(account, inst, pos, Leg(kind, price, by), now)
            else:
                leg = Leg("Partial" + kind, price, by, entry.qty, order_type, limit)
                self._place_stop(account, inst, pos, leg, now)

    def _set_stop(self, account: Account, inst: InstrumentConfig, pos: Position, leg: Leg, now: int) -> None:
        """Replace the position's own TP, SL or trailing stop (a 0 price or distance removes it)."""
        mine = self.position_stops.setdefault((account.api_key, inst.category, inst.symbol, pos.position_idx), {})
        kind, trailing = leg.kind, leg.trailing
        old = mine.pop(kind, None)
        if old is not None and old.is_open:
            self._release(account, inst, old)
            old.close(now)
            self._side_changes.append(old)
        setattr(pos, _POSITION_FIELDS[kind], trailing or leg.trigger)
        if trailing:  # the trigger starts one distance from the price, on the losing side
            last = self.markets.models[(inst.category, inst.symbol)].mark_price()
            leg = leg._replace(trigger=last - trailing if pos.side == "Buy" else last + trailing)
        if leg.trigger > 0:
            mine[kind] = self._place_stop(account, inst, pos, leg, now)

    def _place_stop(self, account: Account, inst: InstrumentConfig, pos: Position, leg: Leg, now: int) -> Order:
        """A reduce-only stop that closes ``leg.qty`` of the position (0: all of it) at its trigger."""
        order = Order(
            order_id=self._new_order_id(inst.category),
            link_id="",
            api_key=account.api_key,
            category=inst.category,
            symbol=inst.symbol,
            side="Sell" if pos.side == "Buy" else "Buy",
            order_type=leg.order_type,
            qty=leg.qty,
            price=leg.limit,
            time_in_force="GTC" if leg.order_type == "Limit" else "IOC",
            reduce_only=True,
            created_ms=now,
            last_price_on_created=self.markets.models[(inst.category, inst.symbol)].mark_price(),
            updated_ms=now,
            trigger_price=leg.trigger,
            trigger_direction=stops.stop_direction(leg.kind, pos.side),
            trigger_by=leg.by,
            stop_order_type=leg.kind,
            close_on_trigger=True,
            trailing=leg.trailing,
            position_idx=pos.position_idx,
        )
        self._register(order)
        self._arm(account, inst, order)
        self._side_changes.append(order)
        return order

    def _clear_stops(
        self,
        account: Account,
        inst: InstrumentConfig,
        pos: Position,
        now: int,
        kinds: Collection[str] = stops.POSITION_STOPS,
    ) -> None:
        """Deactivate a position's stops (it closed or flipped, or the user removed them)."""
        ident = (inst.category, inst.symbol)
        for order in list(self.triggers.get(ident, {}).values()):
            owned = order.api_key == account.api_key and order.position_idx == pos.position_idx
            if owned and order.stop_order_type in kinds:
                self._release(account, inst, order)
                order.close(now, "CancelByTpSlTsClear")
                self._side_changes.append(order)
        mine = self.position_stops.get((account.api_key, *ident, pos.position_idx), {})
        for kind in list(mine):
            if kind in kinds:
                del mine[kind]
                setattr(pos, _POSITION_FIELDS[kind], ZERO)

    def _rest(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Put an open order on the book and hold what it may spend."""
        order.held = self._needed(account, inst, order, order.leaves_qty, order.price)
        if inst.category == "spot":
            account.coin(_spent_coin(inst, order.side)).locked += order.held
        else:
            account.coin(inst.settle_coin).order_im += order.held
        book = self.resting.setdefault((inst.category, inst.symbol), {})
        if order.order_id not in book:
            self._open_counts[(order.api_key, inst.category, inst.symbol)] += 1
        book[order.order_id] = order
        self._rest_count += 1
        self._touch()

    def _release(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Take an order off the book and give back what it held."""
        ident = (inst.category, inst.symbol)
        if self.resting.get(ident, {}).pop(order.order_id, None) is not None:
            self._open_counts[(order.api_key, *ident)] -= 1
        self.triggers.get(ident, {}).pop(order.order_id, None)
        if order.held:
            if inst.category == "spot":
                account.coin(_spent_coin(inst, order.side)).locked -= order.held
            else:
                account.coin(inst.settle_coin).order_im -= order.held
            order.held = ZERO
        self._touch()

    def _needed(self, account: Account, inst: InstrumentConfig, order: Order, qty: Decimal, price: Decimal) -> Decimal:
        """What ``qty`` more of this order at ``price`` may cost: coin for spot, initial margin for linear."""
        if inst.category == "spot":
            if order.side == "Sell":
                return qty
            return qty * price * (1 + inst.taker_fee)
        if order.reduce_only:
            return ZERO
        pos = account.positions.get((inst.category, inst.symbol, order.position_idx))
        opening = qty
        if pos is not None and pos.size and pos.side != order.side:
            opening = max(ZERO, qty - pos.size)  # the part that closes needs no margin
        leverage = pos.leverage if pos is not None else DEFAULT_LEVERAGE
        value = notional(inst.category, opening, price)
        return value / leverage + value * inst.taker_fee

    def _check_funds(
        self, account: Account, inst: InstrumentConfig, order: Order, plan: list[tuple[Decimal, Decimal]]
    ) -> None:
        if inst.category == "spot":
            bal = account.coin(_spent_coin(inst, order.side))
            available = bal.wallet - bal.locked
            if order.order_type == "Market":
                if order.side == "Buy":
                    needed = sum((p * q for p, q in plan), ZERO) * (1 + inst.taker_fee)
                else:
                    needed = filled_qty(plan)
            else:
                needed = self._needed(account, inst, order, order.leaves_qty, order.price)
            if needed > available:
                raise _insufficient("spot")
            return
        if order.order_type == "Market":
            worst = plan[-1][0] if plan else order.last_price_on_created
            needed = self._needed(account, inst, order, order.qty, worst)
        else:
            needed = self._needed(account, inst, order, order.leaves_qty, order.price)
        if needed <= 0:
            return
        if inst.category == "inverse":  # margined by its own coin
            if needed > self._free_by_coin(account).get(inst.settle_coin, ZERO):
                raise _insufficient(inst.category)
        elif needed > self._available(account):
            raise _insufficient(inst.category)

    def _register(self, order: Order) -> None:
        self.orders[order.order_id] = order
        mine = self.account_orders.setdefault(order.api_key, [])
        mine.append(order)
        if order.link_id:
            self.link_ids[(order.api_key, order.link_id)] = order
        if len(mine) > self._history_limit + self._history_limit // 10:  # pruned in chunks
            self._forget_closed_orders(order.api_key)

    def _forget_closed_orders(self, api_key: str) -> None:
        """Drop the account's oldest closed orders down to ``history_limit`` (open ones stay)."""
        orders = self.account_orders[api_key]
        excess = len(orders) - self._history_limit
        kept: list[Order] = []
        for o in orders:
            if excess > 0 and not o.is_open:
                excess -= 1
                del self.orders[o.order_id]
                if o.link_id and self.link_ids.get((api_key, o.link_id)) is o:
                    del self.link_ids[(api_key, o.link_id)]
            else:
                kept.append(o)
        self.account_orders[api_key] = kept

    def _open_order(self, api_key: str, query: dict[str, Any]) -> tuple[int, Account, InstrumentConfig, Order]:
        """The open order an amend or cancel names (110001 if none), with its account and instrument."""
        account = self._account(api_key)
        category = params.category(query, TRADED)
        inst = self._traded(category, params.required(query, "symbol"))
        order = self._find(api_key, category, inst.symbol, query)
        if not order.is_open:
            raise _not_found(category)
        return self._clock(), account, inst, order

    def _find(self, api_key: str, category: str, symbol: str, query: dict[str, Any]) -> Order:
        order_id, link_id = params.text(query, "orderId"), params.text(query, "orderLinkId")
        if order_id is None and link_id is None:
            raise errors.params_error("params error: orderId or orderLinkId is required")
        order = self.orders.get(order_id) if order_id is not None else self.link_ids.get((api_key, link_id or ""))
        if order is None or order.api_key != api_key or order.category != category or order.symbol != symbol:
            raise _not_found(category)
        return order

    def _new_order_id(self, category: str) -> str:
        return str(next(self._spot_ids)) if category == "spot" else _uuid4(self._ids_rng)

    def _traded(self, category: str, symbol: str) -> InstrumentConfig:
        inst = self.instruments.get((category, symbol))
        if inst is None:
            raise BybitError(10001, f"params error: symbol invalid: {symbol}")
        return inst

    def _check_qty(self, inst: InstrumentConfig, qty: Decimal, order_type: str, in_quote: bool) -> None:
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

    def _check_price(self, inst: InstrumentConfig, price: Decimal) -> None:
        if price <= 0 or price > inst.max_price:
            raise errors.params_error("params error: price out of range")
        if price % inst.tick_size:
            raise errors.params_error(f"params error: price must be a multiple of tickSize {inst.tick_size}")

    # -- events -----------------------------------------------------------------------------

    def _emit(self, account: Account, inst: InstrumentConfig, orders: list[Order], fills: list[Execution]) -> None:
        """One private event per change: order, execution, position and wallet messages."""
        side, self._side_changes = self._side_changes, []
        if account.api_key not in self.watched:
            return
        orders = orders + [o for o in side if o not in orders]
        messages: list[tuple[str, list[dict[str, Any]]]] = []
        if orders:
            messages.append(("order", [order_item(o, inst, stream=True) for o in orders]))
        if fills:
            messages.append(("execution", [execution_item(e, inst, stream=True) for e in fills]))
        if inst.category != "spot":  # the positions these orders trade (none named: every side)
            held = account.position_indices(inst.category, inst.symbol)
            named = sorted({o.position_idx for o in orders} & set(held))
            items = []
            for idx in named or held:  # read, never created: a push has no side effects
                pos = account.positions.get((inst.category, inst.symbol, idx))
                item = self._position_json(pos or self._flat(inst.category, inst.symbol, idx), inst)
                item["entryPrice"] = item.pop("avgPrice")
                item["category"] = inst.category
                items.append(item)
            messages.append(("position", items))
        messages.append(self._wallet_message(account))
        self.events.append("private", (account.api_key, messages))

    def _emit_wallet(self, account: Account) -> None:
        """A wallet-only push: money moved without an order (a transfer, a margin-mode change)."""
        if account.api_key in self.watched:
            self.events.append("private", (account.api_key, [self._wallet_message(account)]))

    def _wallet_message(self, account: Account) -> tuple[str, list[dict[str, Any]]]:
        valuation = self._valuation(account)
        coins = [c for c in valuation.coins if c.wallet_balance or c.equity or c.locked or c.order_im]
        return ("wallet", [shapes.wallet_account(valuation, coins)])


def _order_view(o: Order) -> OrderView:
    return OrderView(
        o.order_id,
        o.link_id,
        o.category,
        o.symbol,
        o.side,
        o.order_type,
        o.time_in_force,
        o.status,
        o.qty,
        o.price,
        o.cum_qty,
        o.avg_price,
        o.cum_fee,
        o.reduce_only,
        o.created_ms,
        o.updated_ms,
    )


def _execution_view(e: Execution) -> ExecutionView:
    o = e.order
    return ExecutionView(
        e.exec_id,
        o.order_id,
        o.link_id,
        o.category,
        o.symbol,
        o.side,
        e.price,
        e.qty,
        e.fee,
        e.fee_coin,
        e.is_maker,
        e.closed_size,
        e.pnl,
        e.time_ms,
    )


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID string like ``uuid.uuid4()``'s, from ``rng`` (a quarter of its cost)."""
    n = rng.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48) | (0x4000 << 64 | 0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _filter_kind(o: Order) -> str:
    """The ``orderFilter`` an order answers to."""
    if not o.stop_order_type:
        return "Order"
    return "tpslOrder" if o.stop_order_type == "tpslOrder" else "StopOrder"


def _spent_coin(inst: InstrumentConfig, side: str) -> str:
    """The coin a spot order pays with: quote for a buy, base for a sell."""
    return inst.quote_coin if side == "Buy" else inst.base_coin


def _holds_position(account: Account, inst: InstrumentConfig) -> bool:
    """Whether any of the account's positions in this instrument (either mode's) is open."""
    return any(p.size for key, p in account.positions.items() if key[:2] == (inst.category, inst.symbol))


def _closable(account: Account, inst: InstrumentConfig, order: Order) -> Decimal:
    """How much of its position an order can reduce (0 if flat or on the same side)."""
    pos = account.positions.get((inst.category, inst.symbol, order.position_idx))
    return pos.size if pos is not None and pos.size and pos.side != order.side else ZERO


def _truncate(plan: list[tuple[Decimal, Decimal]], qty: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The first ``qty`` of a fill plan."""
    out: list[tuple[Decimal, Decimal]] = []
    left = qty
    for price, q in plan:
        if left <= 0:
            break
        take = min(q, left)
        out.append((price, take))
        left -= take
    return out
