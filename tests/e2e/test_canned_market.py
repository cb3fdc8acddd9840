"""Canned market data over real sockets: the streams, REST and matching agree with the items a
test wrote down, paced or stepped, appended while running; and a port of the seed crate's
round-trip test (``tesser-cli/tests/live_run.rs::live_run_executes_round_trip``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bybit_mock import AccountConfig, BookSnapshot, Candle, MockExchange, MockExchangeConfig, Tick
from bybit_mock.config import default_instruments

from .conftest import pybit_http
from .test_ws import ask, auth_msg

D = Decimal

#: BTCUSDT streams at 20 items/s from its first subscriber, kinds mixed in this order.
PACED = [
    Candle("BTCUSDT", 1000, 1010, 995, 1005, 2),
    Tick("BTCUSDT", "1005.5", "0.25", "Buy"),
    BookSnapshot("BTCUSDT", [(1005, 1), (1004, 2)], [(1006, 3), (1007, 4)]),
    Candle("BTCUSDT", 1005, 1012, 1001, 1008, 3),
    Tick("BTCUSDT", 1008, 1, "Sell"),
    Candle("BTCUSDT", 1008, 1009, 1003, "1003.5", 1),
    Tick("BTCUSDT", "1003.5", "0.5", "Sell"),
]
#: ETHUSDT streams one item per ``step_market``.
STEPPED = [
    Candle("ETHUSDT", 100, 101, 99, 100, 5),
    Tick("ETHUSDT", "100.5", 2, "Buy"),
    BookSnapshot("ETHUSDT", [(100, 1)], [(101, "0.5"), (102, 10)]),
    Tick("ETHUSDT", 99, 1, "Sell"),
]
DATA_TOPICS = ("kline.1", "publicTrade", "orderbook.50")


def topics(symbol: str, depth: int = 50) -> list[str]:
    return [f"kline.1.{symbol}", f"publicTrade.{symbol}", f"orderbook.{depth}.{symbol}"]


@pytest.fixture(scope="module")
def canned_mock() -> Iterator[MockExchange]:
    cfg = MockExchangeConfig.default().with_market_data(PACED, pace=20).with_market_data(STEPPED, step=True)
    cfg.ws_workers = 2  # items reach every worker's subscribers once, across each reload
    cfg.market.tesser_compat = True  # and carry the Rust connector's extra fields
    with MockExchange(cfg) as ex:
        yield ex


@pytest.fixture
def mock(canned_mock: MockExchange) -> MockExchange:
    canned_mock.state.reset()  # back to the configured items, streams not started
    # The WS workers reload the models on the reset's event, a few ms from now; a subscriber
    # quicker than that would get the last test's book as its snapshot.
    time.sleep(0.2)
    return canned_mock


@asynccontextmanager
async def subscribed(url: str, *names: str) -> AsyncIterator[ClientConnection]:
    """A public connection subscribed to ``names``, once the mock has acknowledged it (so
    a step or an append made next is streamed to it)."""
    async with connect(url, max_size=None) as ws:
        ack = await ask(ws, {"op": "subscribe", "req_id": "s", "args": list(names)})
        assert ack["success"] is True, ack
        yield ws


def expected(item: Any) -> tuple[str, str]:
    """(topic, the price that identifies it) as the item should stream."""
    if isinstance(item, Candle):
        return f"kline.1.{item.symbol}", f"{item.close:.2f}"
    if isinstance(item, Tick):
        return f"publicTrade.{item.symbol}", f"{item.price:.2f}"
    return f"orderbook.50.{item.symbol}", f"{item.bids[0][0]:.2f}"


def seen(msg: dict[str, Any]) -> tuple[str, str]:
    topic, data = msg["topic"], msg["data"]
    if topic.startswith("kline."):
        return topic, data[0]["close"]
    if topic.startswith("publicTrade."):
        return topic, data[0]["p"]
    return topic, data["b"][0][0]


async def read(ws: ClientConnection, n: int, timeout: float = 5.0, quiet: float = 0.3) -> list[dict[str, Any]]:
    """The next ``n`` data messages (tickers and acks skipped), then ``quiet`` s with no more."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if "topic" in msg and not msg["topic"].startswith("tickers."):
            out.append(msg)
            if len(out) == n:
                deadline = time.monotonic() + quiet  # anything more is one too many
    return out


# -- streams, REST and matching -----------------------------------------------------------


async def test_a_subscriber_gets_exactly_the_items_in_order_then_quiet(mock: MockExchange) -> None:
    assert mock.state.market_status("BTCUSDT")["started"] is False  # waits for its first subscriber
    async with subscribed(mock.ws_public_url(), *topics("BTCUSDT")) as ws:
        msgs = await read(ws, len(PACED), quiet=1.0)  # ~20 synthetic messages would come in a second
    assert [seen(m) for m in msgs] == [expected(i) for i in PACED]
    klines = [m["data"][0] for m in msgs if m["topic"] == "kline.1.BTCUSDT"]
    assert all(k["confirm"] and k["_start"] == k["start"] for k in klines) and msgs[0]["_topic"] == msgs[0]["topic"]
    assert [k["start"] - klines[0]["start"] for k in klines] == [0, 60_000, 120_000]  # one after the other
    first = klines[0]
    assert (first["open"], first["high"], first["low"], first["volume"]) == ("1000.00", "1010.00", "995.00", "2.000")
    (book,) = [m for m in msgs if m["topic"].startswith("orderbook.")]
    assert book["type"] == "snapshot" and book["data"]["a"] == [["1006.00", "3.000"], ["1007.00", "4.000"]]
    times = [m["ts"] for m in msgs]
    assert times == sorted(times) and 250 <= times[-1] - times[0] <= 400  # 6 gaps of 50 ms
    status = mock.state.market_status("BTCUSDT")
    assert (status["mode"], status["pace"], status["started"], status["applied"]) == ("pace", 20.0, True, 7)


async def test_rest_agrees_with_what_was_streamed(mock: MockExchange) -> None:
    async with subscribed(mock.ws_public_url(), *topics("BTCUSDT")) as ws:
        msgs = await read(ws, len(PACED))
    http = pybit_http(mock)
    streamed_klines = [m["data"][0] for m in msgs if m["topic"].startswith("kline.")]
    rows = http.get_kline(category="linear", symbol="BTCUSDT", interval="1")["result"]["list"]
    assert rows == [[str(k["start"]), k["open"], k["high"], k["low"], k["close"], k["volume"], k["turnover"]]
                    for k in reversed(streamed_klines)]  # fmt: skip
    streamed_trades = [t for m in msgs if m["topic"].startswith("publicTrade.") for t in m["data"]]
    trades = http.get_public_trade_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(t["execId"], t["price"], t["size"], t["side"], t["time"]) for t in trades] == [
        (t["i"], t["p"], t["v"], t["S"], str(t["T"])) for t in reversed(streamed_trades)
    ]
    (streamed_book,) = [m["data"] for m in msgs if m["topic"].startswith("orderbook.")]
    book = http.get_orderbook(category="linear", symbol="BTCUSDT")["result"]
    assert (book["b"], book["a"], book["u"]) == (streamed_book["b"], streamed_book["a"], streamed_book["u"])
    (ticker,) = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (ticker["lastPrice"], ticker["bid1Price"], ticker["ask1Price"]) == ("1003.50", "1005.00", "1006.00")


async def test_step_mode_releases_one_item_at_a_time_to_every_subscriber(mock: MockExchange) -> None:
    http = pybit_http(mock)
    async with AsyncExitStack() as stack:  # several connections: both WS workers, most likely
        url = mock.ws_public_url()
        conns = [await stack.enter_async_context(subscribed(url, *topics("ETHUSDT"))) for _ in range(4)]
        assert await asyncio.gather(*(read(ws, 0, timeout=0.3) for ws in conns)) == [[]] * 4  # nothing yet
        for i, item in enumerate(STEPPED):
            assert mock.state.step_market("ETHUSDT") == 1
            got = await asyncio.gather(*(read(ws, 1) for ws in conns))
            assert [[seen(m) for m in msgs] for msgs in got] == [[expected(item)]] * 4, i
            trades = http.get_public_trade_history(category="linear", symbol="ETHUSDT")["result"]["list"]
            assert len(trades) == sum(isinstance(x, Tick) for x in STEPPED[: i + 1])  # REST moves in step
        assert mock.state.step_market("ETHUSDT", 3) == 0
        assert await asyncio.gather(*(read(ws, 0, timeout=0.3) for ws in conns)) == [[]] * 4


async def test_appending_while_running_streams_the_new_items_once(mock: MockExchange) -> None:
    async with subscribed(mock.ws_public_url(), *topics("BTCUSDT")) as ws:
        assert len(await read(ws, len(PACED))) == len(PACED)  # the configured stream ran dry
        more = [Tick("BTCUSDT", 1010, 1, "Buy"), Candle("BTCUSDT", 1003, 1012, 1003, 1012, 1)]
        more.append(Tick("BTCUSDT", 1012, 1, "Buy"))
        (status,) = mock.state.append_market_data(more)
        assert status["items"] == len(PACED) + 3
        assert [seen(m) for m in await read(ws, 3)] == [expected(i) for i in more]
    async with subscribed(mock.ws_public_url(), *topics("ETHUSDT")) as ws:
        mock.state.append_candles([Candle("ETHUSDT", 100, 100, 100, 100, 1, start_ms=1_700_000_000_000)])
        assert mock.state.step_market("ETHUSDT", 10) == len(STEPPED) + 1
        msgs = await read(ws, len(STEPPED) + 1)
        assert [seen(m) for m in msgs] == [expected(i) for i in STEPPED] + [("kline.1.ETHUSDT", "100.00")]
        assert msgs[-1]["data"][0]["start"] == 1_700_000_000_000


async def test_market_orders_fill_at_the_last_price_then_against_the_canned_book(mock: MockExchange) -> None:
    http, key = pybit_http(mock), mock.api_key

    def market(side: str, qty: str) -> None:
        reply = http.place_order(category="linear", symbol="ETHUSDT", side=side, orderType="Market", qty=qty)
        assert reply["retCode"] == 0, reply

    mock.state.step_market("ETHUSDT", 2)  # the candle, then a tick at 100.5: no book yet
    market("Buy", "7")
    (first,) = mock.state.executions(key)
    assert (first.price, first.qty) == (D("100.5"), D(7))  # the whole order at the last price
    mock.state.step_market("ETHUSDT")  # the book: asks 101 x 0.5, 102 x 10
    market("Buy", "2")
    market("Sell", "1")
    fills = [(e.side, e.price, e.qty) for e in mock.state.executions(key)[1:]]
    assert fills == [("Buy", D("101"), D("0.5")), ("Buy", D("102"), D("1.5")), ("Sell", D("100"), D("1"))]


def test_bad_items_and_steps_are_value_errors_that_name_the_field(mock: MockExchange) -> None:
    with pytest.raises(ValueError, match=r"items\[1\]\.price: 100\.001 is not a multiple of the tick size 0\.01"):
        mock.state.append_ticks([Tick("ETHUSDT", 100, 1, "Buy"), Tick("ETHUSDT", "100.001", 1, "Buy")])
    assert mock.state.market_status("ETHUSDT")["items"] == len(STEPPED)  # nothing added
    with pytest.raises(ValueError, match="streams at 20 items/s"):
        mock.state.step_market("BTCUSDT")
    with pytest.raises(ValueError, match="spot/BTCUSDT is not a canned market"):
        mock.state.step_market("BTCUSDT", category="spot")


# -- the crate's round trip ----------------------------------------------------------------

#: ``live_run_executes_round_trip``'s data: six one-minute candles and six ticks of BTCUSDT.
CRATE_CANDLES = [Candle("BTCUSDT", 1000 + i, 1010 + i, 995 + i, 1001 + i, 1) for i in range(6)]
CRATE_TICKS = [Tick("BTCUSDT", 1001 + i, 1, "Buy" if i % 2 == 0 else "Sell") for i in range(6)]


class ScriptedStrategy:
    """The crate's ``ScriptedStrategy``: enter long on the first candle, exit on the second."""

    def __init__(self, http: Any) -> None:
        self.http = http
        self.candles = 0

    async def bootstrap(self) -> None:
        """What the crate's live runtime reads before it streams: positions, balances, open orders."""
        for call, kwargs in (
            (self.http.get_positions, {"category": "linear", "symbol": "BTCUSDT"}),
            (self.http.get_wallet_balance, {"accountType": "UNIFIED"}),
            (self.http.get_open_orders, {"category": "linear", "symbol": "BTCUSDT"}),
        ):
            assert (await asyncio.to_thread(call, **kwargs))["retCode"] == 0

    async def on_candle(self, candle: dict[str, Any]) -> None:
        self.candles += 1
        if self.candles <= 2:
            side = "Buy" if self.candles == 1 else "Sell"
            reply = await asyncio.to_thread(
                self.http.place_order, category="linear", symbol="BTCUSDT", side=side, orderType="Market", qty="1"
            )
            assert reply["retCode"] == 0, reply


@asynccontextmanager
async def fills_of(ex: MockExchange) -> AsyncIterator[list[dict[str, Any]]]:
    """The account's executions as its private stream delivers them (the crate's ``on_fill``)."""
    fills: list[dict[str, Any]] = []
    async with connect(ex.ws_private_url) as ws:
        assert (await ask(ws, auth_msg(ex)))["success"] is True
        assert (await ask(ws, {"op": "subscribe", "args": ["execution"]}))["success"] is True

        async def pump() -> None:
            async for raw in ws:
                msg = orjson.loads(raw)
                if msg.get("topic") == "execution":
                    fills.extend(msg["data"])

        task = asyncio.create_task(pump())
        try:
            yield fills
        finally:
            task.cancel()


async def test_live_run_executes_round_trip() -> None:
    btc = next(i for i in default_instruments() if (i.category, i.symbol) == ("linear", "BTCUSDT"))
    cfg = (
        MockExchangeConfig()
        .with_instruments([replace(btc, maker_fee=D(0), taker_fee=D(0))])  # the crate charges no fees
        .with_account(AccountConfig("test-key", "test-secret", {"USDT": 10_000}))
        # 500 ms apart (the crate: 200 ms), so even a slow machine places each order before
        # the next candle moves the last price it fills at
        .with_candles(CRATE_CANDLES, pace=2)
        .with_ticks(CRATE_TICKS)
    )
    async with MockExchange(cfg) as ex, fills_of(ex) as fills:
        strategy = ScriptedStrategy(pybit_http(ex))
        await strategy.bootstrap()
        async with subscribed(ex.ws_public_url(), "kline.1.BTCUSDT") as ws:
            deadline = time.monotonic() + 10  # the crate waits up to 10 s for two fills
            while len(fills) < 2 and time.monotonic() < deadline:
                try:
                    msg = orjson.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except TimeoutError:
                    continue
                for candle in msg.get("data", []) if msg.get("topic") == "kline.1.BTCUSDT" else []:
                    if candle["confirm"]:
                        await strategy.on_candle(candle)
        assert [(f["side"], D(f["execQty"]), D(f["execPrice"])) for f in fills] == [
            ("Buy", 1, 1001),  # at the first candle's close
            ("Sell", 1, 1002),  # at the second's
        ], (ex.state.open_orders("test-key"), ex.state.positions("test-key"))
        assert ex.state.positions("test-key") == []  # flat
        assert ex.state.balance("test-key", "USDT") == D(10_001)  # the crate's figure: 10 000 + 1
