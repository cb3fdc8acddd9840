"""The state service freezes its survivors every second (``service/gc_policy.py``): safe only
because the engine makes no cyclic garbage, which nothing would collect once frozen."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.service.gc_policy import freeze_survivors

from .helpers import FixedClock

LINEAR = {"category": "linear", "symbol": "BTCUSDT"}


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collection: every cycle the workload makes is still there at the end."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def workload(ex: Exchange, clock: FixedClock, rounds: int) -> None:
    for r in range(rounds):
        commands = []
        for i in range(50):
            market = LINEAR | {"side": "Buy" if i % 2 else "Sell", "orderType": "Market", "qty": "0.001"}
            link = f"l{r}-{i}"
            limit = LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "50000"}
            limit |= {"orderLinkId": link}
            commands += [
                ("order_create", ("k", market)),
                ("order_create", ("k", limit)),
                ("order_amend", ("k", LINEAR | {"orderLinkId": link, "qty": "0.002"})),
                ("order_cancel", ("k", LINEAR | {"orderLinkId": link})),
                ("order_create", ("k", limit | {"qty": "-1", "orderLinkId": ""})),  # refused: bad qty
                ("order_amend", ("k", LINEAR | {"orderId": "nope", "qty": "0.002"})),  # refused: no such order
                ("order_create_batch", ("k", {"category": "linear", "request": [market, market | {"qty": "x"}]})),
                ("trading_stop", ("k", LINEAR | {"takeProfit": "90000", "stopLoss": "10"})),
                ("wallet_balance", ("k", {"accountType": "UNIFIED"})),
                ("position_list", ("k", LINEAR)),
                ("order_realtime", ("k", LINEAR)),
                ("execution_list", ("k", LINEAR)),
                ("transaction_log", ("k", {})),
                ("no_such_command", ("k", {})),
            ]
        ex.apply_batch(commands)
        clock.now += 1000
        ex.set_mark_price("BTCUSDT", 65000 + 100 * (r % 3))  # triggers, sweeps, liquidation checks
        ex.advance_markets()
        ex.events.wait(ex.events.cursor, 0)


def test_the_engine_makes_no_cyclic_garbage(collector_off: None) -> None:
    clock = FixedClock()
    ex = Exchange(MockExchangeConfig(accounts=[AccountConfig("k", "s", {"USDT": Decimal(10**7)})]), clock=clock)
    ex.watch("w", ["k"])  # pushes built and encoded
    gc.collect()  # what building the engine left
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        workload(ex, clock, 20)
        found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage).most_common(5)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert found == 0, kinds


def test_freezing_takes_the_survivors_out_of_every_collection() -> None:
    survivors = [{"n": i} for i in range(10_000)]  # dicts: tracked by the collector
    try:
        freeze_survivors()
        assert gc.get_freeze_count() >= len(survivors)
        # none of them left in any generation a collection walks (not a check of
        # ``gc.get_count()``: another thread of the session may have allocated since)
        walked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        assert not any(id(o) in walked for o in survivors)
    finally:
        gc.unfreeze()
