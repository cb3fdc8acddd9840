"""Soak schedules over real sockets (``docs/soak.md``): the five documented examples, with
milliseconds for minutes, run by the server itself from a TOML file.

Each test starts with ``state.reset()``, which re-arms the config's scenarios and restarts
their clocks, so "after 1500 ms" means 1.5 s after the test began.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import websockets
from pybit.exceptions import InvalidRequestError
from websockets.asyncio.client import connect

from bybit_mock import MockExchange, MockExchangeConfig

from .conftest import pybit_http, serving_cli
from .streams import collect, subscribed
from .test_scenarios_ws import closed, done_notes
from .test_ws import ask, auth_msg

KEY, SECRET = "bot", "bot-secret"
#: the examples of docs/soak.md, minutes turned into milliseconds (and 1 % into 5 %, so a few
#: hundred creates make a count worth checking; the engine's unit test checks 1 %)
SOAK_MS = f"""
[server]
rate_limits = "off"  # 200 creates in a second or two

[[accounts]]
api_key = "{KEY}"
api_secret = "{SECRET}"
balances = {{ USDT = 10000 }}

[[scenarios]]
name = "drop-private"
trigger = {{ type = "timer", after_ms = 200, every_ms = 200, jitter_ms = 50 }}
action = {{ type = "ws_reset", channel = "private" }}
times = "unlimited"

[[scenarios]]
name = "book-gap"
trigger = {{ type = "timer", after_ms = 300, every_ms = 300 }}
action = {{ type = "book_gap", symbol = "BTCUSDT", category = "linear" }}
times = "unlimited"

[[scenarios]]
name = "create-fails"
trigger = {{ type = "order_create" }}
action = {{ type = "fail", ret_code = 10016, ret_msg = "Internal System Error." }}
probability = 0.05
times = "unlimited"

[[scenarios]]
name = "refuse-reconnects"
trigger = {{ type = "timer", after_ms = 1500 }}
action = {{ type = "ws_refuse", what = "connect", ms = 1000 }}

[[scenarios]]
name = "balance-edit"
trigger = {{ type = "timer", after_ms = 250, every_ms = 250 }}
action = {{ type = "edit_balance", api_key = "{KEY}", coin = "USDT", amount = "9000" }}
times = "unlimited"
"""


@pytest.fixture(scope="module")
def soak_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("soak") / "soak.toml"
    path.write_text(SOAK_MS)
    return path


@pytest.fixture(scope="module")
def soak_mock(soak_file: Path) -> Iterator[MockExchange]:
    with MockExchange(MockExchangeConfig.from_toml(soak_file)) as ex:
        yield ex


@pytest.fixture
def soak(soak_mock: MockExchange) -> MockExchange:
    soak_mock.state.reset()  # the schedules' clocks start now
    return soak_mock


def disarm(ex: MockExchange, name: str) -> None:
    """Take one schedule out (so it does not get in the way of what a test watches)."""
    (ident,) = [s["id"] for s in ex.scenarios.list() if s["name"] == name]
    assert ex.scenarios.remove(ident)


async def test_private_connections_are_dropped_every_period(soak: MockExchange) -> None:
    for _ in range(3):  # dropped, reconnect, dropped again ...
        async with connect(soak.ws_private_url) as ws:
            await ws.send(orjson.dumps(auth_msg(soak, key=KEY, secret=SECRET)).decode())
            assert await closed(ws, 2) is None  # cut, no close frame
            assert ws.close_code == 1006
    async with connect(soak.ws_public_url("linear")) as public:  # another channel: untouched
        await asyncio.sleep(0.5)
        assert (await ask(public, {"op": "ping"}))["ret_msg"] == "pong"
    assert len(soak.scenarios.journal("drop-private")) >= 3


async def test_the_order_book_gaps_every_period(soak: MockExchange) -> None:
    async with subscribed(soak.ws_public_url("linear"), "orderbook.50.BTCUSDT") as ws:
        got = await collect(ws, 1.2)
    us = [m["data"]["u"] for m in got if m["type"] == "delta"]
    steps = [b - a for a, b in itertools.pairwise(us)]
    assert len(steps) > 20 and set(steps) == {1, 2}, steps
    assert 2 <= steps.count(2) <= 5, steps  # a gap every 300 ms, in 1.2 s
    await done_notes(soak, "book-gap", "u skips one")


def test_a_share_of_order_creates_fails_with_10016(soak: MockExchange) -> None:
    disarm(soak, "balance-edit")  # its edits would not stop the orders, but keep the account still
    http = pybit_http(soak, api_key=KEY, api_secret=SECRET)
    failed = 0
    for i in range(200):
        try:
            http.place_order(
                category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001", price="10000",
                orderLinkId=f"soak-{i}",
            )  # fmt: skip
        except InvalidRequestError as exc:
            assert (exc.status_code, exc.message) == (10016, "Internal System Error."), exc
            failed += 1
    journal = soak.scenarios.journal("create-fails")
    assert 1 <= failed <= 30 and len(journal) == failed
    assert {e["matched"]["path"] for e in journal} == {"/v5/order/create"}
    opened = http.get_open_orders(category="linear", symbol="BTCUSDT", limit=50)["result"]["list"]
    assert len(opened) == 50  # the others were placed


async def test_websocket_connects_are_refused_inside_the_window_only(soak: MockExchange) -> None:
    start = time.monotonic()
    async with connect(soak.ws_public_url("linear")) as ws:  # before the window
        assert (await ask(ws, {"op": "ping"}))["ret_msg"] == "pong"
        await done_notes(soak, "refuse-reconnects", "refusing connect", seconds=5)
        for url in (soak.ws_public_url("linear"), soak.ws_private_url):
            with pytest.raises(websockets.InvalidStatus) as exc:
                async with connect(url):
                    pass
            assert exc.value.response.status_code == 503
        assert (await ask(ws, {"op": "ping"}))["ret_msg"] == "pong"  # a connection already open stays
    assert time.monotonic() - start >= 1.4  # the window opened at 1.5 s, not earlier
    await asyncio.sleep(max(0.0, start + 2.8 - time.monotonic()))
    async with connect(soak.ws_public_url("linear")) as ws:  # after it
        assert (await ask(ws, {"op": "ping"}))["ret_msg"] == "pong"


async def test_the_balance_is_edited_behind_the_clients_back(soak: MockExchange) -> None:
    disarm(soak, "drop-private")  # the socket below must stay up to show there is no push
    http = pybit_http(soak, api_key=KEY, api_secret=SECRET)

    def usdt() -> str:
        wallet = http.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]
        return str(wallet["coin"][0]["walletBalance"])

    async def edited() -> None:
        deadline = time.monotonic() + 3
        while usdt() != "9000":
            assert time.monotonic() < deadline, "the balance was not edited"
            await asyncio.sleep(0.05)

    async with connect(soak.ws_private_url) as ws:
        assert (await ask(ws, auth_msg(soak, key=KEY, secret=SECRET)))["success"] is True
        assert (await ask(ws, {"op": "subscribe", "args": ["wallet"]}))["success"] is True
        for _ in range(2):  # edited back every period
            soak.state.set_balance(KEY, "USDT", "1")
            assert usdt() == "1"
            await edited()
        assert await collect(ws, 0.3) == []  # no wallet message for any of it
        soak.state.set_balance(KEY, "USDT", "2", push=True)  # the socket does show a push
        (pushed,) = await collect(ws, 1)
        assert pushed["topic"] == "wallet"
    assert len(soak.scenarios.journal("balance-edit")) >= 2


def test_serve_prints_each_firing_on_stderr(soak_file: Path) -> None:
    with serving_cli("--config", str(soak_file)) as (proc, ready):
        assert ready["event"] == "ready" and proc.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()], daemon=True).start()
        fired: list[str] = []
        deadline = time.monotonic() + 5
        while len([f for f in fired if "'drop-private' fired: timer -> ws_reset channel=private" in f]) < 3:
            left = deadline - time.monotonic()
            assert left > 0, fired
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if "bybit_mock.scenarios.fired" in line:
                fired.append(line)
        assert any("'balance-edit' fired: timer -> edit_balance" in f for f in fired), fired
        assert all(" WARNING " in f for f in fired)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
