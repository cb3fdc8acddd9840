"""``/v5/trade`` rules and private-push routing, over real sockets with a plain client."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import AccountConfig, MockExchange

from .conftest import pybit_http
from .test_trading_pybit import pushes
from .test_ws import auth_msg


async def call(ws: ClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(msg).decode())
    reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    return reply


def order_op(op: str, req_id: str, ts: int | None = None, **args: Any) -> dict[str, Any]:
    header = {"X-BAPI-TIMESTAMP": ts if ts is not None else int(time.time() * 1000)}
    return {"reqId": req_id, "header": header, "op": op, "args": [args]}


LIMIT = {
    "category": "linear",
    "symbol": "BTCUSDT",
    "side": "Buy",
    "orderType": "Limit",
    "qty": "0.01",
    "price": "60000",
}


async def test_trade_channel_rules(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_trade_url) as ws:
        early = await call(ws, order_op("order.create", "r0", **LIMIT))
        assert early["retCode"] == 10003 and early["reqId"] == "r0"
        bad = await call(ws, auth_msg(bybit_mock, secret="wrong"))
        assert bad == {"retCode": 10004, "retMsg": "Invalid sign", "op": "auth", "connId": bad["connId"]}
        ok = await call(ws, auth_msg(bybit_mock))
        assert ok == {"retCode": 0, "retMsg": "OK", "op": "auth", "connId": ok["connId"]}
        assert (await call(ws, auth_msg(bybit_mock)))["retCode"] == 20001
        pong = await call(ws, {"op": "ping", "reqId": "p"})
        assert pong["op"] == "pong" and pong["retCode"] == 0 and pong["reqId"] == "p"
        sent = time.monotonic()
        stale = await call(ws, order_op("order.create", "r1", ts=int(time.time() * 1000) - 60_000, **LIMIT))
        assert stale["retCode"] == 10002
        assert time.monotonic() - sent >= 0.015  # refusals wait ack_delay_ms too (pybit's reqId race)
        placed = await call(ws, order_op("order.create", "r2", **LIMIT))
        assert placed["retCode"] == 0 and placed["reqId"] == "r2" and placed["data"]["orderId"]
        assert set(placed["header"]) == {
            "X-Bapi-Limit",
            "X-Bapi-Limit-Status",
            "X-Bapi-Limit-Reset-Timestamp",
            "Traceid",
            "Timenow",
        }
        assert (await call(ws, order_op("order.create", "r2", **LIMIT)))["retCode"] == 20006
        missing = await call(ws, order_op("order.cancel", "r3", category="linear", symbol="BTCUSDT", orderId="nope"))
        assert missing["retCode"] == 110001 and missing["op"] == "order.cancel"
        assert (await call(ws, {"op": "order.create", "reqId": "r4", "header": {"X-BAPI-TIMESTAMP": 1}}))[
            "retCode"
        ] == 10002
        no_args = await call(
            ws, {"op": "order.create", "reqId": "r5", "header": {"X-BAPI-TIMESTAMP": int(time.time() * 1000)}}
        )
        assert no_args["retCode"] == 10001
        assert (await call(ws, {"op": "order.explode", "reqId": "r6"}))["retCode"] == 10404
        assert (await call(ws, {"op": "ping"}))["retCode"] == 0  # the connection survived all of it
    assert len(bybit_mock.state.open_orders(bybit_mock.api_key)) == 1


async def test_pushes_reach_only_the_account_and_only_after_auth(bybit_mock: MockExchange) -> None:
    other = AccountConfig(api_key="other-key", api_secret="other-secret", balances={"USDT": Decimal(1000)})
    bybit_mock.state.add_account(other)
    async with (
        connect(bybit_mock.ws_private_url) as mine,
        connect(bybit_mock.ws_private_url) as theirs,
        connect(bybit_mock.ws_private_url) as unauthenticated,
    ):
        for ws, key, secret in ((mine, None, None), (theirs, "other-key", "other-secret")):
            assert (await call(ws, auth_msg(bybit_mock, key=key, secret=secret)))["success"] is True
            assert (await call(ws, {"op": "subscribe", "args": ["order.linear", "wallet"]}))["success"] is True
        subscribe = await call(unauthenticated, {"op": "subscribe", "args": ["order"]})
        assert subscribe["success"] is False
        pybit_http(bybit_mock).place_order(**LIMIT)
        got = await pushes(mine, 2)
        assert [m["topic"] for m in got] == ["order.linear", "wallet"]
        assert await pushes(theirs, 1, seconds=0.5) == []
        assert await pushes(unauthenticated, 1, seconds=0.2) == []


@pytest.mark.parametrize("topic", ["order.spot", "execution.spot"])
async def test_categorised_topic_filters_other_categories(bybit_mock: MockExchange, topic: str) -> None:
    async with connect(bybit_mock.ws_private_url) as ws:
        await call(ws, auth_msg(bybit_mock))
        await call(ws, {"op": "subscribe", "args": [topic]})
        pybit_http(bybit_mock).place_order(**LIMIT)  # a linear order
        assert await pushes(ws, 1, seconds=0.5) == []
