"""Scripted faults against whole clients: the reference bot (``examples/reference_bot.py``),
pybit's private ``WebSocket`` and ccxt pro, over real sockets, with the scenarios armed by
``bybit_mock.scenarios.push``.

What is proven here, and what is proven elsewhere already (not repeated):

* the crate's round trip with two fill plans: here through the bot (its pushes, its
  reconcile); with pybit in ``test_scenarios_rest.py::test_the_crates_round_trip_with_two_fill_plans``;
* state edits behind a client's back: here fired by scenarios and found by the bot's
  reconcile; raw sockets in ``test_scenarios_private.py::test_balance_edit_with_and_without_a_push``
  and ``test_scenarios_orders.py::test_position_edit_by_a_scenario_is_pushed``,
  the bot with ``state.set_*`` in ``test_examples.py``;
* a rejected order: an injected ``Rejected`` push and ``ScenarioAction.reject`` seen by the bot;
  an injected event on a raw socket in ``test_scenarios_ws.py``
  (``test_injected_private_event_reaches_the_accounts_socket_as_is``), the reject's pushes in
  ``test_scenarios_orders.py::test_reject_after_acceptance``;
* a private drop while orders fill: the bot, pybit's ``WebSocket`` and ccxt pro's
  ``watch_orders``, here; the bot cut by itself in ``test_examples.py``;
* rate limits: the bot here; pybit's auto-retry and ccxt's ``RateLimitExceeded`` in
  ``test_rate_limits.py`` (``test_pybit_sleeps_until_the_reset_header_then_succeeds``,
  ``test_ccxt_raises_rate_limit_exceeded``) and ``test_scenarios_rest.py``
  (``test_forced_rate_limit_pybit_waits_ccxt_raises``);
* a ghost order: the bot here; pybit in ``test_scenarios_rest.py::test_ghost_order_is_placed_but_its_answer_is_lost``,
  ``/v5/trade`` in ``test_scenarios_ws.py``;
* a book gap: the bot notices it and resubscribes; ccxt pro (4.5.90) does not check bybit's
  ``u`` at all, so it cannot notice one: what it does (applies the gap's deltas as they come,
  and a ``u=1`` snapshot as a fresh book) is what its test pins down. The raw stream's gap is in
  ``test_scenarios_ws.py::test_public_stream_trigger_makes_a_book_gap``.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import time
import urllib.error
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import orjson
import pytest
from pybit.unified_trading import WebSocket

from bybit_mock import Match, MockExchange, OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger

from .conftest import pybit_http
from .streams import apply_book, subscribed
from .test_examples import bot_starter, rb

D = Decimal
SYMBOL, CCXT_SYMBOL = "BTCUSDT", "BTC/USDT:USDT"
BOOK_TOPIC = f"orderbook.50.{SYMBOL}"


def arm(ex: MockExchange, name: str, trigger: ScenarioTrigger, action: ScenarioAction, **kw: Any) -> str:
    return ex.scenarios.push(Scenario(name, trigger, action, **kw))


def done(ex: MockExchange, name: str) -> list[str]:
    return [note for entry in ex.scenarios.journal(name) for note in entry["done"]]


async def journaled(ex: MockExchange, name: str, fragment: str, seconds: float = 3) -> list[str]:
    """What scenario ``name`` did, once one of its notes says ``fragment``."""
    deadline = time.monotonic() + seconds
    while True:
        notes = done(ex, name)
        if any(fragment in note for note in notes):
            return notes
        assert time.monotonic() < deadline, f"{name!r} never did {fragment!r}: {notes}"
        await asyncio.sleep(0.02)


def drain(bot: Any) -> list[tuple[str, Any]]:
    events = []
    while not bot.events.empty():
        events.append(bot.events.get_nowait())
    return events


def exchange_position(ex: MockExchange) -> Any:
    """The mock's one-way BTCUSDT position, as the bot writes positions."""
    pos = ex.state.position(ex.api_key, SYMBOL)
    return rb.FLAT if pos is None or pos.size == 0 else rb.Position(pos.side, pos.size, pos.entry_price)


class BookRecorder(rb.ReferenceBot):  # type: ignore[misc]
    """The reference bot, remembering its whole book after every book message it applied since
    its last snapshot."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.books: dict[int, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    async def _on_public(self, msg: dict[str, Any]) -> None:
        await super()._on_public(msg)
        if msg.get("topic") == self.book_topic and self.book_u is not None:
            if msg["type"] == "snapshot":
                self.books.clear()
            self.books[self.book_u] = (dict(self.bids), dict(self.asks))


@pytest.fixture
async def start_bot() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await start_bot(ex, cls=ReferenceBot, **options)``: a started bot; all are stopped at the end."""
    async with bot_starter() as start:
        yield start


# -- 1. the crate's round trip ------------------------------------------------------------------


async def test_bot_round_trip_with_two_fill_plans(market: MockExchange, start_bot: Any) -> None:
    """tesser's live_run_executes_round_trip through the bot: two ORDER_CREATE fill plans (entry
    and exit), two fills pushed to it, flat, USDT = start + PnL - fees, and REST agrees."""
    bot = await start_bot(market)
    start = bot.usdt_balance
    assert start == D(100000) and bot.position == rb.FLAT and bot.fills == {}
    for name, side, price in (("entry-fill", "Buy", "60000"), ("exit-fill", "Sell", "70000")):
        plan = ScenarioAction.fill_plan([OrderFillStep(after=25, quantity="0.01", price=price)])
        arm(market, name, ScenarioTrigger.ORDER_CREATE, plan, match=Match(symbol=SYMBOL, side=side))
    entry = await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="entry")
    await bot.wait_for(lambda: entry in bot.closed_orders and bot.position.size == D("0.01"))
    assert bot.position == rb.Position("Buy", D("0.01"), D(60000))
    exit_ = await bot.place_order("Sell", "0.01", "Limit", price="70000", order_link_id="exit")
    await bot.wait_for(lambda: exit_ in bot.closed_orders and bot.position == rb.FLAT and len(bot.fills) == 2)
    fills = sorted(bot.fills.values(), key=lambda f: f["orderLinkId"])
    assert [(f["orderLinkId"], f["side"], D(f["execPrice"]), f["execQty"]) for f in fills] == [
        ("entry", "Buy", 60000, "0.01"),
        ("exit", "Sell", 70000, "0.01"),
    ]
    pnl = (D(fills[1]["execPrice"]) - D(fills[0]["execPrice"])) * D("0.01")
    fees = sum((D(f["execFee"]) for f in fills), D(0))
    assert pnl == 100 and fees == D("0.26")  # two makers: 0.02 % of 600 and of 700
    await bot.wait_for(lambda: bot.usdt_balance == start + pnl - fees)  # the exit's wallet push
    assert market.state.balance(market.api_key, "USDT") == D("100099.74")
    assert {o["orderStatus"] for o in bot.closed_orders.values()} == {"Filled"} and bot.orders == {}
    assert bot.stats.reconciles == 1  # the pushes told it everything: only the start-up load read REST
    assert await bot.reconcile() == rb.Drift()
    assert set(bot.fills) == {e.exec_id for e in market.state.executions(market.api_key)}
    journal = market.scenarios.journal()
    assert [(e["scenario"], e["matched"]["order_link_id"]) for e in journal] == [
        ("entry-fill", "entry"),
        ("exit-fill", "exit"),
    ]


# -- 2. reconciliation divergence ---------------------------------------------------------------


async def test_bot_reconcile_reports_scenario_edits_made_without_a_push(market: MockExchange, start_bot: Any) -> None:
    bot = await start_bot(market)
    me = Match(api_key=market.api_key)  # a timer's occurrence names no account: the match does
    arm(market, "balance-edit", ScenarioTrigger.NOW, ScenarioAction.edit_balance("USDT", "5000"), match=me)
    assert done(market, "balance-edit") == [f"balance USDT of {market.api_key} set to 5000"]
    assert bot.usdt_balance == D(100000)  # no push: the bot cannot know
    assert await bot.reconcile() == rb.Drift(balance=(D(100000), D(5000)))
    assert bot.usdt_balance == D(5000)

    # Fired by the bot's own order: right after its fill's pushes, a position edit with none.
    edit = ScenarioAction.edit_position(SYMBOL, "Sell", "0.5", "64000")
    arm(market, "position-edit", ScenarioTrigger.order_event("filled"), edit, match=Match(order_link_id="div-*"))
    order_id = await bot.place_order("Buy", "0.01", order_link_id="div-1")  # a market order: fills at 65 000
    await bot.wait_for(lambda: order_id in bot.closed_orders and bot.usdt_balance == D("4999.6425"))
    await journaled(market, "position-edit", "position BTCUSDT")
    assert bot.position == rb.Position("Buy", D("0.01"), D(65000))  # what the fill's pushes said
    pushed, edited = rb.Position("Buy", D("0.01"), D(65000)), rb.Position("Sell", D("0.5"), D(64000))
    assert await bot.reconcile() == rb.Drift(position=(pushed, edited))
    assert bot.position == exchange_position(market) and bot.usdt_balance == D("4999.6425")
    assert await bot.reconcile() == rb.Drift()  # adopted: nothing more to report
    (entry,) = market.scenarios.journal("position-edit")
    assert entry["matched"]["order_id"] == order_id and entry["matched"]["event"] == "filled"


# -- 3. the rejected-order alert ----------------------------------------------------------------


async def test_bot_records_an_injected_rejected_order(market: MockExchange, start_bot: Any) -> None:
    """The crate's alert: a ``Rejected`` order event injected when the bot places an order. The
    crate names the order id before it exists; ours are uuids, so the event names a made-up id
    and the bot's orderLinkId, and the order the exchange really placed goes on resting."""
    bot = await start_bot(market)
    rejected = {
        "orderId": "rejected-by-scenario", "orderLinkId": "alert-1", "symbol": SYMBOL, "category": "linear",
        "side": "Buy", "orderType": "Limit", "price": "60000", "qty": "0.01", "cumExecQty": "0",
        "orderStatus": "Rejected", "rejectReason": "EC_PostOnlyWillTakeLiquidity",
    }  # fmt: skip
    event = {"topic": "order", "id": "injected", "creationTime": int(time.time() * 1000), "data": [rejected]}
    inject = ScenarioAction.inject_private_event(event)
    arm(market, "alert", ScenarioTrigger.ORDER_CREATE, inject, match=Match(order_link_id="alert-*"))
    drain(bot)
    order_id = await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="alert-1")
    await bot.wait_for(lambda: "rejected-by-scenario" in bot.closed_orders and order_id in bot.orders)
    alert = bot.closed_orders["rejected-by-scenario"]
    assert alert == rejected  # as injected, byte for byte
    orders = [(p["orderId"], p["orderStatus"]) for kind, p in drain(bot) if kind == "order"]
    assert orders == [("rejected-by-scenario", "Rejected"), (order_id, "New")]  # fired before the create ran
    (entry,) = market.scenarios.journal("alert")
    assert entry["matched"]["order_link_id"] == "alert-1" and entry["done"][0].startswith("injected into")
    assert await bot.reconcile() == rb.Drift()  # an ended order REST never knew is no drift


async def test_bot_sees_a_scripted_reject_after_acceptance(market: MockExchange, start_bot: Any) -> None:
    bot = await start_bot(market)
    arm(market, "reject", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reject("EC_NoImmediateQtyToFill"))
    drain(bot)
    order_id = await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="rej-1")  # accepted
    await bot.wait_for(lambda: order_id in bot.closed_orders)
    order = bot.closed_orders[order_id]
    assert (order["orderStatus"], order["rejectReason"], order["orderLinkId"]) == (
        "Rejected", "EC_NoImmediateQtyToFill", "rej-1")  # fmt: skip
    assert bot.orders == {} and bot.fills == {} and bot.position == rb.FLAT
    assert [p["orderStatus"] for kind, p in drain(bot) if kind == "order"] == ["New", "Rejected"]
    viewed = market.state.order(market.api_key, order_id)
    assert viewed is not None and viewed.status == "Rejected" and viewed.reject_reason == "EC_NoImmediateQtyToFill"
    assert done(market, "reject") == [f"{order_id} rejected (EC_NoImmediateQtyToFill)"]
    assert await bot.reconcile() == rb.Drift()
    assert bot.usdt_balance == D(100000)  # a rejected order costs nothing


# -- 4. a private drop while orders fill ---------------------------------------------------------


def arm_fills_and_a_drop(ex: MockExchange, plans: dict[str, list[OrderFillStep]], drop_on: str) -> None:
    """A fill plan for each orderLinkId, and a reset of the account's private connections when
    the ``drop_on`` order first fills in part."""
    for link, steps in plans.items():
        arm(ex, f"fill-{link}", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fill_plan(steps),
            match=Match(order_link_id=link))  # fmt: skip
    arm(ex, "drop", ScenarioTrigger.order_event("partially_filled"), ScenarioAction.ws_reset(channel="private"),
        match=Match(order_link_id=drop_on))  # fmt: skip


async def test_bot_reconnects_and_reconciles_fills_made_while_it_was_away(market: MockExchange, start_bot: Any) -> None:
    bot = await start_bot(market, backoff=(0.5, 1.0))  # away half a second: the later steps land meanwhile
    arm_fills_and_a_drop(
        market,
        {"a": [OrderFillStep(20, "0.004"), OrderFillStep(100, "0.006")],
         "b": [OrderFillStep(40, "0.005"), OrderFillStep(100, "0.005", "58990")]},
        drop_on="a",
    )  # fmt: skip
    a = await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="a")
    b = await bot.place_order("Buy", "0.01", "Limit", price="59000", order_link_id="b")
    await bot.wait_for(lambda: len(bot.drifts) == 1, timeout=5)  # the reconcile after the reconnect
    notes = await journaled(market, "drop", "reset private")
    assert notes[0] == "sent to the WS workers"
    assert bot.stats.disconnects["private"] == 1 and bot.stats.connects["private"] == 2
    assert bot.stats.disconnects["public"] == 0  # only the account's private connections
    (drift,) = bot.drifts
    executions = market.state.executions(market.api_key)
    assert len(executions) == 4
    # The second steps (about 120 and 140 ms in) landed while it was away; their pushes were
    # lost and REST had them. (The first ones' may have been lost too: the reset cuts what is
    # still on its way.)
    late = {e.exec_id for e in executions if (e.order_link_id, e.qty) == ("a", D("0.006")) or e.price == 58990}
    assert len(late) == 2 and late <= set(drift.missing_fills) <= {e.exec_id for e in executions}
    assert a in drift.stale_orders and set(drift.stale_orders) <= {a, b}  # open when it left, filled since
    # It holds now exactly what the exchange holds.
    await bot.wait_for(lambda: len(bot.fills) == 4)
    assert set(bot.fills) == {e.exec_id for e in executions}
    assert bot.orders == {} and {bot.closed_orders[o]["orderStatus"] for o in (a, b)} == {"Filled"}
    assert bot.position == exchange_position(market) and bot.position.size == D("0.02")
    assert bot.usdt_balance == market.state.balance(market.api_key, "USDT")
    assert await bot.reconcile() == rb.Drift()
    # And the new connection is subscribed: the next change arrives as a push.
    exit_ = await bot.place_order("Sell", "0.02")
    await bot.wait_for(lambda: exit_ in bot.closed_orders and bot.position == rb.FLAT)
    assert bot.stats.reconciles == 3  # start, reconnect, and the one above: no other REST read


SCHEME_HOST = "wss://{SUBDOMAIN}.{DOMAIN}.{TLD}"


def pybit_private(ex: MockExchange) -> Any:
    """pybit's private WebSocket, pointed at the mock, with its own reconnect on (the default)."""

    class Local(WebSocket):  # type: ignore[misc]
        subscribed = 0  # subscribe acks handled (to know when pushes will come, not to change anything)

        def _connect(self, url: str) -> None:
            super()._connect(url.replace(SCHEME_HOST, ex.ws_url))

        def _process_subscription_message(self, message: dict[str, Any]) -> None:
            super()._process_subscription_message(message)
            self.subscribed += message.get("success") is True

    return Local(testnet=False, channel_type="private", api_key=ex.api_key, api_secret=ex.api_secret,
                 restart_on_error=True)  # fmt: skip


def until(predicate: Callable[[], bool], seconds: float = 5, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never came true"
        time.sleep(0.01)


def test_pybit_websocket_reconnects_by_itself_and_gets_the_pushes_after_the_drop(market: MockExchange) -> None:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ws = pybit_private(market)
    try:
        until(lambda: ws.auth, what="pybit's auth")
        ws.order_stream(callback=got.put)
        until(lambda: ws.subscribed == 1, what="pybit's subscribe ack")
        first_socket = ws.ws
        arm_fills_and_a_drop(market, {"p": [OrderFillStep(20, "0.004"), OrderFillStep(1200, "0.006")]}, drop_on="p")
        pybit_http(market).place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Limit", qty="0.01",
                                       price="60000", orderLinkId="p")  # fmt: skip
        # pybit sees the socket go, opens another, authenticates and subscribes again by itself
        until(lambda: ws.ws is not first_socket and ws.auth and ws.subscribed == 2, what="pybit's resubscribe")
        deadline = time.monotonic() + 5
        statuses = []
        while "Filled" not in statuses:
            msg = got.get(timeout=max(deadline - time.monotonic(), 0.01))
            statuses += [o["orderStatus"] for o in msg["data"] if o["orderLinkId"] == "p"]
        assert statuses[0] == "New" and statuses[-1] == "Filled"  # the partial fill's push may be lost
        assert statuses.count("PartiallyFilled") <= 1
        until(lambda: any("reset private" in n for n in done(market, "drop")), what="the journal's note")
    finally:
        ws.exit()
    fills = pybit_http(market).get_executions(category="linear", symbol=SYMBOL)["result"]["list"]
    assert sorted(f["execQty"] for f in fills if f["orderLinkId"] == "p") == ["0.004", "0.006"]


class CcxtPro(ccxt.pro.bybit):  # type: ignore[misc]
    """ccxt pro's bybit, unmodified but for its URLs; it counts the subscribe acks it handles and
    remembers each order-book message as it left its book (to watch it, not to change it)."""

    def __init__(self, ex: MockExchange) -> None:
        super().__init__({"apiKey": ex.api_key, "secret": ex.api_secret})
        self.urls["api"] = {k: v if k == "ws" else ex.rest_url for k, v in self.urls["api"].items()}
        ws = self.urls["api"]["ws"]
        for category in ("linear", "spot", "inverse", "option"):
            ws["public"][category] = ex.ws_public_url(category)
        ws["private"]["contract"] = ex.ws_private_url
        self.subscribe_acks = 0
        self.book_log: list[tuple[str, int, list[list[float]], list[list[float]]]] = []

    def handle_subscription_status(self, client: Any, message: dict[str, Any]) -> Any:
        self.subscribe_acks += 1
        return super().handle_subscription_status(client, message)

    def handle_order_book(self, client: Any, message: dict[str, Any]) -> None:
        super().handle_order_book(client, message)
        book = self.orderbooks[CCXT_SYMBOL]
        bids, asks = [list(level) for level in book["bids"]], [list(level) for level in book["asks"]]
        self.book_log.append((message["type"], message["data"]["u"], bids, asks))


async def wait_until(predicate: Callable[[], bool], seconds: float = 5, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never came true"
        await asyncio.sleep(0.01)


async def test_ccxt_pro_watch_orders_after_the_server_drops_the_socket(market: MockExchange) -> None:
    """ccxt pro does not reconnect inside a pending ``watch_orders``: that call fails with a
    NetworkError. The next call opens a new connection, authenticates and subscribes again."""
    client = CcxtPro(market)
    updates: list[tuple[str, str, float]] = []
    errors: list[Exception] = []

    async def follow() -> None:  # the ccxt pro idiom: watch in a loop, and watch again after an error
        while True:
            try:
                orders = await client.watch_orders(CCXT_SYMBOL)
            except ccxt.NetworkError as exc:
                errors.append(exc)
                continue
            updates.extend((o["clientOrderId"], o["status"], o["filled"]) for o in orders)

    await client.load_markets()
    follower = asyncio.create_task(follow())
    try:
        await wait_until(lambda: client.subscribe_acks == 1, what="the order subscription")
        arm_fills_and_a_drop(market, {"cx": [OrderFillStep(20, "0.004"), OrderFillStep(800, "0.006")]}, drop_on="cx")
        placed = await client.create_order(CCXT_SYMBOL, "limit", "buy", 0.01, 60000, {"clientOrderId": "cx"})
        await wait_until(lambda: ("cx", "closed", 0.01) in updates, what="the filled order's update")
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        trades = await client.fetch_my_trades(CCXT_SYMBOL)
        await client.close()
    assert updates[0] == ("cx", "open", 0.0) and updates[-1] == ("cx", "closed", 0.01)
    (error,) = errors
    assert "closing code 1006" in str(error)  # no close frame: the socket was cut
    assert client.subscribe_acks == 2  # subscribed again on the new connection
    assert sorted(t["amount"] for t in trades if t["order"] == placed["id"]) == [0.004, 0.006]
    await journaled(market, "drop", "reset private")


# -- 5. rate limits -----------------------------------------------------------------------------


async def test_bot_backs_off_on_10006_until_the_window_frees(market: MockExchange, start_bot: Any) -> None:
    """Fifteen creates at once on linear (10 per rolling second): the bot waits for each 10006's
    ``X-Bapi-Limit-Reset-Timestamp`` and places every one."""
    bot = await start_bot(market)
    drain(bot)
    started = time.monotonic()
    ids = await asyncio.gather(*(
        bot.place_order("Buy", "0.001", "Limit", price="30000", order_link_id=f"rl-{i}") for i in range(15)
    ))  # fmt: skip
    took = time.monotonic() - started
    assert len(set(ids)) == 15 and bot.stats.rate_limited >= 5
    assert ("rate_limited", "/v5/order/create") in drain(bot)
    created = sorted(o.created_ms for o in market.state.open_orders(market.api_key))
    assert len(created) == 15
    assert created[10] - created[0] >= 1000  # the eleventh got in only once the first left the window
    assert 0.9 <= took < 4, took  # it waited for the window, not for its retries to run out


# -- 6. a ghost order ---------------------------------------------------------------------------


async def test_bot_finds_a_ghost_order_by_reconciling(market: MockExchange, start_bot: Any) -> None:
    """The create is carried out and its answer lost (the connection reset); the order's push is
    lost too, so only the bot's reconcile can find it, by its orderLinkId."""
    bot = await start_bot(market)
    ghost = Match(order_link_id="ghost-*")
    arm(market, "ghost", ScenarioTrigger.ORDER_CREATE, ScenarioAction.ghost("reset"), match=ghost)
    arm(market, "lost-push", ScenarioTrigger.ORDER_CREATE, ScenarioAction.private_stream("drop", topic="order"),
        match=ghost)  # fmt: skip
    with pytest.raises((ConnectionError, urllib.error.URLError)):  # ConnectionResetError, from urllib
        await bot.place_order("Buy", "0.01", "Limit", price="60000", order_link_id="ghost-1")
    placed = market.state.order(market.api_key, order_link_id="ghost-1")
    assert placed is not None and placed.status == "New"  # the exchange has it
    order_id = placed.order_id
    assert await journaled(market, "ghost", "reset") == ["handled, then the connection was reset"]
    assert done(market, "lost-push") == ["private_drop installed"]
    assert bot.orders == {} and bot.closed_orders == {}  # nothing told the bot
    drift = await bot.reconcile()
    assert drift == rb.Drift(unknown_orders=[order_id])
    (adopted,) = [o for o in bot.orders.values() if o["orderLinkId"] == "ghost-1"]
    assert adopted["orderId"] == order_id and adopted["orderStatus"] == "New"
    await bot.cancel_order(order_id)  # the bot can manage it now
    await bot.wait_for(lambda: order_id in bot.closed_orders)
    assert bot.closed_orders[order_id]["orderStatus"] == "Cancelled"


# -- 7. a book gap ------------------------------------------------------------------------------


def decimal_book(book: dict[str, dict[str, str]]) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    return ({D(p): D(s) for p, s in book["b"].items()}, {D(p): D(s) for p, s in book["a"].items()})


async def test_bot_notices_a_book_gap_and_resubscribes(bybit_mock: MockExchange, start_bot: Any) -> None:
    bot = await start_bot(bybit_mock, BookRecorder, book_depth=50)
    for _ in range(10):  # a reset after a test that set a price reloads the market: its snapshot may land late
        settled = bot.stats.book_snapshots
        await asyncio.sleep(0.8)
        if bot.stats.book_snapshots == settled:
            break
    assert bot.stats.book_deltas >= 5  # the live market is moving
    assert bot.stats.book_gaps == 0
    snapshots = bot.stats.book_snapshots
    arm(bybit_mock, "gap", ScenarioTrigger.NOW, ScenarioAction.market("book_gap", SYMBOL))
    await bot.wait_for(lambda: bot.stats.book_gaps == 1, timeout=3)
    await bot.wait_for(lambda: bot.book_u is not None and bot.stats.book_snapshots > snapshots, timeout=3)
    await journaled(bybit_mock, "gap", "u skips one")
    # Its book now is the exchange's: the same as a fresh subscriber's snapshot at the same u.
    async with subscribed(bybit_mock.ws_public_url("linear"), BOOK_TOPIC) as ws:
        while "topic" not in (first := orjson.loads(await asyncio.wait_for(ws.recv(), 5))):
            pass
    assert first["type"] == "snapshot"
    fresh: dict[str, dict[str, str]] = {}
    apply_book(fresh, first)
    u = first["data"]["u"]
    await bot.wait_for(lambda: u in bot.books, timeout=3)
    assert bot.books[u] == decimal_book(fresh)
    assert bot.stats.book_gaps == 1 and bot.stats.disconnects["public"] == 0  # resubscribed, not reconnected


async def test_ccxt_pro_order_book_neither_notices_a_gap_nor_resubscribes(bybit_mock: MockExchange) -> None:
    """ccxt pro 4.5.90's bybit ``handle_order_book`` never reads ``u``: a delta after a gap is
    applied like any other (no error, no resubscribe, no new snapshot), and a ``u=1`` snapshot
    (Bybit's service restart) replaces its book. The mock's gap skips an id but loses no data,
    so its book stays right here; on Bybit, where a gap means lost deltas, it would not."""
    client = CcxtPro(bybit_mock)
    raw: dict[int, tuple[list[list[float]], list[list[float]]]] = {}
    reset_snapshot: list[dict[str, Any]] = []

    async def strict_reader(ws: Any) -> None:  # a strict client on the same stream: the truth at each u
        book: dict[str, dict[str, str]] = {}
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("topic") != BOOK_TOPIC:
                continue
            apply_book(book, msg)
            if msg["type"] == "snapshot" and msg["data"]["u"] == 1:
                reset_snapshot.append(msg)
            bids = sorted(([float(p), float(s)] for p, s in book["b"].items()), reverse=True)
            asks = sorted([float(p), float(s)] for p, s in book["a"].items())
            raw[msg["data"]["u"]] = (bids, asks)

    async def watch_for(seconds: float) -> int:
        calls, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.wait_for(client.watch_order_book(CCXT_SYMBOL), 5)
            calls += 1
        return calls

    async with subscribed(bybit_mock.ws_public_url("linear"), BOOK_TOPIC) as ws:
        reader = asyncio.create_task(strict_reader(ws))
        try:
            await client.load_markets()
            for _ in range(10):  # a reset after a test that set a price reloads the market: quiet first
                settled = len(client.book_log)
                await watch_for(0.8)
                if settled and all(kind == "delta" for kind, *_ in client.book_log[settled:]):
                    break
            assert client.book_log[0][0] == "snapshot" and client.subscribe_acks == 1
            before = len(client.book_log)
            arm(bybit_mock, "gap", ScenarioTrigger.NOW, ScenarioAction.market("book_gap", SYMBOL))
            assert await watch_for(0.5) > 3  # no error: watch_order_book goes on as ever
            after_gap = client.book_log[before:]
            us = [u for _, u, _, _ in client.book_log[before - 1 :]]
            steps = [b - a for a, b in itertools.pairwise(us)]
            assert steps.count(2) == 1 and set(steps) == {1, 2}, steps  # it saw the jump ...
            assert {kind for kind, *_ in after_gap} == {"delta"} and client.subscribe_acks == 1  # ... and went on
            for _, u, bids, asks in after_gap[-3:]:
                await wait_until(lambda u=u: u in raw, what=f"the strict reader's u={u}")
                assert (bids, asks) == raw[u]  # the same book as the strict reader's at that u

            mark = len(client.book_log)
            reset = ScenarioAction.market("book_reset", SYMBOL, depth=50)
            arm(bybit_mock, "reset", ScenarioTrigger.NOW, reset)
            await watch_for(0.5)
            await wait_until(lambda: bool(reset_snapshot), what="the u=1 snapshot")
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await client.close()
    logged = client.book_log[mark:]
    (at,) = [i for i, (kind, u, _, _) in enumerate(logged) if kind == "snapshot"]
    assert [u for _, u, _, _ in logged[at : at + 3]] == [1, 2, 3]  # taken as a new book, deltas on from 2
    snap: dict[str, dict[str, str]] = {}
    apply_book(snap, reset_snapshot[0])
    _, _, bids, asks = logged[at]
    assert bids == sorted(([float(p), float(s)] for p, s in snap["b"].items()), reverse=True)
    assert asks == sorted([float(p), float(s)] for p, s in snap["a"].items())
