"""Scenario effects on accounts: what a firing does inside the engine.

The registry (:mod:`bybit_mock.scenarios.registry`) decides what fires; this part carries out
the actions that belong to account state, under the engine lock, as transactions like any
other change (their pushes go out when the engine commits them):

* orders: a fill plan, an auto-fill, a rejection after acceptance, a partial fill then cancel;
  a step that finds its order cancelled or filled does nothing more (the crate filled on);
* the private stream: injected events, and drops, duplicates, reorders and delays of the
  account's own messages (applied here, where every push is routed, so they hold whatever
  the number of WS workers);
* order events (created, filled ...) as triggers, seen as the pushes are built;
* state edits behind the client's back, with or without a push;
* timed work (fill steps, delayed messages, timers) runs from the engine's clock.

Actions that belong to sockets (a WS close, a market-data fault, an IP ban) are broadcast to
the workers as ``("fault", ...)`` events; REST actions go back to the REST worker that asked.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from ..bybit.errors import BybitError
from ..scenarios.model import ORDER_ACTIONS
from ..scenarios.registry import Firing, Registry
from .accounts import ZERO
from .orders import Order
from .pushes import Wire as Messages  # a committed push: (topic, category, data as JSON)

if TYPE_CHECKING:
    from .exchange import Exchange

log = logging.getLogger(__name__)


#: actions the WS workers carry out (on the asking connection, or broadcast by selection)
WS_ACTIONS = frozenset(
    {
        "ws_close",
        "ws_reset",
        "ws_stall",
        "ws_refuse",
        "book_gap",
        "book_reset",
        "stale",
        "duplicate_trades",
        "reorder_trades",
    }
)
#: order status -> the order event it means (an order first seen is ``created`` as well)
_STATUS_EVENTS = {
    "PartiallyFilled": "partially_filled",
    "Filled": "filled",
    "Cancelled": "cancelled",
    "PartiallyFilledCanceled": "cancelled",
    "Deactivated": "cancelled",
    "Rejected": "rejected",
}
#: how many rounds of "an effect's push fired another scenario" one commit follows
MAX_CASCADE = 16


@dataclass
class StreamFault:
    """An installed fault on an account's private messages (drop, duplicate, reorder, delay)."""

    kind: str
    api_key: str | None
    topic: str | None
    remaining: int | None
    until_ms: int | None
    ms: float = 0
    seq: int = 0
    held: list[tuple[str, Messages]] = field(default_factory=list)  # a reorder's held message

    def applies(self, api_key: str, topic: str, now_ms: int) -> bool:
        if self.until_ms is not None and now_ms > self.until_ms:
            return False
        if self.api_key is not None and api_key != self.api_key:
            return False
        return self.topic is None or fnmatch.fnmatchcase(topic, self.topic)

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


class ScenarioEffects:
    def __init__(self, exchange: Exchange, registry: Registry) -> None:
        self.ex = exchange
        self.registry = registry
        self._jobs: list[tuple[int, int, Callable[[int], None]]] = []
        self._job_seq = itertools.count()
        self.stream_faults: list[StreamFault] = []
        self._status: dict[str, str] = {}
        self.watch_orders = False
        self.private_counted = False

    def armed_changed(self) -> None:
        """Recompute what the hot paths must look at, after the armed set changed."""
        types = {a.scenario.trigger.type for a in self.registry.armed}
        channels = {
            a.scenario.trigger.params.get("channel")
            for a in self.registry.armed
            if a.scenario.trigger.type == "message"
        }
        self.watch_orders = "order_event" in types
        self.private_counted = "private" in channels
        if not self.watch_orders:
            self._status.clear()
        self.sync_pushes()

    def sync_pushes(self) -> None:
        """Hook into the pushes only while something needs it (else they run as ever)."""
        pushes = self.ex.pushes
        pushes.observing = self.watch_orders
        pushes.route = self.deliver if self.private_counted or self.stream_faults else None

    # -- firing ---------------------------------------------------------------------------------

    def run(self, firings: list[Firing], order: Order | None = None) -> list[dict[str, Any]]:
        """Carry out the engine's share of ``firings``; return the rest (for the worker that
        asked) as ``{"action": ..., "seq": ...}``. ``order`` is the one the trigger named."""
        rest: list[dict[str, Any]] = []
        for firing in firings:
            kind = firing.action["type"]
            try:
                done = self._act(firing, kind, order)
            except (ValueError, KeyError, BybitError) as exc:  # a state edit naming an unknown account ...
                done = f"not done: {exc}"
            if done is None:
                rest.append({"action": firing.action, "seq": firing.seq, "ctx": firing.ctx})
            else:
                self.registry.note(firing.seq, done)
        return rest

    def _act(self, firing: Firing, kind: str, order: Order | None) -> str | None:
        action, ctx = firing.action, firing.ctx
        api_key = action.get("api_key") or ctx.get("api_key") or firing.target
        if kind in ORDER_ACTIONS:
            if order is None:
                return "not done: no order"
            return self._order_action(firing, kind, order)
        if kind == "inject_private_event":
            self.ex.events.append("private_raw", (api_key, action["event"]))
            return f"injected into {api_key or 'every account'}'s private stream"
        if kind.startswith("private_"):
            self._install_stream_fault(kind[len("private_") :], action, api_key)
            return f"{kind} installed"
        if kind == "edit_balance":
            key = _required_key(api_key)
            self.ex.set_balance(key, action["coin"], action["amount"], push=action["push"])
            return f"balance {action['coin']} of {key} set to {action['amount']}"
        if kind == "edit_position":
            key = _required_key(api_key)
            self._edit_position(key, action)
            return f"position {action['symbol']} of {key} set to {action['side']} {action['size']}"
        if kind == "price_jump":
            return self._price_jump(action, ctx)
        if kind in WS_ACTIONS and (not ctx.get("conn_id") or kind == "ws_refuse"):
            # Every WS worker applies it to its own connections (the seq lets each journal
            # what it did). A refusal a connection fired is also the asking worker's at once.
            fault = {**action, "seq": firing.seq} | ({"api_key": api_key} if api_key else {})
            self.ex.events.append("fault", fault)
            if ctx.get("conn_id"):
                return None
            return "sent to the WS workers"
        if kind == "ip_ban" and not ctx.get("path"):
            return "not done: an IP ban needs a REST request's client"
        return None  # the asking worker's to do

    # -- orders ---------------------------------------------------------------------------------

    def _order_action(self, firing: Firing, kind: str, order: Order) -> str:
        action, seq, now = firing.action, firing.seq, self.ex.now_ms()
        if kind == "reject":
            return self._reject(order, action["reason"])
        if kind == "fill_plan":
            due = now
            steps = action["steps"]
            for i, step in enumerate(steps):
                due += int(step["after_ms"])
                self.later(due, self._fill_step(order, step, seq, i == len(steps) - 1))
            return f"fill plan of {len(steps)} step(s) on {order.order_id}"
        if kind == "auto_fill":
            step = {"quantity": None, "price": action["price"]}
            self.later(now + int(action["after_ms"]), self._fill_step(order, step, seq, True))
            return f"auto-fill of {order.order_id} in {action['after_ms']} ms"
        # partial_fill_then_cancel
        step = {"quantity": action["quantity"], "price": action.get("price")}
        fill = self._fill_step(order, step, seq, False)

        def fill_then_cancel(at: int) -> None:
            fill(at)
            if order.is_open:
                self._cancel_by_system(order, at)
                self.registry.note(seq, f"{order.order_id} cancelled after its partial fill")

        self.later(now + int(action["after_ms"]), fill_then_cancel)
        return f"partial fill then cancel of {order.order_id}"

    def _fill_step(self, order: Order, step: dict[str, Any], seq: int, last: bool) -> Callable[[int], None]:
        def run(now: int) -> None:
            if not order.is_active:
                self.registry.note(seq, f"{order.order_id} is {order.status}: not filled further")
                return
            qty = order.leaves_qty if step["quantity"] is None else min(Decimal(step["quantity"]), order.leaves_qty)
            price = self._price(order, step.get("price"))
            if qty <= ZERO or price is None:
                return
            self.ex.trading.fill_resting(order, qty, price, now)
            self.registry.note(seq, f"filled {qty} of {order.order_id} at {price}")

        return run

    def _price(self, order: Order, rule: str | None) -> Decimal | None:
        if rule in (None, "order"):
            if order.price:
                return order.price
            rule = "market"
        if rule == "market":  # a fill at the market: the last trade price (on the tick grid, unlike the mark)
            return self.ex.margin.last((order.category, order.symbol))
        return Decimal(rule)

    def _reject(self, order: Order, reason: str) -> str:
        if not order.is_open or order.cum_qty:
            return f"not done: {order.order_id} is {order.status}"
        self._reject_order(order, reason, self.ex.now_ms())
        return f"{order.order_id} rejected ({reason})"

    def _cancel_by_system(self, order: Order, now_ms: int) -> None:
        account, inst = self.ex.book.accounts[order.api_key], self.ex.instruments[(order.category, order.symbol)]
        self.ex.book.release(account, inst, order)
        order.close(now_ms, "CancelByAdmin")
        self.ex.pushes.emit(account, inst, [order], [])

    def _reject_order(self, order: Order, reason: str, now_ms: int) -> None:
        """An accepted order turned down after the fact (Bybit's ``Rejected`` with a reason)."""
        account, inst = self.ex.book.accounts[order.api_key], self.ex.instruments[(order.category, order.symbol)]
        self.ex.book.release(account, inst, order)
        order.close(now_ms, "UNKNOWN", reason)
        order.status = "Rejected"
        self.ex.pushes.emit(account, inst, [order], [])

    def _edit_position(self, api_key: str, edit: dict[str, Any]) -> None:
        category, symbol, idx = edit.get("category", "linear"), edit["symbol"], int(edit.get("position_idx", 0))
        side, size, entry = edit["side"], edit["size"], edit["entry_price"]
        self.ex.set_position(api_key, symbol, side, size, entry, None, category, idx, bool(edit.get("push")))

    # -- order events ---------------------------------------------------------------------------

    def order_events(self, now_ms: int) -> None:
        """Fire ``order_event`` scenarios for the status changes the committed call made."""
        for _ in range(MAX_CASCADE):
            pushes = self.ex.pushes
            seen, pushes.orders_seen = pushes.orders_seen, []
            if not seen:
                return
            for order in seen:
                before = self._status.get(order.order_id)
                if before == order.status:
                    continue
                self._status[order.order_id] = order.status
                events = []
                if before is None:
                    events.append("created")
                elif before == "Untriggered" and order.status != "Deactivated":
                    events.append("triggered")
                if order.status in _STATUS_EVENTS:
                    events.append(_STATUS_EVENTS[order.status])
                for event in events:
                    ctx = order_ctx(order) | {"event": event}
                    firings = self.registry.take("order_event", ctx, now_ms)
                    if firings:
                        self.run(firings, order)
            pushes.commit()
        log.warning("order-event scenarios cascaded past %d rounds; stopped", MAX_CASCADE)

    # -- the private stream ---------------------------------------------------------------------

    def _install_stream_fault(self, kind: str, action: dict[str, Any], api_key: str | None) -> None:
        count, for_ms = action.get("count"), action.get("for_ms")
        if count is None and for_ms is None:
            count = 1
        until = self.ex.now_ms() + int(for_ms) if for_ms is not None else None
        fault = StreamFault(kind, api_key, action.get("topic"), count, until, float(action.get("ms", 0)))
        self.stream_faults.append(fault)
        self.sync_pushes()

    def deliver(self, api_key: str, messages: Messages) -> None:
        """Route one push to the event log, through the armed private-message triggers and the
        installed stream faults (the hot path when none is armed is one check in Pushes)."""
        now = self.ex.now_ms()
        if self.private_counted:
            for topic, *_ in messages:
                firings = self.registry.take("message", {"channel": "private", "topic": topic, "api_key": api_key}, now)
                if firings:
                    self.run(firings)
        faults = [f for f in self.stream_faults if not f.spent or f.held]
        self.stream_faults = faults
        if not faults:
            self.ex.events.append("private", (api_key, messages))
            return
        for message in messages:
            self._route(api_key, message, faults, now)

    def _route(self, api_key: str, message: tuple[str, str, bytes], faults: list[StreamFault], now: int) -> None:
        """One message through the first fault that applies to it (each message meets one)."""
        out = (api_key, [message])
        for fault in faults:
            if fault.spent or not fault.applies(api_key, message[0], now):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            if fault.kind == "drop":
                return
            if fault.kind == "delay":
                self.later(now + int(fault.ms), lambda _now: self._emit(out))
                return
            if fault.kind == "reorder" and not fault.held:
                # held until the account's next message has gone out (or a second has passed)
                fault.held.append(out)
                self.later(now + 1000, partial(_flush_later, self, fault))
                return
            if fault.kind == "duplicate":
                self.ex.events.append("private", out)
            break
        self.ex.events.append("private", out)
        for fault in faults:  # a held message goes out after the next one its fault covers
            if fault.held and fault.held[0] is not out and fault.applies(api_key, message[0], now):
                self._flush_held(fault)

    def _emit(self, out: tuple[str, Messages]) -> None:
        self.ex.events.append("private", out)

    def _flush_held(self, fault: StreamFault) -> None:
        for key, messages in fault.held:
            self.ex.events.append("private", (key, messages))
        fault.held.clear()

    # -- timed work -----------------------------------------------------------------------------

    def later(self, due_ms: int, job: Callable[[int], None]) -> None:
        heapq.heappush(self._jobs, (due_ms, next(self._job_seq), job))

    def run_due(self, now_ms: int) -> bool:
        """Run the jobs and timers due by ``now_ms``; True if any ran (their pushes to commit)."""
        ran = False
        timers = self.registry.due_timers(now_ms) if self.registry.armed else []
        for firing in timers:
            ran = True
            rest = self.run([firing])
            for item in rest:
                self.registry.note(item["seq"], "not done: a timer has no request or connection to act on")
        while self._jobs and self._jobs[0][0] <= now_ms:
            _, _, job = heapq.heappop(self._jobs)
            ran = True
            try:
                job(now_ms)
            except Exception:  # a scripted step must never take the engine's clock down
                log.exception("scenario job failed")
        return ran

    @property
    def has_jobs(self) -> bool:
        return bool(self._jobs)

    def _price_jump(self, action: dict[str, Any], ctx: dict[str, Any]) -> str:
        symbol = action.get("symbol") or ctx.get("symbol")
        category = action.get("category") or ctx.get("category") or "linear"
        if symbol is None:
            return "not done: price_jump needs a symbol"
        if "price" in action:
            price = Decimal(action["price"])
        else:
            mark = self.ex.margin.mark((category, symbol))
            price = mark * (1 + Decimal(action.get("percent", "0")) / 100)
        self.ex.set_mark_price(symbol, price, category)
        return f"{category}/{symbol} jumped to {price}"


def _flush_later(effects: ScenarioEffects, fault: StreamFault, _now: int) -> None:
    effects._flush_held(fault)


def order_ctx(order: Order) -> dict[str, Any]:
    return {
        "api_key": order.api_key,
        "category": order.category,
        "symbol": order.symbol,
        "side": order.side,
        "order_id": order.order_id,
        "order_link_id": order.link_id,
    }


def _required_key(api_key: str | None) -> str:
    if not api_key:
        raise ValueError("a state edit needs an api_key (in the action or the match)")
    return api_key
