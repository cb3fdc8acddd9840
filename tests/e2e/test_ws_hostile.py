"""Hostile WebSocket clients over real sockets: malformed request ids, floods, readers that stop.

Each must be answered or closed with a code and a reason (never a 1011 or a bare 1006), and must
cost nobody else on the worker anything.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.market.config import MarketConfig, SymbolMarketConfig

from .test_ws import ask

#: A JSON value 300 objects deep: orjson parses it (its limit is 1 024) but cannot encode it
#: back (254), so echoing it in an ack used to fail inside the frame callback.
NESTED = '{"k":' * 300 + '"x"' + "}" * 300


def text(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


async def closed_by_server(ws: ClientConnection, timeout: float = 10) -> ConnectionClosed:
    """Read (and drop) everything until the server closes; return how it closed."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.01))
    except ConnectionClosed as exc:
        return exc
    raise AssertionError(f"still open after {timeout} s")


@pytest.mark.parametrize("channel", ["linear", "private", "trade"])
async def test_nested_req_id_gets_an_error_ack_and_the_next_ping_its_pong(
    bybit_mock: MockExchange, channel: str
) -> None:
    url = {
        "linear": bybit_mock.ws_public_url("linear"),
        "private": bybit_mock.ws_private_url,
        "trade": bybit_mock.ws_trade_url,
    }[channel]
    key = "reqId" if channel == "trade" else "req_id"
    async with connect(url) as ws:
        reply = await ask(ws, f'{{"op":"ping","{key}":{NESTED}}}')
        if channel == "trade":
            assert reply["retCode"] == 10001 and "reqId" not in reply
        else:
            assert reply["success"] is False and reply.get("req_id", "") == ""
        pong = await ask(ws, {"op": "ping", key: "after"})
        assert pong[key] == "after"
        assert pong["ret_msg"] == "pong" if channel == "linear" else pong["op"] == "pong"


async def test_a_subscribe_flood_is_closed_with_1008_and_other_streams_carry_on(bybit_mock: MockExchange) -> None:
    assert bybit_mock.config.ws_workers == 1  # so the flood and the watcher share a worker
    limit = bybit_mock.config.ws_max_pending_requests
    async with (
        connect(bybit_mock.ws_public_url("linear")) as watcher,
        connect(bybit_mock.ws_public_url("linear")) as flooder,
    ):
        assert (await ask(watcher, {"op": "subscribe", "args": ["orderbook.1.BTCUSDT"]}))["success"] is True
        # Each subscribe holds the frames behind it for ack_delay_ms, so a burst queues up.
        frame = text({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
        try:
            for _ in range(limit * 4):
                await flooder.send(frame)
        except ConnectionClosed:
            pass  # closed mid-flood: the close frame is still what we came for
        closed = await closed_by_server(flooder)
        assert closed.rcvd is not None, "the server hung up without a close frame"
        assert closed.rcvd.code == 1008 and closed.rcvd.reason == f"too many requests queued (limit {limit})"

        closed_at = time.time() * 1000
        fresh = 0
        while fresh < 5:  # order-book messages made after the flood was closed
            msg = orjson.loads(await asyncio.wait_for(watcher.recv(), 5))
            if msg.get("topic") == "orderbook.1.BTCUSDT" and msg["ts"] > closed_at:
                fresh += 1


@pytest.fixture(scope="module")
def slow_mock() -> Iterator[MockExchange]:
    cfg = MockExchangeConfig.default()
    cfg.ws_max_buffer_bytes = 64 << 10
    cfg.ack_delay_ms = 0.0  # subscribes answered at once, so a burst of them sends at once
    cfg.market = MarketConfig(symbols=[SymbolMarketConfig("BTCUSDT", "linear", book_rates={1: 1000.0, 1000: 10.0})])
    with MockExchange(cfg) as ex:
        yield ex


def small_window_socket(url: str) -> socket.socket:
    """A connected socket whose receive buffer is fixed and small.

    Left alone, Linux grows a loopback socket's buffers to tens of MiB when its reader is fast,
    and a reader that then stops would have all of that filled before the worker's own buffer
    (the one the slow-consumer limit watches) holds a byte. The sender's side still grows to a
    few MiB; the test sends well past that.
    """
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    sock.connect((parts.hostname, parts.port))
    sock.setblocking(False)
    return sock


async def test_a_subscriber_that_stops_reading_is_closed_with_1013_and_a_reason(slow_mock: MockExchange) -> None:
    url = slow_mock.ws_public_url("linear")
    async with connect(url, sock=small_window_socket(url), max_size=None, max_queue=1) as ws:
        assert (await ask(ws, {"op": "subscribe", "args": ["orderbook.1.BTCUSDT"]}))["success"] is True
        # From here on nothing is read. The 1 000/s stream alone would take seconds to fill the
        # kernel's socket buffers before the worker's own backs up; a fresh 1 000-level snapshot
        # (~40 KiB) per re-subscribe fills them in a moment (400 of them: 16 MiB).
        for _ in range(400):
            await ws.send(text({"op": "subscribe", "args": ["orderbook.1000.BTCUSDT"]}))
            await ws.send(text({"op": "unsubscribe", "args": ["orderbook.1000.BTCUSDT"]}))
        await asyncio.sleep(0.5)  # well inside the worker's grace period for taking the close frame
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None, "the server hung up without a close frame (1006)"
        assert closed.rcvd.code == 1013
        assert closed.rcvd.reason.startswith("slow consumer: ") and closed.rcvd.reason.endswith(" bytes unsent")
