"""Trading through pybit's HTTP client, with the private stream read over a real socket.

Markets are frozen and BTCUSDT is put at 65 000 (best ask 65 000), so fills, fees and PnL
are exact: a linear taker pays 0.055 %, a maker 0.02 % (the default instruments' fees).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pybit.exceptions import InvalidRequestError
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import MockExchange
from tests.fixtures import recorded_response

from .conftest import pybit_http
from .test_ws import ask, auth_msg

D = Decimal


def place(http: Any, **order: str) -> str:
    """Place a BTCUSDT linear order (unless the keywords say otherwise); return its id."""
    body = {"category": "linear", "symbol": "BTCUSDT", "orderType": "Limit"} | order
    reply = http.place_order(**body)
    assert reply["retCode"] == 0
    order_id: str = reply["result"]["orderId"]
    return order_id


def usdt(http: Any) -> dict[str, Any]:
    coin: dict[str, Any] = http.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]["coin"][0]
    return coin


async def pushes(ws: ClientConnection, count: int, seconds: float = 5) -> list[dict[str, Any]]:
    """The next ``count`` private pushes (acks skipped)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while len(out) < count and (left := deadline - time.monotonic()) > 0:
        try:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if "topic" in msg:
            out.append(msg)
    return out


@pytest.fixture
async def private(market: MockExchange) -> AsyncIterator[ClientConnection]:
    async with connect(market.ws_private_url) as ws:
        assert (await ask(ws, auth_msg(market)))["success"] is True
        ack = await ask(ws, {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
        assert ack["success"] is True
        yield ws


async def test_market_order_fills_moves_position_wallet_and_pushes(
    market: MockExchange, private: ClientConnection
) -> None:
    http = pybit_http(market)
    reply = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01")
    order_id = reply["result"]["orderId"]
    assert reply["retCode"] == 0 and reply["result"]["orderLinkId"] == ""

    got = await pushes(private, 4)
    assert [m["topic"] for m in got] == ["order", "execution", "position", "wallet"]
    order = got[0]["data"][0]
    assert order["orderId"] == order_id and order["orderStatus"] == "Filled" and order["category"] == "linear"
    assert order["cumExecQty"] == "0.01" and order["avgPrice"] == "65000"
    execution = got[1]["data"][0]
    assert execution["execPrice"] == "65000.00" and execution["execQty"] == "0.01"
    assert execution["execFee"] == "0.3575" and execution["isMaker"] is False
    assert got[2]["data"][0]["size"] == "0.01" and got[2]["data"][0]["entryPrice"] == "65000"
    assert all(isinstance(m["creationTime"], int) and m["id"] for m in got)

    (position,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert position["side"] == "Buy" and position["size"] == "0.01" and position["avgPrice"] == "65000"
    (fill,) = http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert fill["orderId"] == order_id and fill["execFee"] == "0.3575" and fill["execType"] == "Trade"
    assert set(recorded_response("fetchMyTrades", 3)["result"]["list"][0]) - {"nextPageCursor"} <= set(fill)
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    assert usdt["walletBalance"] == "99999.6425" and usdt["cumRealisedPnl"] == "-0.3575"
    assert usdt["totalPositionIM"] == "65"  # 650 of BTC at 10x


async def test_resting_limit_order_amend_fill_and_realised_pnl(market: MockExchange, private: ClientConnection) -> None:
    http = pybit_http(market)
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01")
    await pushes(private, 4)
    order_id = place(http, side="Sell", qty="0.01", price="70000", orderLinkId="tp-1")
    (opened,) = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert opened["orderId"] == order_id and opened["orderStatus"] == "New" and opened["orderLinkId"] == "tp-1"
    assert set(recorded_response("fetchOpenOrder")["result"]["list"][0]) <= set(opened)
    http.amend_order(category="linear", symbol="BTCUSDT", orderLinkId="tp-1", price="69000")
    (amended,) = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert amended["price"] == "69000.00"
    assert [m["topic"] for m in await pushes(private, 6)] == ["order", "position", "wallet"] * 2  # create, amend

    market.state.set_mark_price("BTCUSDT", 69500)  # the market moves through 69 000
    got = await pushes(private, 4)
    assert [m["topic"] for m in got] == ["order", "execution", "position", "wallet"]
    assert got[0]["data"][0]["orderStatus"] == "Filled" and got[1]["data"][0]["isMaker"] is True
    assert got[1]["data"][0]["execPrice"] == "69000.00" and got[1]["data"][0]["closedSize"] == "0.01"
    assert got[2]["data"][0]["size"] == "0"
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    (closed,) = http.get_order_history(category="linear", orderId=order_id)["result"]["list"]
    assert closed["orderStatus"] == "Filled" and closed["cumExecFee"] == "0.138"
    # realised: (69000 - 65000) * 0.01 = 40; fees 0.3575 taker + 0.138 maker
    wallet = usdt(http)
    assert D(wallet["walletBalance"]) == D(100000) + D(40) - D("0.3575") - D("0.138")
    assert D(wallet["cumRealisedPnl"]) == D(40) - D("0.3575") - D("0.138")


def test_cancel_rules_and_error_codes(market: MockExchange) -> None:
    http = pybit_http(market)
    order_id = place(http, side="Buy", qty="0.01", price="60000", orderLinkId="a")
    with pytest.raises(InvalidRequestError) as dup:
        place(http, side="Buy", qty="0.01", price="60000", orderLinkId="a")
    assert dup.value.status_code == 110072
    assert http.cancel_order(category="linear", symbol="BTCUSDT", orderId=order_id)["result"]["orderId"] == order_id
    with pytest.raises(InvalidRequestError) as again:
        http.cancel_order(category="linear", symbol="BTCUSDT", orderId=order_id)
    assert again.value.status_code == 110001
    with pytest.raises(InvalidRequestError) as broke:
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="100", price="60000")
    assert broke.value.status_code == 110007 and "ab not enough" in broke.value.message
    with pytest.raises(InvalidRequestError) as bad_qty:
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.0001", price="1")
    assert bad_qty.value.status_code == 10001
    for price in ("60000", "61000"):
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01", price=price)
    cancelled = http.cancel_all_orders(category="linear", symbol="BTCUSDT")["result"]
    assert cancelled["success"] == "1" and len(cancelled["list"]) == 2
    history = http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [o["orderStatus"] for o in history] == ["Cancelled"] * 3
    assert all(o["cancelType"] == "CancelByUser" for o in history)
    wallet = usdt(http)
    assert wallet["totalOrderIM"] == "0" and wallet["walletBalance"] == "100000"


def test_time_in_force_rules(market: MockExchange) -> None:
    http = pybit_http(market)
    post_only = place(http, side="Buy", qty="0.01", price="66000", timeInForce="PostOnly")
    fok = place(http, side="Buy", qty="10", price="65000", timeInForce="FOK")
    ioc = place(http, side="Buy", qty="0.01", price="64000", timeInForce="IOC")
    by_id = {o["orderId"]: o for o in http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]}
    assert by_id[post_only]["orderStatus"] == "Cancelled"
    assert by_id[post_only]["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
    assert by_id[fok]["orderStatus"] == "Cancelled" and by_id[fok]["cumExecQty"] == "0"
    assert by_id[ioc]["orderStatus"] == "Cancelled" and by_id[ioc]["cumExecQty"] == "0"
    assert http.get_executions(category="linear")["result"]["list"] == []


def test_spot_market_buy_in_quote_moves_both_coins(market: MockExchange) -> None:
    http = pybit_http(market)
    http.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="650")
    balances = market.state.balances(market.api_key)
    assert balances["USDT"] == D(100000) - D(650)
    assert balances["BTC"] == D("0.01") * (1 - D("0.001"))  # spot fee in the coin received
    order_id = place(http, category="spot", side="Sell", qty="0.005", price="70000")
    coins = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["coin"]
    btc = next(c for c in coins if c["coin"] == "BTC")
    assert btc["locked"] == "0.005"
    with pytest.raises(InvalidRequestError) as short:
        http.place_order(category="spot", symbol="BTCUSDT", side="Sell", orderType="Limit", qty="0.005", price="70000")
    assert short.value.status_code == 170131
    http.cancel_order(category="spot", symbol="BTCUSDT", orderId=order_id)
    assert market.state.balances(market.api_key)["BTC"] == D("0.00999")


def test_conditional_order_and_position_stops_with_pybit(market: MockExchange) -> None:
    http = pybit_http(market)
    stop = http.place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01",
        triggerPrice="66000", triggerDirection=1, takeProfit="70000", stopLoss="64000",
    )["result"]["orderId"]  # fmt: skip
    (waiting,) = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (waiting["orderId"], waiting["orderStatus"], waiting["stopOrderType"]) == (stop, "Untriggered", "Stop")
    assert (waiting["takeProfit"], waiting["stopLoss"]) == ("70000.00", "64000.00")
    market.state.set_mark_price("BTCUSDT", 66000)  # the trigger: it buys, and arms its TP/SL
    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (pos["size"], pos["takeProfit"], pos["stopLoss"]) == ("0.01", "70000.00", "64000.00")
    http.set_trading_stop(category="linear", symbol="BTCUSDT", stopLoss="65500", tpslMode="Full", positionIdx=0)
    assert http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]["stopLoss"] == "65500.00"
    with pytest.raises(InvalidRequestError) as wrong_side:
        http.set_trading_stop(category="linear", symbol="BTCUSDT", stopLoss="67000", positionIdx=0)
    assert wrong_side.value.status_code == 10001 and "lower than base_price" in wrong_side.value.message
    market.state.set_mark_price("BTCUSDT", 65500)  # the stop-loss closes the position
    assert http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]["size"] == "0"
    history = http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert sorted((o["stopOrderType"], o["orderStatus"], o["createType"]) for o in history) == [
        ("Stop", "Filled", "CreateByUser"),
        ("StopLoss", "Deactivated", "CreateByUser"),  # 64000, replaced by 65500
        ("StopLoss", "Filled", "CreateByStopLoss"),
        ("TakeProfit", "Deactivated", "CreateByUser"),  # cleared with the position
    ]
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []


async def test_hedge_mode_with_pybit(market: MockExchange, private: ClientConnection) -> None:
    http = pybit_http(market)
    assert http.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)["retCode"] == 0
    with pytest.raises(InvalidRequestError) as no_idx:
        place(http, side="Buy", orderType="Market", qty="0.01")
    assert (no_idx.value.status_code, no_idx.value.message) == (10001, "position idx not match position mode")
    place(http, side="Buy", orderType="Market", qty="0.02", positionIdx=1)  # type: ignore[arg-type]
    place(http, side="Sell", orderType="Market", qty="0.01", positionIdx=2)  # type: ignore[arg-type]
    listed = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(p["positionIdx"], p["side"], p["size"]) for p in listed] == [(1, "Buy", "0.02"), (2, "Sell", "0.01")]
    messages = await pushes(private, 8)
    positions = [item for m in messages if m["topic"] == "position" for item in m["data"]]
    assert {(p["positionIdx"], p["size"]) for p in positions} >= {(1, "0.02"), (2, "0.01")}
    executions = [item for m in messages if m["topic"] == "execution" for item in m["data"]]
    assert [e["side"] for e in executions] == ["Buy", "Sell"]
    market.state.reset()  # back to the configured (one-way) account
    listed = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(p["positionIdx"], p["size"]) for p in listed] == [(0, "0")]
