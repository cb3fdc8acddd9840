"""The synthetic market model, its schedule, book views, candles and message shapes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bybit_mock.config import InstrumentConfig, default_instruments
from bybit_mock.market import messages
from bybit_mock.market.candles import interval_end, interval_start
from bybit_mock.market.config import SymbolMarketConfig
from bybit_mock.market.schedule import Schedule
from bybit_mock.market.synthetic import SyntheticMarket
from bybit_mock.market.views import DepthView

EPOCH = 1_700_000_000_000 * 1_000_000
SEC = 1_000_000_000


def inst(category: str = "linear", symbol: str = "BTCUSDT") -> InstrumentConfig:
    return next(i for i in default_instruments() if i.category == category and i.symbol == symbol)


def model(seed: int = 1, category: str = "linear", **cfg: object) -> SyntheticMarket:
    i = inst(category)
    return SyntheticMarket(i, SymbolMarketConfig(i.symbol, i.category, **cfg), seed, EPOCH)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [1, 3, 7.5, 50, 333, 1000, 100_000])
def test_schedule_is_exact_at_any_rate(rate: float) -> None:
    sched = Schedule(EPOCH, [rate])
    for seconds in (0.5, 1, 2.25):
        t = EPOCH + int(seconds * SEC)
        while sched.pop_due(t) is not None:
            pass
        assert sched.count(0) - 1 == int(seconds * rate)  # messages 1..k are due by t


def test_schedule_merges_streams_in_time_order_and_skip_drops_the_backlog() -> None:
    sched = Schedule(EPOCH, [10, 4, 0])
    seen = []
    while (due := sched.pop_due(EPOCH + SEC)) is not None:
        seen.append(due)
    assert [s for _, s, _ in seen].count(0) == 10 and [s for _, s, _ in seen].count(1) == 4
    assert [t for t, _, _ in seen] == sorted(t for t, _, _ in seen)
    sched.skip_to(EPOCH + 10 * SEC)
    assert sched.pop_due(EPOCH + 10 * SEC) is None
    assert sched.pop_due(EPOCH + 10 * SEC + SEC // 10) is not None


def test_same_seed_same_market_whatever_the_steps() -> None:
    a, b, c = model(7), model(7), model(8)
    out_a: list[tuple[object, ...]] = []
    out_b: list[tuple[object, ...]] = []
    a.advance(EPOCH + 30 * SEC, out_a)
    for ms in range(0, 30_001, 37):  # many small steps, like a worker's timer
        b.advance(EPOCH + ms * 1_000_000, out_b)
    b.advance(EPOCH + 30 * SEC, out_b)
    c.advance(EPOCH + 30 * SEC)
    assert out_a == out_b
    assert a.book.bids.top(1000) == b.book.bids.top(1000) and a.version == b.version
    assert a.book.asks.top(50) != c.book.asks.top(50)


@pytest.mark.parametrize("category", ["linear", "spot"])
def test_book_stays_consistent_and_deep(category: str) -> None:
    m = model(3, category)
    start = m.mark_price()
    assert start == inst(category).price  # at the epoch the market is the configured price
    for second in range(1, 121):
        m.advance(EPOCH + second * SEC)
        bids, asks = m.book.bids.top(2000), m.book.asks.top(2000)
        assert len(bids) >= 1000 and len(asks) >= 1000
        assert bids[0][0] < asks[0][0]
        assert [t for t, _ in bids] == sorted((t for t, _ in bids), reverse=True)
        assert [t for t, _ in asks] == sorted(t for t, _ in asks)
        assert all(q > 0 for _, q in bids + asks)
    assert len(m.trades) > 1000 or len(m.trades) == m.trades.maxlen
    assert abs(m.mark_price() - start) / start < Decimal("0.05")  # a walk, not an explosion


def test_trades_are_at_the_best_price_they_take() -> None:
    m = model(5, book_rates={})
    for _ in range(200):
        best_ask, best_bid = m.book.asks.best_tick(), m.book.bids.best_tick()
        out: list[tuple[object, ...]] = []
        m.advance(m.now_ns + SEC // 20, out)
        for event in out:
            first = event[2][0]
            assert first.tick == (best_ask if first.side == "Buy" else best_bid)
            prices = [t.tick for t in event[2]]
            assert prices == sorted(prices, reverse=first.side == "Sell")  # a sweep walks away
            best_ask, best_bid = m.book.asks.best_tick(), m.book.bids.best_tick()


def test_set_price_moves_the_book_and_the_mark_and_freeze_holds_it() -> None:
    m = model(2)
    m.advance(EPOCH + 5 * SEC)
    m.set_price(Decimal("70000"))
    assert m.mark_price() == Decimal("70000.00")
    assert m.book.asks.best_tick() == 700000 and m.book.bids.best_tick() < 700000
    m.frozen = True
    out: list[tuple[object, ...]] = []
    m.advance(EPOCH + 60 * SEC, out)
    assert out == [] and m.mark_price() == Decimal("70000.00")
    m.frozen = False
    m.advance(EPOCH + 61 * SEC, out)
    assert out, "a thawed market moves again"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), depth=st.sampled_from([1, 50, 200]), steps=st.integers(5, 60))
def test_deltas_rebuild_the_book_and_never_delete_unsent_levels(seed: int, depth: int, steps: int) -> None:
    m = model(seed, levels=300)
    view = DepthView(depth)
    view.reset(m.book, 0, m.version, 0, 0)
    client = {"b": dict(view.bids), "a": dict(view.asks)}
    for i in range(steps):
        m.advance(EPOCH + (i + 1) * SEC // 10)
        bids, asks = view.advance(m.book, i + 1, m.version, 0, 0)
        for side, changes in (("b", bids), ("a", asks)):
            for tick, lots in changes:
                if lots == 0:
                    assert tick in client[side], "delete of a level the client never had"
                    del client[side][tick]
                else:
                    client[side][tick] = lots
        assert sorted(client["b"].items(), reverse=True) == m.book.bids.top(depth)
        assert sorted(client["a"].items()) == m.book.asks.top(depth)


def test_candle_boundaries() -> None:
    t = int(datetime(2024, 2, 29, 13, 47, 5, tzinfo=UTC).timestamp() * 1000)
    assert interval_start("1", t) == int(datetime(2024, 2, 29, 13, 47, tzinfo=UTC).timestamp() * 1000)
    assert interval_start("240", t) == int(datetime(2024, 2, 29, 12, tzinfo=UTC).timestamp() * 1000)
    assert interval_start("D", t) == int(datetime(2024, 2, 29, tzinfo=UTC).timestamp() * 1000)
    monday = int(datetime(2024, 2, 26, tzinfo=UTC).timestamp() * 1000)
    assert interval_start("W", t) == monday and interval_end("W", monday) == monday + 7 * 86_400_000
    march = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
    assert interval_start("M", t) == int(datetime(2024, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert interval_end("M", interval_start("M", t)) == march


@pytest.mark.parametrize("interval", ["1", "5", "60", "D", "W", "M"])
def test_klines_newest_first_contiguous_and_consistent(interval: str) -> None:
    m = model(4)
    m.advance(EPOCH + 150 * SEC)
    now_ms = (EPOCH + 150 * SEC) // 1_000_000
    rows = m.candles.klines(interval, None, None, 30, now_ms)
    assert len(rows) == 30
    starts = [c.start for c in rows]
    assert starts == sorted(starts, reverse=True)
    for newer, older in itertools.pairwise(rows):
        assert interval_end(interval, older.start) == newer.start
    for c in rows:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high and c.volume > 0
    assert rows[0].close == m.last_tick  # the open candle ends at the last trade


def test_message_shapes_and_key_order() -> None:
    m = model(1)
    m.advance(EPOCH + SEC)
    args = ([(650000, 5)], [(650001, 0)], 7, 9, 100, 99, m.prices, m.sizes)
    futures = messages.book_dict("orderbook.50.BTCUSDT", "delta", "BTCUSDT", *args, ts_first=False)
    assert list(futures) == ["topic", "type", "ts", "data", "cts"]
    assert futures["data"] == {"s": "BTCUSDT", "b": [["65000.00", "0.005"]], "a": [["65000.10", "0"]], "u": 7, "seq": 9}
    spot = messages.book_dict("orderbook.50.BTCUSDT", "delta", "BTCUSDT", *args, ts_first=True)
    assert list(spot) == ["topic", "ts", "type", "data", "cts"]
    trade = orjson.loads(
        messages.trade_message("publicTrade.BTCUSDT", "BTCUSDT", list(m.trades)[:2], 5, m.prices, m.sizes, True, True)
    )
    assert trade["_topic"] == trade["topic"] and trade["type"] == "snapshot"
    assert list(trade["data"][0]) == ["T", "s", "S", "v", "p", "L", "i", "BT", "RPI", "seq"]
    candle = m.candles.candle("1", interval_start("1", EPOCH // 1_000_000), EPOCH // 1_000_000 + 1000)
    assert candle is not None
    entry = messages.kline_entry("1", candle, False, 1, m.prices, m.sizes, tesser=True)
    assert entry["_start"] == entry["start"] and entry["_end"] == entry["end"] == entry["start"] + 59_999


def test_the_minute_holding_the_epoch_counts_its_trades() -> None:
    # Regression: the open candle starts before the epoch; its trades must show at once.
    epoch_ms = 1_700_000_010_000  # 30 s into a minute
    i = inst()
    m = SyntheticMarket(i, SymbolMarketConfig(i.symbol, i.category), 1, epoch_ms * 1_000_000)
    now = epoch_ms + 5_000
    m.advance(now * 1_000_000)
    cur = m.candles.current
    assert cur is not None
    past = m.candles.past.candle(cur.start, epoch_ms).volume
    assert m.candles.candle("1", cur.start, now).volume == past + cur.volume  # type: ignore[union-attr]


def test_klines_from_since_count_forward() -> None:
    m = model(4)
    now_ms = (EPOCH + 150 * SEC) // 1_000_000
    m.advance(now_ms * 1_000_000)
    since = now_ms - 100 * 3_600_000
    rows = m.candles.klines("60", since, None, 5, now_ms)
    assert [c.start for c in rows] == [interval_start("60", since) + h * 3_600_000 for h in range(4, -1, -1)]


def test_a_just_closed_epoch_minute_keeps_its_trades() -> None:
    epoch_ms = 1_710_000_123_456
    i = inst()
    m = SyntheticMarket(i, SymbolMarketConfig(i.symbol, i.category), 1, epoch_ms * 1_000_000)
    now = epoch_ms + 64_000
    m.advance(now * 1_000_000)
    closed = m.candles.closed[-1]
    candle = m.candles.candle("1", closed.start, now)
    assert candle is not None and candle.close == closed.close
