"""Liquidation over real sockets: pybit opens a leveraged position, the price jumps past its
liqPrice, and every client sees the takeover as Bybit reports it."""

from __future__ import annotations

from decimal import Decimal

from websockets.asyncio.client import ClientConnection

from bybit_mock import MockExchange

from .conftest import pybit_http
from .test_rest_ccxt import ccxt_bybit
from .test_trading_pybit import private, pushes

__all__ = ["private"]  # the fixture, used by name


async def test_a_price_jump_past_liq_price_takes_the_position_over(
    market: MockExchange, private: ClientConnection
) -> None:
    market.state.set_balance(market.api_key, "USDT", 1000)
    http = pybit_http(market)
    assert http.set_margin_mode(setMarginMode="ISOLATED_MARGIN")["retCode"] == 0
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.02")
    resting = http.place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01", price="50000"
    )["result"]["orderId"]
    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (pos["avgPrice"], pos["leverage"]) == ("65000", "10")
    assert (pos["liqPrice"], pos["bustPrice"]) == ("58825.00", "58500.00")  # 65000 x 0.905, x 0.9
    client = ccxt_bybit(market)
    (seen,) = client.fetch_positions(["BTC/USDT:USDT"])
    assert seen["liquidationPrice"] == 58825 and seen["contracts"] == 0.02
    earlier = await pushes(private, 8)  # the margin mode's wallet; the market order's four; the limit's three
    assert [m["topic"] for m in earlier][-3:] == ["order", "position", "wallet"]

    market.state.set_mark_price("BTCUSDT", 58900)  # short of liqPrice: nothing happens
    assert http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]["size"] == "0.02"
    market.state.set_mark_price("BTCUSDT", 58000)

    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (pos["size"], pos["side"], pos["liqPrice"]) == ("0", "", "")
    (fill, _) = http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (fill["execType"], fill["execPrice"], fill["execQty"], fill["execPnl"]) == (
        "BustTrade", "58500.00", "0.02", "-130"
    )  # fmt: skip
    assert (fill["createType"], fill["orderType"], fill["side"]) == ("CreateByTakeOver_PassThrough", "Limit", "Sell")
    orders = http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(o["createType"], o["orderStatus"], o["cancelType"]) for o in orders[:2]] == [
        ("CreateByTakeOver_PassThrough", "Filled", "UNKNOWN"),
        ("CreateByUser", "Cancelled", "CancelAllBeforeLiq"),
    ]
    assert orders[1]["orderId"] == resting
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    assert Decimal(usdt["walletBalance"]) == Decimal("869.285")  # 1000 - 0.715 taker fee - 130 (the IM)
    log = http.get_transaction_log(accountType="UNIFIED", category="linear")["result"]["list"]
    assert (log[0]["type"], log[0]["cashFlow"], log[0]["cashBalance"]) == ("LIQUIDATION", "-130", "869.285")
    (flat,) = client.fetch_positions(["BTC/USDT:USDT"])
    assert flat["contracts"] == 0 and flat["liquidationPrice"] is None

    got = await pushes(private, 4)
    assert [m["topic"] for m in got] == ["order", "execution", "position", "wallet"]
    assert [o["createType"] for o in got[0]["data"]] == ["CreateByUser", "CreateByTakeOver_PassThrough"]
    assert got[1]["data"][0]["execType"] == "BustTrade" and got[1]["data"][0]["execPrice"] == "58500.00"
    assert got[2]["data"][0]["size"] == "0"
    assert got[3]["data"][0]["totalWalletBalance"] == "869.285"
