"""A killed state service is replaced, and everything around it recovers by itself.

Its own mock (not the shared session one): the test SIGKILLs the state service, under load
(a thread reading the wallet over a keep-alive connection, an authenticated private stream,
an authenticated ``/v5/trade`` connection), then checks that the supervisor starts a new one
from the configured start, that REST answers again, that WS clients were told (1012) and
can authenticate again and get pushes, that auth never succeeded while the service was down,
and that the test process's own handle (``ex.state``) works again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.state import MockExchangeState

from .conftest import RawHttp, pybit_http, signed_get
from .test_supervisor import wait_gone
from .test_trading_pybit import pushes
from .test_ws import auth_msg

pytestmark = pytest.mark.e2e

WALLET = "/v5/account/wallet-balance"
WALLET_QUERY = "accountType=UNIFIED&coin=USDT"
#: Everything recovers well within this after the kill (a restart is about a second).
RECOVERY_S = 10.0


def alive(pid: int) -> bool:
    """Running (not a zombie); the supervisor may reap it between our two looks."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def usdt(body: dict[str, Any]) -> Decimal:
    (coin,) = body["result"]["list"][0]["coin"]
    return Decimal(coin["walletBalance"])


class WalletReader(threading.Thread):
    """Signed wallet reads back to back on one keep-alive connection: (retCode, body) each."""

    def __init__(self, ex: MockExchange) -> None:
        super().__init__(name="wallet-reader", daemon=True)
        self.ex = ex
        self.stop = threading.Event()
        self.replies: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        conn = RawHttp(self.ex)
        try:
            while not self.stop.is_set():
                conn.send(signed_get(self.ex, WALLET, WALLET_QUERY))
                _, _, body = conn.read_response()
                self.replies.append(orjson.loads(body))
        except BaseException as exc:  # reported by the test; a REST worker must not drop us
            self.errors.append(exc)
        finally:
            conn.close()

    def codes(self) -> list[int]:
        return [r["retCode"] for r in self.replies]


async def ask(ws: ClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    """Send, then the next reply that is not a push."""
    await ws.send(orjson.dumps(msg).decode())
    while True:
        reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if "topic" not in reply:
            return reply


async def close_code(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the server to close ``ws``; its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), RECOVERY_S)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd is not None else (None, None)


async def wait_for_auth(ex: MockExchange, url: str) -> ClientConnection:
    """A connection authenticated once the worker has the new engine (retried until then)."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        ws = await connect(url)
        reply = await ask(ws, auth_msg(ex))
        if reply.get("success") is True or reply.get("retCode") == 0:
            return ws
        await ws.close()
        assert time.monotonic() < deadline, f"auth never succeeded again: {reply}"
        await asyncio.sleep(0.05)


async def test_a_killed_state_service_is_replaced_and_everything_recovers(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the reader polls back to back, far over Bybit's 50 wallet reads/s: limits off, or 10006s
    ex = await MockExchange(MockExchangeConfig.default().copy(rate_limits="off")).astart()
    pids: dict[str, int] = {}
    old: dict[str, int] = {}
    reader = WalletReader(ex)
    sockets: list[ClientConnection] = []
    # A restart takes a fraction of a second; the supervisor holds it back until the test has
    # looked at the outage, so the checks below never race it.
    supervisor = ex._supervisor
    assert supervisor is not None
    outage_seen = threading.Event()
    start_state = supervisor._start_state

    def held_back(address: str) -> Any:
        outage_seen.wait(RECOVERY_S)
        return start_state(address)

    monkeypatch.setattr(supervisor, "_start_state", held_back)
    try:
        key = ex.api_key
        configured = ex.state.balance(key, "USDT")
        ex.state.set_balance(key, "USDT", 123)  # the new service must not have this
        private = await connect(ex.ws_private_url)
        trade = await connect(ex.ws_trade_url)
        sockets += [private, trade]
        assert (await ask(private, auth_msg(ex)))["success"] is True
        assert (await ask(private, {"op": "subscribe", "args": ["order"]}))["success"] is True
        assert (await ask(trade, auth_msg(ex)))["retCode"] == 0
        untouched = MockExchangeState(supervisor.state_address, supervisor.authkey)  # unused in the outage
        assert untouched.balance(key, "USDT") == 123
        reader.start()
        while len(reader.replies) < 20:
            await asyncio.sleep(0.01)
        assert usdt(reader.replies[-1]) == 123

        old = ex.pids()
        os.kill(old["state"], signal.SIGKILL)
        while alive(old["state"]):
            await asyncio.sleep(0.005)

        # During the outage: auth is refused on both channels, never acknowledged as success;
        # REST answers 10016 (promptly: the reader keeps getting answers); ex.state raises.
        async with connect(ex.ws_private_url) as ws:
            refused = await ask(ws, auth_msg(ex))
            assert refused["success"] is False and refused["op"] == "auth", refused
            assert "state service unavailable" in refused["ret_msg"]
        async with connect(ex.ws_trade_url) as ws:
            refused = await ask(ws, auth_msg(ex))
            assert refused["retCode"] == 10016 and refused["op"] == "auth", refused
        answered = len(reader.replies)
        deadline = time.monotonic() + RECOVERY_S
        while reader.codes()[answered:].count(10016) < 5:
            assert time.monotonic() < deadline and not reader.errors, reader.errors or reader.replies[-1]
            await asyncio.sleep(0.01)
        with pytest.raises(ConnectionError):
            ex.state.balances(key)
        assert not ex.restarts
        outage_seen.set()

        # The authenticated connections are told to reconnect: 1012 Service Restart.
        assert await close_code(private) == (1012, "state service restarted: reconnect and resync")
        assert (await close_code(trade))[0] == 1012

        # REST answers again, from the configured start.
        deadline = time.monotonic() + RECOVERY_S
        while not reader.replies or reader.replies[-1]["retCode"] != 0 or usdt(reader.replies[-1]) == 123:
            assert time.monotonic() < deadline and not reader.errors, reader.errors or reader.replies[-1]
            await asyncio.sleep(0.02)
        assert usdt(reader.replies[-1]) == configured
        assert set(reader.codes()) == {0, 10016}

        # A new private connection authenticates and gets pushes for a new order.
        private = await wait_for_auth(ex, ex.ws_private_url)
        sockets.append(private)
        assert (await ask(private, {"op": "subscribe", "args": ["order"]}))["success"] is True
        placed = await asyncio.to_thread(
            pybit_http(ex).place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price="30000",
        )
        order_id = placed["result"]["orderId"]
        (push,) = await pushes(private, 1)
        assert push["topic"] == "order" and push["data"][0]["orderId"] == order_id
        trade = await wait_for_auth(ex, ex.ws_trade_url)
        sockets.append(trade)

        # The test process's handles reconnect by themselves: one idle through the outage works
        # at its first call, one whose call failed in the outage works at its next.
        assert untouched.balance(key, "USDT") == configured
        ex.state.set_balance(key, "USDT", 7)
        ex.state.reset()
        assert ex.state.balances(key)["USDT"] == configured
        assert ex.state.open_orders(key) == []

        (restart,) = ex.restarts
        new = ex.pids()
        assert (restart.name, restart.old_pid, restart.exitcode) == ("state", old["state"], -signal.SIGKILL)
        assert restart.new_pid == new["state"] != old["state"] and alive(new["state"])
        assert {k: v for k, v in new.items() if k != "state"} == {k: v for k, v in old.items() if k != "state"}
        pids = new
    finally:
        outage_seen.set()
        reader.stop.set()
        for ws in sockets:
            await ws.close()
        await ex.aclose()
        reader.join(5)
    assert wait_gone([*pids.values(), *old.values()]) == []
    assert not reader.errors, reader.errors

    critical = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(critical) == 1 and "killed by SIGKILL" in critical[0].getMessage()
    # Each worker says it lost the service once, however many requests it answered meanwhile.
    err = capfd.readouterr().err
    for worker in ("rest-0", "ws-0"):
        lost = [ln for ln in err.splitlines() if f" {worker}[" in ln and "state service unavailable" in ln]
        assert len(lost) == 1, lost
