"""Private pushes: what one engine call tells the accounts it changed, sent only if it succeeds.

A call builds its pushes as it goes (:meth:`Pushes.emit`), but nothing reaches the event log
until the call commits: a refused request must send nothing, and a request that changed
account A must never put anything in account B's stream. So:

* a push is built for one account, from that account's orders, fills, positions and wallet,
  and queued under its key;
* orders that change as a side effect (a position's stop armed or cleared) are queued per
  account too, and ride that account's next push;
* :meth:`commit` appends the call's pushes to the event log in order (leftover side changes
  as order pushes of their own); :meth:`discard` drops everything the call built, and
  :meth:`savepoint` / :meth:`rollback` do the same for one entry of a batch.

Pushes are built only for watched accounts (an authenticated private connection on some WS
worker): encoding is most of an order's cost, and nobody may be listening.

Many changes of one account in one call (the private activity's events due in one tick,
``activity.py``) can go out as one push (:meth:`coalescing`), as Bybit's own private stream
batches: every change's order and execution items in one ``order`` and one ``execution``
message, then the positions and the wallet once, as they stand at the end. The wallet and
position snapshots are two thirds of a push's cost, and only the last of each says anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from ..config import InstrumentConfig
from . import liq_prices, shapes
from .accounts import Account, Position
from .book import Ident
from .events import EventLog
from .ledger import flat_position
from .margin import Margin
from .orders import Execution, Order

Messages = list[tuple[str, list[dict[str, Any]]]]
#: a committed push as the event log keeps it: ``(topic, category, data)``, the ``data`` list
#: already JSON. Encoded once here, it is what every WS worker splices into its frames, and it
#: is a fifth of the memory of the dicts (the log keeps many thousands of pushes).
Wire = list[tuple[str, str, bytes]]
#: in a coalescing call, what a change leaves to build once at the end: its account, its
#: instrument and the position indices its orders named
Later = tuple[Account, InstrumentConfig, frozenset[int]]


def encode(messages: Messages) -> Wire:
    return [(topic, str(items[0].get("category", "")) if items else "", _compact(items)) for topic, items in messages]


def _compact(value: Any) -> bytes:
    """``value`` as JSON, in a bytes object of its own size: orjson's result keeps the 4 KiB
    buffer it was written into, and the event log keeps tens of thousands of these."""
    return bytes(memoryview(orjson.dumps(value)))


class Pushes:
    def __init__(
        self, events: EventLog, margin: Margin, instruments: dict[Ident, InstrumentConfig], clock: Callable[[], int]
    ) -> None:
        self.events = events
        self._clock = clock
        self.margin = margin
        self.instruments = instruments
        self._watchers: dict[str, frozenset[str]] = {}
        self.watched: frozenset[str] = frozenset()
        self._pending: list[tuple[str, Messages, Later | None]] = []
        self._coalescing = False
        self._side: dict[str, list[Order]] = {}
        #: scenarios' hooks, set only while something is armed that needs them: the orders a
        #: committed call pushed (order-event triggers), and a router for the committed
        #: messages (private-stream faults); unset, the hot path pays one check each
        self.observing = False
        self.orders_seen: list[Order] = []
        self.route: Callable[[str, Wire], None] | None = None

    def watch(self, worker: str, api_keys: list[str]) -> None:
        """A WS worker's accounts with authenticated private connections (its whole set)."""
        self._watchers[worker] = frozenset(api_keys)
        self.watched = frozenset().union(*self._watchers.values())

    # -- building -----------------------------------------------------------------------------

    def side_change(self, order: Order) -> None:
        """``order`` changed as a side effect: its account's next push carries it."""
        if order.api_key in self.watched:
            self._side.setdefault(order.api_key, []).append(order)

    def emit(self, account: Account, inst: InstrumentConfig, orders: list[Order], fills: list[Execution]) -> None:
        """One push for one change of one account: order, execution, position, wallet."""
        side = self._side.pop(account.api_key, None)
        if self.observing:
            self.orders_seen.extend(orders)
        if account.api_key not in self.watched:
            return
        if side:
            orders = orders + [o for o in side if o not in orders]
        messages: Messages = []
        if orders:
            messages.append(("order", [self._order(o) for o in orders]))
        if fills:
            messages.append(("execution", [shapes.execution_item(e, inst, stream=True) for e in fills]))
        if self._coalescing:
            named = frozenset(o.position_idx for o in orders)
            self._pending.append((account.api_key, messages, (account, inst, named)))
            return
        if inst.category != "spot":
            messages.append(("position", self._positions(account, inst, {o.position_idx for o in orders})))
        messages.append(self.wallet_message(account))
        self._pending.append((account.api_key, messages, None))

    def _positions(self, account: Account, inst: InstrumentConfig, named: set[int]) -> list[dict[str, Any]]:
        """The position items of a push: those ``named`` by its orders that are held, else
        every side held (none named: a fill's cancel of a stop, say)."""
        held = account.position_indices(inst.category, inst.symbol)
        items = []
        for idx in sorted(named & set(held)) or held:  # read, never created: a push has no side effects
            pos = account.positions.get((inst.category, inst.symbol, idx))
            items.append(self.position_item(pos, inst, idx, account))
        return items

    @contextmanager
    def coalescing(self) -> Iterator[None]:
        """Within: each account's changes become one push, built at the end (the module's
        docstring). A change refused within is rolled back as ever (:meth:`rollback`)."""
        start = len(self._pending)
        self._coalescing = True
        try:
            yield
        finally:
            self._coalescing = False
            self._merge(start)

    def _merge(self, start: int) -> None:
        merged: dict[str, tuple[Account, dict[str, list[dict[str, Any]]], dict[Ident, set[int]]]] = {}
        instruments: dict[Ident, InstrumentConfig] = {}
        for api_key, messages, later in self._pending[start:]:
            assert later is not None  # only emit runs within, and it leaves these
            account, inst, named = later
            _, items, positions = merged.setdefault(api_key, (account, {"order": [], "execution": []}, {}))
            for topic, data in messages:
                items[topic].extend(data)
            if inst.category != "spot":
                ident = (inst.category, inst.symbol)
                instruments[ident] = inst
                positions.setdefault(ident, set()).update(named)
        del self._pending[start:]
        for api_key, (account, items, positions) in merged.items():
            messages = [(topic, data) for topic, data in items.items() if data]
            messages += [("position", self._positions(account, instruments[i], n)) for i, n in positions.items()]
            messages.append(self.wallet_message(account))
            self._pending.append((api_key, messages, None))

    def emit_wallet(self, account: Account) -> None:
        """A wallet-only push: money moved without an order (a transfer, a margin-mode change)."""
        if account.api_key in self.watched:
            self._pending.append((account.api_key, [self.wallet_message(account)], None))

    def emit_position(self, account: Account, inst: InstrumentConfig, idx: int) -> None:
        """A position-only push: a position set behind the client's back, announced."""
        if account.api_key in self.watched:
            pos = account.positions.get((inst.category, inst.symbol, idx))
            self._pending.append((account.api_key, [("position", [self.position_item(pos, inst, idx, account)])], None))

    def wallet_message(self, account: Account) -> tuple[str, list[dict[str, Any]]]:
        valuation = self.margin.valuation(account)
        coins = [c for c in valuation.coins if c.wallet_balance or c.equity or c.locked or c.order_im]
        return ("wallet", [shapes.wallet_account(valuation, coins)])

    def position_item(
        self, pos: Position | None, inst: InstrumentConfig, idx: int, account: Account | None = None
    ) -> dict[str, Any]:
        """A ``position`` push item (flat, not stored, if ``pos`` is None)."""
        if pos is None:
            pos = flat_position(inst.category, inst.symbol, idx, self._clock())
        item = self.position_json(pos, inst, account)
        item["entryPrice"] = item.pop("avgPrice")
        item["category"] = inst.category
        return item

    def position_json(self, pos: Position, inst: InstrumentConfig, account: Account | None = None) -> dict[str, Any]:
        """A position item; ``account`` (its owner) gives ``liqPrice`` and ``bustPrice``."""
        mark = self.margin.markets.mark_price((inst.category, inst.symbol))
        liq, bust = liq_prices.prices(account, pos, inst, self.margin) if account is not None else (None, None)
        return shapes.position(pos, inst, mark if mark is not None else inst.price, liq, bust)

    def _order(self, o: Order) -> dict[str, Any]:
        return shapes.order_item(o, self.instruments[(o.category, o.symbol)], stream=True)

    # -- the call's outcome -------------------------------------------------------------------

    def commit(self) -> None:
        """The call succeeded: its pushes go out, in the order they were built."""
        if not self._pending and not self._side:  # most calls on an unwatched account
            return
        for api_key, orders in self._side.items():
            self._pending.append((api_key, [("order", [self._order(o) for o in orders])], None))
        self._side.clear()
        route = self.route
        for api_key, messages, _ in self._pending:
            wire = encode(messages)
            if route is None:
                self.events.append("private", (api_key, wire))
            else:
                route(api_key, wire)
        self._pending.clear()

    def discard(self) -> None:
        """The call was refused: it tells nobody anything."""
        self._pending.clear()
        self._side.clear()
        self.orders_seen.clear()

    def savepoint(self) -> tuple[int, dict[str, int], int]:
        return len(self._pending), {key: len(orders) for key, orders in self._side.items()}, len(self.orders_seen)

    def rollback(self, point: tuple[int, dict[str, int], int]) -> None:
        """Drop what was built since ``point`` (a refused entry of a batch)."""
        pending, side, seen = point
        del self._pending[pending:]
        del self.orders_seen[seen:]
        for key in list(self._side):
            kept = side.get(key, 0)
            if kept:
                del self._side[key][kept:]
            else:
                del self._side[key]
