"""``examples/``: every script runs by itself and prints what it promises, and the reference bot
(imported from its file) trades, follows the book, reconnects and reconciles against the mock."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import http.server
import importlib.util
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from bybit_mock import MockExchange

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
D = Decimal


def _load_bot_module() -> Any:
    spec = importlib.util.spec_from_file_location("reference_bot", EXAMPLES / "reference_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_bot"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


rb = _load_bot_module()

# Each script, and lines (regular expressions) its output must contain. Prices are exact where
# the script freezes the market or only trades at its own limit prices.
SCRIPTS: dict[str, list[str]] = {
    "reference_bot.py": [
        r"^book: bid 6\d{4}\.\d+ / ask 6\d{4}\.\d+, last trade 6\d{4}",
        r"^account: USDT 100000, position flat, 0 open orders$",
        r"^filled: Buy 0\.001 @ 6\d{4}\.\d+, fee 0\.03\d+ \(order [0-9a-f-]{36}\)$",
        r"^account: USDT 99999\.96\d+, position Buy 0\.001 @ 6\d{4}",
        r"^reconcile: pushed view matches REST$",
    ],
    "quickstart_pybit.py": [
        r"^USDT wallet balance: 100000$",
        r"^market order placed: [0-9a-f-]{36}$",
        r"^execution push: Buy 0\.001 @ 6\d{4}\.\d+, fee 0\.03\d+$",
        r"^position: Buy 0\.001 @ 6\d{4}",
    ],
    "state_edits.py": [
        r"^the bot sees: USDT 100000, position flat$",
        r"^reconcile found: balance 100000 -> 5000, position flat -> Sell 0\.5 @ 64000$",
        r"^after reconnecting: missing fills \['[0-9a-f-]{36}'\], orders gone \['[0-9a-f-]{36}'\]$",
        r"^the bot sees now: USDT 5139\.9, position Sell 0\.49 @ 64000$",  # +140 PnL, -0.1 maker fee
    ],
    "ccxt_orders.py": [
        r"^open orders: \[\('[0-9a-f-]{36}', 'buy', 60000\.0\)\]$",
        r"^open orders after state\.fill_order: \[\]$",
        r"^trade: buy 0\.01 @ 60000\.0 \(maker\)$",
        r"^trade: buy 0\.01 @ 65000\.0 \(taker\)$",
        r"^position: long 0\.02 @ 62500\.0$",
        r"^USDT total: 99999\.5225$",  # fees: 0.12 maker + 0.3575 taker
    ],
    # Locust runs headless for 3 s against the mock it starts; more in tests/e2e/test_locustfile.py.
    "locustfile.py": [
        rf"^{route}: [1-9]\d* requests, 0 failures$"
        for route in ("GET /v5/market/tickers", "POST /v5/order/create", "POST /v5/order/cancel", "Aggregated")
    ],
}


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "failed" not in done.stderr, done.stderr
    return done.stdout


def assert_lines(stdout: str, patterns: list[str]) -> None:
    for pattern in patterns:
        assert re.search(pattern, stdout, re.MULTILINE), f"no line matches {pattern!r} in:\n{stdout}"


def test_every_example_is_tested_and_in_the_readme() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(SCRIPTS)
    readme = (EXAMPLES / "README.md").read_text()
    for name in SCRIPTS:
        assert f"python examples/{name}" in readme, name


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_runs_and_exits_by_itself(script: str) -> None:
    started = time.monotonic()
    assert_lines(run_script(f"examples/{script}"), SCRIPTS[script])
    assert time.monotonic() - started < 30


def test_reference_bot_against_a_running_exchange(bybit_mock: MockExchange) -> None:
    out = run_script(
        "examples/reference_bot.py", "--rest", bybit_mock.rest_url, "--ws", bybit_mock.ws_url,
        "--key", bybit_mock.api_key, "--secret", bybit_mock.api_secret,
    )  # fmt: skip
    assert "started a mock exchange" not in out
    assert_lines(out, SCRIPTS["reference_bot.py"])
    (fill,) = bybit_mock.state.executions(bybit_mock.api_key)  # it traded here, on this exchange
    assert fill.qty == D("0.001") and fill.side == "Buy"


# -- the reference bot, in process ------------------------------------------------------------


@asynccontextmanager
async def bot_starter() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await start(ex, cls=ReferenceBot, **options)`` starts a bot (quick pings, short
    backoff) on ``ex``; every bot started is stopped on the way out."""
    started: list[Any] = []

    async def start(ex: MockExchange, cls: type = rb.ReferenceBot, **options: Any) -> Any:
        options = {"ping_interval": 0.5, "backoff": (0.1, 1.0)} | options
        bot = cls(ex.rest_url, ex.ws_url, ex.api_key, ex.api_secret, **options)
        started.append(bot)
        await bot.start(timeout=5)
        return bot

    try:
        yield start
    finally:
        for bot in started:
            await bot.stop()


@pytest.fixture
async def start_bot(market: MockExchange) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start bots on the frozen market (BTCUSDT at 65 000); each is stopped when the test ends."""
    async with bot_starter() as start:
        yield functools.partial(start, market)


@pytest.fixture
async def bot(start_bot: Callable[..., Awaitable[Any]]) -> Any:
    return await start_bot()


def drain(bot: Any) -> list[tuple[str, Any]]:
    events = []
    while not bot.events.empty():
        events.append(bot.events.get_nowait())
    return events


async def test_bot_trades_and_reconciles_with_no_difference(market: MockExchange, bot: Any) -> None:
    await bot.wait_for(lambda: bot.best_ask == D(65000))  # once the fixture's price jump reaches the stream
    assert bot.best_bid < bot.best_ask and bot.book_u is not None
    assert bot.usdt_balance == D(100000) and bot.position == rb.FLAT and bot.orders == {} and bot.fills == {}
    assert bot.drifts == [] and bot.stats.reconciles == 1  # the first load is not a drift
    order_id = await bot.place_order("Buy", "0.01")
    await bot.wait_for(lambda: bot.usdt_balance == D("99999.6425") and order_id in bot.closed_orders)
    (fill,) = bot.fills.values()
    assert fill["orderId"] == order_id and D(fill["execPrice"]) == 65000 and fill["execQty"] == "0.01"
    assert bot.closed_orders[order_id]["orderStatus"] == "Filled" and bot.orders == {}
    assert bot.position == rb.Position("Buy", D("0.01"), D(65000))
    pushed = [kind for kind, payload in drain(bot) if kind in ("order", "execution", "position", "wallet")]
    assert pushed == ["order", "execution", "position", "wallet"]
    # REST agrees with every push.
    assert await bot.reconcile() == rb.Drift()
    assert bot.drifts == [rb.Drift()] and not bot.drifts[0]
    # Behind its back: no push, so only reconcile can tell.
    market.state.set_balance(market.api_key, "USDT", 1234)
    drift = await bot.reconcile()
    assert drift == rb.Drift(balance=(D("99999.6425"), D(1234))) and drift
    assert bot.usdt_balance == D(1234) and bot.drifts == [rb.Drift(), drift]
    # Pushes fed as if they came off the socket. Late ones, older than the REST answers, change nothing:
    old = int(time.time() * 1000) - 60_000
    wallet = {"accountType": "UNIFIED", "coin": [{"coin": "USDT", "walletBalance": "99999.6425"}]}
    await bot._on_message("private", {"topic": "wallet", "creationTime": old, "data": [wallet]})
    reopened = bot.closed_orders[order_id] | {"orderStatus": "New"}
    await bot._on_message("private", {"topic": "order", "creationTime": old, "data": [reopened]})
    assert bot.usdt_balance == D(1234) and bot.orders == {}
    # Pushes that lie: a repeated fill and a ghost order.
    now = int(time.time() * 1000)
    await bot._on_message("private", {"topic": "execution", "creationTime": now, "data": [fill]})
    ghost = bot.closed_orders[order_id] | {"orderId": "ghost-1", "orderStatus": "New"}
    await bot._on_message("private", {"topic": "order", "creationTime": now, "data": [ghost]})
    assert bot.stats.duplicate_fills == 1 and len(bot.fills) == 1 and "ghost-1" in bot.orders
    assert await bot.reconcile() == rb.Drift(stale_orders=["ghost-1"])
    assert bot.orders == {} and bot.closed_orders["ghost-1"]["orderStatus"] == "New"  # REST knows nothing more
    assert bot.stats.connects == {"public": 1, "private": 1} and bot.stats.disconnects == {"public": 0, "private": 0}


async def test_bot_limit_order_cancel_errors_and_pings(bot: Any) -> None:
    order_id = await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="ref-1")
    await bot.wait_for(lambda: order_id in bot.orders)
    assert bot.orders[order_id]["orderLinkId"] == "ref-1" and bot.orders[order_id]["orderStatus"] == "New"
    await bot.cancel_order(order_id)
    await bot.wait_for(lambda: order_id in bot.closed_orders)
    assert bot.closed_orders[order_id]["orderStatus"] == "Cancelled" and bot.orders == {}
    with pytest.raises(rb.BybitError) as refused:
        await bot.cancel_order(order_id)
    assert refused.value.code == 110001 and refused.value.http_status == 200
    with pytest.raises(rb.BybitError) as refused:
        await bot.place_order("Buy", "0.01", order_link_id="ref-1")  # used already
    assert refused.value.code == 110072
    pongs = bot.stats.pongs
    await bot.wait_for(lambda: bot.stats.pongs >= pongs + 4, timeout=3)  # both streams, every 0.5 s
    assert bot.stats.disconnects == {"public": 0, "private": 0}  # every ping was answered in time


async def test_bot_reconnects_resubscribes_and_finds_what_it_missed(market: MockExchange, bot: Any) -> None:
    order_id = await bot.place_order("Buy", "0.01", "Limit", price="60000")
    await bot.wait_for(lambda: order_id in bot.orders)
    bot.drop_connection("private")  # abort the socket: no close frame, as a network fault
    market.state.fill_order(market.api_key, order_id)  # while the bot is away: its pushes are lost
    await bot.wait_for(lambda: len(bot.drifts) == 1, timeout=4)
    assert bot.stats.connects["private"] == 2 and bot.stats.disconnects == {"public": 0, "private": 1}
    (missed,) = market.state.executions(market.api_key)
    (drift,) = bot.drifts
    assert drift == rb.Drift(
        stale_orders=[order_id],
        missing_fills=[missed.exec_id],
        position=(rb.FLAT, rb.Position("Buy", D("0.01"), D(60000))),
        balance=(D(100000), D("99999.88")),  # a maker's 0.02 % on 600
    )
    assert bot.orders == {} and bot.closed_orders[order_id]["orderStatus"] == "Filled"
    assert list(bot.fills) == [missed.exec_id] and bot.usdt_balance == D("99999.88")
    # The new connection is subscribed again: the next fill arrives as a push, with no REST read.
    reconciles = bot.stats.reconciles
    second = await bot.place_order("Sell", "0.01")
    await bot.wait_for(lambda: any(f["orderId"] == second for f in bot.fills.values()) and bot.position == rb.FLAT)
    assert bot.stats.reconciles == reconciles and bot.stats.duplicate_fills == 0
    assert await bot.reconcile() == rb.Drift()


async def test_bot_rebuilds_the_book_after_a_gap(start_bot: Callable[..., Awaitable[Any]]) -> None:
    """Deltas are injected as if they came off the socket; the fresh snapshots come from the mock."""
    bot = await start_bot(book_depth=50)
    for _ in range(10):  # the fixture's reset, freeze and price jump each re-snapshot the book once they land
        snapshots = bot.stats.book_snapshots
        await asyncio.sleep(0.8)  # quiet this long: on a loaded machine a reload can land late
        if bot.stats.book_snapshots == snapshots:
            break
    u, book, snapshots, topic = bot.book_u, dict(bot.bids), bot.stats.book_snapshots, "orderbook.50.BTCUSDT"
    assert len(book) == 50 and bot.stats.book_deltas == 0  # the market is frozen: no deltas of its own

    async def feed(kind: str, update_id: int, bids: list[list[str]]) -> None:
        data = {"s": "BTCUSDT", "b": bids, "a": [], "u": update_id, "seq": 1}
        await bot._on_message("public", {"topic": topic, "type": kind, "ts": 1, "data": data, "cts": 1})

    await feed("delta", u + 1, [["64000.0", "2"]])  # the next u: applied
    assert bot.bids[D("64000.0")] == 2 and bot.book_u == u + 1 and bot.stats.book_gaps == 0
    assert bot.stats.book_deltas == 1
    await feed("delta", u + 3, [["1.0", "5"]])  # u + 2 was lost
    assert bot.stats.book_gaps == 1 and bot.book_u is None and bot.bids == {}
    await feed("delta", u + 4, [["2.0", "5"]])  # ignored until the snapshot comes back
    await bot.wait_for(lambda: bot.stats.book_snapshots == snapshots + 1, timeout=2)
    assert bot.bids == book and bot.book_u == u and bot.stats.book_gaps == 1  # the mock's book again
    await feed("snapshot", 1, [["100.0", "1"]])  # u=1: the exchange restarted its book
    assert bot.stats.book_resets == 1 and bot.bids == {D(100): 1} and bot.book_u == 1
    await feed("delta", 2, [["100.0", "0"], ["99.0", "3"]])
    assert bot.bids == {D(99): 3} and bot.stats.book_gaps == 1
    await feed("delta", 2, [["98.0", "1"]])  # a repeat is a gap too
    await bot.wait_for(lambda: bot.stats.book_snapshots == snapshots + 3, timeout=2)
    assert bot.stats.book_gaps == 2 and bot.bids == book and bot.stats.disconnects["public"] == 0


async def test_bot_follows_a_live_book_without_gaps(bybit_mock: MockExchange) -> None:
    bot = rb.ReferenceBot(bybit_mock.rest_url, bybit_mock.ws_url, bybit_mock.api_key, bybit_mock.api_secret,
                          book_depth=50)  # fmt: skip
    await bot.start(timeout=5)
    try:
        await bot.wait_for(lambda: bot.stats.book_deltas >= 20 and bot.last_price is not None, timeout=3)
        assert bot.stats.book_gaps == 0 and bot.book_u is not None  # (a reset's reload may re-snapshot it)
        assert len(bot.bids) == len(bot.asks) == 50 and bot.best_bid < bot.best_ask
    finally:
        await bot.stop()


# -- REST error handling, against a stub server (the mock has no rate limits to hit yet) -------


class Stub(http.server.BaseHTTPRequestHandler):
    replies: list[tuple[int, dict[str, str], bytes]] = []
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:
        Stub.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        status, headers, body = Stub.replies.pop(0)
        self.send_response(status)
        for name, value in (headers | {"Content-Length": str(len(body))}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.replies, Stub.seen = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def envelope(code: int, msg: str = "OK", result: Any = None) -> bytes:
    return orjson.dumps({"retCode": code, "retMsg": msg, "result": result or {}, "retExtInfo": {}, "time": 1})


async def test_rest_signs_backs_off_on_10006_and_raises_on_errors(stub: str) -> None:
    bot = rb.ReferenceBot(stub, "ws://unused", "key", "secret")
    reset = int(time.time() * 1000) + 300
    Stub.replies = [
        (200, {"X-Bapi-Limit-Reset-Timestamp": str(reset)}, envelope(10006, "Too many visits")),
        (429, {}, envelope(10006, "Too many visits")),  # no header: one second
        (200, {}, envelope(0, result={"ok": 1})),
    ]
    started = time.monotonic()
    reply = await bot.rest("GET", "/v5/order/realtime", {"category": "linear", "symbol": "BTCUSDT"})
    waited = time.monotonic() - started
    assert reply["result"] == {"ok": 1} and bot.stats.rate_limited == 2
    assert 1.2 <= waited < 4, waited  # ~0.3 s to the reset time, then 1 s
    path, headers = Stub.seen[-1]
    assert path == "/v5/order/realtime?category=linear&symbol=BTCUSDT"
    signed = f"{headers['x-bapi-timestamp']}key5000category=linear&symbol=BTCUSDT"
    assert headers["x-bapi-sign"] == hmac.new(b"secret", signed.encode(), hashlib.sha256).hexdigest()
    assert headers["x-bapi-api-key"] == "key" and headers["x-bapi-recv-window"] == "5000"

    Stub.replies = [(200, {}, envelope(10001, "params error"))]
    with pytest.raises(rb.BybitError) as refused:
        await bot.rest("GET", "/v5/position/list")
    assert (refused.value.code, refused.value.message, refused.value.http_status) == (10001, "params error", 200)
    Stub.replies = [(502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>")]
    with pytest.raises(rb.BybitError) as refused:
        await bot.rest("GET", "/v5/position/list")
    assert refused.value.http_status == 502 and "bad gateway" in refused.value.message
    bot.max_retries = 1
    past = {"X-Bapi-Limit-Reset-Timestamp": str(int(time.time() * 1000) - 5000)}  # a reset already past: no wait
    Stub.replies = [(200, past, envelope(10006, "Too many visits"))] * 2
    with pytest.raises(rb.BybitError) as refused:  # it gives up after max_retries
        await asyncio.wait_for(bot.rest("GET", "/v5/position/list"), 5)
    assert refused.value.code == 10006 and not Stub.replies
