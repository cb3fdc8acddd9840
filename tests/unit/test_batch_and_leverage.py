"""Batch order endpoints, set-leverage and switch-mode on the engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, LINEAR, new_exchange, ok, position, run

D = Decimal


def batch(ex: Exchange, op: str, query: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ((code, value),) = ex.apply_batch([(f"order_{op}_batch", (KEY, query))])
    assert code == 0, value
    result, ext = value
    return orjson.loads(result)["list"], orjson.loads(ext)["list"]


def test_create_batch_answers_each_entry_and_keeps_the_good_ones() -> None:
    ex = new_exchange()
    limit = {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01"}
    request = [limit | {"price": "60000", "orderLinkId": "a"}, limit | {"price": "-1"}, limit | {"price": "60010"}]
    items, outcomes = batch(ex, "create", {"category": "linear", "request": request})
    assert [o["code"] for o in outcomes] == [0, 10001, 0]
    assert items[0]["orderLinkId"] == "a" and items[0]["createAt"] and items[0]["category"] == "linear"
    assert (items[1]["orderId"], items[1]["createAt"]) == ("", "")
    assert {o.order_id for o in ex.open_orders(KEY)} == {items[0]["orderId"], items[2]["orderId"]}

    amend = [{"symbol": "BTCUSDT", "orderId": items[0]["orderId"], "price": "59000"}, {"symbol": "BTCUSDT"}]
    _, outcomes = batch(ex, "amend", {"category": "linear", "request": amend})
    assert [o["code"] for o in outcomes] == [0, 10001]
    assert ex.order(KEY, items[0]["orderId"]).price == 59000  # type: ignore[union-attr]

    cancel = [{"symbol": "BTCUSDT", "orderLinkId": "a"}, {"symbol": "BTCUSDT", "orderId": "nope"}]
    items, outcomes = batch(ex, "cancel", {"category": "linear", "request": cancel})
    assert [o["code"] for o in outcomes] == [0, 110001]
    assert items[0]["orderLinkId"] == "a" and len(ex.open_orders(KEY)) == 1


def test_batch_request_shape_errors() -> None:
    ex = new_exchange()
    assert run(ex, "order_create_batch", {"category": "linear"})[0] == 10001
    assert run(ex, "order_create_batch", {"category": "linear", "request": []})[0] == 10001
    too_many = [{"symbol": "BTCUSDT"}] * 11
    assert run(ex, "order_create_batch", {"category": "spot", "request": too_many})[0] == 10001
    _, outcomes = batch(ex, "create", {"category": "linear", "request": ["not an object"]})
    assert outcomes == [{"code": 10001, "msg": "params error: each request entry must be an object"}]


def test_set_leverage_moves_margin_and_refuses_what_does_not_fit() -> None:
    ex = new_exchange()
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.1"})
    resting = ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.1", "price": "60000"})
    order_im = ex.accounts[KEY].coins["USDT"].order_im
    query = LINEAR | {"buyLeverage": "5", "sellLeverage": "5"}
    assert ok(ex, "set_leverage", query) == {}
    assert position(ex)["leverage"] == "5" and D(position(ex)["positionIM"]) == D("0.1") * 65000 / 5
    assert ex.accounts[KEY].coins["USDT"].order_im > order_im  # the open order holds more at 5x
    assert ex.order(KEY, resting["orderId"]).status == "New"  # type: ignore[union-attr]
    assert run(ex, "set_leverage", query)[0] == 110043  # not modified
    assert run(ex, "set_leverage", LINEAR | {"buyLeverage": "5", "sellLeverage": "6"})[0] == 10001
    assert run(ex, "set_leverage", LINEAR | {"buyLeverage": "101", "sellLeverage": "101"})[0] == 10001
    ex.set_balance(KEY, "USDT", 10000)  # 1x would need 6500 + 6000 of margin
    ex.set_balance(KEY, "BTC", 0)
    assert run(ex, "set_leverage", LINEAR | {"buyLeverage": "1", "sellLeverage": "1"})[0] == 110044
    assert position(ex)["leverage"] == "5"  # refused: unchanged


def test_open_order_limit_is_per_symbol_and_frees_on_cancel_and_fill() -> None:
    ex = new_exchange()
    ex.accounts[KEY].coins["USDT"].wallet = D(10_000_000)
    limit = LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "10000"}
    ids = [ok(ex, "order_create", limit)["orderId"] for _ in range(500)]
    assert run(ex, "order_create", limit)[0] == 110020
    ok(
        ex,
        "order_create",
        {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
        | {"qty": "0.001", "price": "10000"},
    )  # another symbol has its own 500
    ok(ex, "order_cancel", LINEAR | {"orderId": ids[0]})
    again = ok(ex, "order_create", limit)["orderId"]
    assert run(ex, "order_create", limit)[0] == 110020
    ex.fill_order(KEY, again)  # a filled order frees its slot too
    ok(ex, "order_create", limit)


def test_history_is_bounded_for_soak_runs_and_open_orders_stay() -> None:
    account = AccountConfig(KEY, "secret", {"USDT": D(10_000_000)})
    ex = Exchange(MockExchangeConfig(accounts=[account], history_limit=100))
    ex.freeze_market()
    resting = ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "10000"})
    market = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.001"}
    first = [ok(ex, "order_create", market | {"orderLinkId": f"m{i}"})["orderId"] for i in range(300)]
    kept = ex.book.account_orders[KEY]
    assert 100 <= len(kept) <= 101  # trimmed in chunks of 1 %: each trim is short
    assert len(ex.book.executions[KEY]) <= 101 and len(ex.accounts[KEY].log) <= 101
    assert ex.order(KEY, resting["orderId"]) is not None  # open: kept however old
    assert kept[0].order_id == resting["orderId"]  # and still first: the history keeps its order
    assert [o.seq for o in kept] == sorted(o.seq for o in kept)
    assert ex.order(KEY, first[0]) is None and ex.order(KEY, first[-1]) is not None
    assert [o.order_id for o in kept[1:]] == first[-(len(kept) - 1) :]  # the newest closed ones
    ok(ex, "order_create", market | {"orderLinkId": "m0"})  # a forgotten link id is free again
    history = ok(ex, "order_history", LINEAR | {"limit": "50"})["list"]
    assert history[0]["orderLinkId"] == "m0"
