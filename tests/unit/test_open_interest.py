"""Open interest: moves with the model's trades, identical whatever the advance steps, and its history."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from bybit_mock.bybit.errors import BybitError
from bybit_mock.market.open_interest import STEP_MS, OpenInterest, history, values
from bybit_mock.market.ticker import REST_FUTURES_KEYS, WS_FUTURES_KEYS, ticker_fields
from tests.unit.test_market_model import EPOCH, SEC, model

EPOCH_MS = EPOCH // 1_000_000
HOUR_MS = 3_600_000


def test_open_interest_is_the_same_whatever_the_advance_steps() -> None:
    one, many = model(seed=3), model(seed=3)
    one.advance(EPOCH + 90 * SEC)
    for k in range(1, 901):
        many.advance(EPOCH + k * SEC // 10)
    assert one.open_interest.lots == many.open_interest.lots
    assert one.open_interest.recorded == many.open_interest.recorded
    assert len(one.open_interest.recorded) in (0, 1)  # 90 s cross at most one 5-minute boundary


def test_open_interest_moves_only_with_trades() -> None:
    m = model(seed=5)
    start = m.open_interest.lots
    assert start == int(m.level_lots_typical * 2000)
    seen = {start}
    for k in range(1, 61):
        m.advance(EPOCH + k * SEC)
        seen.add(m.open_interest.lots)
    assert len(seen) > 10  # it wanders with the trade flow
    assert min(seen) >= start // 4
    m.frozen = True  # a frozen market trades nothing: the figure holds
    held = m.open_interest.lots
    m.advance(EPOCH + 120 * SEC)
    assert m.open_interest.lots == held


def test_each_trade_opens_or_closes_its_size() -> None:
    oi = OpenInterest(seed=7, start_lots=1000, epoch_ms=EPOCH_MS)
    first = oi.first
    assert first % STEP_MS == 0 and EPOCH_MS <= first < EPOCH_MS + STEP_MS
    oi.on_trade(first + 1, 10)
    after_one = oi.lots
    assert after_one in (990, 1010) and oi.recorded == [1000]
    oi.on_trade(first + 2 * STEP_MS + 5, 20)
    assert oi.lots in (after_one - 20, after_one + 20)
    assert oi.recorded == [1000, after_one, after_one]
    assert [oi.at(first + k * STEP_MS) for k in range(4)] == [1000, after_one, after_one, oi.lots]


def test_the_seeded_past_arrives_at_the_start() -> None:
    oi = OpenInterest(seed=7, start_lots=1000, epoch_ms=EPOCH_MS)
    assert oi._past(EPOCH_MS) == 1000  # every wave is at its epoch value
    past = [oi.at(oi.first - k * STEP_MS) for k in range(1, 2000)]
    assert len(set(past)) > 100
    assert all(1000 * math.exp(-0.38) - 1 <= v <= 1000 * math.exp(0.38) + 1 for v in past)  # 2 x the amplitudes
    again = OpenInterest(seed=7, start_lots=1000, epoch_ms=EPOCH_MS)
    assert [again.at(oi.first - k * STEP_MS) for k in range(1, 2000)] == past


def test_history_is_newest_first_on_interval_boundaries_with_a_cursor() -> None:
    m = model(seed=2, trade_rate=2, book_rates={})  # two hours of trades, quickly
    now = EPOCH_MS + 2 * HOUR_MS + 123
    m.advance(now * 1_000_000)
    models = {m.symbol: m}
    query = {"symbol": "BTCUSDT", "intervalTime": "1h", "limit": "2"}
    page = history(models, "linear", query, now)
    assert [set(i) for i in page["list"]] == [{"openInterest", "singleOpenInterest", "timestamp"}] * 2
    stamps = [int(i["timestamp"]) for i in page["list"]]
    newest = now - now % HOUR_MS
    assert stamps == [newest, newest - HOUR_MS]
    for item in page["list"]:
        lots = m.open_interest.at(int(item["timestamp"]))
        assert item["openInterest"] == f"{Decimal(2 * lots) / 1000:.8f}"  # both sides, 8 places
        assert item["singleOpenInterest"] == m.sizes.fmt(lots)
    assert page["nextPageCursor"]
    following = history(models, "linear", query | {"cursor": page["nextPageCursor"]}, now)
    assert [int(i["timestamp"]) for i in following["list"]] == [newest - 2 * HOUR_MS, newest - 3 * HOUR_MS]
    today = now - now % 86_400_000
    window = history(
        models, "linear", {"symbol": "BTCUSDT", "intervalTime": "1d", "startTime": str(today - 3 * 86_400_000)}, now
    )
    assert [int(i["timestamp"]) for i in window["list"]] == [today - k * 86_400_000 for k in range(4)]
    assert window["nextPageCursor"] == ""
    for bad in ({"intervalTime": "2h"}, {"intervalTime": "5min", "limit": "201"}):
        with pytest.raises(BybitError):
            history(models, "linear", {"symbol": "BTCUSDT"} | bad, now)


def test_tickers_show_both_sides_and_one_side() -> None:
    m = model(seed=4)
    m.advance(EPOCH + 5 * SEC)
    fields = ticker_fields(m, EPOCH_MS + 5000)
    lots = m.open_interest.lots
    mark = m.prices.decimal(m.mark_tick())
    assert fields["openInterest"] == m.sizes.fmt(2 * lots)
    assert fields["singleOpenInterest"] == m.sizes.fmt(lots)
    assert Decimal(fields["singleOpenInterestValue"]) == (Decimal(lots) / 1000 * mark).quantize(Decimal("0.01"))
    assert fields == fields | values(m, lots, mark)
    for keys in (REST_FUTURES_KEYS, WS_FUTURES_KEYS):
        at = keys.index("openInterest")
        assert keys[at : at + 4] == (
            "openInterest",
            "openInterestValue",
            "singleOpenInterest",
            "singleOpenInterestValue",
        )
