"""Inverse contracts (BTCUSD): quantity in USD, value, margin, fees and PnL in BTC."""

from __future__ import annotations

from decimal import Decimal

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.config import InstrumentConfig
from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, Clock, ok, pushes, run

D = Decimal
INVERSE = {"category": "inverse", "symbol": "BTCUSD"}
BTCUSD = InstrumentConfig("BTCUSD", "inverse", "BTC", "USD", D(36000), D("0.5"), D(1), D(1), D(10**6), D(10**6))


def q8(value: Decimal) -> Decimal:
    """As Bybit shows amounts: 8 decimal places."""
    return value.quantize(D("0.00000001"))


def inverse_exchange(btc: str = "1") -> Exchange:
    account = AccountConfig(KEY, "secret", {"BTC": D(btc), "USDT": D(100_000)})
    ex = Exchange(MockExchangeConfig(accounts=[account], instruments=[BTCUSD]), clock=Clock())
    ex.watch("test", [KEY])
    ex.freeze_market()
    ex.set_mark_price("BTCUSD", 36000, category="inverse")
    return ex


def limit(ex: Exchange, side: str, qty: int, price: int) -> str:
    query = INVERSE | {"side": side, "orderType": "Limit", "qty": str(qty), "price": str(price)}
    order_id: str = ok(ex, "order_create", query)["orderId"]
    return order_id


def test_inverse_fills_move_btc_with_harmonic_entry_and_coin_pnl() -> None:
    ex = inverse_exchange()
    cursor = ex.event_cursor()
    ex.fill_order(KEY, limit(ex, "Buy", 3600, 30000), price=36000)  # 0.1 BTC of value
    ex.fill_order(KEY, limit(ex, "Buy", 4000, 30000), price=40000)  # 0.1 BTC more
    maker = BTCUSD.maker_fee
    assert ex.balances(KEY)["BTC"] == 1 - D("0.2") * maker
    (pos,) = ok(ex, "position_list", INVERSE)["list"]
    # the entry keeps the value: 7600 USD over 0.2 BTC
    assert (pos["size"], pos["avgPrice"], pos["positionValue"]) == ("7600", "38000", "0.2")
    assert D(pos["positionIM"]) == D("0.02")  # value / leverage 10, in BTC

    ex.set_mark_price("BTCUSD", 40000, category="inverse")
    (pos,) = ok(ex, "position_list", INVERSE)["list"]
    assert D(pos["unrealisedPnl"]) == q8(7600 * (1 / D(38000) - 1 / D(40000)))

    ex.fill_order(KEY, limit(ex, "Sell", 7600, 45000), price=40000)  # close at 40000
    realised = 7600 * (1 / D(38000) - 1 / D(40000))
    fees = (D("0.2") + D(7600) / 40000) * maker
    assert ex.balances(KEY)["BTC"] == 1 + realised - fees
    (pos,) = ok(ex, "position_list", INVERSE)["list"]
    assert pos["size"] == "0" and D(pos["cumRealisedPnl"]) == q8(realised - fees)

    executions = [item for topic, items in pushes(ex, cursor) if topic == "execution" for item in items]
    assert [(e["execQty"], e["execValue"], e["category"]) for e in executions][-1] == ("7600", "0.19", "inverse")
    wallets = [item for topic, items in pushes(ex, cursor) if topic == "wallet" for item in items]
    btc = next(c for c in wallets[-1]["coin"] if c["coin"] == "BTC")
    assert D(btc["walletBalance"]) == q8(1 + realised - fees)


def test_inverse_order_value_and_average_price_are_in_coin() -> None:
    ex = inverse_exchange()
    order_id = limit(ex, "Buy", 3600, 30000)
    item = ok(ex, "order_realtime", INVERSE | {"orderId": order_id})["list"][0]
    assert D(item["leavesValue"]) == D("0.12")  # 3600 USD at 30000
    ex.fill_order(KEY, order_id, qty=1800, price=36000)
    ex.fill_order(KEY, order_id, qty=1800, price=40000)
    item = ok(ex, "order_history", INVERSE | {"orderId": order_id})["list"][0]
    assert D(item["cumExecValue"]) == D("0.095")  # 0.05 + 0.045 BTC
    assert D(item["avgPrice"]) == q8(D(3600) / D("0.095"))  # harmonic, not (36000 + 40000) / 2


def test_inverse_margin_is_the_coin_itself() -> None:
    ex = inverse_exchange(btc="0.01")  # 100 000 USDT does not margin a BTCUSD order
    too_big = INVERSE | {"side": "Buy", "orderType": "Limit", "qty": "36000", "price": "36000"}  # IM 0.1 BTC
    assert run(ex, "order_create", too_big)[0] == 110007
    fits = INVERSE | {"side": "Buy", "orderType": "Limit", "qty": "3000", "price": "35900"}  # rests; IM ~0.0084 BTC
    ok(ex, "order_create", fits)
    assert ex.accounts[KEY].coins["BTC"].order_im > 0 and ex.accounts[KEY].coins["USDT"].order_im == 0


def test_inverse_market_order_takes_the_book_and_set_leverage_applies() -> None:
    ex = inverse_exchange()
    ok(ex, "set_leverage", INVERSE | {"buyLeverage": "5", "sellLeverage": "5"})
    ok(ex, "order_create", INVERSE | {"side": "Sell", "orderType": "Market", "qty": "1000"})
    (pos,) = ok(ex, "position_list", INVERSE)["list"]
    assert (pos["side"], pos["size"], pos["leverage"]) == ("Sell", "1000", "5")
    assert D(pos["positionIM"]) == q8(D(1000) / D(pos["avgPrice"]) / 5)
