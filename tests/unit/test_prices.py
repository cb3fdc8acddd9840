"""The price model: index, mark and premium index beside the last price, and triggers on each."""

from __future__ import annotations

import math
import pickle
import random
from decimal import Decimal
from pathlib import Path

import pytest

from bybit_mock.market import queries
from bybit_mock.market.book import Book
from bybit_mock.market.config import MarketConfig
from bybit_mock.market.markets import Markets
from bybit_mock.market.model import MarketModel
from bybit_mock.market.prices import PREMIUM_TAU_MS, PriceTrack, buy_probability
from bybit_mock.market.synthetic import SyntheticMarket
from tests.unit.helpers import LINEAR, new_exchange, ok, order, position, run
from tests.unit.test_market_model import EPOCH, SEC, inst, model
from tests.unit.test_replay import EPOCH as REPLAY_EPOCH
from tests.unit.test_replay import SAMPLE, recorded, replay

D = Decimal
EPOCH_MS = EPOCH // 1_000_000


def prices_of(m: SyntheticMarket) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return m.last_price(), m.index_price(), m.mark_price(), m.premium_index()


def test_replicas_agree_whatever_their_advance_steps() -> None:
    one, many = model(seed=5), model(seed=5)
    end = EPOCH + 120 * SEC
    one.advance(end)
    rng = random.Random(3)
    t = EPOCH
    while t < end:
        t = min(end, t + rng.randrange(1, SEC // 2))
        many.advance(t)
        if t == EPOCH + 60 * SEC or rng.random() < 0.01:  # a WS worker's copy taken mid-run
            many = pickle.loads(pickle.dumps(many))
    assert prices_of(one) == prices_of(many)
    assert one.price_state() == many.price_state()
    now_ms = end // 1_000_000
    for kind in ("index", "mark", "premium"):
        a, b = one.price_candles(kind)[0], many.price_candles(kind)[0]
        rows_a = [(c.start, c.open, c.high, c.low, c.close) for c in a.klines("1", None, None, 10, now_ms)]
        rows_b = [(c.start, c.open, c.high, c.low, c.close) for c in b.klines("1", None, None, 10, now_ms)]
        assert rows_a == rows_b and len(rows_a) == 10


def test_the_three_prices_start_equal_then_part() -> None:
    m = model(seed=1)
    assert prices_of(m) == (D("65000.00"), D("65000.00"), D("65000.00"), D("0.000000"))
    m.advance(EPOCH + 30 * SEC)
    last, index, mark, _ = prices_of(m)
    assert len({last, index, mark}) == 3
    # index and mark print on the price scale (0.01), finer than BTCUSDT's 0.10 tick
    assert index.as_tuple().exponent == -2 and mark.as_tuple().exponent == -2
    assert m.mark_price() == m.track.fine.decimal(m.track.mark)
    # the mark is the index plus the smoothed premium, as of the last trade event
    assert m.track.mark == m.track.index + round(m.track.premium)


def test_premium_is_an_ema_of_mid_minus_index_updated_at_trade_events() -> None:
    m = model(seed=1)
    track = PriceTrack(m.prices, m.candles.past, 1, EPOCH_MS)
    book = Book()
    book.bids.set(650_100, 5)  # 65010.0
    book.asks.set(650_102, 5)  # 65010.2: mid 65010.10
    track.index = 6_500_000  # 65000.00
    track.premium = 0.0
    half_life = round(PREMIUM_TAU_MS * math.log(2))  # alpha = 1/2, to the ms
    track.settle(EPOCH_MS + half_life, book, 650_100)
    # premium = (6501010 - 6500000) / 2 = 505 units of 0.01 (to rounding of the half-life)
    assert round(track.premium) == 505
    assert track.mark_price() == D("65005.05")
    # Bybit's premium index: (max(0, bid - index) - max(0, index - ask)) / index, in millionths
    assert track.premium_index == round((6_501_000 - 6_500_000) * 1_000_000 / 6_500_000) == 154
    assert track.premium_index_value() == D("0.000154")
    # the same instant again moves nothing: alpha is 0 for no elapsed time
    track.settle(EPOCH_MS + half_life, book, 650_100)
    assert round(track.premium) == 505


def test_takers_lean_toward_the_index() -> None:
    assert buy_probability(650_000, 650_000) == 0.5
    assert 0.5 < buy_probability(650_000, 649_900) < 0.9  # last below the index: more buyers
    assert 0.1 < buy_probability(650_000, 650_100) < 0.5
    assert buy_probability(650_000, 640_000) == pytest.approx(0.9, abs=1e-6)
    # two deviations of the same size either way lean the same amount
    assert buy_probability(650_000, 649_870) + buy_probability(650_000, 650_130) == pytest.approx(1.0)


def test_last_follows_the_index_over_a_long_run() -> None:
    m = model(seed=2)
    gaps, index_moves = [], []
    start_index = m.index_price()
    for minute in range(1, 46):
        m.advance(EPOCH + minute * 60 * SEC)
        last, index = m.last_price(), m.index_price()
        gaps.append(abs(last - index) / index)
        index_moves.append(abs(index - start_index) / start_index)
    # the index wanders tens of basis points; the last price stays within a few of it
    assert max(index_moves) > D("0.001")
    assert sum(gaps) / len(gaps) < D("0.0003")
    assert max(gaps) < D("0.001")


def test_a_jump_moves_all_three_and_resets_the_premium() -> None:
    m = model(seed=1)
    m.advance(EPOCH + 20 * SEC)
    assert m.track.premium != 0
    m.set_price(D("70000"))
    assert prices_of(m) == (D("70000.00"), D("70000.00"), D("70000.00"), D("0.000000"))
    assert m.track.premium == 0.0
    m.advance(EPOCH + 21 * SEC)
    # the index walks on from the new price (its wave is rescaled at the jump), not back to 65 000
    assert abs(m.index_price() - D("70000")) < D("20")
    store, fixed = m.price_candles("index")
    (candle,) = store.klines("1", None, None, 1, EPOCH_MS + 21_000)
    assert fixed.fmt(candle.close) == str(m.index_price())


def test_price_klines_have_bybits_shape() -> None:
    markets = Markets([inst()], MarketConfig(seed=1), EPOCH)
    m: MarketModel = markets.models[("linear", "BTCUSDT")]
    m.advance(EPOCH + 150 * SEC)
    now_ms = EPOCH_MS + 150_000
    query = {"category": "linear", "symbol": "BTCUSDT", "interval": "1", "limit": "5"}
    for path, kind in (
        ("/v5/market/mark-price-kline", "mark"),
        ("/v5/market/index-price-kline", "index"),
        ("/v5/market/premium-index-price-kline", "premium"),
    ):
        got = queries.answer(markets, path, query, now_ms)
        assert list(got) == ["symbol", "category", "list"] and got["symbol"] == "BTCUSDT"
        rows = got["list"]
        assert len(rows) == 5 and all(len(r) == 5 and all(isinstance(v, str) for v in r) for r in rows)
        starts = [int(r[0]) for r in rows]
        assert starts == sorted(starts, reverse=True) and starts[0] == now_ms - now_ms % 60_000
        assert all(D(r[3]) <= min(D(r[1]), D(r[4])) and D(r[2]) >= max(D(r[1]), D(r[4])) for r in rows)
        # the open candle closes at the price as it stands
        current = {"mark": m.mark_price(), "index": m.index_price(), "premium": m.premium_index()}[kind]
        assert D(rows[0][4]) == current
        # before the epoch: the closed forms, one candle per minute
        old = queries.answer(markets, path, query | {"end": str(EPOCH_MS - 3_600_000)}, now_ms)["list"]
        assert len(old) == 5 and int(old[0][0]) == EPOCH_MS - 3_600_000 - (EPOCH_MS - 3_600_000) % 60_000
    mark_rows = queries.answer(markets, "/v5/market/mark-price-kline", query, now_ms)["list"]
    index_rows = queries.answer(markets, "/v5/market/index-price-kline", query, now_ms)["list"]
    assert mark_rows != index_rows
    with pytest.raises(Exception, match="category only support linear"):
        queries.answer(markets, "/v5/market/premium-index-price-kline", query | {"category": "inverse"}, now_ms)
    with pytest.raises(Exception, match="category only support linear, inverse"):
        queries.answer(markets, "/v5/market/mark-price-kline", query | {"category": "spot"}, now_ms)


def _set(ex: object, mark: str | None = None, index: str | None = None) -> None:
    """Move a frozen BTCUSDT's mark or index alone (what trades would do over time), then let
    the engine look at its triggers."""
    m = ex.markets.models[("linear", "BTCUSDT")]  # type: ignore[attr-defined]
    track = m.track
    if mark is not None:
        track.mark = track.fine.to_count(D(mark))
    if index is not None:
        track.index = track.fine.to_count(D(index))
    ex.run_due()  # type: ignore[attr-defined]


def test_trigger_by_each_price_fires_on_its_own_price() -> None:
    ex = new_exchange()  # frozen, BTCUSDT at 65 000: last = index = mark
    base = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01", "triggerDirection": 1}
    ids = {
        by: ok(ex, "order_create", base | {"triggerPrice": "65100", "triggerBy": by})["orderId"]
        for by in ("LastPrice", "MarkPrice", "IndexPrice")
    }

    def statuses() -> dict[str, str]:
        return {by: order(ex, oid)["orderStatus"] for by, oid in ids.items()}

    _set(ex, mark="65099.99")
    assert set(statuses().values()) == {"Untriggered"}
    _set(ex, mark="65100.00")
    assert statuses() == {"LastPrice": "Untriggered", "MarkPrice": "Filled", "IndexPrice": "Untriggered"}
    _set(ex, index="65100.01")
    assert statuses() == {"LastPrice": "Untriggered", "MarkPrice": "Filled", "IndexPrice": "Filled"}
    assert order(ex, ids["IndexPrice"])["triggerBy"] == "IndexPrice"
    ex.set_mark_price("BTCUSDT", 65100)
    assert set(statuses().values()) == {"Filled"}


def test_trigger_direction_is_checked_against_the_trigger_by_price() -> None:
    ex = new_exchange()
    _set(ex, mark="65200", index="64800")  # last stays 65 000
    base = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01", "triggerPrice": "65100"}
    # rising to 65 100: fine for the last price and the index, already passed by the mark
    ok(ex, "order_create", base | {"triggerDirection": 1})
    ok(ex, "order_create", base | {"triggerDirection": 1, "triggerBy": "IndexPrice"})
    code, msg = run(ex, "order_create", base | {"triggerDirection": 1, "triggerBy": "MarkPrice"})
    assert code == 110092 and "current[65200]" in msg
    code, msg = run(ex, "order_create", base | {"triggerDirection": 2, "triggerBy": "IndexPrice"})
    assert code == 110093 and "current[64800]" in msg


def test_a_position_stop_loss_by_mark_watches_the_mark() -> None:
    ex = new_exchange()
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.01"})
    ok(ex, "trading_stop", LINEAR | {"positionIdx": 0, "stopLoss": "64000", "slTriggerBy": "MarkPrice"})
    _set(ex, index="63000")  # index far below: not what this stop watches
    assert position(ex)["size"] == "0.01"
    _set(ex, mark="64000.00")
    assert position(ex)["size"] == "0"


def test_a_replay_without_tickers_derives_its_index_from_the_trades(tmp_path: Path) -> None:
    lines = [ln for ln in SAMPLE.read_bytes().splitlines() if b'"topic":"tickers.' not in ln]
    path = tmp_path / "no-tickers.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    m = replay(path, loop=False)
    start = m.index_price()
    m.advance(REPLAY_EPOCH + 3600 * SEC)
    track = m.track
    assert track.recorded_index is None and track.recorded_mark is None
    # an EMA of the trades: it moved from the start toward them, and the mark carries a premium
    trades = [D(t) for t in (m.prices.fmt(x.tick) for x in m.trades)]
    assert min(trades) <= m.index_price() <= max(trades) and m.index_price() != start
    assert m.mark_price() == track.fine.decimal(track.index + round(track.premium))


def test_a_replays_recorded_index_moves_with_a_jump() -> None:
    m = replay(loop=False)
    m.advance(REPLAY_EPOCH + 10 * SEC)
    recorded_index = m.index_price()
    m.set_price(m.last_price() + D("1000"))
    assert m.index_price() == m.mark_price() == m.last_price()
    m.advance(REPLAY_EPOCH + 3600 * SEC)
    ticker: dict[str, str] = {}
    for msg in recorded():
        if msg["topic"].startswith("tickers"):
            ticker |= msg["data"]
    # the next recorded prices come shifted by the jump's offset, as every replayed price does
    assert m.index_price() == D(ticker["indexPrice"]) + m.prices.decimal(m.offset)
    assert m.mark_price() == D(ticker["markPrice"]) + m.prices.decimal(m.offset)
    assert m.index_price() > recorded_index + D("900")


def test_funding_samples_the_premium_index_the_kline_shows() -> None:
    """The funding rate averages the very premium index the premium-index kline shows."""
    m = model(seed=4)
    m.advance(EPOCH + 600 * SEC)  # the prices part
    track = m.funding_track
    assert track is not None
    before = track.total
    due = track.due
    m.advance(due)  # to the next sample instant exactly: the sample reads the market as it stands
    assert track.total - before == m.premium_index() != 0
    store, fixed = m.price_candles("premium")
    (last,) = store.klines("1", due // 1_000_000 - 60_000, due // 1_000_000, 1, due // 1_000_000)
    assert fixed.decimal(last.close) == m.premium_index()
