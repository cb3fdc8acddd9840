"""The account book: every account, order, fill and stop the engine keeps, and the ids it makes.

The parts of the engine (order entry and matching, TP/SL, position settings, queries, funds)
each receive this one object rather than reaching into a shared host class, so what a part
reads and writes is visible in its constructor and checked by mypy.

What the book keeps, and the invariants the parts rely on:

* ``orders`` (by id), ``account_orders`` (per account, in registration order) and ``link_ids``
  index the same :class:`Order` objects; closed orders beyond ``history_limit`` are pruned
  from all three (open ones always stay).
* ``resting[(category, symbol)]`` holds the live orders on the book (GTC and PostOnly limits),
  each holding ``order.held`` of margin (contracts: the coin's ``order_im``) or coin (spot:
  ``locked``); ``open_counts`` counts them per account and symbol.
* ``triggers[(category, symbol)]`` holds the Untriggered conditional orders.
* ``resting_index`` and ``trigger_index`` hold the same orders per symbol in price order
  (``price_index.py``), so a market move finds what it crossed without scanning the book;
  :meth:`rest`, :meth:`arm` and :meth:`release` keep them in step with ``resting`` and
  ``triggers`` (an order's price changes only between a release and the next rest or arm).
* ``position_stops`` maps a position to its own TP, SL and trailing stop orders.
* ``version`` goes up with every change to account state (it keys the read caches); a part
  that changes state calls :meth:`touch`.

Ids come from one RNG seeded by the configuration and reseeded by ``reset()``, so the same
configuration and the same requests give the same ids: a failing run can be replayed.
``seq`` numbers (orders, fills, ledger rows, transfers, deposits, positions) come from one
counter, so "newest first" is one comparison and a page cursor names a record.
"""

from __future__ import annotations

import collections
import itertools
import random
from decimal import Decimal
from typing import Any

from ..bybit import errors
from ..bybit.errors import BybitError
from ..config import InstrumentConfig
from .accounts import ZERO, Account
from .orders import Execution, Order
from .price_index import RestingIndex, TriggerIndex
from .records import LogEntry

Ident = tuple[str, str]  # (category, symbol)
#: a position's own stops: (api key, category, symbol, positionIdx)
StopKey = tuple[str, str, str, int]


def spent_coin(inst: InstrumentConfig, side: str) -> str:
    """The coin a spot order pays with: quote for a buy, base for a sell."""
    return inst.quote_coin if side == "Buy" else inst.base_coin


def history_slack(limit: int) -> int:
    """How far a history may grow past ``limit`` before it is trimmed back: 1 %, so a trim
    costs little each time (freeing 1 000 of 100 000 rows takes well under a millisecond,
    where 10 % took ~10 ms, a pause the order that tripped it would wait out)."""
    return max(1, limit // 100)


def trim_history(rows: list[Any], limit: int) -> None:
    """Keep the newest ``limit`` rows of an append-only history, trimming in small chunks."""
    if len(rows) > limit + history_slack(limit):
        del rows[: len(rows) - limit]


class Ids:
    """Order and fill ids, and the record sequence, from one seeded RNG."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        # spot order ids are numeric on Bybit (19 digits)
        self._spot = itertools.count(1_900_000_000_000_000_000 + self._rng.randrange(10**9) * 1000)
        self._seq = itertools.count(1)

    def uuid(self) -> str:
        """A version-4 UUID string like ``uuid.uuid4()``'s (a quarter of its cost: no urandom)."""
        n = self._rng.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48) | (0x4000 << 64 | 0x8000 << 48)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def order_id(self, category: str) -> str:
        return str(next(self._spot)) if category == "spot" else self.uuid()

    def hex(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def seq(self) -> int:
        return next(self._seq)


class AccountBook:
    def __init__(self, accounts: dict[str, Account], history_limit: int, seed: int) -> None:
        self.accounts = accounts
        self.history_limit = history_limit
        self.ids = Ids(seed)
        self.orders: dict[str, Order] = {}
        self.account_orders: dict[str, list[Order]] = {}
        self.link_ids: dict[tuple[str, str], Order] = {}
        self.resting: dict[Ident, dict[str, Order]] = {}
        self.triggers: dict[Ident, dict[str, Order]] = {}
        self.resting_index: dict[Ident, RestingIndex] = {}
        self.trigger_index: dict[Ident, TriggerIndex] = {}
        self.position_stops: dict[StopKey, dict[str, Order]] = {}
        self.executions: dict[str, list[Execution]] = {}
        self.open_counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        #: bumped when an order rests or arms: a sweep with none new can skip unchanged symbols
        self.rest_count = 0
        self.arm_count = 0
        self.version = 0

    def touch(self) -> None:
        """Account state changed: cached reads are stale."""
        self.version += 1

    def account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise BybitError(errors.INVALID_API_KEY, errors.INVALID_API_KEY_MSG)
        return account

    # -- orders -------------------------------------------------------------------------------

    def register(self, order: Order) -> None:
        """A new order: indexed, given its record ``seq``; old closed ones pruned in chunks."""
        order.seq = self.ids.seq()
        self.orders[order.order_id] = order
        mine = self.account_orders.setdefault(order.api_key, [])
        mine.append(order)
        if order.link_id:
            self.link_ids[(order.api_key, order.link_id)] = order
        if len(mine) > self.history_limit + history_slack(self.history_limit):
            self._forget_closed_orders(order.api_key)
        self.touch()

    def _forget_closed_orders(self, api_key: str) -> None:
        """Drop the account's oldest closed orders down to ``history_limit`` (open ones stay)."""
        orders = self.account_orders[api_key]
        excess = len(orders) - self.history_limit
        kept: list[Order] = []  # open orders among the oldest: they stay, in their order
        end = 0
        for o in orders:  # from the oldest, only as far as it takes (closed ones are mostly there)
            if excess <= 0:
                break
            end += 1
            if o.is_open:
                kept.append(o)
                continue
            excess -= 1
            del self.orders[o.order_id]
            if o.link_id and self.link_ids.get((api_key, o.link_id)) is o:
                del self.link_ids[(api_key, o.link_id)]
        # in place: a new list would be a young object holding 100 000 references, and every
        # young collection until the next freeze (``service/gc_policy.py``) would walk them all
        orders[:end] = kept

    def find(self, api_key: str, category: str, symbol: str, order_id: str | None, link_id: str | None) -> Order | None:
        """The account's order by id (or else link id) in this symbol, or None."""
        order = self.orders.get(order_id) if order_id is not None else self.link_ids.get((api_key, link_id or ""))
        if order is None or order.api_key != api_key or order.category != category or order.symbol != symbol:
            return None
        return order

    def hold(self, account: Account, inst: InstrumentConfig, order: Order, amount: Decimal) -> None:
        """Make ``order`` hold ``amount``: coin for spot, order margin for contracts."""
        order.held = amount
        if inst.category == "spot":
            account.coin(spent_coin(inst, order.side)).locked += amount
        else:
            account.coin(inst.settle_coin).order_im += amount

    def rest(self, account: Account, inst: InstrumentConfig, order: Order, held: Decimal) -> None:
        """Put an open order on the book, holding ``held``."""
        self.hold(account, inst, order, held)
        ident = (inst.category, inst.symbol)
        book = self.resting.setdefault(ident, {})
        if order.order_id not in book:
            self.open_counts[(order.api_key, *ident)] += 1
        book[order.order_id] = order
        index = self.resting_index.get(ident)
        if index is None:
            index = self.resting_index[ident] = RestingIndex()
        index.add(order)
        self.rest_count += 1
        self.touch()

    def rehold(self, account: Account, inst: InstrumentConfig, order: Order, held: Decimal) -> None:
        """Change what a resting order holds, leaving it where it is on the book."""
        delta = held - order.held
        if inst.category == "spot":
            account.coin(spent_coin(inst, order.side)).locked += delta
        else:
            account.coin(inst.settle_coin).order_im += delta
        order.held = held
        self.touch()

    def arm(self, inst: InstrumentConfig, order: Order) -> None:
        """Put a conditional order in wait for its trigger price (what it holds, if anything,
        is already held: see ``Trading``)."""
        order.status = "Untriggered"
        ident = (inst.category, inst.symbol)
        self.triggers.setdefault(ident, {})[order.order_id] = order
        index = self.trigger_index.get(ident)
        if index is None:
            index = self.trigger_index[ident] = TriggerIndex()
        index.add(order)
        self.arm_count += 1
        self.touch()

    def release(self, account: Account, inst: InstrumentConfig, order: Order) -> None:
        """Take an order off the book (or out of the trigger wait) and give back what it held."""
        ident = (inst.category, inst.symbol)
        resting = self.resting.get(ident)
        if resting is not None and resting.pop(order.order_id, None) is not None:
            self.open_counts[(order.api_key, *ident)] -= 1
            self.resting_index[ident].discard(order.order_id)
        waiting = self.triggers.get(ident)
        if waiting is not None and waiting.pop(order.order_id, None) is not None:
            self.trigger_index[ident].discard(order.order_id)
        if order.held:
            if inst.category == "spot":
                account.coin(spent_coin(inst, order.side)).locked -= order.held
            else:
                account.coin(inst.settle_coin).order_im -= order.held
            order.held = ZERO
        self.touch()

    def has_open_orders(self, api_key: str, ident: Ident) -> bool:
        return any(o.api_key == api_key for book in (self.resting, self.triggers) for o in book.get(ident, {}).values())

    def waiting_stops(self, api_key: str, ident: Ident, kinds: tuple[str, ...]) -> int:
        """How many of the account's Untriggered orders of these stop types wait in this symbol."""
        return sum(
            1 for o in self.triggers.get(ident, {}).values() if o.api_key == api_key and o.stop_order_type in kinds
        )

    def open_orders(self, api_key: str) -> list[Order]:
        return [o for o in self.account_orders.get(api_key, []) if o.is_open]

    # -- fills and money records --------------------------------------------------------------

    def record_fill(self, account: Account, execution: Execution, rows: list[LogEntry]) -> None:
        fills = self.executions.setdefault(account.api_key, [])
        fills.append(execution)
        trim_history(fills, self.history_limit)
        self.log(account, rows)

    def log(self, account: Account, rows: list[LogEntry]) -> None:
        account.log.extend(rows)
        trim_history(account.log, self.history_limit)
        self.touch()
