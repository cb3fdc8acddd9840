"""Hedge mode: ``switch-mode`` 3, a long (positionIdx 1) and a short (2) side by side."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, LINEAR, new_exchange, ok, pushes, run

D = Decimal


def hedged() -> Exchange:
    ex = new_exchange()
    ok(ex, "switch_mode", LINEAR | {"mode": 3})
    return ex


def market(side: str, qty: str, idx: int) -> dict[str, Any]:
    return LINEAR | {"side": side, "orderType": "Market", "qty": qty, "positionIdx": idx}


def positions(ex: Exchange) -> dict[int, tuple[str, str]]:
    items = ok(ex, "position_list", LINEAR)["list"]
    return {p["positionIdx"]: (p["side"], p["size"]) for p in items}


def test_switch_mode_rules() -> None:
    ex = new_exchange()
    assert run(ex, "switch_mode", LINEAR | {"mode": 0})[0] == 110025  # already one-way
    assert run(ex, "switch_mode", {"category": "linear", "mode": 0})[0] == 10001  # symbol or coin
    assert run(ex, "switch_mode", LINEAR | {"mode": 1})[0] == 10001
    ok(ex, "order_create", market("Buy", "0.01", 0))
    assert run(ex, "switch_mode", LINEAR | {"mode": 3})[0] == 110024  # a position is open
    ok(ex, "order_create", market("Sell", "0.01", 0))
    resting = ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "60000"})
    assert run(ex, "switch_mode", LINEAR | {"mode": 3})[0] == 110028  # an order is open
    ok(ex, "order_cancel", LINEAR | {"orderId": resting["orderId"]})
    ok(ex, "set_leverage", LINEAR | {"buyLeverage": "4", "sellLeverage": "4"})
    ok(ex, "switch_mode", LINEAR | {"mode": 3})
    assert run(ex, "switch_mode", LINEAR | {"mode": 3})[0] == 110025
    items = ok(ex, "position_list", LINEAR)["list"]  # both sides listed, flat, same leverage
    assert [(p["positionIdx"], p["size"], p["leverage"]) for p in items] == [(1, "0", "4"), (2, "0", "4")]


def test_hedge_mode_holds_a_long_and_a_short_at_once() -> None:
    ex = hedged()
    cursor = ex.event_cursor()
    code, msg = run(ex, "order_create", market("Buy", "0.01", 0))
    assert (code, msg) == (10001, "position idx not match position mode")
    ok(ex, "order_create", market("Buy", "0.02", 1))
    ok(ex, "order_create", market("Sell", "0.01", 2))
    assert positions(ex) == {1: ("Buy", "0.02"), 2: ("Sell", "0.01")}
    usdt = ex.accounts[KEY].coins["USDT"]
    # both sides hold margin: the short did not close the long
    assert ex.margin.valuation(ex.accounts[KEY]).total_im > 0 and usdt.order_im == 0

    # a Sell on the long closes it (never flips it), the rest of the qty is dropped
    closing = ok(ex, "order_create", market("Sell", "0.05", 1))
    assert positions(ex) == {1: ("", "0"), 2: ("Sell", "0.01")}
    item = ok(ex, "order_history", LINEAR | {"orderId": closing["orderId"]})["list"][0]
    assert (item["positionIdx"], item["reduceOnly"], item["cumExecQty"]) == (1, True, "0.02")
    assert run(ex, "order_create", market("Sell", "0.01", 1))[0] == 110017  # nothing left to close

    sent = [items for topic, items in pushes(ex, cursor) if topic == "position"]
    # each push carries the side the order traded, as Bybit sends the position that changed
    assert [[(p["positionIdx"], p["size"]) for p in items] for items in sent] == [
        [(1, "0.02")],
        [(2, "0.01")],
        [(1, "0")],
    ]
    orders = [i for topic, items in pushes(ex, cursor) if topic == "order" for i in items]
    assert {o["positionIdx"] for o in orders} == {1, 2}


def test_hedge_mode_stops_and_leverage_per_side() -> None:
    ex = hedged()
    ok(ex, "order_create", market("Buy", "0.01", 1))
    ok(ex, "order_create", market("Sell", "0.01", 2))
    assert run(ex, "trading_stop", LINEAR | {"stopLoss": "66000"})[0] == 10001  # idx 0 is not this mode
    ok(ex, "trading_stop", LINEAR | {"positionIdx": 2, "stopLoss": "66000"})
    items = {p["positionIdx"]: p for p in ok(ex, "position_list", LINEAR)["list"]}
    assert (items[1]["stopLoss"], items[2]["stopLoss"]) == ("", "66000.00")
    ex.set_mark_price("BTCUSDT", 66500)  # the short's stop fires; the long is untouched
    assert positions(ex) == {1: ("Buy", "0.01"), 2: ("", "0")}

    ok(ex, "set_leverage", LINEAR | {"buyLeverage": "3", "sellLeverage": "3"})
    assert {p["leverage"] for p in ok(ex, "position_list", LINEAR)["list"]} == {"3"}
    assert run(ex, "set_leverage", LINEAR | {"buyLeverage": "3", "sellLeverage": "3"})[0] == 110043


def test_switch_by_coin_skips_busy_symbols_and_inverse_stays_one_way() -> None:
    ex = new_exchange()
    ok(ex, "order_create", market("Buy", "0.01", 0))  # BTCUSDT busy; ETHUSDT free
    ok(ex, "switch_mode", {"category": "linear", "coin": "USDT", "mode": 3})
    dated = {i for i, inst in ex.instruments.items() if inst.category == "linear" and inst.dated}
    free = {("linear", "ETHUSDT")} | dated
    assert ex.accounts[KEY].hedged == free  # USDT perpetuals and USDT futures alike
    assert run(ex, "switch_mode", {"category": "inverse", "coin": "BTC", "mode": 3})[0] == 110029
