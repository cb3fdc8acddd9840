"""WebSocket control plane over real sockets: acks, pings, private auth, bad input."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest
import websockets
from pybit.unified_trading import WebSocket
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import AccountConfig, MockExchange
from bybit_mock.bybit.auth import ws_auth_signature


async def ask(ws: ClientConnection, msg: dict[str, Any] | bytes | str) -> dict[str, Any]:
    """Send, then return the next control reply (stream data on subscribed topics is skipped)."""
    await ws.send(msg if isinstance(msg, bytes | str) else orjson.dumps(msg).decode())
    while True:
        reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if "topic" not in reply:
            return reply


def auth_msg(
    ex: MockExchange, *, expires: int | str | None = None, secret: str | None = None, key: str | None = None
) -> dict[str, Any]:
    exp = expires if expires is not None else int(time.time() * 1000) + 10_000
    return {"op": "auth", "args": [key or ex.api_key, exp, ws_auth_signature(secret or ex.api_secret, exp)]}


async def test_linear_subscribe_ack_echoes_req_id_with_its_type(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        ack = await ask(ws, {"op": "subscribe", "req_id": "a-uuid", "args": ["orderbook.50.BTCUSDT"]})
        assert ack["success"] is True and ack["op"] == "subscribe" and ack["req_id"] == "a-uuid"
        assert ack["ret_msg"] == "" and ack["conn_id"]
        ack = await ask(ws, {"op": "subscribe", "req_id": 7, "args": ["publicTrade.BTCUSDT", "kline.1.ETHUSDT"]})
        assert ack["req_id"] == 7 and ack["success"] is True
        ack = await ask(ws, {"op": "subscribe", "args": ["tickers.ETHUSDT"]})
        assert ack["req_id"] == ""  # linear always carries req_id
        ack = await ask(ws, {"op": "unsubscribe", "req_id": 8, "args": ["publicTrade.BTCUSDT"]})
        assert ack == {"success": True, "ret_msg": "", "conn_id": ack["conn_id"], "req_id": 8, "op": "unsubscribe"}


@pytest.mark.parametrize(
    "topic", ["orderbook.7.BTCUSDT", "publicTrade.DOGEUSDT", "kline.2.BTCUSDT", "nonsense", "tickers."]
)
async def test_unknown_topic_fails_with_bybit_message(bybit_mock: MockExchange, topic: str) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        ack = await ask(ws, {"op": "subscribe", "req_id": "r1", "args": [topic]})
        assert ack["success"] is False and ack["req_id"] == "r1"
        assert ack["ret_msg"] == f"error:handler not found,topic:{topic}"


async def test_duplicate_subscribe_fails(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        assert (await ask(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]}))["success"]
        again = await ask(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
        assert again["success"] is False and "already subscribed" in again["ret_msg"]


async def test_spot_and_option_ack_shapes(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("spot")) as ws:
        ack = await ask(ws, {"op": "subscribe", "req_id": "10001", "args": ["orderbook.1.BTCUSDT"]})
        assert ack["ret_msg"] == "subscribe" and ack["req_id"] == "10001" and ack["success"]
        pong = await ask(ws, {"op": "ping"})
        assert pong["ret_msg"] == "pong" and pong["op"] == "ping" and "req_id" not in pong
    async with connect(bybit_mock.ws_public_url("option")) as ws:
        ack = await ask(ws, {"op": "subscribe", "args": ["orderbook.25.BTCUSDT"]})
        assert ack["type"] == "COMMAND_RESP" and ack["success"] is False
        assert ack["data"]["failTopics"] == ["orderbook.25.BTCUSDT"]  # options have no streams (REST only)
        pong = await ask(ws, {"op": "ping", "req_id": "p"})
        assert pong["op"] == "pong" and pong["args"][0].isdigit()


async def test_public_ping_shape(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        pong = await ask(ws, {"req_id": "100001", "op": "ping"})
        expected = {"success": True, "ret_msg": "pong", "conn_id": pong["conn_id"], "req_id": "100001", "op": "ping"}
        assert pong == expected


async def test_rfc6455_ping_is_answered(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        waiter = await ws.ping(b"hello")
        latency = await asyncio.wait_for(waiter, 5)
        assert latency >= 0
    async with connect(bybit_mock.ws_private_url) as ws:
        await asyncio.wait_for(await ws.ping(), 5)


@pytest.mark.parametrize("payload", [b"{not json", "[1,2]", '{"args": []}', '{"op": "fly"}', '{"op": "subscribe"}'])
async def test_bad_messages_get_failure_acks_and_connection_survives(bybit_mock: MockExchange, payload: Any) -> None:
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        reply = await ask(ws, payload)
        assert reply["success"] is False and reply["ret_msg"].startswith("error:")
        assert (await ask(ws, {"op": "ping"}))["ret_msg"] == "pong"


async def test_oversized_frame_closes_with_1009(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_public_url("linear"), max_size=None) as ws:
        await ws.send("x" * (bybit_mock.config.max_ws_frame_bytes + 10))
        with pytest.raises(websockets.ConnectionClosed) as exc:
            await asyncio.wait_for(ws.recv(), 5)
        assert exc.value.rcvd is None or exc.value.rcvd.code == 1009


async def test_unknown_path_is_refused(bybit_mock: MockExchange) -> None:
    with pytest.raises(websockets.InvalidStatus) as exc:
        async with connect(f"{bybit_mock.ws_url}/v5/public/futures"):
            pass
    assert exc.value.response.status_code == 404


async def test_private_auth_success_then_subscribe(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_private_url) as ws:
        ack = await ask(ws, {**auth_msg(bybit_mock), "req_id": "auth-1"})
        assert ack == {"req_id": "auth-1", "success": True, "ret_msg": "", "op": "auth", "conn_id": ack["conn_id"]}
        sub = await ask(ws, {"op": "subscribe", "req_id": "s1", "args": ["order", "execution", "position", "wallet"]})
        assert sub["success"] is True and sub["req_id"] == "s1" and sub["op"] == "subscribe"
        pong = await ask(ws, {"op": "ping", "req_id": "x"})
        assert pong["op"] == "pong" and pong["req_id"] == "x" and pong["args"][0].isdigit()
        again = await ask(ws, auth_msg(bybit_mock))
        assert again["success"] is False  # repeat auth


async def test_private_auth_with_string_expires_like_ccxt(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_private_url) as ws:
        ack = await ask(ws, auth_msg(bybit_mock, expires=str(int(time.time() * 1000) + 10_000)))
        assert ack["success"] is True


@pytest.mark.parametrize("case", ["bad-signature", "expired", "unknown-key", "malformed"])
async def test_private_auth_failures(bybit_mock: MockExchange, case: str) -> None:
    msg = {
        "bad-signature": auth_msg(bybit_mock, secret="wrong"),
        "expired": auth_msg(bybit_mock, expires=int(time.time() * 1000) - 1),
        "unknown-key": auth_msg(bybit_mock, key="nobody"),
        "malformed": {"op": "auth", "args": "nope"},
    }[case]
    async with connect(bybit_mock.ws_private_url) as ws:
        ack = await ask(ws, msg)
        assert ack == {"success": False, "ret_msg": "Params Error", "op": "auth", "conn_id": ack["conn_id"]}
        sub = await ask(ws, {"op": "subscribe", "args": ["order"]})
        assert sub["success"] is False and "needs auth" in sub["ret_msg"]


async def test_subscribe_before_auth_fails(bybit_mock: MockExchange) -> None:
    async with connect(bybit_mock.ws_private_url) as ws:
        sub = await ask(ws, {"op": "subscribe", "req_id": "early", "args": ["order"]})
        assert sub["success"] is False and sub["req_id"] == "early"
        assert sub["ret_msg"] == "error:topic:order needs auth first"


async def test_auth_and_subscribe_sent_back_to_back_are_processed_in_order(bybit_mock: MockExchange) -> None:
    # a key the worker has not cached yet forces the auth through a state lookup
    bybit_mock.state.add_account(AccountConfig("fresh-key", "fresh-secret", {"USDT": 1}))
    async with connect(bybit_mock.ws_private_url) as ws:
        await ws.send(orjson.dumps(auth_msg(bybit_mock, key="fresh-key", secret="fresh-secret")).decode())
        await ws.send(orjson.dumps({"op": "subscribe", "req_id": "s", "args": ["wallet"]}).decode())
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        second = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (first["op"], first["success"]) == ("auth", True)
        assert (second["op"], second["success"], second["req_id"]) == ("subscribe", True, "s")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_pybit_private_websocket_authenticates(bybit_mock: MockExchange, caplog: pytest.LogCaptureFixture) -> None:
    base = bybit_mock.ws_url

    class LocalWebSocket(WebSocket):  # type: ignore[misc]
        def _connect(self, url: str) -> None:
            super()._connect(url.replace("wss://{SUBDOMAIN}.{DOMAIN}.{TLD}", base))

    ws = LocalWebSocket(
        testnet=False,
        channel_type="private",
        api_key=bybit_mock.api_key,
        api_secret=bybit_mock.api_secret,
        restart_on_error=False,
    )
    try:
        deadline = time.time() + 5
        while not ws.auth and time.time() < deadline:
            time.sleep(0.02)
        assert ws.auth is True
        ws.order_stream(callback=lambda msg: None)  # subscribe ack must match pybit's req_id bookkeeping
        time.sleep(0.2)
        assert ws.is_connected()
        assert errors_logged(caplog) == []
    finally:
        ws.exit()


def test_pybit_public_websocket_subscribes(bybit_mock: MockExchange, caplog: pytest.LogCaptureFixture) -> None:
    base = bybit_mock.ws_url

    class LocalWebSocket(WebSocket):  # type: ignore[misc]
        def _connect(self, url: str) -> None:
            super()._connect(url.replace("wss://{SUBDOMAIN}.{DOMAIN}.com", base))

    ws = LocalWebSocket(testnet=False, channel_type="linear", restart_on_error=False)
    try:
        ws.orderbook_stream(50, "BTCUSDT", callback=lambda msg: None)
        ws.trade_stream("ETHUSDT", callback=lambda msg: None)
        time.sleep(0.3)
        assert ws.is_connected()
        assert errors_logged(caplog) == []
    finally:
        ws.exit()


async def test_subscribe_ack_waits_ack_delay_and_later_frames_wait_behind_it(bybit_mock: MockExchange) -> None:
    # pybit records a subscribe's req_id only after sending it; an instant ack crashes its thread.
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        start = time.monotonic()
        await ws.send(orjson.dumps({"op": "subscribe", "req_id": "s", "args": ["publicTrade.BTCUSDT"]}).decode())
        await ws.send(orjson.dumps({"op": "ping", "req_id": "p"}).decode())
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["req_id"] == "s" and time.monotonic() - start >= 0.015  # default ack_delay_ms = 20
        for _ in range(20):  # the ping waited behind the subscribe; stream data may interleave
            if orjson.loads(await asyncio.wait_for(ws.recv(), 5)).get("req_id") == "p":
                break
        else:
            raise AssertionError("no pong")
