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

import itertools
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from ..bybit import errors, params, shapes
from ..bybit.errors import BybitError
from ..bybit.numbers import fmt, parse_decimal
from ..config import InstrumentConfig, to_decimal
from ..market.markets import Markets
from .accounts import ZERO, Account, Position, Valuation
from .events import EventLog
from .ledger import DEFAULT_LEVERAGE, apply_fill, fee_of, position_of
from .matching import filled_qty, walk
from .orders import Execution, Order, execution_item, order_item
from .views import ExecutionView, OrderView

MAX_OPEN_ORDERS = 500
DAY_MS = 86_400_000
_TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
_LINK_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _insufficient(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170131, "Insufficient balance.")
    return BybitError(errors.AB_NOT_ENOUGH, "ab not enough for new order")


def _not_found(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170213, "Order does not exist.")
    return BybitError(errors.ORDER_NOT_EXISTS, "order not exists or too late to cancel")


def _decimal(query: params.Params, name: str, required: bool = False) -> Decimal | None:
    raw = query.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.params_error(f"params error: {name} is required")
        return None
    value = parse_decimal(raw)
    if value is None:
        raise errors.params_error(f"params error: {name} invalid")
    return value


def _refuse_conditional(query: params.Params) -> None:
    """Conditional and TP/SL orders are not modelled yet: refuse them clearly.

    Placing a plain order instead would, for a stop, fill at once: worse than an error.
    """
    for name in ("triggerPrice", "takeProfit", "stopLoss", "trailingStop"):
        if params.text(query, name) not in (None, "0"):
            raise errors.params_error(
                f"params error: {name} (conditional and TP/SL orders) is not supported by bybit-mock yet"
            )


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

    @classmethod
    def of(cls, query: params.Params) -> OrderFilter:
        category = params.category(query, ("linear", "spot", "inverse", "option"))
        texts = (params.text(query, k) for k in ("symbol", "baseCoin", "settleCoin", "orderId", "orderLinkId"))
        return cls(category, *texts)

    def scoped(self) -> OrderFilter:
        """Linear needs ``symbol``, ``baseCoin`` or ``settleCoin`` (realtime, cancel-all): 10001 otherwise."""
        if self.category == "linear" and self.symbol is None and self.base is None and self.settle is None:
            raise errors.params_error("params error: symbol, baseCoin or settleCoin is required")
        return self

    def matches(self, o: Order, instruments: dict[tuple[str, str], InstrumentConfig]) -> bool:
        if o.category != self.category or self.symbol not in (None, o.symbol):
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
    watched: frozenset[str]

    if TYPE_CHECKING:

        def _touch(self) -> None: ...
        def _account(self, api_key: str) -> Account: ...
        def _valuation(self, account: Account) -> Valuation: ...
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
        self.executions: dict[str, list[Execution]] = {}
        self._exec_seq = itertools.count(1)
        self._spot_ids = itertools.count(1_900_000_000_000_000_000 + self._clock() % 10**9 * 1000)

    # -- order entry ------------------------------------------------------------------------

    def order_create(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        now = self._clock()
        account = self._account(api_key)
        category = params.category(query, ("linear", "spot"))
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
        _refuse_conditional(query)
        link_id = params.text(query, "orderLinkId") or ""
        if len(link_id) > 36 or not set(link_id) <= _LINK_ID_CHARS:
            raise errors.params_error("params error: orderLinkId invalid")
        if link_id and (api_key, link_id) in self.link_ids:
            raise BybitError(errors.DUPLICATE_ORDER_LINK_ID, "OrderLinkedID is duplicate")
        qty = _decimal(query, "qty", required=True)
        assert qty is not None
        market_unit = ""
        if category == "spot" and order_type == "Market":
            market_unit = params.text(query, "marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin")
            if market_unit not in ("baseCoin", "quoteCoin"):
                raise errors.params_error("params error: marketUnit invalid")
        self._check_qty(inst, qty, order_type, market_unit == "quoteCoin")
        model = self.markets.models[(category, inst.symbol)]
        last = model.mark_price()
        price = ZERO
        if order_type == "Limit":
            price = _decimal(query, "price", required=True) or ZERO
            self._check_price(inst, price)
            if market_unit == "" and qty * price < inst.min_notional:
                raise BybitError(110094, f"Order does not meet minimum order value {inst.min_notional}USDT")
        reduce_only = _flag(query, "reduceOnly")
        if reduce_only and category == "spot":
            raise errors.params_error("params error: reduceOnly is not supported for spot")
        open_count = sum(1 for o in self.resting.get((category, inst.symbol), {}).values() if o.api_key == api_key)
        if open_count >= MAX_OPEN_ORDERS:
            raise BybitError(110020, "Not allowed to have more than 500 active orders.")

        book = model.book.asks if side == "Buy" else model.book.bids
        limit = price if order_type == "Limit" else None
        plan = walk(book, model.prices, model.sizes, qty, limit, by_value=market_unit == "quoteCoin")
        if order_type == "Market":
            # Bybit shows a market order's protection price; the worst level it may reach.
            price = plan[-1][0] if plan else last
        # A spot market order in quote units has qty = quote to spend or receive; its base
        # quantity is what the walk found.
        order_qty = qty if market_unit != "quoteCoin" else filled_qty(plan)
        if reduce_only:
            closable = _closable(account, inst, side)
            if closable <= 0:
                raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
            order_qty = min(order_qty, closable)
            plan = _truncate(plan, order_qty)

        order = Order(
            order_id=self._new_order_id(category),
            link_id=link_id,
            api_key=api_key,
            category=category,
            symbol=inst.symbol,
            side=side,
            order_type=order_type,
            qty=order_qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only,
            created_ms=now,
            last_price_on_created=last,
            market_unit=market_unit,
            updated_ms=now,
        )
        self._check_funds(account, inst, order, plan)

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
        self._register(order)
        self._emit(account, inst, [order], changes)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def order_amend(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        now, account, inst, order = self._open_order(api_key, query)
        category = inst.category
        _refuse_conditional(query)
        qty = _decimal(query, "qty")
        price = _decimal(query, "price")
        if qty is None and price is None:
            raise errors.params_error("params error: nothing to amend")
        if qty is not None:
            self._check_qty(inst, qty, order.order_type, False)
            if qty <= order.cum_qty:
                raise BybitError(110012, "The new quantity is not above the filled quantity")
        if price is not None:
            if order.order_type != "Limit":
                raise errors.params_error("params error: a market order has no price to amend")
            self._check_price(inst, price)
        self._release(account, inst, order)
        old_qty, old_price = order.qty, order.price
        order.qty = qty if qty is not None else order.qty
        order.price = price if price is not None else order.price
        try:
            self._check_funds(account, inst, order, [])
        except BybitError:
            order.qty, order.price = old_qty, old_price
            self._rest(account, inst, order)
            raise
        order.updated_ms = now
        changes: list[Execution] = []
        model = self.markets.models[(category, inst.symbol)]
        book = model.book.asks if order.side == "Buy" else model.book.bids
        plan = _truncate(walk(book, model.prices, model.sizes, order.leaves_qty, order.price), order.leaves_qty)
        if plan and order.time_in_force == "PostOnly":
            order.close(now, "UNKNOWN", "EC_PostOnlyWillTakeLiquidity")
        else:
            for fill_price, fill_qty in plan:
                changes.append(self._fill(account, inst, order, fill_qty, fill_price, False, now))
            if order.is_open:
                self._rest(account, inst, order)
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
        category = params.category(query, ("linear", "spot"))
        symbol, base, settle = (params.text(query, k) for k in ("symbol", "baseCoin", "settleCoin"))
        which = OrderFilter(category, symbol, base, settle, None, None).scoped()
        cancelled = [
            o
            for book in self.resting.values()
            for o in book.values()
            if o.api_key == api_key and which.matches(o, self.instruments)
        ]
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

    def _window(self, query: dict[str, Any]) -> tuple[int, int]:
        """``startTime``/``endTime`` with Bybit's 7-day rule (default: the last 7 days)."""
        start, end = params.integer(query, "startTime"), params.integer(query, "endTime")
        if start is not None and end is not None and end - start > 7 * DAY_MS:
            raise errors.params_error("params error: The time range between startTime and endTime cannot exceed 7 days")
        if end is None:
            end = start + 7 * DAY_MS if start is not None else self._clock()
        if start is None:
            start = end - 7 * DAY_MS
        return start, end

    # -- resting orders ---------------------------------------------------------------------

    def _sweep(self, now_ms: int) -> None:
        """Fill every resting order the market has moved through (after each market advance)."""
        for ident, book in list(self.resting.items()):
            if not book:
                continue
            model = self.markets.models[ident]
            ask, bid = model.book.asks.best_tick(), model.book.bids.best_tick()
            seen = (bid, ask, self._rest_count)
            if self._swept.get(ident) == seen:
                continue
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
                self._fill_resting(order, order.leaves_qty, order.price, now_ms)

    def _fill_resting(self, order: Order, qty: Decimal, price: Decimal, now_ms: int) -> None:
        account = self.accounts[order.api_key]
        inst = self.instruments[(order.category, order.symbol)]
        self._release(account, inst, order)
        if order.reduce_only:
            qty = min(qty, _closable(account, inst, order.side))
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
            if not order.is_open:
                raise ValueError(f"order {order_id} is {order.status}; only open orders can fill")
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
        result = apply_fill(account, inst, order.side, qty, price, fee, now, seq)
        order_price = order.price
        order.fill(qty, price, fee, now)
        order.fee_coin = result.fee_coin
        order.closed_pnl += result.pnl - fee if result.closed_size else ZERO
        model = self.markets.models[(inst.category, inst.symbol)]
        execution = Execution(
            exec_id=str(uuid.uuid4()),
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
        self.executions.setdefault(account.api_key, []).append(execution)
        self._touch()
        return execution

    def _rest(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Put an open order on the book and hold what it may spend."""
        order.held = self._needed(account, inst, order, order.leaves_qty, order.price)
        if inst.category == "spot":
            account.coin(_spent_coin(inst, order.side)).locked += order.held
        else:
            account.coin(inst.settle_coin).order_im += order.held
        self.resting.setdefault((inst.category, inst.symbol), {})[order.order_id] = order
        self._rest_count += 1
        self._touch()

    def _release(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Take an order off the book and give back what it held."""
        book = self.resting.get((inst.category, inst.symbol))
        if book is not None:
            book.pop(order.order_id, None)
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
        pos = account.positions.get((inst.category, inst.symbol))
        opening = qty
        if pos is not None and pos.size and pos.side != order.side:
            opening = max(ZERO, qty - pos.size)  # the part that closes needs no margin
        leverage = pos.leverage if pos is not None else DEFAULT_LEVERAGE
        return opening * price / leverage + opening * price * inst.taker_fee

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
        if needed > 0 and needed > self._valuation(account).total_available:
            raise _insufficient(inst.category)

    def _register(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self.account_orders.setdefault(order.api_key, []).append(order)
        if order.link_id:
            self.link_ids[(order.api_key, order.link_id)] = order

    def _open_order(self, api_key: str, query: dict[str, Any]) -> tuple[int, Account, InstrumentConfig, Order]:
        """The open order an amend or cancel names (110001 if none), with its account and instrument."""
        account = self._account(api_key)
        category = params.category(query, ("linear", "spot"))
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
        return str(next(self._spot_ids)) if category == "spot" else str(uuid.uuid4())

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
        if account.api_key not in self.watched:
            return
        messages: list[tuple[str, list[dict[str, Any]]]] = [
            ("order", [order_item(o, inst, stream=True) for o in orders])
        ]
        if fills:
            messages.append(("execution", [execution_item(e, inst, stream=True) for e in fills]))
        if inst.category != "spot":
            pos = position_of(account, inst, self._clock())
            item = self._position_json(pos, inst)
            item["entryPrice"] = item.pop("avgPrice")
            item["category"] = inst.category
            item["curRealisedPnl"] = fmt(pos.cur_realised_pnl)
            messages.append(("position", [item]))
        valuation = self._valuation(account)
        coins = [c for c in valuation.coins if c.wallet_balance or c.equity or c.locked or c.order_im]
        messages.append(("wallet", [shapes.wallet_account(valuation, coins)]))
        self.events.append("private", (account.api_key, messages))


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


def _spent_coin(inst: InstrumentConfig, side: str) -> str:
    """The coin a spot order pays with: quote for a buy, base for a sell."""
    return inst.quote_coin if side == "Buy" else inst.base_coin


def _closable(account: Account, inst: InstrumentConfig, side: str) -> Decimal:
    """How much of the position an order on ``side`` can reduce (0 if flat or same side)."""
    pos = account.positions.get((inst.category, inst.symbol))
    return pos.size if pos is not None and pos.size and pos.side != side else ZERO


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
