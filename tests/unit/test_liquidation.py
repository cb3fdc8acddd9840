"""Liquidation: liqPrice and bustPrice on positions, and the takeover at the bankruptcy price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.accounts import Position
from bybit_mock.engine.exchange import Exchange
from bybit_mock.engine.liq_prices import isolated_prices
from bybit_mock.instruments import InstrumentConfig
from tests.unit.helpers import KEY, LINEAR, Clock, ok, position, pushes

D = Decimal


def exchange(wallet: str = "1000", side: str = "Buy", isolated: bool = False) -> Exchange:
    """An account holding only ``wallet`` USDT and 0.1 BTCUSDT at 50 000, 10x; market frozen at 50 000."""
    account = AccountConfig(KEY, "secret", {"USDT": D(wallet)})
    ex = Exchange(MockExchangeConfig(accounts=[account]), clock=Clock())
    ex.watch("test", [KEY])
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 50000)
    if isolated:
        ok(ex, "set_margin_mode", {"setMarginMode": "ISOLATED_MARGIN"})
    ex.set_position(KEY, "BTCUSDT", side, "0.1", "50000", leverage=10)
    return ex


def history(ex: Exchange) -> list[dict[str, Any]]:
    return ok(ex, "order_history", LINEAR)["list"]  # type: ignore[no-any-return]


def test_isolated_prices_follow_bybits_formulas() -> None:
    long = exchange(isolated=True)
    pos = position(long)
    assert (pos["liqPrice"], pos["bustPrice"]) == ("45250.00", "45000.00")  # 50000 x (1 - 0.1 + 0.005), x 0.9
    short = exchange(side="Sell", isolated=True)
    pos = position(short)
    assert (pos["liqPrice"], pos["bustPrice"]) == ("54750.00", "55000.00")  # 50000 x (1 + 0.1 - 0.005), x 1.1


def test_isolated_inverse_prices_divide() -> None:
    inst = InstrumentConfig("BTCUSD", "inverse", "BTC", "USD", D(50000), D("0.5"), D(1), D(1), D(100), D(100))
    long = Position("inverse", "BTCUSD", "Buy", D(1000), D(50000), D(10), 0, 0)
    liq, bust = isolated_prices(long, inst)
    assert (liq, bust) == (D(50000) / D("1.095"), D(50000) / D("1.1"))
    short = Position("inverse", "BTCUSD", "Sell", D(1000), D(50000), D(10), 0, 0)
    assert isolated_prices(short, inst) == (D(50000) / D("0.905"), D(50000) / D("0.9"))


def test_cross_prices_are_an_account_level_estimate() -> None:
    # margin balance 1000, MM 25: the long loses 975 by 40 250, its 1000 by 40 000
    pos = position(exchange())
    assert (pos["liqPrice"], pos["bustPrice"]) == ("40250.00", "40000.00")
    pos = position(exchange(side="Sell"))
    assert (pos["liqPrice"], pos["bustPrice"]) == ("59750.00", "60000.00")
    # more collateral moves the cross estimate away; the isolated price does not depend on it
    assert position(exchange(wallet="2000"))["liqPrice"] == "30250.00"
    assert position(exchange(wallet="2000", isolated=True))["liqPrice"] == "45250.00"
    # a long that no positive price can take to its maintenance margin shows no liqPrice
    assert position(exchange(wallet="10000"))["liqPrice"] == ""


def test_isolated_long_is_taken_over_at_the_bankruptcy_price() -> None:
    ex = exchange(isolated=True)
    resting = ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "30000"})
    cursor = ex.events.cursor
    ex.set_mark_price("BTCUSDT", "45250")  # exactly at liqPrice: MM 25 = margin 500 - 475
    assert position(ex)["size"] == "0.1"
    assert pushes(ex, cursor) == []  # nothing happened to the account
    ex.set_mark_price("BTCUSDT", "45249.9")
    pos = position(ex)
    assert (pos["size"], pos["side"], pos["liqPrice"], pos["bustPrice"]) == ("0", "", "", "")
    assert ex.balances(KEY)["USDT"] == D(500)  # 1000 - the position's IM (0.1 x 5000)
    cancelled, liq = history(ex)[1], history(ex)[0]
    assert cancelled["orderId"] == resting["orderId"]
    assert (cancelled["orderStatus"], cancelled["cancelType"]) == ("Cancelled", "CancelAllBeforeLiq")
    assert {k: liq[k] for k in ("side", "orderType", "price", "qty", "timeInForce", "orderStatus", "createType")} == {
        "side": "Sell", "orderType": "Limit", "price": "45000.00", "qty": "0.1", "timeInForce": "IOC",
        "orderStatus": "Filled", "createType": "CreateByTakeOver_PassThrough",
    }  # fmt: skip
    assert (liq["stopOrderType"], liq["reduceOnly"], liq["cumExecFee"]) == ("", True, "0")
    (fill,) = ok(ex, "execution_list", LINEAR)["list"]
    assert (fill["execType"], fill["execPrice"], fill["execQty"], fill["execFee"]) == (
        "BustTrade",
        "45000.00",
        "0.1",
        "0",
    )
    assert (fill["closedSize"], fill["execPnl"], fill["stopOrderType"]) == ("0.1", "-500", "UNKNOWN")
    assert ok(ex, "execution_list", LINEAR | {"execType": "Trade"})["list"] == []
    (row,) = ok(ex, "transaction_log", {})["list"]
    assert (row["type"], row["cashFlow"], row["change"], row["cashBalance"], row["size"]) == (
        "LIQUIDATION", "-500", "-500", "500", "0"
    )  # fmt: skip
    messages = pushes(ex, cursor)
    assert [topic for topic, _ in messages] == ["order", "execution", "position", "wallet"]
    orders = messages[0][1]
    assert [(o["orderStatus"], o["createType"]) for o in orders] == [
        ("Cancelled", "CreateByUser"), ("Filled", "CreateByTakeOver_PassThrough")
    ]  # fmt: skip
    assert messages[1][1][0]["execType"] == "BustTrade"
    assert messages[2][1][0]["size"] == "0"
    assert messages[3][1][0]["totalWalletBalance"] == "500"


def test_isolated_short_is_taken_over_past_its_liq_price() -> None:
    ex = exchange(side="Sell", isolated=True)
    ex.set_mark_price("BTCUSDT", "54750")
    assert position(ex)["size"] == "0.1"
    ex.set_mark_price("BTCUSDT", "56000")  # a gap beyond the bankruptcy price: still closed at it
    assert position(ex)["size"] == "0"
    (fill,) = ok(ex, "execution_list", LINEAR)["list"]
    assert (fill["side"], fill["execPrice"], fill["execPnl"]) == ("Buy", "55000.00", "-500")
    assert ex.balances(KEY)["USDT"] == D(500)


def test_cross_account_is_taken_over_when_mm_exceeds_its_margin_balance() -> None:
    ex = exchange()
    ex.set_mark_price("BTCUSDT", "40250")  # margin balance 25 = MM 25
    assert position(ex)["size"] == "0.1"
    ex.set_mark_price("BTCUSDT", "40249.9")  # margin balance 24.99 < MM 25
    assert position(ex)["size"] == "0"
    (fill,) = ok(ex, "execution_list", LINEAR)["list"]
    assert (fill["execType"], fill["execPrice"], fill["execPnl"]) == ("BustTrade", "40000.00", "-1000")
    assert ex.balances(KEY)["USDT"] == D(0)  # the margin balance, down to zero


def test_the_market_moving_by_itself_liquidates_too() -> None:
    ex = exchange(isolated=True)
    model = ex.markets.get("linear", "BTCUSDT")
    assert model is not None
    model.set_price(D(44000))  # behind the engine's back, as a market's own trades move it
    ex.run_due()  # the next advance sees it
    assert position(ex)["size"] == "0"
    assert ex.balances(KEY)["USDT"] == D(500)


def test_an_isolated_inverse_long_is_taken_over_in_its_coin() -> None:
    inst = InstrumentConfig("BTCUSD", "inverse", "BTC", "USD", D(40000), D("0.5"), D(1), D(1), D(10**6), D(10**6))
    account = AccountConfig(KEY, "secret", {"BTC": D(1)})
    ex = Exchange(MockExchangeConfig(accounts=[account], instruments=[inst]), clock=Clock())
    ex.freeze_market()
    ex.set_mark_price("BTCUSD", 40000, category="inverse")
    ok(ex, "set_margin_mode", {"setMarginMode": "ISOLATED_MARGIN"})
    ex.set_position(KEY, "BTCUSD", "Buy", 10000, 40000, leverage=10, category="inverse")  # IM 0.025 BTC
    inverse = {"category": "inverse", "symbol": "BTCUSD"}
    (pos,) = ok(ex, "position_list", inverse)["list"]
    assert (pos["liqPrice"], pos["bustPrice"]) == ("36530.0", "36364.0")  # 40000 / 1.095, / 1.1, up to the tick
    ex.set_mark_price("BTCUSD", "36530", category="inverse")
    assert ok(ex, "position_list", inverse)["list"][0]["size"] == "10000"
    ex.set_mark_price("BTCUSD", "36529.5", category="inverse")
    assert ok(ex, "position_list", inverse)["list"][0]["size"] == "0"
    (fill,) = ok(ex, "execution_list", inverse)["list"]
    assert (fill["execType"], fill["execPrice"], fill["side"]) == ("BustTrade", "36364.0", "Sell")
    # the IM, less what the bankruptcy price's rounding toward the entry leaves
    assert ex.balances(KEY)["BTC"] == 1 + D(10000) * (1 / D(40000) - 1 / D(36364))
