"""Order entry and matching: create, amend, cancel, batches, and resting orders as the market moves.

* A **taker** (a market order, or the marketable part of a limit order) walks the displayed
  book (``matching.walk``) and pays the taker fee on each level it takes.
* A **resting** limit order holds margin (contracts: ``leaves x price / leverage`` plus the
  fee) or coin (spot: the quote a buy would pay, the base a sell would deliver) and fills in
  full, as maker, at its own price when the market moves through it: best ask at or below a
  buy's price, best bid at or above a sell's. The engine checks after every market advance.
* IOC cancels what did not fill at once; FOK fills in full or cancels without a fill;
  PostOnly that would take is cancelled with ``EC_PostOnlyWillTakeLiquidity``, as Bybit does
  (the create call itself succeeds).
* Conditional orders wait Untriggered until the market reaches their trigger price, then
  execute like a new order; one Bybit would refuse then (no position left to reduce, no
  margin) is cancelled.

Every request is parsed whole (``requests.py``) and checked against the account (limits,
duplicates, margin: ``margin.py``) before anything changes; only then is it applied, and
applying does not fail. Each change of an account becomes one push (``pushes.py``): the
``order``, ``execution``, ``position`` and ``wallet`` messages of that change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson

from ..bybit import errors, params
from ..bybit.errors import BybitError
from ..bybit.numbers import shared
from ..config import InstrumentConfig
from ..instruments import TRADED
from . import margin as margins
from . import requests, stops
from .accounts import ZERO, Account
from .book import AccountBook, Ident
from .delivery import refuse_if_delivered
from .funds import log_fill
from .ledger import apply_fill, fee_of
from .margin import Margin
from .matching import Plan, filled_qty, truncate, walk
from .orders import Execution, Order
from .part import Part
from .price_index import RestingIndex, TriggerIndex
from .pushes import Pushes
from .tpsl import PositionStops

MAX_OPEN_ORDERS = 500
#: Untriggered conditional orders an account may have per symbol (a position's own TP/SL
#: and an entry's attached ones do not count)
MAX_CONDITIONAL_ORDERS = 10
_USER_STOPS = ("Stop", "tpslOrder")
_MAX_SWEEP_PASSES = 8


class Trading(Part):
    def __init__(
        self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int], stops_: PositionStops
    ) -> None:
        super().__init__(book, margin, pushes, clock)
        self.markets = margin.markets
        self.stops = stops_
        #: per symbol, (best bid, best ask, rest count) at its last sweep: an unchanged top of
        #: book with no order rested since cannot cross anything new, so the sweep skips it
        self._swept: dict[Ident, tuple[int | None, int | None, int]] = {}
        #: per symbol, ((last, index, mark), arm count) at its last trigger check: triggers
        #: watch any of the three prices, so a change of any makes the next check look
        self._trigger_seen: dict[Ident, tuple[tuple[int, int, int], int]] = {}

    # -- order entry ------------------------------------------------------------------------

    def order_create(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        book = self.book
        account = book.account(api_key)
        inst = requests.traded(self.instruments, query, TRADED)
        ident = (inst.category, inst.symbol)
        last = self.margin.last(ident)
        watch = self.margin.watched_prices(ident) if "triggerPrice" in query else None
        spec = requests.new_order(query, inst, last, account.position_indices(*ident), watch)
        if spec.link_id and (api_key, spec.link_id) in book.link_ids:
            raise BybitError(errors.DUPLICATE_ORDER_LINK_ID, "OrderLinkedID is duplicate")
        if book.open_counts[(api_key, *ident)] >= MAX_OPEN_ORDERS:
            raise BybitError(110020, "Not allowed to have more than 500 active orders.")
        if spec.trigger and book.waiting_stops(api_key, ident, _USER_STOPS) >= MAX_CONDITIONAL_ORDERS:
            raise BybitError(110009, "The number of stop orders exceeds maximum limit allowed")
        now = self._clock()
        refuse_if_delivered(inst, now)  # 110074: the contract's delivery time has passed
        order = spec.order("", api_key, now, last)  # its id once it is sure to be placed
        if order.trigger_price:
            held = self.margin.stop_hold(account, inst, order)
            order.order_id = book.ids.order_id(inst.category)
            book.register(order)
            book.hold(account, inst, order, held)
            book.arm(inst, order)
            fills: list[Execution] = []
        else:
            plan = self._plan(account, inst, order)
            order.order_id = book.ids.order_id(inst.category)
            book.register(order)
            fills = self._take(account, inst, order, plan, now)
        self.pushes.emit(account, inst, [order], fills)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _plan(self, account: Account, inst: InstrumentConfig, order: Order) -> Plan:
        """What a new (or just triggered) order would take from the book, checked (reduce-only,
        margin); raises what Bybit refuses it for. Only ``order`` itself changes: ``qty``
        becomes the base quantity the book can give (a spot market order in ``quoteCoin``) or
        what reduce-only may close, a market order's ``price`` its protection price."""
        limit = order.price if order.order_type == "Limit" else None
        in_quote = order.market_unit == "quoteCoin"
        plan = self._walk(inst, order.side, order.qty, limit, in_quote)
        if order.order_type == "Market":
            # Bybit shows a market order's protection price: the worst level it may reach.
            order.price = plan[-1][0] if plan else self.margin.last((inst.category, inst.symbol))
        if in_quote:
            order.qty = filled_qty(plan)
        if order.reduce_only:
            closable = _closable(account, inst, order)
            if closable <= 0:
                raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
            order.qty = min(order.qty, closable)
            plan = truncate(plan, order.qty)
        self.margin.check_funds(account, inst, order, plan)
        return plan

    def _walk(
        self, inst: InstrumentConfig, side: str, qty: Decimal, limit: Decimal | None, by_value: bool = False
    ) -> Plan:
        """The fills taking ``qty`` from the book's other side would get (the book is untouched)."""
        model = self.markets.models[(inst.category, inst.symbol)]
        side_book = model.book.asks if side == "Buy" else model.book.bids
        return walk(side_book, model.prices, model.sizes, qty, limit, by_value)

    def _take(self, account: Account, inst: InstrumentConfig, order: Order, plan: Plan, now: int) -> list[Execution]:
        """Fill ``plan`` as taker under the order's time in force, then rest or close the rest."""
        tif = order.time_in_force
        fills: list[Execution] = []
        if tif == "PostOnly" and plan:
            order.close(now, "UNKNOWN", "EC_PostOnlyWillTakeLiquidity")
        elif tif == "FOK" and filled_qty(plan) < order.qty:
            order.close(now, "UNKNOWN", "EC_FOKCannotFill" if plan else "EC_NoImmediateQtyToFill")
        elif order.qty <= 0:
            order.close(now, "UNKNOWN", "EC_NoImmediateQtyToFill")
        else:
            for fill_price, fill_qty in plan:
                fills.append(self._fill(account, inst, order, fill_qty, fill_price, False, now))
            if order.is_open:
                if tif in ("GTC", "PostOnly"):
                    self._rest(account, inst, order)
                else:
                    order.close(now, "UNKNOWN", "EC_NoImmediateQtyToFill" if not fills else "EC_NoError")
        return fills

    def _rest(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        self.book.rest(account, inst, order, margins.needed(account, inst, order, order.leaves_qty, order.price))

    def order_amend(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        account, inst, order = self._open_order(api_key, query)
        ident = (inst.category, inst.symbol)
        change = requests.amend(query, order, inst, self.margin.last(ident), self.margin.watched_prices(ident))
        # check the amended order as if it were placed now, crediting back what it holds
        amended = _amended(order, change)
        held = ZERO
        if amended.status == "Untriggered":
            held = self.margin.stop_hold(account, inst, amended, credit=order.held)
        else:
            self.margin.check_funds(account, inst, amended, [], credit=order.held)
        now = self._clock()
        self.book.release(account, inst, order)
        order.qty, order.price, order.trigger_price = amended.qty, amended.price, amended.trigger_price
        order.tpsl = change.tpsl
        order.updated_ms = now
        fills: list[Execution] = []
        if order.status == "Untriggered":
            self.book.hold(account, inst, order, held)
            self.book.arm(inst, order)
        else:  # a resting (GTC or PostOnly) order: a new price may take now
            plan = truncate(self._walk(inst, order.side, order.leaves_qty, order.price), order.leaves_qty)
            fills = self._take(account, inst, order, plan, now)
        self.pushes.emit(account, inst, [order], fills)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def order_cancel(self, api_key: str, query: dict[str, Any]) -> dict[str, str]:
        account, inst, order = self._open_order(api_key, query)
        self.book.release(account, inst, order)
        order.close(self._clock())
        self.pushes.emit(account, inst, [order], [])
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _open_order(self, api_key: str, query: dict[str, Any]) -> tuple[Account, InstrumentConfig, Order]:
        """The open order an amend or cancel names (110001 if none), with its account and instrument."""
        account = self.book.account(api_key)
        inst = requests.traded(self.instruments, query, TRADED)
        order_id, link_id = requests.order_ref(query)
        order = self.book.find(api_key, inst.category, inst.symbol, order_id, link_id)
        if order is None or not order.is_open:
            raise requests.not_found(inst.category)
        return account, inst, order

    def order_cancel_all(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        account = self.book.account(api_key)
        category = params.category(query, TRADED)
        # spot cancels plain orders unless told otherwise; contracts every kind
        which = requests.OrderFilter.of(query, "Order" if category == "spot" else None)
        which = which._replace(order_id=None, link_id=None).scoped()
        now = self._clock()
        cancelled = sorted(
            (
                o
                for books in (self.book.resting, self.book.triggers)
                for orders in books.values()
                for o in orders.values()
                if o.api_key == api_key and which.matches(o, self.instruments)
            ),
            key=lambda o: o.seq,
        )
        by_symbol: dict[str, list[Order]] = {}
        for order in cancelled:
            inst = self.instruments[(which.category, order.symbol)]
            self.book.release(account, inst, order)
            order.close(now)
            by_symbol.setdefault(order.symbol, []).append(order)
        for sym, orders in by_symbol.items():
            self.pushes.emit(account, self.instruments[(which.category, sym)], orders, [])
        items = [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in cancelled]
        return {"list": items, "success": "1"}

    def order_batch(
        self, op: str, api_key: str, query: dict[str, Any], allowed: int | None = None
    ) -> tuple[bytes, bytes]:
        """``/v5/order/{create,amend,cancel}-batch``: each entry as its single call, each answered.

        Returns the encoded ``result`` and ``retExtInfo`` (one ``{code, msg}`` per entry). An
        entry refused changes nothing and pushes nothing; the others go ahead. Entries from
        index ``allowed`` on are over the rate limit: each fails with 10006, as on Bybit.
        """
        self.book.account(api_key)
        category, entries = requests.batch(query)
        single = {"create": self.order_create, "amend": self.order_amend, "cancel": self.order_cancel}[op]
        items: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            result, code, msg = {"orderId": "", "orderLinkId": ""}, 0, "OK"
            point = self.pushes.savepoint()
            try:
                if allowed is not None and index >= allowed:
                    raise BybitError(errors.TOO_MANY_VISITS, errors.TOO_MANY_VISITS_MSG)
                if not isinstance(entry, dict):
                    raise errors.params_error("params error: each request entry must be an object")
                result = single(api_key, entry | {"category": category})
            except BybitError as exc:
                self.pushes.rollback(point)
                code, msg = exc.code, exc.msg
            item = {"category": category, "symbol": entry.get("symbol", "") if isinstance(entry, dict) else ""}
            item |= result
            if op == "create":
                item["createAt"] = str(self._clock()) if code == 0 else ""
            items.append(item)
            outcomes.append({"code": code, "msg": msg})
        return orjson.dumps({"list": items}), orjson.dumps({"list": outcomes})

    # -- fills ------------------------------------------------------------------------------

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
        fee = shared(fee_of(inst, order.side, qty, price, rate))  # kept by the fill, order and log
        seq = self.book.ids.seq()
        key = (inst.category, inst.symbol, order.position_idx)
        held = account.positions.get(key)
        side_before = held.side if held is not None and held.size else ""
        result = apply_fill(account, inst, order.side, qty, price, fee, now, seq, order.position_idx)
        order_price = order.price
        order.fill(qty, price, fee, now)
        order.fee_coin = result.fee_coin
        order.closed_pnl = shared(order.closed_pnl + (result.pnl - fee if result.closed_size else ZERO))
        execution = Execution(
            exec_id=self.book.ids.uuid(),
            order=order,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            fee_coin=result.fee_coin,
            is_maker=maker,
            time_ms=now,
            mark_price=self.margin.mark((inst.category, inst.symbol)),
            closed_size=shared(result.closed_size),
            pnl=shared(result.pnl),
            seq=seq,
            order_qty=order.qty,
            order_price=order_price,
            leaves_qty=shared(order.leaves_qty),
        )
        self.book.record_fill(account, execution, log_fill(account, inst, execution, result, self.book.ids.seq))
        if inst.category != "spot":
            pos = account.positions[key]
            if side_before and (not pos.size or pos.side != side_before):
                self.stops.clear(account, inst, pos, now)  # closed or flipped: its TP/SL go
            # an entry's TP/SL protect a position on its side (not one it only reduced)
            if order.tpsl is not None and not order.tpsl.armed and pos.size and pos.side == order.side:
                self.stops.arm_entry(account, inst, pos, order, now)
        return execution

    # -- the market moves -------------------------------------------------------------------

    def sweep(self, now_ms: int) -> None:
        """Trigger the conditional orders the price reached and fill every resting order the
        market has moved through (after each market advance).

        Each symbol's orders are looked up in its price index (``price_index.py``): a sweep
        reads only the price levels the market crossed, whatever the depth of the book.
        A fill can arm new stops (an entry's TP/SL) and a trigger can rest a new order, so
        passes repeat until nothing changes (bounded: each pass needs a new order to go on).
        """
        book = self.book
        for _ in range(_MAX_SWEEP_PASSES):
            counts = (book.arm_count, book.rest_count)
            for ident, pending in list(book.trigger_index.items()):
                if pending:
                    self._check_triggers(ident, pending, now_ms)
            for ident, orders in list(book.resting_index.items()):
                if orders:
                    self._check_resting(ident, orders, now_ms)
            if counts == (book.arm_count, book.rest_count):
                return

    def _check_resting(self, ident: Ident, orders: RestingIndex, now_ms: int) -> None:
        model = self.markets.models[ident]
        ask, bid = model.book.asks.best_tick(), model.book.bids.best_tick()
        seen = (bid, ask, self.book.rest_count)
        if self._swept.get(ident) == seen:
            return
        self._swept[ident] = seen
        best_ask = model.prices.decimal(ask) if ask is not None else None
        best_bid = model.prices.decimal(bid) if bid is not None else None
        # price-time priority: the best-priced crossed order fills first
        for order in orders.crossed(best_bid, best_ask):
            if order.is_active:  # an earlier fill may have cancelled it (its position closed)
                self.fill_resting(order, order.leaves_qty, order.price, now_ms)

    def _check_triggers(self, ident: Ident, pending: TriggerIndex, now_ms: int) -> None:
        model = self.markets.models[ident]
        seen = (model.price_state(), self.book.arm_count)
        if self._trigger_seen.get(ident) == seen:
            return
        self._trigger_seen[ident] = seen
        last = model.last_price()
        # each order watches its own triggerBy price
        due = pending.fixed_crossed(
            {"LastPrice": last, "MarkPrice": model.mark_price(), "IndexPrice": model.index_price()}
        )
        for order in pending.trailing.values():  # their triggers follow the last price: each looks
            stops.trail(order, last)
            if stops.crossed(order, last):
                due.append(order)
        for order in sorted(due, key=lambda o: o.seq):
            if order.status == "Untriggered":  # an earlier trigger may have cleared it
                self._trigger(order, now_ms)

    def _trigger(self, order: Order, now_ms: int) -> None:
        """The price reached a conditional order: it becomes live and executes like a new one."""
        account = self.book.accounts[order.api_key]
        inst = self.instruments[(order.category, order.symbol)]
        self.book.release(account, inst, order)
        order.trigger(now_ms)
        order.create_type = stops.CREATE_TYPES.get(order.stop_order_type, order.create_type)
        if not order.qty:  # a position's TP/SL: all of it
            order.qty = _closable(account, inst, order)
        if account.api_key in self.pushes.watched:  # Bybit pushes the instantaneous Triggered state
            order.status = "Triggered"
            self.pushes.emit(account, inst, [order], [])
            order.status = "New"
        fills: list[Execution] = []
        try:
            plan = self._plan(account, inst, order)
        except BybitError as exc:
            # what a new order would be refused for ends a triggered one
            reason = "EC_ReduceOnlyNoPosition" if exc.code == 110017 else "EC_InsufficientBalance"
            order.close(now_ms, "UNKNOWN", reason)
        else:
            fills = self._take(account, inst, order, plan, now_ms)
        self.pushes.emit(account, inst, [order], fills)

    def fill_resting(self, order: Order, qty: Decimal, price: Decimal, now_ms: int) -> None:
        """Fill ``qty`` of a live order at ``price``, as maker (the market moved through it,
        or a test said so): money, position and pushes move as for any fill."""
        account = self.book.accounts[order.api_key]
        inst = self.instruments[(order.category, order.symbol)]
        self.book.release(account, inst, order)
        if order.reduce_only:
            qty = min(qty, _closable(account, inst, order))
        fills: list[Execution] = []
        if qty > 0:
            fills.append(self._fill(account, inst, order, qty, price, True, now_ms))
        if order.is_open:
            if order.reduce_only and not fills:
                order.close(now_ms, "CancelByReduceOnly", "EC_ReduceOnlyNoPosition")
            else:
                self._rest(account, inst, order)
        self.pushes.emit(account, inst, [order], fills)


def _amended(order: Order, change: requests.Amend) -> Order:
    """A copy of ``order`` as the amend would leave it (to check before changing anything)."""
    return replace(
        order,
        qty=order.qty if change.qty is None else change.qty,
        price=order.price if change.price is None else change.price,
        trigger_price=change.trigger or order.trigger_price,
        held=ZERO,
    )


def _closable(account: Account, inst: InstrumentConfig, order: Order) -> Decimal:
    """How much of its position an order can reduce (0 if flat or on the same side)."""
    pos = account.positions.get((inst.category, inst.symbol, order.position_idx))
    return pos.size if pos is not None and pos.size and pos.side != order.side else ZERO
