"""The replay market model, the bundled sample recording and the CSV converter."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from bybit_mock.config import InstrumentConfig, default_instruments
from bybit_mock.market import csv_convert
from bybit_mock.market import recording as recording_module
from bybit_mock.market.candles import interval_start
from bybit_mock.market.config import SymbolMarketConfig
from bybit_mock.market.markets import build_model
from bybit_mock.market.replay import ReplayMarket, bundled_sample, shift_candle_start

EPOCH = 1_800_000_000_000 * 1_000_000
EPOCH_MS = EPOCH // 1_000_000
SEC = 1_000_000_000
SAMPLE = bundled_sample()
ROOT = Path(__file__).resolve().parents[2]

Raw = tuple[Any, ...]


def inst(category: str = "linear", symbol: str = "BTCUSDT") -> InstrumentConfig:
    return next(i for i in default_instruments() if i.category == category and i.symbol == symbol)


def replay(path: Path | str = SAMPLE, category: str = "linear", symbol: str = "BTCUSDT", **cfg: Any) -> ReplayMarket:
    i = inst(category, symbol)
    config = SymbolMarketConfig(i.symbol, i.category, source="replay", replay_file=str(path), **cfg)
    return ReplayMarket(i, config, 1, EPOCH)


def recorded() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in SAMPLE.read_bytes().splitlines()]


def step_through(model: ReplayMarket, check: Callable[[Raw], None], limit: int = 100_000) -> int:
    """Advance message by message (each due time in turn); ``check`` every raw event."""
    n = 0
    while (t := model.schedule.next_time()) is not None and n < limit:
        out: list[Raw] = []
        model.advance(t, out)
        for event in out:
            check(event)
            n += 1
    return n


class ClientBook:
    """What a client (pybit, ccxt) keeps from the book messages: snapshot resets, delta applies."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, msg: dict[str, Any]) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for price, size in levels:
                if Decimal(size) == 0:
                    assert Decimal(price) in side, f"delete of a level the client does not have: {price}"
                    del side[Decimal(price)]
                else:
                    side[Decimal(price)] = Decimal(size)


def model_levels(model: ReplayMarket, depth: int = 1000) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    p, s = model.prices, model.sizes
    bids = {p.decimal(t): s.decimal(q) for t, q in model.book.bids.top(depth)}
    asks = {p.decimal(t): s.decimal(q) for t, q in model.book.asks.top(depth)}
    return bids, asks


def assert_book_sane(model: ReplayMarket) -> None:
    bids = [t for t, _ in model.book.bids.top(1000)]
    asks = [t for t, _ in model.book.asks.top(1000)]
    assert bids == sorted(bids, reverse=True) and len(set(bids)) == len(bids)
    assert asks == sorted(asks) and len(set(asks)) == len(asks)
    assert all(q > 0 for _, q in model.book.bids.top(1000) + model.book.asks.top(1000))
    if bids and asks:
        assert bids[0] < asks[0], f"crossed book: bid {bids[0]} >= ask {asks[0]}"


# -- the sample --------------------------------------------------------------------------


def test_sample_is_small_and_has_every_stream_in_bybit_shapes() -> None:
    assert SAMPLE.stat().st_size <= 300_000
    msgs = recorded()
    topics = [m["topic"] for m in msgs]
    assert topics[0] == "orderbook.50.BTCUSDT" and msgs[0]["type"] == "snapshot"
    assert set(topics) == {"orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT", "kline.1.BTCUSDT"}
    duration = (msgs[-1]["ts"] - msgs[0]["ts"]) / 1000
    assert 25 <= duration <= 60
    # Key order as Bybit sends it (reference 4.4-4.7): futures depth > 1 is topic, type, ts, data, cts.
    book = [m for m in msgs if m["topic"].startswith("orderbook")]
    assert all(list(m) == ["topic", "type", "ts", "data", "cts"] for m in book)
    assert all(list(m["data"]) == ["s", "b", "a", "u", "seq"] for m in book)
    assert [m["type"] for m in book[1:]] == ["delta"] * (len(book) - 1)
    assert [m["data"]["u"] for m in book] == list(range(book[0]["data"]["u"], book[0]["data"]["u"] + len(book)))
    tickers = [m for m in msgs if m["topic"].startswith("tickers")]
    assert tickers[0]["type"] == "snapshot" and {m["type"] for m in tickers[1:]} == {"delta"}
    assert all(list(m) == ["topic", "type", "data", "cs", "ts"] for m in tickers)
    klines = [m for m in msgs if m["topic"].startswith("kline")]
    assert any(len(m["data"]) == 2 and m["data"][0]["confirm"] for m in klines)  # the minute boundary
    trades = [e for m in msgs if m["topic"].startswith("publicTrade") for e in m["data"]]
    assert trades and all(list(e) == ["T", "s", "S", "v", "p", "L", "i", "BT", "RPI", "seq"] for e in trades)
    assert all(e["p"].endswith(tuple("0123456789")) and len(e["p"].split(".")[1]) == 2 for e in trades)
    # Timestamps never go back (the replay keeps file order anyway).
    assert [m["ts"] for m in msgs] == sorted(m["ts"] for m in msgs)


def test_sample_never_deletes_a_level_that_was_not_sent() -> None:
    client = ClientBook()
    for m in recorded():
        if m["topic"].startswith("orderbook"):
            client.apply(m)  # asserts on any delete of an unknown level


def test_sample_script_is_deterministic() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_recording", ROOT / "scripts" / "make_sample_recording.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    a, b = script.generate(2.0), script.generate(2.0)
    assert a == b and len(a) > 50
    # The sample starts as the script writes it (the whole file is checked by ``--check``).
    assert SAMPLE.read_bytes().splitlines()[: len(a) // 2] == a[: len(a) // 2]


# -- replaying ---------------------------------------------------------------------------


def test_book_is_consistent_after_every_message_and_matches_what_a_client_builds() -> None:
    model = replay(loop=False)
    client = ClientBook()
    book_msgs = 0

    def check(event: Raw) -> None:
        nonlocal book_msgs
        assert event[0] == "raw"
        assert_book_sane(model)
        if event[2].startswith("orderbook"):
            book_msgs += 1
            client.apply(event[3])
            assert (client.bids, client.asks) == model_levels(model)
            assert model.book_u(50) == event[3]["data"]["u"]
            assert model.version == event[3]["data"]["seq"]

    n = step_through(model, check)
    assert n == len(recorded()) and book_msgs > 500


def test_raw_events_come_in_recorded_order_with_timestamps_shifted_to_the_replay() -> None:
    msgs = recorded()
    first = msgs[0]["ts"]
    model = replay(loop=False)
    out: list[Raw] = []
    model.advance(EPOCH + 3600 * SEC, out)
    assert [e[2] for e in out] == [m["topic"] for m in msgs]
    for (_, t_ns, topic, sent), rec in zip(out, msgs, strict=True):
        shift = EPOCH_MS - first
        assert t_ns == EPOCH + (rec["ts"] - first) * 1_000_000
        assert sent["ts"] == rec["ts"] + shift == t_ns // 1_000_000
        assert list(sent) == list(rec)  # key order kept
        if topic.startswith("orderbook"):
            assert sent["cts"] - sent["ts"] == rec["cts"] - rec["ts"]
            assert sent["data"] == rec["data"]
        elif topic.startswith("publicTrade"):
            assert [e["T"] - sent["ts"] for e in sent["data"]] == [e["T"] - rec["ts"] for e in rec["data"]]
            assert [{**e, "T": 0} for e in sent["data"]] == [{**e, "T": 0} for e in rec["data"]]
        elif topic.startswith("kline"):
            for e, r in zip(sent["data"], rec["data"], strict=True):
                assert e["timestamp"] == r["timestamp"] + shift
                # start/end move by whole intervals: the candle keeps its place around the new time
                assert (e["start"] - r["start"]) % 60_000 == 0 and e["end"] - e["start"] == r["end"] - r["start"]
                assert (
                    interval_start("1", e["timestamp"]) - e["start"] == interval_start("1", r["timestamp"]) - r["start"]
                )
                assert {k: v for k, v in e.items() if k not in ("start", "end", "timestamp")} == {
                    k: v for k, v in r.items() if k not in ("start", "end", "timestamp")
                }
        else:
            nft, rnft = int(sent["data"].get("nextFundingTime", 0)), int(rec["data"].get("nextFundingTime", 0))
            if rnft:
                assert nft % (8 * 3_600_000) == 0 and 0 < nft - sent["ts"] <= 8 * 3_600_000
            assert {k: v for k, v in sent["data"].items() if k != "nextFundingTime"} == {
                k: v for k, v in rec["data"].items() if k != "nextFundingTime"
            }
    # The recording itself is never touched by the shifting.
    assert model.recording.msgs[0].raw == msgs[0]


def test_ticker_snapshot_is_the_recorded_ticker_merged_with_its_deltas() -> None:
    model = replay(loop=False)
    assert model.ticker_snapshot() is None
    merged: dict[str, Any] = {}
    out: list[Raw] = []
    model.advance(EPOCH + 12 * SEC, out)
    for _, _, topic, sent in out:
        if topic.startswith("tickers"):
            merged = dict(sent["data"]) if sent["type"] == "snapshot" else merged | sent["data"]
    assert model.ticker_snapshot() == merged and list(merged)[:3] == ["symbol", "tickDirection", "price24hPcnt"]
    model.set_price(Decimal("70000"))
    snap = model.ticker_snapshot()
    assert snap is not None and Decimal(snap["bid1Price"]) > Decimal("69000")
    assert snap["volume24h"] == merged["volume24h"]


def test_trades_update_the_model() -> None:
    model = replay(loop=False)
    model.advance(EPOCH + 3600 * SEC)
    trades = [e for m in recorded() if m["topic"].startswith("publicTrade") for e in m["data"]]
    assert len(model.trades) == len(trades)
    last = model.trades[-1]
    assert model.prices.fmt(last.tick) == trades[-1]["p"] and last.trade_id == trades[-1]["i"]
    assert model.last_tick == last.tick and model.last_direction == trades[-1]["L"]
    assert [t.t_ms for t in model.trades] == sorted(t.t_ms for t in model.trades)
    assert model.last_price() == Decimal(trades[-1]["p"])
    # index and mark are the recorded ticker's, as of its last message
    ticker: dict[str, str] = {}
    for m in recorded():
        if m["topic"].startswith("tickers"):
            ticker |= m["data"]
    assert model.mark_price() == Decimal(ticker["markPrice"]) != model.last_price()
    assert model.index_price() == Decimal(ticker["indexPrice"]) != model.mark_price()
    now_ms = EPOCH_MS + 3600 * 1000
    candles = model.candles.klines("1", EPOCH_MS, now_ms, 100, now_ms)
    assert sum(c.volume for c in candles) == sum(model.sizes.to_count(Decimal(t["v"])) for t in trades)


@pytest.mark.parametrize("rate", [1.0, 7.5, 100.0, 1000.0])
def test_rate_mode_releases_exactly_rate_messages_a_second(rate: float) -> None:
    model = replay(replay_rate=rate)
    out: list[Raw] = []
    for seconds in (0, 0.5, 1, 2.25, 10):
        t = EPOCH + int(seconds * SEC)
        model.advance(t, out)
        assert len(out) == int(seconds * rate) + 1  # message k (from 0) is due at epoch + k / rate
    assert all(e[1] == EPOCH + int(k * 1e9 / rate) for k, e in enumerate(out))
    assert all(e[3]["ts"] == e[1] // 1_000_000 for e in out)


@pytest.mark.parametrize("speed", [0.5, 2.0, 10.0])
def test_speed_scales_the_recorded_timing(speed: float) -> None:
    msgs = recorded()
    first, last = msgs[0]["ts"], msgs[-1]["ts"]
    model = replay(speed=speed, loop=False)
    out: list[Raw] = []
    half = EPOCH + int((last - first) * 1_000_000 / speed / 2)
    model.advance(half, out)
    assert len(out) == sum(1 for m in msgs if EPOCH + int((m["ts"] - first) * 1_000_000 / speed) <= half)
    model.advance(EPOCH + int((last - first) * 1_000_000 / speed), out)
    assert len(out) == len(msgs)
    assert [e[1] for e in out] == [EPOCH + int((m["ts"] - first) * 1_000_000 / speed) for m in msgs]


def test_without_loop_the_stream_ends() -> None:
    model = replay(loop=False)
    model.advance(EPOCH + 3600 * SEC)
    book = model_levels(model)
    assert model.schedule.next_time() is None
    out: list[Raw] = []
    model.advance(EPOCH + 7200 * SEC, out)
    assert out == [] and model_levels(model) == book and model.now_ns == EPOCH + 7200 * SEC


def test_loop_starts_again_with_the_timeline_going_on() -> None:
    msgs = recorded()
    n, first = len(msgs), msgs[0]["ts"]
    duration_ns = (msgs[-1]["ts"] - first) * 1_000_000
    model = replay(loop=True)
    out: list[Raw] = []
    model.advance(EPOCH + 3 * duration_ns, out)
    assert n * 2 < len(out) < n * 4
    second = out[n]
    assert second[2] == msgs[0]["topic"] and second[3]["type"] == "snapshot"
    # Pass 2 starts one average gap after the end of pass 1.
    assert second[1] == EPOCH + duration_ns + duration_ns // (n - 1)
    assert [e[1] for e in out] == sorted(e[1] for e in out)
    assert [e[3]["ts"] for e in out] == sorted(e[3]["ts"] for e in out)
    # The same content each pass (only times move).
    for again, once in zip(out[n : 2 * n], out[:n], strict=True):
        assert again[2] == once[2]
        if again[2].startswith("orderbook"):
            assert again[3]["data"] == once[3]["data"]
        elif again[2].startswith("publicTrade"):
            assert [{**e, "T": 0} for e in again[3]["data"]] == [{**e, "T": 0} for e in once[3]["data"]]
    assert_book_sane(model)
    # Rate mode loops by count.
    rated = replay(replay_rate=n)  # one pass a second
    out = []
    rated.advance(EPOCH + 2 * SEC, out)
    assert len(out) == 2 * n + 1 and out[n][3]["type"] == "snapshot" and out[2 * n][2] == msgs[0]["topic"]


def test_loop_replays_book_content_identically_each_pass() -> None:
    msgs = recorded()
    n = len(msgs)
    model = replay(loop=True, replay_rate=1000.0)
    out: list[Raw] = []
    model.advance(EPOCH + int(2 * n / 1000 * SEC), out)
    books = [e for e in out if e[2].startswith("orderbook")]
    per_pass = sum(1 for m in msgs if m["topic"].startswith("orderbook"))
    assert [e[3]["data"] for e in books[:per_pass]] == [e[3]["data"] for e in books[per_pass : 2 * per_pass]]


def test_set_price_shifts_the_book_and_every_later_price() -> None:
    model = replay(loop=False)
    model.advance(EPOCH + 5 * SEC)
    before_bid, before_ask = model.book.bids.best_tick(), model.book.asks.best_tick()
    assert before_bid is not None and before_ask is not None
    model.set_price(Decimal("70000"))
    offset = model.prices.to_count(Decimal("70000")) - before_ask
    assert model.book.asks.best_tick() == model.prices.to_count(Decimal("70000"))
    assert model.book.bids.best_tick() == before_bid + offset
    assert model.mark_price() == Decimal("70000")
    assert_book_sane(model)

    # A client that had the book before the jump gets a fresh one from the publisher's snapshot;
    # from there, the shifted deltas keep it equal to the model's book.
    client = ClientBook()
    client.bids, client.asks = model_levels(model)
    all_msgs = recorded()
    msgs = {(m["topic"], m["ts"] - all_msgs[0]["ts"] + EPOCH_MS): m for m in all_msgs}
    seen: set[str] = set()
    out: list[Raw] = []
    model.advance(EPOCH + 3600 * SEC, out)
    for _, _, topic, sent in out:
        rec = msgs[(topic, sent["ts"])]
        seen.add(topic.split(".")[0])
        if topic.startswith("orderbook"):
            client.apply(sent)
            for side in ("b", "a"):
                assert [Decimal(p) for p, _ in sent["data"][side]] == [
                    Decimal(p) + model.prices.decimal(offset) for p, _ in rec["data"][side]
                ]
                assert [s for _, s in sent["data"][side]] == [s for _, s in rec["data"][side]]
        elif topic.startswith("publicTrade"):
            assert [Decimal(e["p"]) for e in sent["data"]] == [
                Decimal(e["p"]) + model.prices.decimal(offset) for e in rec["data"]
            ]
        elif topic.startswith("kline"):
            for e, r in zip(sent["data"], rec["data"], strict=True):
                for key in ("open", "high", "low", "close"):
                    assert Decimal(e[key]) == Decimal(r[key]) + model.prices.decimal(offset)
                assert e["volume"] == r["volume"]
        else:
            for key in ("lastPrice", "markPrice", "bid1Price", "ask1Price", "highPrice24h"):
                if rec["data"].get(key):
                    assert Decimal(sent["data"][key]) == Decimal(rec["data"][key]) + model.prices.decimal(offset)
            for key in ("volume24h", "turnover24h", "bid1Size", "price24hPcnt"):
                assert sent["data"].get(key) == rec["data"].get(key)
    assert seen == {"orderbook", "publicTrade", "kline", "tickers"}
    assert (client.bids, client.asks) == model_levels(model)
    last_recorded = next(e for m in reversed(recorded()) if m["topic"].startswith("publicTrade") for e in m["data"])
    assert model.last_tick == model.prices.to_count(Decimal(last_recorded["p"])) + offset
    assert_book_sane(model)


def test_set_price_far_down_drops_levels_at_or_below_zero() -> None:
    model = replay(loop=False)
    model.advance(EPOCH + SEC)
    model.set_price(Decimal("0.30"))  # best ask at 3 ticks: most bids would be <= 0
    assert model.book.asks.best_tick() == 3
    assert all(t > 0 for t, _ in model.book.bids.top(1000))
    out: list[Raw] = []
    model.advance(EPOCH + 3600 * SEC, out)
    assert_book_sane(model)
    for event in out:
        if event[2].startswith("orderbook"):
            assert all(Decimal(p) > 0 for side in ("b", "a") for p, _ in event[3]["data"][side])


def test_same_file_and_config_same_messages_and_pickled_copies_carry_on_identically() -> None:
    a, b = replay(), replay()
    out_a: list[Raw] = []
    out_b: list[Raw] = []
    a.advance(EPOCH + 7 * SEC, out_a)
    for t in [*range(0, 7 * SEC, SEC // 3), 7 * SEC]:  # any stepping gives the same messages
        b.advance(EPOCH + t, out_b)
    assert out_a == out_b
    data = pickle.dumps(a)
    assert len(data) < SAMPLE.stat().st_size // 4  # the recording is not shipped, only its name
    c = pickle.loads(data)
    out_a, out_c = [], []
    a.advance(EPOCH + 100 * SEC, out_a)
    c.advance(EPOCH + 100 * SEC, out_c)
    assert out_a == out_c and model_levels(a) == model_levels(c) and list(a.trades) == list(c.trades)


def test_pickled_copy_refuses_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(SAMPLE.read_bytes())
    data = pickle.dumps(replay(path))
    path.write_bytes(SAMPLE.read_bytes().replace(b'"0.0', b'"0.1'))
    with pytest.raises(ValueError, match="changed"):
        pickle.loads(data)


def test_freeze_holds_the_book_and_thaw_catches_up_with_the_recording() -> None:
    model = replay(loop=True)
    model.advance(EPOCH + 2 * SEC)
    model.frozen = True
    model.schedule.skip_to(EPOCH + 2 * SEC)  # what Markets.freeze does
    held = model_levels(model)
    out: list[Raw] = []
    model.advance(EPOCH + 40 * SEC, out)
    assert out == [] and model_levels(model) == held
    model.frozen = False
    model.schedule.skip_to(EPOCH + 40 * SEC)
    model.advance(EPOCH + 40 * SEC, out)
    assert out == []
    reference = replay(loop=True)
    reference.advance(EPOCH + 40 * SEC)
    assert model_levels(model) == model_levels(reference)
    assert model.book_u(50) == reference.book_u(50)
    # Deltas go on applying cleanly from there.
    out_m: list[Raw] = []
    out_r: list[Raw] = []
    model.advance(EPOCH + 45 * SEC, out_m)
    reference.advance(EPOCH + 45 * SEC, out_r)
    assert out_m == out_r and model_levels(model) == model_levels(reference)


def test_build_model_picks_the_replay_source() -> None:
    i = inst()
    cfg = SymbolMarketConfig(i.symbol, i.category, source="replay", replay_file=str(SAMPLE))
    model = build_model(i, cfg, 1, EPOCH)
    assert isinstance(model, ReplayMarket)
    model.advance(EPOCH)
    assert model.book.asks.best_tick() is not None and model.book_u(1000) > 0


# -- recordings of other symbols and bad files -----------------------------------------


def test_only_the_instrument_symbol_is_loaded(tmp_path: Path) -> None:
    trade = {"T": 1, "s": "ETHUSDT", "S": "Buy", "v": "1.00", "p": "3500.00", "L": "PlusTick", "i": "x", "BT": False}
    eth = {"topic": "publicTrade.ETHUSDT", "type": "snapshot", "ts": 1, "data": [trade]}
    lines = SAMPLE.read_bytes().splitlines()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([lines[0], orjson.dumps(eth), b'{"success":true,"op":"subscribe"}', b"", *lines[1:]]))
    btc = replay(path, loop=False)
    assert len(btc.recording.msgs) == len(lines)
    only_eth = replay(path, symbol="ETHUSDT", loop=False)
    out: list[Raw] = []
    only_eth.advance(EPOCH, out)
    assert [e[2] for e in out] == ["publicTrade.ETHUSDT"] and only_eth.last_tick == 350_000
    assert only_eth.book.asks.best_tick() is None


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            [b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}', b"{not json"],
            r"rec\.jsonl:2: not JSON",
        ),
        ([b'{"type":"snapshot","ts":1,"data":[]}'], r"rec\.jsonl:1: no 'topic'"),
        ([b'{"topic":"liquidation.BTCUSDT","ts":1,"data":{}}'], r"rec\.jsonl:1: unknown topic kind 'liquidation'"),
        ([b"[1, 2]"], r"rec\.jsonl:1: expected a JSON object"),
        (
            [b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":2}}'],
            r"rec\.jsonl:1: the first orderbook\.50\.BTCUSDT message is a delta",
        ),
        (
            [b'{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"b":[["65000.05","1"]],"a":[],"u":1}}'],
            r"rec\.jsonl:1: data\.b price: 65000\.05 is not a multiple of 0\.10",
        ),
        (
            [b'{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"b":[["x","1"]],"a":[],"u":1}}'],
            r"rec\.jsonl:1: data\.b price: not a decimal number",
        ),
        ([b'{"topic":"orderbook.50.BTCUSDT","type":"snap","ts":1,"data":{}}'], r"rec\.jsonl:1: orderbook type"),
        ([b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","data":[]}'], r"rec\.jsonl:1: ts: expected an integer"),
        (
            [b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"S":"buy","p":"1","v":"1"}]}'],
            r"rec\.jsonl:1: data\[0\]\.S must be",
        ),
        ([b'{"topic":"kline.2.BTCUSDT","ts":1,"data":[]}'], r"rec\.jsonl:1: bad kline topic"),
        (
            [b'{"topic":"publicTrade.ETHUSDT","type":"snapshot","ts":1,"data":[]}'],
            r"rec\.jsonl: no message for BTCUSDT",
        ),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, lines: list[bytes], error: str) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ValueError, match=error):
        replay(path)


def test_missing_file_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the replay file"):
        replay(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="replay_rate must be > 0"):
        replay(replay_rate=0.0)
    with pytest.raises(ValueError, match="speed must be > 0"):
        replay(speed=0.0)
    i = inst()
    with pytest.raises(ValueError, match="needs replay_file"):
        ReplayMarket(i, SymbolMarketConfig(i.symbol, i.category, source="replay"), 1, EPOCH)


def test_kline_starts_move_by_whole_intervals() -> None:
    day = 86_400_000
    assert shift_candle_start("1", 60_000, 61_000, 61_000 + 3 * 60_000 + 59_000) == 60_000 + 4 * 60_000
    assert shift_candle_start("D", 0, 5, 10 * day + 5) == 10 * day
    # A just-confirmed candle stays the one before the new time's candle.
    assert shift_candle_start("5", 0, 300_000, 10 * 300_000 + 7) == 9 * 300_000
    # Months have their own length.
    jan_2024, mar_2024 = 1_704_067_200_000, 1_709_251_200_000
    assert shift_candle_start("M", jan_2024, jan_2024 + 5, mar_2024 + 5) == mar_2024


# -- the CSV converter --------------------------------------------------------------------

BYBIT_CSV = """timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional
1717200000.1234,BTCUSDT,Buy,0.001,67000,PlusTick,a1,6.7e+09,0.001,67
1717200000.1234,BTCUSDT,Buy,0.003,67000.5,PlusTick,a2,2.0e+10,0.003,201.0015
1717200000.2,ETHUSDT,Buy,1,3500,PlusTick,e1,3.5e+11,1,3500
1717200001.5,BTCUSDT,Sell,0.002,67001.5,ZeroMinusTick,b1,1.3e+10,0.002,134.003
"""
SIMPLE_CSV = """timestamp_ms,side,price,size
1717200000100,buy,67000.0,0.005
1717200000500,sell,66999.9,0.010
1717200000100,buy,67000.1,0.002
"""


def test_csv_converter_bybit_history_format(tmp_path: Path) -> None:
    src, dst = tmp_path / "trades.csv", tmp_path / "trades.jsonl"
    src.write_text(BYBIT_CSV)
    assert csv_convert.convert(src, dst, "BTCUSDT", "linear") == 2
    msgs = [orjson.loads(line) for line in dst.read_bytes().splitlines()]
    assert [m["ts"] for m in msgs] == [1717200000123, 1717200001500]
    assert [len(m["data"]) for m in msgs] == [2, 1]  # one taker order's fills share a message
    assert list(msgs[0]) == ["topic", "type", "ts", "data"] and msgs[0]["topic"] == "publicTrade.BTCUSDT"
    first = msgs[0]["data"][0]
    assert first == {"T": 1717200000123, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "67000", "L": "PlusTick",
                     "i": "a1", "BT": False, "RPI": False, "seq": 1}  # fmt: skip
    assert [e["seq"] for m in msgs for e in m["data"]] == [1, 2, 3]
    # A newest-first file (as some of Bybit's daily files are) gives the same recording.
    header, *rows = BYBIT_CSV.splitlines()
    newest_first = tmp_path / "newest-first.csv"
    newest_first.write_text("\n".join([header, *reversed(rows)]) + "\n")
    assert csv_convert.convert(newest_first, tmp_path / "nf.jsonl", "BTCUSDT") == 2
    assert (tmp_path / "nf.jsonl").read_bytes() == dst.read_bytes()
    # ... and it replays.
    model = replay(dst, loop=False)
    out: list[Raw] = []
    model.advance(EPOCH + 10 * SEC, out)
    assert len(out) == 2 and out[1][1] == EPOCH + (1500 - 123) * 1_000_000
    assert [t.tick for t in model.trades] == [670_000, 670_005, 670_015]
    assert model.last_tick == 670_015 and model.last_direction == "ZeroMinusTick"
    assert model.book.bids.best_tick() is None  # a trades-only recording has no book


def test_csv_converter_simple_format_gz_spot_and_scales(tmp_path: Path) -> None:
    src, dst = tmp_path / "trades.csv.gz", tmp_path / "trades.jsonl"
    src.write_bytes(gzip.compress(SIMPLE_CSV.encode()))
    n = csv_convert.convert(src, dst, "BTCUSDT", "spot", price_scale=2, size_scale=6)
    assert n == 2
    msgs = [orjson.loads(line) for line in dst.read_bytes().splitlines()]
    data = [e for m in msgs for e in m["data"]]
    assert [e["T"] for e in data] == [1717200000100, 1717200000100, 1717200000500]  # sorted, ties in file order
    assert [e["p"] for e in data] == ["67000.00", "67000.10", "66999.90"]
    assert [e["v"] for e in data] == ["0.005000", "0.002000", "0.010000"]
    assert [e["S"] for e in data] == ["Buy", "Buy", "Sell"]
    assert list(data[0]) == ["i", "T", "p", "v", "S", "s", "BT", "RPI", "seq"]  # spot shape: no L
    assert len({e["i"] for e in data}) == 3
    # Deterministic: the same CSV gives the same bytes.
    again = tmp_path / "again.jsonl"
    csv_convert.convert(src, again, "BTCUSDT", "spot", price_scale=2, size_scale=6)
    assert again.read_bytes() == dst.read_bytes()
    model = replay(dst, category="spot", loop=False)
    model.advance(EPOCH + SEC)
    assert [t.direction for t in model.trades] == ["ZeroPlusTick", "PlusTick", "MinusTick"]


def test_csv_converter_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "trades.csv", tmp_path / "out.jsonl"
    src.write_text(BYBIT_CSV)
    assert csv_convert.main([str(src), str(dst), "--symbol", "BTCUSDT"]) == 0
    assert len(dst.read_bytes().splitlines()) == 2
    with pytest.raises(SystemExit) as exc:
        csv_convert.main(["--help"])
    assert exc.value.code == 0
    assert "publicTrade" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        csv_convert.main([str(src)])  # missing arguments
    assert exc.value.code == 2

    bad = tmp_path / "bad.csv"
    cases = {
        "a,b,c\n1,2,3\n": "unknown header",
        "timestamp_ms,side,price,size\n1717200000100,buy,abc,0.1\n": "bad.csv:2: price is not a number",
        "timestamp_ms,side,price,size\n1717200000100,long,1,0.1\n": "bad.csv:2: side must be Buy or Sell",
        "timestamp_ms,side,price,size\n1717200000100,buy,1\n": "bad.csv:2: 3 fields",
        "timestamp_ms,side,price,size\nyesterday,buy,1,1\n": "bad.csv:2: timestamp is not a number",
        "timestamp_ms,side,price,size\n1,buy,-1,1\n": "bad.csv:2: price must be a positive number",
        "": "empty file",
        "timestamp_ms,side,price,size\n": "no trade of BTCUSDT",
    }
    for content, error in cases.items():
        bad.write_text(content)
        assert csv_convert.main([str(bad), str(dst), "--symbol", "BTCUSDT"]) == 2
        assert error in capsys.readouterr().err
    assert csv_convert.main([str(tmp_path / "missing.csv"), str(dst), "--symbol", "BTCUSDT"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_recording_cache_keeps_only_the_most_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived process that loads many files must not keep them all decoded."""
    monkeypatch.setattr(recording_module, "_CACHE", OrderedDict())
    size = recording_module.CACHE_SIZE
    paths = [tmp_path / f"rec{n}.jsonl" for n in range(size + 3)]
    for p in paths:
        p.write_bytes(SAMPLE.read_bytes())
    first = {p: recording_module.load_recording(p, inst()) for p in paths[:size]}
    assert recording_module.load_recording(paths[0], inst()) is first[paths[0]]  # a hit: and now the most recent
    for p in paths[size:]:
        recording_module.load_recording(p, inst())
    assert len(recording_module._CACHE) == size
    assert recording_module.load_recording(paths[0], inst()) is first[paths[0]]  # kept: used recently
    assert recording_module.load_recording(paths[1], inst()) is not first[paths[1]]  # forgotten, decoded again
