"""Resting orders and waiting stops of one symbol in price order, so a market move finds what it
crossed without looking at the rest.

The account book keeps every live order by id per symbol (``AccountBook.resting`` and
``triggers``: queries, cancel-all and the state views iterate those); beside them it keeps one
index per symbol, maintained wherever an order rests, arms or is released. An order's key
(price or trigger price) is remembered when it is filed, so it comes out of the right level
even if its price field changed while it was filed.

* :class:`Ladder`: orders by a price key, a sorted list of the distinct keys (``bisect``) and
  one dict per key in filing order; the orders at or beyond a bound are the ones at one end.
* :class:`RestingIndex`: a symbol's resting limit orders, buys and sells each on a ladder. The
  market crossed a buy when the best ask is at or below its price, a sell when the best bid is
  at or above it; :meth:`RestingIndex.crossed` gives those in price-time priority (the best
  price first, then the oldest ``seq``).
* :class:`TriggerIndex`: a symbol's Untriggered orders: per ``triggerBy`` price (last, mark,
  index), those that trigger on a rise and those that trigger on a fall on their own ladders
  by trigger price, and trailing stops (whose trigger follows the last price, so every move
  must look at them) apart.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from decimal import Decimal

from .orders import Order
from .stops import LAST, RISE


class Ladder:
    """Orders filed under a price key: the keys sorted, each key's orders in filing order."""

    __slots__ = ("filed", "keys", "levels")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []
        self.levels: dict[Decimal, dict[str, Order]] = {}
        #: the key each order was filed under (its price may change before it comes out)
        self.filed: dict[str, Decimal] = {}

    def __len__(self) -> int:
        return len(self.filed)

    def add(self, order: Order, key: Decimal) -> None:
        self.discard(order.order_id)
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = {}
            bisect.insort(self.keys, key)
        level[order.order_id] = order
        self.filed[order.order_id] = key

    def discard(self, order_id: str) -> None:
        key = self.filed.pop(order_id, None)
        if key is None:
            return
        level = self.levels[key]
        del level[order_id]
        if not level:
            del self.levels[key]
            del self.keys[bisect.bisect_left(self.keys, key)]

    def at_or_above(self, bound: Decimal) -> Iterator[list[Order]]:
        """The levels keyed ``>= bound``, highest first (each level's orders in filing order)."""
        keys = self.keys
        for i in range(len(keys) - 1, bisect.bisect_left(keys, bound) - 1, -1):
            yield list(self.levels[keys[i]].values())

    def at_or_below(self, bound: Decimal) -> Iterator[list[Order]]:
        """The levels keyed ``<= bound``, lowest first."""
        keys = self.keys
        for i in range(bisect.bisect_right(keys, bound)):
            yield list(self.levels[keys[i]].values())


def _by_seq(order: Order) -> int:
    return order.seq


class RestingIndex:
    """A symbol's resting orders, buys and sells by price."""

    __slots__ = ("buys", "sells")

    def __init__(self) -> None:
        self.buys = Ladder()
        self.sells = Ladder()

    def __len__(self) -> int:
        return len(self.buys) + len(self.sells)

    def add(self, order: Order) -> None:
        self.discard(order.order_id)  # filed again (the book allows a rest without a release)
        (self.buys if order.side == "Buy" else self.sells).add(order, order.price)

    def discard(self, order_id: str) -> None:
        self.buys.discard(order_id)
        self.sells.discard(order_id)

    def crossed(self, best_bid: Decimal | None, best_ask: Decimal | None) -> list[Order]:
        """The orders the top of book has moved through, in price-time priority: buys priced
        at or above the best ask, highest first, then sells priced at or below the best bid,
        lowest first; orders at one price oldest first (by ``seq``: an order re-filed after a
        partial fill keeps its place)."""
        out: list[Order] = []
        # most sweeps cross nothing: one comparison with each side's best price says so
        buys, sells = self.buys.keys, self.sells.keys
        if best_ask is not None and buys and buys[-1] >= best_ask:
            for level in self.buys.at_or_above(best_ask):
                out.extend(sorted(level, key=_by_seq))
        if best_bid is not None and sells and sells[0] <= best_bid:
            for level in self.sells.at_or_below(best_bid):
                out.extend(sorted(level, key=_by_seq))
        return out


class TriggerIndex:
    """A symbol's Untriggered orders: per ``triggerBy`` price, rising and falling triggers by
    trigger price; trailing stops (which follow the last price) apart."""

    __slots__ = ("ladders", "trailing")

    def __init__(self) -> None:
        #: triggerBy ("LastPrice", "MarkPrice", "IndexPrice") -> (rising, falling): orders that
        #: trigger when that price rises to their trigger price or above, falls to it or below
        self.ladders: dict[str, tuple[Ladder, Ladder]] = {}
        self.trailing: dict[str, Order] = {}

    def __len__(self) -> int:
        return sum(len(r) + len(f) for r, f in self.ladders.values()) + len(self.trailing)

    def add(self, order: Order) -> None:
        self.discard(order.order_id)
        if order.trailing:
            self.trailing[order.order_id] = order
            return
        ladders = self.ladders.get(order.trigger_by or LAST)
        if ladders is None:
            ladders = self.ladders[order.trigger_by or LAST] = (Ladder(), Ladder())
        ladders[0 if order.trigger_direction == RISE else 1].add(order, order.trigger_price)

    def discard(self, order_id: str) -> None:
        for rising, falling in self.ladders.values():
            rising.discard(order_id)
            falling.discard(order_id)
        self.trailing.pop(order_id, None)

    def watched(self) -> frozenset[str]:
        """The prices some fixed trigger watches (``triggerBy`` values with orders filed)."""
        return frozenset(by for by, (r, f) in self.ladders.items() if r.filed or f.filed)

    def fixed_crossed(self, prices: Mapping[str, Decimal]) -> list[Order]:
        """The orders with a fixed trigger that their own price (``prices[triggerBy]``) has
        reached (in no particular order)."""
        out: list[Order] = []
        for by, (rising, falling) in self.ladders.items():
            price = prices[by]
            if rising.keys and rising.keys[0] <= price:
                for level in rising.at_or_below(price):
                    out.extend(level)
            if falling.keys and falling.keys[-1] >= price:
                for level in falling.at_or_above(price):
                    out.extend(level)
        return out
