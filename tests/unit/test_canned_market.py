"""Canned market data: the item types, the config, the model, the engine's commands and the
publisher's exactly-once delivery across model reloads."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from bybit_mock import AccountConfig, BookSnapshot, Candle, ConfigError, MockExchangeConfig, Tick
from bybit_mock.config import default_instruments
from bybit_mock.engine.exchange import Exchange
from bybit_mock.engine.matching import walk
from bybit_mock.instruments import BOOK_DEPTHS, InstrumentConfig
from bybit_mock.market import queries
from bybit_mock.market.candles import MINUTE_MS, interval_start
from bybit_mock.market.canned import CannedMarket
from bybit_mock.market.canned_items import MarketItem, item_from_dict, item_to_dict, items_from_dicts
from bybit_mock.market.config import SymbolMarketConfig
from bybit_mock.market.model import Event
from bybit_mock.ws.fanout import FanOut, Outbox
from bybit_mock.ws.publisher import MarketPublisher

from .helpers import Clock, ok
from .test_fanout import FakeTransport, parse_frames

EPOCH = 1_800_000_000_000 * 1_000_000
EPOCH_MS = EPOCH // 1_000_000
SEC = 1_000_000_000
KEY = "canned"


def inst(category: str = "linear", symbol: str = "BTCUSDT") -> InstrumentConfig:
    return next(i for i in default_instruments() if (i.category, i.symbol) == (category, symbol))


def candle(close: int | str, **kw: Any) -> Candle:
    return Candle("BTCUSDT", 1000, 1010, 995, close, 1, **kw)


def canned(items: Sequence[MarketItem] = (), epoch: int = EPOCH, **cfg: Any) -> CannedMarket:
    i = inst()
    config = SymbolMarketConfig(i.symbol, i.category, source="canned", canned=list(items), **cfg)
    return CannedMarket(i, config, 1, epoch)


def drain(model: CannedMarket, now_ns: int) -> list[Event]:
    out: list[Event] = []
    model.advance(now_ns, out)
    return out


def described(events: list[Event]) -> list[tuple[str, str]]:
    """(topic, price) per event: a candle's close, a trade's price, a book's best bid."""
    found = []
    for event in events:
        if event[0] == "trade":
            found += [("publicTrade.BTCUSDT", str(t.tick)) for t in event[2]]
        elif event[2].startswith("kline."):
            found.append((event[2], event[3]["data"][0]["close"]))
        else:
            found.append((event[2], event[3]["data"]["b"][0][0]))
    return found


# -- the items ----------------------------------------------------------------------------


def test_numbers_are_kept_exact_whatever_type_they_come_in() -> None:
    c = Candle("btcusdt", Decimal("1000.1"), 1010.2, "995", 1000, "0.001")
    assert (c.symbol, c.open, c.high, c.low, c.close, c.volume) == (
        "BTCUSDT", Decimal("1000.1"), Decimal("1010.2"), Decimal(995), Decimal(1000), Decimal("0.001")
    )  # fmt: skip
    t = Tick("BTCUSDT", 0.1, 1, "sell")
    assert (t.price, t.side) == (Decimal("0.1"), "Sell")
    b = BookSnapshot("BTCUSDT", bids=[(99, 1), ("100", 2)], asks=[[102, 1], [101, 3]])
    assert b.bids == ((100, 2), (99, 1)) and b.asks == ((101, 3), (102, 1))  # sorted best first


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: candle(1020), "candle.high/low"),
        (lambda: Candle("BTCUSDT", 1000, 1010, 995, 1000, -1), "candle.volume: must be >= 0"),
        (lambda: candle(1000, interval="2"), "candle.interval"),
        (lambda: candle(1000, start_ms=-5), "candle.start_ms"),
        (lambda: Candle("BTCUSDT", True, 1010, 995, 1000, 1), "candle.open: expected a number"),
        (lambda: Candle("BTCUSDT", "1e3", 1010, 995, 1000, 1), "candle.open: expected a number"),
        (lambda: Tick("BTCUSDT", 100, 1, "Long"), "tick.side"),
        (lambda: Tick("BTCUSDT", 0, 1, "Buy"), "tick.price: must be > 0"),
        (lambda: Tick("BTCUSDT", 100, 1, "Buy", category="futures"), "tick.category"),
        (lambda: BookSnapshot("BTCUSDT", [(101, 1)], [(100, 1)]), "crossed book"),
        (lambda: BookSnapshot("BTCUSDT", [(100, 1), ("100.0", 2)], []), "book.bids[1]: price 100.0 is listed twice"),
        (lambda: BookSnapshot("BTCUSDT", [(100,)], []), "book.bids[0]: expected [price, size]"),
    ],
)
def test_a_bad_item_is_refused_naming_its_field(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        make()
    assert fragment in str(err.value)


def test_the_dict_form_is_json_and_reads_back() -> None:
    items: list[MarketItem] = [
        candle(1005, start_ms=EPOCH_MS, confirm=False),
        Tick("BTCUSDT", "1005.5", "0.25", "Buy", time_ms=EPOCH_MS, trade_id="t-1"),
        BookSnapshot("BTCUSDT", [(1005, 1)], [(1006, 2)]),
    ]
    dicts = orjson.loads(orjson.dumps([item_to_dict(i) for i in items]))  # JSON as it stands
    assert items_from_dicts(None, dicts) == items
    assert item_from_dict("tick", {"symbol": "BTCUSDT", "price": 1, "size": 1, "side": "Buy"}).price == 1


@pytest.mark.parametrize(
    ("kind", "raw", "fragment"),
    [
        ("tick", [{"symbol": "BTCUSDT", "price": 1, "size": 1, "side": "Buy"}, {"symbol": "BTCUSDT"}],
         "items[1]: tick needs price, size, side"),
        ("tick", [{"symbol": "BTCUSDT", "price": "x", "size": 1, "side": "Buy"}], "items[0]: tick.price"),
        ("tick", [{"symbol": "BTCUSDT", "price": 1, "size": 1, "side": "Buy", "qty": 1}],
         "unknown field(s) for a tick: qty"),
        ("tick", [{"kind": "book", "symbol": "BTCUSDT", "bids": [], "asks": []}], "items[0].kind"),
        (None, [{"symbol": "BTCUSDT"}], "items[0].kind: must be one of candle, tick, book"),
        ("candle", {"symbol": "BTCUSDT"}, "items: expected a list"),
        ("candle", ["not an object"], "items[0]: expected an object"),
        ("book", [{"symbol": 5, "bids": [], "asks": []}], "items[0]: book.symbol"),
    ],
)  # fmt: skip
def test_dict_errors_name_the_item_and_field(kind: str | None, raw: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        items_from_dicts(kind, raw)
    assert fragment in str(err.value)


# -- the config ---------------------------------------------------------------------------


def test_builders_make_the_symbols_canned_and_leave_the_original_alone() -> None:
    base = MockExchangeConfig.default()
    cfg = base.with_candles([candle(1001), candle(1002)], pace=5).with_ticks([Tick("BTCUSDT", 1002, 1, "Buy")])
    cfg = cfg.with_order_books([BookSnapshot("ETHUSDT", [(100, 1)], [(101, 1)])], step=True)
    btc, eth = cfg.market.for_symbol("linear", "BTCUSDT"), cfg.market.for_symbol("linear", "ETHUSDT")
    assert (btc.source, btc.pace, btc.step, len(btc.canned)) == ("canned", 5, False, 3)
    assert (eth.source, eth.step) == ("canned", True)
    assert [type(i) for i in btc.canned] == [Candle, Candle, Tick]  # in the order given
    assert base.market.symbols == []
    empty = base.with_canned_market("btcusdt", step=True).market.for_symbol("linear", "BTCUSDT")
    assert (empty.source, empty.step, empty.canned) == ("canned", True, [])  # items may all come at run time


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda c: c.with_candles([Tick("BTCUSDT", 1, 1, "Buy")]), "items[0]: a tick where candle items"),
        (lambda c: c.with_candles([candle("1000.05")]),
         "market symbol linear/BTCUSDT: items[0].close: 1000.05 is not a multiple of the tick size 0.10"),
        (lambda c: c.with_ticks([Tick("BTCUSDT", 1000, "0.0001", "Buy")]),
         "items[0].size: 0.0001 is not a multiple of the qty step 0.001"),
        (lambda c: c.with_ticks([Tick("SOLUSDT", 1000, 1, "Buy")]), "no such instrument"),
        (lambda c: c.with_candles([candle(1000)], pace=0), "pace must be"),
        (lambda c: c.with_candles([candle(1000)], pace=1e9), "pace must be a number of items/s > 0 and <= 100000"),
        (lambda c: c.with_canned_market("BTCUSDT", speed=2), "unexpected keyword"),
    ],
)  # fmt: skip
def test_config_refuses_what_the_market_could_not_play(
    build: Callable[[MockExchangeConfig], Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        build(MockExchangeConfig.default())
    assert fragment in str(err.value)


def test_toml_form(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        """
[[market.symbols]]
symbol = "BTCUSDT"
source = "canned"
pace = 4
items = [
  { kind = "candle", open = 1000, high = 1010, low = 995, close = 1005, volume = 1 },
  { kind = "tick", price = "1005.5", size = 1, side = "Sell" },
  { kind = "book", bids = [[1005, 1]], asks = [[1006, 2]] },
]

[[market.symbols]]
symbol = "ETHUSDT"
source = "canned"
step = true
"""
    )
    cfg = MockExchangeConfig.from_toml(path)
    btc = cfg.market.for_symbol("linear", "BTCUSDT")
    assert btc.pace == 4 and [type(i) for i in btc.canned] == [Candle, Tick, BookSnapshot]
    assert btc.canned[1] == Tick("BTCUSDT", "1005.5", 1, "Sell")
    assert cfg.market.for_symbol("linear", "ETHUSDT").step is True
    path.write_text('[[market.symbols]]\nsymbol = "BTCUSDT"\nsource = "canned"\nitems = [{kind = "tick", price = 1}]\n')
    with pytest.raises(ConfigError, match=r"BTCUSDT: items\[0\]: tick needs size, side"):
        MockExchangeConfig.from_toml(path)


# -- the model ----------------------------------------------------------------------------


def test_a_paced_stream_waits_for_its_start_then_comes_at_the_pace() -> None:
    model = canned([candle(1001), candle(1002), candle(1003)], pace=10)
    assert model.awaiting_start and model.schedule.next_time() is None
    assert drain(model, EPOCH + 10 * SEC) == []
    start = EPOCH + 20 * SEC
    assert model.start(start) and not model.start(start)  # once
    assert model.schedule.due == [start, start + SEC // 10, start + 2 * SEC // 10]
    events = drain(model, start + SEC // 10)
    assert described(events) == [("kline.1.BTCUSDT", "1001.00"), ("kline.1.BTCUSDT", "1002.00")]
    first, second = (e[3]["data"][0] for e in events)
    minute = interval_start("1", EPOCH_MS)  # unplaced candles follow each other from the epoch's minute
    assert (first["start"], first["end"], second["start"]) == (minute, minute + MINUTE_MS - 1, minute + MINUTE_MS)
    assert first["confirm"] is True and first["volume"] == "1.000" and events[1][1] == start + SEC // 10
    assert model.last_tick == 10020 and drain(model, start + SEC) != [] and drain(model, start + 9 * SEC) == []


def test_each_kind_streams_on_its_topics_and_moves_the_market() -> None:
    book = BookSnapshot("BTCUSDT", [(1004, 1), (1003, 2)], [(1006, 3), (1007, 4)])
    items = [Tick("BTCUSDT", 1005, "0.5", "Buy"), book, Tick("BTCUSDT", 1008, 1, "Sell", time_ms=EPOCH_MS - 5)]
    model = canned(items, step=True)
    assert model.book.asks.top(5) == model.book.bids.top(5) == [(10050, 1_190_000)]  # the first price, deep
    model.release(1, EPOCH)
    ((kind, t_ns, (trade,)),) = drain(model, EPOCH)
    assert (kind, t_ns, trade.t_ms, trade.side, trade.tick, trade.lots) == ("trade", EPOCH, EPOCH_MS, "Buy", 10050, 500)
    assert len(trade.trade_id) == 36 and trade.trade_id.count("-") == 4  # Bybit's linear id shape
    model.release(2, EPOCH + SEC)
    events = drain(model, EPOCH + SEC)
    books = {e[2]: e[3] for e in events if e[0] == "raw"}
    assert set(books) == {f"orderbook.{d}.BTCUSDT" for d in BOOK_DEPTHS["linear"]}
    assert books["orderbook.1.BTCUSDT"]["data"]["a"] == [["1006.00", "3.000"]]
    assert books["orderbook.50.BTCUSDT"]["data"]["b"] == [["1004.00", "1.000"], ["1003.00", "2.000"]]
    fifty = books["orderbook.50.BTCUSDT"]
    assert fifty["type"] == "snapshot" and model.book_u(50) == fifty["data"]["u"] == 1_000_001
    (last,) = [e for e in events if e[0] == "trade"]
    assert last[2][0].t_ms == EPOCH_MS - 5 and last[2][0].direction == "PlusTick"  # its own time
    assert model.last_tick == 10080 and model.book.asks.top(1) == [(10060, 3000)]  # the canned book stays


def test_an_open_candle_is_updated_then_confirmed() -> None:
    items = [candle(1001, confirm=False), candle(1002, confirm=True), candle(1003, confirm=False)]
    model = canned(items, step=True)
    model.release(3, EPOCH)
    entries = [e[3]["data"][0] for e in drain(model, EPOCH)]
    placed = [(e["start"] - entries[0]["start"], e["confirm"]) for e in entries]
    assert placed == [(0, False), (0, True), (MINUTE_MS, False)]
    rows = queries.kline({"BTCUSDT": model}, "linear", {"symbol": "BTCUSDT", "interval": "1"}, EPOCH_MS)["list"]
    assert [r[4] for r in rows] == ["1003.00", "1002.00"]  # one row per candle, newest first


def test_step_mode_releases_what_is_asked_and_no_more() -> None:
    model = canned([candle(1001), candle(1002), candle(1003)], step=True)
    assert not model.awaiting_start and drain(model, EPOCH + 100 * SEC) == []
    assert model.release(2, EPOCH) == 2 and len(drain(model, EPOCH)) == 2
    assert model.release(5, EPOCH + SEC) == 1 and model.release(1, EPOCH + SEC) == 0
    assert described(drain(model, EPOCH + SEC)) == [("kline.1.BTCUSDT", "1003.00")]


def test_resume_sends_each_item_once_across_reloads() -> None:
    engine = canned([candle(1000 + i) for i in range(1, 6)], step=True)
    worker = pickle.loads(pickle.dumps(engine))
    engine.release(2, EPOCH)
    engine.advance(EPOCH)
    out: list[Event] = []
    reloaded = pickle.loads(pickle.dumps(engine))
    assert reloaded.resume(worker, EPOCH + 1, out)
    assert described(out) == [("kline.1.BTCUSDT", "1001.00"), ("kline.1.BTCUSDT", "1002.00")]
    out.clear()
    again = pickle.loads(pickle.dumps(engine))
    assert again.resume(reloaded, EPOCH + 2, out) and out == []  # a reload with nothing new sends nothing
    # A paced worker copy ahead of the engine's pickle: what it sent is applied, not re-sent.
    paced = canned([candle(1000 + i) for i in range(1, 6)])
    paced.start(EPOCH)
    snapshot = pickle.dumps(paced)  # the engine's copy as pickled at EPOCH: item 0 applied
    paced.advance(EPOCH)
    ahead = pickle.loads(snapshot)
    ahead.advance(EPOCH + 2 * SEC // 10)  # this worker's copy sent items 0, 1, 2
    late = pickle.loads(snapshot)
    out.clear()
    late.resume(ahead, EPOCH + 3 * SEC // 10, out)
    assert described(out) == [("kline.1.BTCUSDT", "1004.00")] and late.last_tick == 10040
    # A new model (a reset) starts over: all it applied is news to the subscribers.
    fresh = canned([candle(1001)], step=True)
    fresh.release(1, EPOCH)
    fresh.advance(EPOCH)
    out.clear()
    assert not fresh.resume(late, EPOCH, out) and described(out) == [("kline.1.BTCUSDT", "1001.00")]


def test_a_frozen_market_holds_its_items_and_a_dry_stream_restarts_on_append() -> None:
    model = canned([candle(1001), candle(1002)], pace=10)
    model.start(EPOCH)
    model.advance(EPOCH)
    model.frozen = True
    assert model.schedule.next_time() is None and drain(model, EPOCH + 10 * SEC) == []
    model.frozen = False
    model.schedule.skip_to(EPOCH + 10 * SEC)  # what Markets.freeze does on thawing
    assert model.schedule.next_time() == EPOCH + 10 * SEC and len(drain(model, EPOCH + 10 * SEC)) == 1
    model.append(model.check([("items[0]", candle(1003)), ("items[1]", candle(1004))]), EPOCH + 60 * SEC)
    assert model.schedule.due[-2:] == [EPOCH + 60 * SEC, EPOCH + 60 * SEC + SEC // 10]
    assert not model.pristine


def test_rest_and_matching_see_what_was_streamed() -> None:
    book = BookSnapshot("BTCUSDT", [(1004, 1), (1003, 2)], [(1006, "0.5"), (1007, 4)])
    items = [candle(1001, start_ms=EPOCH_MS), Tick("BTCUSDT", 1005, "0.5", "Buy", trade_id="a"), book]
    model = canned(items, step=True)
    model.release(2, EPOCH)
    events = drain(model, EPOCH)
    models, query = {"BTCUSDT": model}, {"symbol": "BTCUSDT"}
    entry = events[0][3]["data"][0]
    (row,) = queries.kline(models, "linear", {**query, "interval": "1"}, EPOCH_MS)["list"]
    assert row == [str(entry["start"]), entry["open"], entry["high"], entry["low"], entry["close"], entry["volume"],
                   entry["turnover"]]  # fmt: skip
    assert queries.kline(models, "linear", {**query, "interval": "5"}, EPOCH_MS)["list"] == []
    later = {**query, "interval": "1", "start": EPOCH_MS + MINUTE_MS}
    assert queries.kline(models, "linear", later, EPOCH_MS)["list"] == []
    (trade,) = queries.recent_trades(models, "linear", query, EPOCH_MS)["list"]
    assert (trade["execId"], trade["price"], trade["size"], trade["side"]) == ("a", "1005.00", "0.500", "Buy")
    (ticker,) = queries.tickers(models, "linear", query, EPOCH_MS)["list"]
    assert ticker["lastPrice"] == ticker["bid1Price"] == ticker["ask1Price"] == "1005.00"  # no book yet: the last price
    buy = walk(model.book.asks, model.prices, model.sizes, Decimal(2), None)
    assert buy == [(Decimal("1005.00"), Decimal(2))]  # fills at the last price, however large
    model.release(1, EPOCH + SEC)
    model.advance(EPOCH + SEC)
    ob = queries.orderbook(models, "linear", query, EPOCH_MS)
    assert ob["b"] == [["1004.00", "1.000"], ["1003.00", "2.000"]] and ob["a"][0] == ["1006.00", "0.500"]
    buy = walk(model.book.asks, model.prices, model.sizes, Decimal(2), None)
    assert buy == [(Decimal("1006.00"), Decimal("0.500")), (Decimal("1007.00"), Decimal("1.500"))]


# -- the engine ---------------------------------------------------------------------------


def exchange(**timing: Any) -> Exchange:
    cfg = MockExchangeConfig(accounts=[AccountConfig(KEY, "secret", {"USDT": 100_000})])
    cfg = cfg.with_candles([candle(1001), candle(1002)], **timing).with_canned_market("ETHUSDT", step=True)
    return Exchange(cfg, clock=Clock())


def reloads(ex: Exchange, cursor: int) -> list[Any]:
    _, events = ex.events.wait(cursor, 0)
    return [data for kind, data in events if kind == "market_reload"]


def test_engine_step_and_append_change_the_market_and_tell_the_workers() -> None:
    ex = exchange(step=True)
    cursor = ex.events.cursor
    assert ex.market_step("linear", "BTCUSDT", 0)["released"] == 0 and reloads(ex, cursor) == []
    status = ex.market_step("linear", "BTCUSDT", 1)
    assert (status["stepped"], status["applied"], status["items"]) == (1, 1, 2)
    assert reloads(ex, cursor) == [("linear", "BTCUSDT")]
    appended = ex.market_append("tick", [{"symbol": "BTCUSDT", "price": "1010", "size": 2, "side": "Sell"}])
    assert appended == [ex.market_step("linear", "BTCUSDT", 0)] and appended[0]["items"] == 3
    ex.market_step("linear", "BTCUSDT", 5)
    assert ex.markets.models[("linear", "BTCUSDT")].mark_price() == Decimal("1010.00")
    placed = ok(ex, "order_create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
                                     "qty": "1"}, KEY)  # fmt: skip
    (fill,) = ex.executions_between(KEY)
    assert fill.order_id == placed["orderId"] and (fill.price, fill.qty) == (Decimal("1010.00"), Decimal(1))


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda ex: ex.market_step("linear", "BTCUSDT", -1), "n: expected an integer >= 0"),
        (lambda ex: ex.market_step("linear", "BTCUSDT", True), "n: expected an integer >= 0"),
        (lambda ex: ex.market_step("spot", "BTCUSDT", 1), "spot/BTCUSDT is not a canned market"),
        (lambda ex: ex.market_step("linear", "SOLUSDT", 1), "no instrument linear/SOLUSDT"),
        (lambda ex: ex.market_step("linear", 5, 1), "category and symbol must be strings"),
        (lambda ex: ex.market_append("candle", [{"symbol": "ETHUSDT", "open": 1, "high": 1, "low": 1, "close": 1,
                                                 "volume": 1}, {"symbol": "ETHUSDT"}]), "items[1]: candle needs"),
        (lambda ex: ex.market_append("tick", [{"symbol": "ETHUSDT", "price": 1, "size": 1, "side": "Buy"},
                                              {"symbol": "ETHUSDT", "price": "1.001", "size": 1, "side": "Buy"}]),
         "items[1].price: 1.001 is not a multiple of the tick size 0.01"),
        (lambda ex: ex.market_append("tick", [{"symbol": "BTCUSDT", "category": "spot", "price": 1, "size": 1,
                                               "side": "Buy"}]), "spot/BTCUSDT is not a canned market"),
    ],
)  # fmt: skip
def test_engine_refuses_bad_input_naming_it_and_changes_nothing(call: Callable[[Exchange], Any], fragment: str) -> None:
    ex = exchange(step=True)
    before = ex.market_step("linear", "ETHUSDT", 0)
    with pytest.raises(ValueError, match=None) as err:
        call(ex)
    assert fragment in str(err.value)
    assert ex.market_step("linear", "ETHUSDT", 0) == before  # the good item before the bad one was not added


def test_a_paced_market_is_started_by_a_worker_and_cannot_be_stepped() -> None:
    ex = exchange(pace=1000)
    with pytest.raises(ValueError, match="streams at 1000 items/s"):
        ex.market_step("linear", "BTCUSDT", 1)
    assert ex.apply_batch([("market_start", ("linear", "BTCUSDT"))]) == [(0, True)]
    assert ex.apply_batch([("market_start", ("linear", "BTCUSDT")), ("market_start", ("spot", "BTCUSDT"))]) == [
        (0, False),
        (0, False),
    ]
    assert ex.market_step("linear", "BTCUSDT", 0)["started"] is True


def test_reset_brings_canned_markets_back_to_their_configured_items() -> None:
    ex = exchange(step=True)
    ex.market_step("linear", "BTCUSDT", 2)
    ex.market_append(None, [{"kind": "tick", "symbol": "ETHUSDT", "price": 10, "size": 1, "side": "Buy"}])
    cursor = ex.events.cursor
    ex.reset()
    assert reloads(ex, cursor) == [None]
    btc, eth = ex.market_step("linear", "BTCUSDT", 0), ex.market_step("linear", "ETHUSDT", 0)
    assert (btc["items"], btc["applied"], eth["items"]) == (2, 0, 0)
    assert ex.markets.models[("linear", "BTCUSDT")].mark_price() == Decimal("1000.00")  # the first candle's open
    cursor = ex.events.cursor
    ex.reset()  # nothing moved: nothing rebuilt, no reload
    assert reloads(ex, cursor) == []


# -- the publisher ------------------------------------------------------------------------


class Subscriber:
    """One connection subscribed to ``topics`` on a publisher; ``received`` decodes its frames."""

    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.transport = FakeTransport()
        self.box = Outbox(self.transport, "test", lambda reason: None)

    def boxes_of(self, category: str, topic: str) -> list[Outbox]:
        return [self.box] if topic in self.topics else []

    async def received(self) -> list[dict[str, Any]]:
        await asyncio.sleep(0)  # the fan-out writes once per loop turn
        frames = [f for w in self.transport.writes for f in parse_frames(w)]
        self.transport.writes.clear()
        return [orjson.loads(f) for f in frames]


def models_of(ex: Exchange) -> list[Any]:
    return pickle.loads(ex.market_models()[2])  # type: ignore[no-any-return]


async def test_the_publisher_sends_each_item_once_and_in_order_across_reloads() -> None:
    items: list[MarketItem] = [Tick("BTCUSDT", 1000, 1, "Buy"), candle(1001), Tick("BTCUSDT", 1002, 1, "Buy")]
    items += [BookSnapshot("BTCUSDT", [(1003, 1)], [(1004, 1)]), candle(1005), Tick("BTCUSDT", 1006, 1, "Sell")]
    ex = Exchange(MockExchangeConfig().with_market_data(items, step=True))  # the wall clock, as the publisher's
    sub = Subscriber({"publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "kline.1.BTCUSDT"})
    starts: list[tuple[str, str]] = []
    publisher = MarketPublisher(
        asyncio.get_running_loop(), FanOut(asyncio.get_running_loop(), 1 << 20), sub.boxes_of,
        lambda category, symbol: (0.0, 0.0), start_market=lambda c, s: starts.append((c, s)),
    )  # fmt: skip
    try:
        publisher.load(models_of(ex))
        for topic in sorted(sub.topics):
            publisher.on_subscribe("linear", topic, sub.box)
        assert await sub.received() == [] and starts == []  # no book yet; a step-mode market needs no start
        got = []
        for n in (3, 0, 1, 2):  # several at once go out in their order, across topics
            ex.market_step("linear", "BTCUSDT", n)
            publisher.load(models_of(ex))  # what a worker does on the market_reload event
            publisher.load(models_of(ex))  # a second reload (another symbol's event) sends nothing again
            got += [seen(m) for m in await sub.received()]
        assert got == [
            ("publicTrade", "1000.00"), ("kline", "1001.00"), ("publicTrade", "1002.00"), ("orderbook", "1003.00"),
            ("kline", "1005.00"), ("publicTrade", "1006.00"),
        ]  # fmt: skip
    finally:
        publisher.close()


def seen(msg: dict[str, Any]) -> tuple[str, str]:
    """(topic kind, price) of a streamed message (the e2e tests' ``seen``, by kind)."""
    kind, data = msg["topic"].split(".")[0], msg["data"]
    price = data[0]["close"] if kind == "kline" else data[0]["p"] if kind == "publicTrade" else data["b"][0][0]
    return kind, price


async def test_the_publisher_asks_once_to_start_a_paced_market() -> None:
    cfg = MockExchangeConfig().with_ticks([Tick("BTCUSDT", 1000, 1, "Buy")])
    ex = Exchange(cfg)
    sub = Subscriber(set())
    starts: list[tuple[str, str]] = []
    loop = asyncio.get_running_loop()
    publisher = MarketPublisher(loop, FanOut(loop, 1 << 20), sub.boxes_of, lambda c, s: (0.0, 0.0),
                                start_market=lambda c, s: starts.append((c, s)))  # fmt: skip
    try:
        publisher.load(models_of(ex))
        assert starts == []  # nobody subscribed
        sub.topics.add("tickers.BTCUSDT")
        publisher.on_subscribe("linear", "tickers.BTCUSDT", sub.box)
        publisher.on_subscribe("linear", "tickers.BTCUSDT", sub.box)
        publisher.load(models_of(ex))
        assert starts == [("linear", "BTCUSDT")]
        assert ex.apply_batch([("market_start", starts[0])]) == [(0, True)]
        publisher.load(models_of(ex))
        assert [m for m in await sub.received() if m["topic"] == "publicTrade.BTCUSDT"] == []  # tickers only
        ex.reset()  # a new model: its first subscriber (still here) starts it again
        publisher.load(models_of(ex))
        assert starts == [("linear", "BTCUSDT")] * 2
    finally:
        publisher.close()
