"""Walking the market's book for a taker order, without changing it.

The book is the one the public streams show (the engine's copy of the seeded market model).
Our own fills do not consume it: every process advances an identical copy of the model, and
a private fill must not make the state service's copy drift from the workers'. So a taker
sees the displayed liquidity, level by level, as if it were alone in the market; two market
orders in a row both start at the best level.
"""

from __future__ import annotations

from decimal import Decimal

from ..market.book import BookSide
from ..market.fixed import Fixed

#: ``(price, qty)`` fills, best price first
Plan = list[tuple[Decimal, Decimal]]


def walk(
    side: BookSide, prices: Fixed, sizes: Fixed, qty: Decimal, limit: Decimal | None, by_value: bool = False
) -> Plan:
    """``(price, qty)`` fills for taking ``qty`` from ``side`` (asks for a buy, bids for a sell).

    ``limit`` stops the walk at a worse price (None: any price, a market order). With
    ``by_value``, ``qty`` is an amount of quote coin to spend (a spot market buy in quote
    units); each level's qty is then rounded down to the qty step.
    """
    fills: Plan = []
    want = qty
    step = sizes.step
    for key in side.keys:
        if want <= 0:
            break
        tick = key * side.sign
        price = prices.decimal(tick)
        if limit is not None and (price > limit if side.sign > 0 else price < limit):
            break
        have = sizes.decimal(side.sizes[key])
        if by_value:
            take = min(have, (want / price // step) * step)
            if take <= 0:
                break
            want -= take * price
        else:
            take = min(have, want)
            want -= take
        fills.append((price, take))
    return fills


def filled_qty(fills: Plan) -> Decimal:
    return sum((q for _, q in fills), Decimal(0))


def truncate(plan: Plan, qty: Decimal) -> Plan:
    """The first ``qty`` of a fill plan."""
    out: Plan = []
    left = qty
    for price, q in plan:
        if left <= 0:
            break
        take = min(q, left)
        out.append((price, take))
        left -= take
    return out
