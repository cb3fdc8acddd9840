"""A position's own stops: take-profit, stop-loss and trailing stop, and an entry's attached ones.

* ``Full`` stops belong to the position (``position_stops``): one each of TP, SL and
  trailing stop, shown on the position, closing all of it whatever its size when they
  trigger (qty 0); setting one replaces the last, "0" removes it.
* ``Partial`` stops are reduce-only conditional orders for a given quantity; any number
  may wait.
* An entry order's attached TP/SL arm when the entry first fills, on a position on the
  entry's side.
* When a position closes or flips, its stops are deactivated (``CancelByTpSlTsClear``).

Every stop order changed here is a side change of its account's next push (``pushes.py``).
The request rules (``requests.trading_stop``) are checked before anything here runs.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..bybit import errors
from ..config import InstrumentConfig
from ..instruments import CONTRACTS
from . import requests, stops
from .accounts import ZERO, Account, Position
from .orders import Order
from .part import Part
from .stops import Leg

#: the Position attribute that shows each of a position's own stops
_POSITION_FIELDS = {"TakeProfit": "take_profit", "StopLoss": "stop_loss", "TrailingStop": "trailing_stop"}


class PositionStops(Part):
    def trading_stop(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/trading-stop``: a position's TP, SL and trailing stop ("0" clears).

        Every leg of the request is checked before any is set (``requests.trading_stop``).
        """
        account = self.book.account(api_key)
        inst = requests.traded(self.margin.instruments, query, CONTRACTS)
        idx = requests.position_idx(query, inst, account.position_indices(inst.category, inst.symbol))
        pos = account.positions.get((inst.category, inst.symbol, idx))
        if pos is None or not pos.size:
            raise errors.params_error("can not set tp/sl/ts for zero position")
        changes = requests.trading_stop(query, pos, inst, self.margin.last((inst.category, inst.symbol)))
        now = self._clock()
        for action, leg in changes:
            if action == "set":
                self.set(account, inst, pos, leg, now)
            elif action == "place":
                self.place(account, inst, pos, leg, now)
            else:
                self.clear(account, inst, pos, now, (leg.kind,))
        pos.updated_ms = now
        self.book.touch()
        self.pushes.emit(account, inst, [], [])
        return {}

    def arm_entry(self, account: Account, inst: InstrumentConfig, pos: Position, entry: Order, now: int) -> None:
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
                self.set(account, inst, pos, Leg(kind, price, by), now)
            else:
                self.place(account, inst, pos, Leg("Partial" + kind, price, by, entry.qty, order_type, limit), now)

    def set(self, account: Account, inst: InstrumentConfig, pos: Position, leg: Leg, now: int) -> None:
        """Replace the position's own TP, SL or trailing stop (a 0 price or distance removes it)."""
        key = (account.api_key, inst.category, inst.symbol, pos.position_idx)
        mine = self.book.position_stops.get(key)
        kind, trailing = leg.kind, leg.trailing
        old = mine.pop(kind, None) if mine is not None else None
        if old is not None and old.is_open:
            self.book.release(account, inst, old)
            old.close(now)
            self.pushes.side_change(old)
        setattr(pos, _POSITION_FIELDS[kind], trailing or leg.trigger)
        if trailing:  # the trigger starts one distance from the price, on the losing side
            last = self.margin.last((inst.category, inst.symbol))
            leg = leg._replace(trigger=last - trailing if pos.side == "Buy" else last + trailing)
        if leg.trigger > 0:
            self.book.position_stops.setdefault(key, {})[kind] = self.place(account, inst, pos, leg, now)

    def place(self, account: Account, inst: InstrumentConfig, pos: Position, leg: Leg, now: int) -> Order:
        """A reduce-only stop that closes ``leg.qty`` of the position (0: all of it) at its trigger."""
        order = Order(
            order_id=self.book.ids.order_id(inst.category),
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
            last_price_on_created=self.margin.last((inst.category, inst.symbol)),
            updated_ms=now,
            trigger_price=leg.trigger,
            trigger_direction=stops.stop_direction(leg.kind, pos.side),
            trigger_by=leg.by,
            stop_order_type=leg.kind,
            close_on_trigger=True,
            trailing=leg.trailing,
            position_idx=pos.position_idx,
        )
        self.book.register(order)
        self.book.arm(inst, order)  # a contract stop holds nothing until it triggers
        self.pushes.side_change(order)
        return order

    def clear(
        self,
        account: Account,
        inst: InstrumentConfig,
        pos: Position,
        now: int,
        kinds: Collection[str] = stops.POSITION_STOPS,
    ) -> None:
        """Deactivate a position's stops (it closed or flipped, or the user removed them)."""
        ident = (inst.category, inst.symbol)
        for order in list(self.book.triggers.get(ident, {}).values()):
            owned = order.api_key == account.api_key and order.position_idx == pos.position_idx
            if owned and order.stop_order_type in kinds:
                self.book.release(account, inst, order)
                order.close(now, "CancelByTpSlTsClear")
                self.pushes.side_change(order)
        mine = self.book.position_stops.get((account.api_key, *ident, pos.position_idx))
        for kind in list(mine or ()):
            if kind in kinds:
                assert mine is not None
                del mine[kind]
                setattr(pos, _POSITION_FIELDS[kind], ZERO)
