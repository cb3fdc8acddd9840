"""Conditional orders, TP/SL and trailing stops on the engine (frozen market, injected clock)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.unit.helpers import KEY, LINEAR, SPOT, new_exchange, ok, order, position, pushes, run

D = Decimal


def test_linear_conditional_waits_for_its_trigger_then_executes() -> None:
    ex = new_exchange()
    created = ok(
        ex,
        "order_create",
        LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01", "triggerPrice": "66000", "triggerDirection": 1},
    )
    oid = created["orderId"]
    item = order(ex, oid)
    assert (item["orderStatus"], item["stopOrderType"], item["triggerPrice"]) == ("Untriggered", "Stop", "66000.00")
    assert (item["triggerDirection"], item["triggerBy"]) == (1, "LastPrice")
    assert position(ex)["size"] == "0"
    assert ex.accounts[KEY].coins["USDT"].order_im == 0  # no margin before the trigger
    ex.set_mark_price("BTCUSDT", 65900)
    assert order(ex, oid)["orderStatus"] == "Untriggered"
    cursor = ex.event_cursor()
    ex.set_mark_price("BTCUSDT", 66000)
    item = order(ex, oid)
    assert item["orderStatus"] == "Filled" and item["cumExecQty"] == "0.01"
    assert position(ex)["size"] == "0.01" and position(ex)["side"] == "Buy"
    sent = pushes(ex, cursor)
    statuses = [item["orderStatus"] for topic, items in sent if topic == "order" for item in items]
    assert statuses == ["Triggered", "Filled"]  # Bybit's instantaneous state is pushed first
    topics = [topic for topic, _ in sent]
    assert topics[topics.index("order", 1) :][:2] == ["order", "execution"]


def test_direction_is_checked_against_the_market_and_required_for_linear() -> None:
    ex = new_exchange()
    base = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01"}
    assert run(ex, "order_create", base | {"triggerPrice": "64000", "triggerDirection": 1})[0] == 110092
    assert run(ex, "order_create", base | {"triggerPrice": "66000", "triggerDirection": 2})[0] == 110093
    code, msg = run(ex, "order_create", base | {"triggerPrice": "66000"})
    assert code == 10001 and "triggerDirection" in msg
    assert run(ex, "order_create", base | {"triggerPrice": "66000", "triggerDirection": 3})[0] == 10001


def test_cancel_before_trigger_is_deactivated_and_amend_moves_the_trigger() -> None:
    ex = new_exchange()
    query = LINEAR | {"side": "Sell", "orderType": "Limit", "qty": "0.01", "price": "63900"}
    oid = ok(ex, "order_create", query | {"triggerPrice": "64000", "triggerDirection": 2})["orderId"]
    assert run(ex, "order_amend", LINEAR | {"orderId": oid, "triggerPrice": "66000"})[0] == 110093
    ok(ex, "order_amend", LINEAR | {"orderId": oid, "triggerPrice": "64500", "qty": "0.02"})
    item = order(ex, oid)
    assert (item["triggerPrice"], item["qty"], item["orderStatus"]) == ("64500.00", "0.02", "Untriggered")
    ok(ex, "order_cancel", LINEAR | {"orderId": oid})
    item = order(ex, oid)
    assert (item["orderStatus"], item["cancelType"]) == ("Deactivated", "CancelByUser")
    ex.set_mark_price("BTCUSDT", 64000)
    assert order(ex, oid)["orderStatus"] == "Deactivated"  # a cancelled trigger never fires
    assert run(ex, "order_cancel", LINEAR | {"orderId": oid})[0] == 110001


def test_triggered_limit_rests_and_holds_margin_then() -> None:
    ex = new_exchange()
    query = LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "60000"}
    oid = ok(ex, "order_create", query | {"triggerPrice": "64000", "triggerDirection": 2})["orderId"]
    ex.set_mark_price("BTCUSDT", 63990)
    item = order(ex, oid)
    assert item["orderStatus"] == "New" and item["triggerPrice"] == "64000.00"
    assert ex.accounts[KEY].coins["USDT"].order_im > 0


def test_spot_stop_order_and_tpsl_order_filters() -> None:
    ex = new_exchange()

    def spot_stop(side: str, price: str, trigger: str, order_filter: str) -> str:
        query = SPOT | {"side": side, "orderType": "Limit", "qty": "0.01", "price": price}
        return ok(ex, "order_create", query | {"triggerPrice": trigger, "orderFilter": order_filter})["orderId"]  # type: ignore[no-any-return]

    stop = spot_stop("Buy", "66100", "66000", "StopOrder")
    tpsl = spot_stop("Sell", "63000", "63100", "tpslOrder")
    plain = ok(ex, "order_create", SPOT | {"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "60000"})[
        "orderId"
    ]
    btc = ex.accounts[KEY].coins["BTC"]
    assert btc.locked == D("0.01")  # a tpslOrder holds its coin; a StopOrder does not
    assert order(ex, stop, "spot")["triggerDirection"] == 1  # spot infers it
    ids = {
        f: [o["orderId"] for o in ok(ex, "order_realtime", SPOT | {"orderFilter": f})["list"]]
        for f in ("Order", "StopOrder", "tpslOrder")
    }
    assert ids == {"Order": [plain], "StopOrder": [stop], "tpslOrder": [tpsl]}
    cancelled = ok(ex, "order_cancel_all", SPOT)["list"]  # spot default: plain orders only
    assert [c["orderId"] for c in cancelled] == [plain]
    cancelled = ok(ex, "order_cancel_all", SPOT | {"orderFilter": "StopOrder"})["list"]
    assert [c["orderId"] for c in cancelled] == [stop]
    assert order(ex, stop, "spot")["orderStatus"] == "Deactivated"
    ok(ex, "order_cancel", SPOT | {"orderId": tpsl, "orderFilter": "tpslOrder"})
    assert btc.locked == 0


def test_attached_full_tpsl_protects_the_position_and_take_profit_closes_it() -> None:
    ex = new_exchange()
    ok(
        ex,
        "order_create",
        LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.02", "takeProfit": "66000", "stopLoss": "64000"},
    )
    pos = position(ex)
    assert (pos["size"], pos["takeProfit"], pos["stopLoss"]) == ("0.02", "66000.00", "64000.00")
    stops = {o["stopOrderType"]: o for o in ok(ex, "order_realtime", LINEAR)["list"]}
    assert set(stops) == {"TakeProfit", "StopLoss"}
    assert stops["TakeProfit"]["orderStatus"] == "Untriggered" and stops["TakeProfit"]["reduceOnly"] is True
    assert stops["TakeProfit"]["triggerDirection"] == 1 and stops["StopLoss"]["triggerDirection"] == 2
    wallet_before = ex.balances(KEY)["USDT"]
    ex.set_mark_price("BTCUSDT", 66000)
    pos = position(ex)
    assert (pos["size"], pos["takeProfit"], pos["stopLoss"]) == ("0", "", "")
    tp = order(ex, stops["TakeProfit"]["orderId"])
    assert (tp["orderStatus"], tp["createType"], tp["cumExecQty"]) == ("Filled", "CreateByTakeProfit", "0.02")
    sl = order(ex, stops["StopLoss"]["orderId"])
    assert (sl["orderStatus"], sl["cancelType"]) == ("Deactivated", "CancelByTpSlTsClear")
    assert ex.balances(KEY)["USDT"] > wallet_before  # closed in profit
    assert D(position(ex)["cumRealisedPnl"]) > 0


def test_tpsl_price_rules_and_partial_limit_legs() -> None:
    ex = new_exchange()
    base = LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.02", "price": "64000"}
    code, msg = run(ex, "order_create", base | {"takeProfit": "63000"})
    assert code == 10001 and "higher than base_price" in msg
    assert run(ex, "order_create", base | {"stopLoss": "65000"})[0] == 10001
    partial = base | {"takeProfit": "70000", "stopLoss": "60000", "tpslMode": "Partial"}
    partial |= {"tpOrderType": "Limit", "tpLimitPrice": "69900", "slOrderType": "Limit", "slLimitPrice": "59900"}
    entry = ok(ex, "order_create", partial)["orderId"]
    item = order(ex, entry)
    assert (item["takeProfit"], item["stopLoss"], item["tpslMode"], item["tpLimitPrice"]) == (
        "70000.00",
        "60000.00",
        "Partial",
        "69900.00",
    )
    assert [o["orderId"] for o in ok(ex, "order_realtime", LINEAR)["list"]] == [entry]  # not armed yet
    ex.fill_order(KEY, entry)
    legs = {o["stopOrderType"]: o for o in ok(ex, "order_realtime", LINEAR)["list"]}
    assert set(legs) == {"PartialTakeProfit", "PartialStopLoss"}
    assert (legs["PartialTakeProfit"]["qty"], legs["PartialTakeProfit"]["price"]) == ("0.02", "69900.00")
    assert position(ex)["takeProfit"] == ""  # partial legs are orders, not the position's TP
    ex.set_mark_price("BTCUSDT", 70000)
    tp = order(ex, legs["PartialTakeProfit"]["orderId"])
    assert tp["orderStatus"] == "Filled" and tp["createType"] == "CreateByPartialTakeProfit"
    assert order(ex, legs["PartialStopLoss"]["orderId"])["orderStatus"] == "Deactivated"


def test_trading_stop_sets_clears_and_trails() -> None:
    ex = new_exchange()
    assert run(ex, "trading_stop", LINEAR | {"takeProfit": "70000"})[0] == 10001  # no position
    ok(ex, "order_create", LINEAR | {"side": "Sell", "orderType": "Market", "qty": "0.01"})
    cursor = ex.event_cursor()
    assert ok(ex, "trading_stop", LINEAR | {"takeProfit": "60000", "stopLoss": "66000"}) == {}
    pos = position(ex)
    assert (pos["takeProfit"], pos["stopLoss"]) == ("60000.00", "66000.00")
    sent = pushes(ex, cursor)
    assert [t for t, _ in sent][:2] == ["order", "position"]
    assert sent[1][1][0]["takeProfit"] == "60000.00"
    assert run(ex, "trading_stop", LINEAR | {"takeProfit": "66000"})[0] == 10001  # short TP must be below
    ok(ex, "trading_stop", LINEAR | {"takeProfit": "0"})
    assert position(ex)["takeProfit"] == ""
    kinds = [o["stopOrderType"] for o in ok(ex, "order_realtime", LINEAR)["list"]]
    assert kinds == ["StopLoss"]
    ok(ex, "trading_stop", LINEAR | {"stopLoss": "0", "trailingStop": "500"})
    assert position(ex)["trailingStop"] == "500.00"
    (trailing,) = ok(ex, "order_realtime", LINEAR)["list"]
    assert (trailing["stopOrderType"], trailing["triggerPrice"]) == ("TrailingStop", "65500.00")
    ex.set_mark_price("BTCUSDT", 64000)  # in the short's favour: the stop follows down
    assert order(ex, trailing["orderId"])["triggerPrice"] == "64500.00"
    ex.set_mark_price("BTCUSDT", 64400)  # back up, not to the stop
    assert position(ex)["size"] == "0.01"
    ex.set_mark_price("BTCUSDT", 64500)
    assert position(ex)["size"] == "0"
    assert order(ex, trailing["orderId"])["createType"] == "CreateByTrailingStop"


def test_closing_by_hand_clears_the_position_stops() -> None:
    ex = new_exchange()
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01", "stopLoss": "60000"})
    (sl,) = ok(ex, "order_realtime", LINEAR)["list"]
    ok(ex, "order_create", LINEAR | {"side": "Sell", "orderType": "Market", "qty": "0.01"})
    assert order(ex, sl["orderId"])["orderStatus"] == "Deactivated"
    assert ok(ex, "order_realtime", LINEAR)["list"] == []
    assert position(ex)["stopLoss"] == ""


@pytest.mark.parametrize(
    "extra",
    [
        {"orderFilter": "Bogus"},
        {"triggerPrice": "abc", "triggerDirection": 1},
        {"triggerPrice": "66000", "triggerDirection": 1, "triggerBy": "Moon"},
        {"takeProfit": "70000", "tpslMode": "Half"},
        {"takeProfit": "70000", "tpOrderType": "Limit"},  # Limit legs need Partial
        {"positionIdx": 1},
    ],
)
def test_bad_conditional_input_is_10001_and_changes_nothing(extra: dict[str, Any]) -> None:
    ex = new_exchange()
    before = orjson.dumps(ok(ex, "order_realtime", LINEAR))
    code, _ = run(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01"} | extra)
    assert code == 10001
    assert orjson.dumps(ok(ex, "order_realtime", LINEAR)) == before


def test_a_stop_triggers_on_the_markets_own_move_with_no_order_ever_rested() -> None:
    """The clock thread's advance (not only ``set_mark_price``) checks triggers."""
    ex = new_exchange()
    query = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01"}
    oid = ok(ex, "order_create", query | {"triggerPrice": "66000", "triggerDirection": 1})["orderId"]
    ex.markets.models[("linear", "BTCUSDT")].set_price(D(66000))  # the market moves by itself
    ex.advance_markets()
    assert ex.order(KEY, oid).status == "Filled"  # type: ignore[union-attr]


def test_ten_conditional_orders_per_symbol_at_most() -> None:
    ex = new_exchange()
    stop = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.001", "triggerDirection": 1}
    ids = [ok(ex, "order_create", stop | {"triggerPrice": str(66000 + i)})["orderId"] for i in range(10)]
    assert run(ex, "order_create", stop | {"triggerPrice": "67000"})[0] == 110009
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "60000"})
    ok(ex, "order_cancel", LINEAR | {"orderId": ids[0]})
    ok(ex, "order_create", stop | {"triggerPrice": "67000"})  # a slot is free again
