"""The price index of resting orders and waiting stops (``engine/price_index.py``).

* The index holds exactly the orders of ``book.resting`` / ``book.triggers``, each on its
  side's (or direction's) ladder under its current price, the ladder's keys sorted and
  non-empty, through random order flows (the property tests' flows: creates, amends,
  cancels, forced and partial fills, price moves, conditional orders, TP/SL, trailing stops).
* ``crossed`` gives what a brute-force scan gives, in price-time priority.
* A sweep reads only the price levels the market crossed: with hundreds of orders resting far
  away, a move that crosses one examines one, and the per-symbol dicts are never scanned.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybit_mock.engine.book import AccountBook
from bybit_mock.engine.orders import Order
from bybit_mock.engine.price_index import Ladder, RestingIndex
from bybit_mock.engine.stops import RISE
from tests.unit.helpers import KEY, LINEAR, new_exchange, ok
from tests.unit.test_trading_properties import ops, step

D = Decimal


def check_ladder(ladder: Ladder) -> None:
    assert ladder.keys == sorted(set(ladder.keys))
    assert set(ladder.keys) == set(ladder.levels)
    assert all(ladder.levels.values()), "an empty level stayed"
    assert {oid: key for key, level in ladder.levels.items() for oid in level} == ladder.filed


def check_indexes(book: AccountBook) -> None:
    """Every index holds exactly its symbol's orders, each filed where its price says."""
    assert set(book.resting_index) == set(book.resting)
    for ident, orders in book.resting.items():
        index = book.resting_index[ident]
        check_ladder(index.buys)
        check_ladder(index.sells)
        assert len(index) == len(orders)
        for oid, order in orders.items():
            ladder = index.buys if order.side == "Buy" else index.sells
            assert ladder.levels[order.price][oid] is order
    assert set(book.trigger_index) == set(book.triggers)
    for ident, waiting in book.triggers.items():
        stops = book.trigger_index[ident]
        for rising, falling in stops.ladders.values():
            check_ladder(rising)
            check_ladder(falling)
        assert len(stops) == len(waiting)
        for oid, order in waiting.items():
            if order.trailing:
                assert stops.trailing[oid] is order
            else:
                rising, falling = stops.ladders[order.trigger_by or "LastPrice"]
                ladder = rising if order.trigger_direction == RISE else falling
                assert ladder.levels[order.trigger_price][oid] is order


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=5, max_size=40), st.booleans(), st.data())
def test_the_index_follows_the_book_through_random_flows(
    flow: list[tuple[Any, ...]], hedge: bool, data: st.DataObject
) -> None:
    ex = new_exchange()
    if hedge:
        ok(ex, "switch_mode", {"category": "linear", "symbol": "BTCUSDT", "mode": 3})
    indices = st.sampled_from([1, 2]) if hedge else st.just(0)
    for op in flow:
        step(ex, op, lambda: data.draw(indices))
        check_indexes(ex.book)


def _order(n: int, side: str, price: Decimal) -> Order:
    return Order(
        order_id=f"o{n}",
        link_id="",
        api_key=KEY,
        category="linear",
        symbol="BTCUSDT",
        side=side,
        order_type="Limit",
        qty=D("0.001"),
        price=price,
        time_in_force="GTC",
        reduce_only=False,
        created_ms=0,
        last_price_on_created=D(65000),
        updated_ms=0,
        seq=n,
    )


def test_crossed_is_the_brute_force_scan_in_price_time_order() -> None:
    rng = random.Random(12)
    index = RestingIndex()
    live: dict[str, Order] = {}
    for n in range(3000):
        if live and rng.random() < 0.35:  # take one off
            order = live.pop(rng.choice(list(live)))
            index.discard(order.order_id)
        else:  # rest a new one, or re-file a live one at a new price (an amend)
            if live and rng.random() < 0.2:
                order = rng.choice(list(live.values()))
                order.price = D(rng.randrange(90, 111))
            else:
                order = live[f"o{n}"] = _order(n, rng.choice(["Buy", "Sell"]), D(rng.randrange(90, 111)))
            index.add(order)
        if n % 50 == 0:
            check_ladder(index.buys)
            check_ladder(index.sells)
            assert len(index) == len(live)
            bid, ask = D(rng.randrange(85, 105)), D(rng.randrange(95, 116))
            buys = sorted(
                (o for o in live.values() if o.side == "Buy" and o.price >= ask), key=lambda o: (-o.price, o.seq)
            )
            sells = sorted(
                (o for o in live.values() if o.side == "Sell" and o.price <= bid), key=lambda o: (o.price, o.seq)
            )
            assert index.crossed(bid, ask) == buys + sells
            assert index.crossed(None, None) == []


@pytest.fixture
def examined(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many orders the ladders hand out (the orders a sweep examines), per call."""
    counts: list[int] = []

    def counting(method: Any) -> Any:
        def wrapper(self: Ladder, bound: Decimal) -> Iterator[list[Order]]:
            levels = list(method(self, bound))
            counts.append(sum(len(level) for level in levels))
            return iter(levels)

        return wrapper

    monkeypatch.setattr(Ladder, "at_or_above", counting(Ladder.at_or_above))
    monkeypatch.setattr(Ladder, "at_or_below", counting(Ladder.at_or_below))
    return counts


class Unscannable(dict[str, Order]):
    """A per-symbol order dict the sweep must not iterate (lookups by id still work)."""

    def values(self) -> Any:
        raise AssertionError("the sweep scanned the book")

    items = values
    __iter__ = values


def test_a_sweep_examines_only_the_orders_the_market_crossed(examined: list[int]) -> None:
    ex = new_exchange()
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.01", 65000)  # the stop reduces it: no flip, no clear
    limit = LINEAR | {"orderType": "Limit", "qty": "0.001"}
    for i in range(150):  # far from the market on both sides
        ok(ex, "order_create", limit | {"side": "Buy", "price": str(30000 + i)})
        ok(ex, "order_create", limit | {"side": "Sell", "price": str(100000 + i)})
    older = ok(ex, "order_create", limit | {"side": "Buy", "price": "64700"})["orderId"]
    better = ok(ex, "order_create", limit | {"side": "Buy", "price": "64800"})["orderId"]
    stop = LINEAR | {"side": "Sell", "orderType": "Market", "qty": "0.001", "triggerDirection": 2}
    for i in range(9):  # stops waiting far below (an account may have 10)
        ok(ex, "order_create", stop | {"triggerPrice": str(20000 + i)})
    falling = ok(ex, "order_create", stop | {"triggerPrice": "64650"})["orderId"]
    ex.book.resting[("linear", "BTCUSDT")] = Unscannable(ex.book.resting[("linear", "BTCUSDT")])
    ex.book.triggers[("linear", "BTCUSDT")] = Unscannable(ex.book.triggers[("linear", "BTCUSDT")])
    examined.clear()

    ex.set_mark_price("BTCUSDT", 64600)  # through both near buys and the near stop

    assert ex.book.orders[older].status == "Filled"
    assert ex.book.orders[better].status == "Filled"
    assert ex.book.orders[falling].status == "Filled"  # triggered, then filled at market
    # each sweep pass examined only what it crossed: the two buys, the stop
    assert sum(examined) == 3, examined
    assert len(ex.book.resting[("linear", "BTCUSDT")]) == 300
    # price-time priority: the better-priced buy filled first, though it came later
    fills = [e.order.order_id for e in ex.book.executions[KEY] if e.order.order_id in (older, better)]
    assert fills == [better, older]
    for books in (ex.book.resting, ex.book.triggers):
        books[("linear", "BTCUSDT")] = dict(dict.items(books[("linear", "BTCUSDT")]))
    check_indexes(ex.book)


def test_a_move_in_one_symbol_examines_nothing_in_another(examined: list[int]) -> None:
    ex = new_exchange()
    limit = LINEAR | {"orderType": "Limit", "qty": "0.001"}
    for i in range(100):
        ok(ex, "order_create", limit | {"side": "Buy", "price": str(30000 + i)})
    ex.book.resting[("linear", "BTCUSDT")] = Unscannable(ex.book.resting[("linear", "BTCUSDT")])
    eth = {"category": "linear", "symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01"}
    examined.clear()
    for _ in range(20):  # each new order makes the next sweep look again
        order_id = ok(ex, "order_create", eth | {"price": "1000"})["orderId"]
        ok(ex, "order_cancel", {"category": "linear", "symbol": "ETHUSDT", "orderId": order_id})
    ex.set_mark_price("BTCUSDT", 64000)
    assert sum(examined) == 0, examined
