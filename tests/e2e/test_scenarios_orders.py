"""Order and market scenarios over real sockets: auto-fill (seen by ccxt), a partial fill then
cancel and a rejection after acceptance (seen on the private stream), a price jump (seen by REST
and the public stream), a position edited by a scenario (with its push)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt
import pytest
from websockets.asyncio.client import ClientConnection

from bybit_mock import MockExchange, Scenario, ScenarioAction, ScenarioTrigger

from .conftest import pybit_http
from .streams import collect, subscribed
from .test_scenarios_private import private_socket
from .test_scenarios_rest import LIMIT
from .test_trading_pybit import pushes


@pytest.fixture
async def private_ws(market: MockExchange) -> AsyncIterator[ClientConnection]:
    async with private_socket(market, "order", "execution", "position") as ws:
        yield ws


def test_auto_fill_fills_every_ccxt_order_at_its_price(market: MockExchange) -> None:
    """The crate's later AutoFillConfig: every order fills after a delay, at its own price."""
    auto = ScenarioAction.auto_fill(after=20, price="order")
    market.scenarios.push(Scenario("auto", ScenarioTrigger.ORDER_CREATE, auto, times=None))
    client = ccxt.bybit({"apiKey": market.api_key, "secret": market.api_secret})
    client.urls["api"] = dict.fromkeys(client.urls["api"], market.rest_url)
    client.options["enableUnifiedAccount"] = True
    placed = [client.create_order("BTC/USDT:USDT", "limit", "buy", 0.001, price) for price in (60000, 61000, 62000)]
    deadline = time.monotonic() + 5
    while len(market.state.executions(market.api_key)) < 3:
        assert time.monotonic() < deadline, market.state.open_orders(market.api_key)
        time.sleep(0.01)
    fills = {f.order_id: f.price for f in market.state.executions(market.api_key)}
    assert fills == {o["id"]: Decimal(p) for o, p in zip(placed, (60000, 61000, 62000), strict=True)}
    assert len(market.scenarios.journal("auto")) == 3


async def test_partial_fill_then_cancel_pushes(market: MockExchange, private_ws: ClientConnection) -> None:
    action = ScenarioAction.partial_fill_then_cancel("0.0004", after=10)
    market.scenarios.push(Scenario("pc", ScenarioTrigger.ORDER_CREATE, action))
    pybit_http(market).place_order(**LIMIT)
    got = await pushes(private_ws, 6)
    orders = [m["data"][0] for m in got if m["topic"] == "order"]
    assert [o["orderStatus"] for o in orders] == ["New", "PartiallyFilled", "Cancelled"]
    assert orders[-1]["cumExecQty"] == "0.0004" and orders[-1]["cancelType"] == "CancelByAdmin"
    (execution,) = [m["data"][0] for m in got if m["topic"] == "execution"]
    assert execution["execQty"] == "0.0004" and execution["execPrice"].startswith("60000")


async def test_reject_after_acceptance(market: MockExchange, private_ws: ClientConnection) -> None:
    market.scenarios.push(Scenario("no", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reject("EC_PerCancelRequest")))
    answer = pybit_http(market).place_order(**LIMIT, orderLinkId="will-be-rejected")
    assert answer["retCode"] == 0  # accepted ...
    got = await pushes(private_ws, 4)
    orders = [m["data"][0] for m in got if m["topic"] == "order"]
    assert [o["orderStatus"] for o in orders] == ["New", "Rejected"]  # ... then rejected
    assert orders[-1]["rejectReason"] == "EC_PerCancelRequest" and orders[-1]["orderLinkId"] == "will-be-rejected"
    assert market.state.open_orders(market.api_key) == []


async def test_price_jump_moves_rest_and_streams(market: MockExchange) -> None:
    async with subscribed(market.ws_public_url("linear"), "orderbook.1.BTCUSDT") as ws:
        await collect(ws, 0.2)
        jump = ScenarioAction.market("price_jump", "BTCUSDT", percent="-10")
        market.scenarios.push(Scenario("crash", ScenarioTrigger.NOW, jump))
        books = await collect(ws, 0.5)
    best_ask = Decimal(books[-1]["data"]["a"][0][0])
    assert best_ask == Decimal(58500)  # 65 000 - 10 %
    ticker = pybit_http(market).get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert Decimal(ticker["lastPrice"]) == Decimal(58500)
    (done,) = market.scenarios.journal("crash")[0]["done"]
    assert done.startswith("linear/BTCUSDT jumped to 58500")


async def test_position_edit_by_a_scenario_is_pushed(market: MockExchange, private_ws: ClientConnection) -> None:
    edit = ScenarioAction.edit_position("BTCUSDT", "Buy", "0.2", "61000", api_key=market.api_key, push=True)
    market.scenarios.push(Scenario("pos", ScenarioTrigger.NOW, edit))
    (msg,) = await pushes(private_ws, 1)
    assert msg["topic"] == "position"
    assert (msg["data"][0]["side"], msg["data"][0]["size"], msg["data"][0]["entryPrice"]) == ("Buy", "0.2", "61000")
    (position,) = pybit_http(market).get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert position["size"] == "0.2"
