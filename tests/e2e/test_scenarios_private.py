"""Private-stream scenarios over a real socket: what a bot's private connection receives when its
messages are dropped, duplicated, reordered or delayed, and when state is edited behind its back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import Match, MockExchange, OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger

from .conftest import pybit_http
from .test_scenarios_rest import LIMIT
from .test_trading_pybit import pushes
from .test_ws import ask, auth_msg


@asynccontextmanager
async def private_socket(ex: MockExchange, *topics: str) -> AsyncIterator[ClientConnection]:
    """The demo account's private stream, authenticated and subscribed to ``topics``."""
    async with connect(ex.ws_private_url) as ws:
        assert (await ask(ws, auth_msg(ex)))["success"] is True
        assert (await ask(ws, {"op": "subscribe", "args": list(topics)}))["success"] is True
        yield ws


@pytest.fixture
async def orders_ws(market: MockExchange) -> AsyncIterator[ClientConnection]:
    async with private_socket(market, "order", "wallet", "position") as ws:
        yield ws


def place(ex: MockExchange, *link_ids: str) -> None:
    session = pybit_http(ex)
    for link in link_ids:
        session.place_order(**LIMIT, orderLinkId=link)


async def order_links(ws: ClientConnection, count: int, seconds: float = 2) -> list[str]:
    """The orderLinkIds of the next ``count`` order pushes (other topics skipped)."""
    got = await pushes(ws, 3 * count, seconds)  # order, position and wallet per create
    return [m["data"][0]["orderLinkId"] for m in got if m["topic"] == "order"]


def arm_now(ex: MockExchange, action: ScenarioAction) -> None:
    ex.scenarios.push(Scenario("stream", ScenarioTrigger.NOW, action))


async def test_drop(market: MockExchange, orders_ws: ClientConnection) -> None:
    arm_now(market, ScenarioAction.private_stream("drop", topic="order", count=1))
    place(market, "a", "b")
    assert await order_links(orders_ws, 2, seconds=1) == ["b"]
    (entry,) = market.scenarios.journal("stream")
    assert entry["done"] == ["private_drop installed"]


async def test_duplicate(market: MockExchange, orders_ws: ClientConnection) -> None:
    arm_now(market, ScenarioAction.private_stream("duplicate", topic="order", count=1))
    place(market, "a", "b")
    assert await order_links(orders_ws, 3) == ["a", "a", "b"]


async def test_reorder(market: MockExchange, orders_ws: ClientConnection) -> None:
    arm_now(market, ScenarioAction.private_stream("reorder", topic="order", count=1))
    place(market, "a", "b")
    assert await order_links(orders_ws, 2) == ["b", "a"]


async def test_delay(market: MockExchange, orders_ws: ClientConnection) -> None:
    arm_now(market, ScenarioAction.private_stream("delay", topic="order", ms=300))
    place(market, "a", "b")
    got = await pushes(orders_ws, 6, seconds=2)
    links = [m["data"][0]["orderLinkId"] for m in got if m["topic"] == "order"]
    topics = [m["topic"] for m in got]
    assert links == ["b", "a"]  # "a" came 300 ms late, after "b"
    assert topics.index("order") > topics.index("wallet")  # a's wallet push was not held


async def test_a_window_drops_only_while_it_lasts_and_only_for_its_account(
    market: MockExchange, orders_ws: ClientConnection
) -> None:
    other = Match(api_key="somebody-else")
    market.scenarios.push(Scenario("x", ScenarioTrigger.NOW, ScenarioAction.private_stream("drop"), match=other))
    arm_now(market, ScenarioAction.private_stream("drop", topic="order", for_ms=200))
    place(market, "a")
    assert await order_links(orders_ws, 1, seconds=0.5) == []
    place(market, "b")  # the window has closed by now
    assert await order_links(orders_ws, 1) == ["b"]


async def test_fills_while_pushes_are_dropped_are_found_by_reconciling(
    market: MockExchange, orders_ws: ClientConnection
) -> None:
    """The reconciliation case: the stream lost the fill; REST still has it."""
    plan = ScenarioAction.fill_plan([OrderFillStep(10, "0.001")])
    market.scenarios.push(Scenario("fill", ScenarioTrigger.ORDER_CREATE, plan))
    arm_now(market, ScenarioAction.private_stream("drop", topic="order", for_ms=400))
    place(market, "lost")
    assert await order_links(orders_ws, 2, seconds=0.3) == []
    found = pybit_http(market).get_order_history(category="linear", orderLinkId="lost")["result"]["list"]
    assert found[0]["orderStatus"] == "Filled"


async def test_balance_edit_with_and_without_a_push(market: MockExchange, orders_ws: ClientConnection) -> None:
    market.state.set_balance(market.api_key, "USDT", 1234)
    assert await pushes(orders_ws, 1, seconds=0.3) == []  # behind the bot's back: silent
    wallet = pybit_http(market).get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    assert usdt["walletBalance"] == "1234"
    market.state.set_balance(market.api_key, "USDT", 4321, push=True)
    (msg,) = await pushes(orders_ws, 1)
    usdt = next(c for c in msg["data"][0]["coin"] if c["coin"] == "USDT")
    assert msg["topic"] == "wallet" and usdt["walletBalance"] == "4321"
    market.state.set_position(market.api_key, "BTCUSDT", "Sell", "0.5", 64000, push=True)
    (msg,) = await pushes(orders_ws, 1)
    assert msg["topic"] == "position" and msg["data"][0]["size"] == "0.5" and msg["data"][0]["side"] == "Sell"
