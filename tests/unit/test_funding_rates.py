"""Funding rates (market/funding.py): Bybit's formula, the premium samples, tickers and history."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from bybit_mock import AccountConfig, ConfigError, MockExchangeConfig
from bybit_mock.bybit.shapes import instrument
from bybit_mock.config import InstrumentConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.instruments import default_instruments
from bybit_mock.market.config import SymbolMarketConfig
from bybit_mock.market.funding import FundingTrack, funding_rate_of, past_rate
from bybit_mock.market.synthetic import SyntheticMarket
from bybit_mock.market.ticker import ticker_fields
from tests.unit.helpers import FixedClock

D = Decimal
EPOCH_MS = 1_700_006_400_000  # a funding time (a multiple of 8 h and of 60 s)


def btcusdt(interval_s: int = 28800) -> InstrumentConfig:
    inst = default_instruments()[0]
    assert (inst.category, inst.symbol) == ("linear", "BTCUSDT")
    return InstrumentConfig(**{**inst.__dict__, "funding_interval_s": interval_s})


@pytest.mark.parametrize(
    ("premium", "rate"),
    [
        ("0", "0.0001"),  # no premium: the interest part
        ("0.0003", "0.0001"),  # within the clamp: the interest part again
        ("0.001", "0.0005"),  # 0.001 + clamp(-0.0009) = 0.001 - 0.0005
        ("-0.002", "-0.0015"),  # -0.002 + clamp(0.0021) = -0.002 + 0.0005
        ("0.0012345678", "0.00073457"),  # rounded to 8 decimals, as Bybit shows rates
        ("0.01", "0.005"),  # 0.0095, capped at fundingCap
        ("-0.02", "-0.005"),
    ],
)
def test_rate_is_premium_plus_clamped_interest_then_capped(premium: str, rate: str) -> None:
    assert funding_rate_of(D(premium)) == D(rate)


def test_track_averages_the_interval_samples_and_settles_at_the_funding_time() -> None:
    track = FundingTrack(seed=7, interval_s=60, epoch_ms=EPOCH_MS)
    assert track.samples_per_interval == 60
    boundary = EPOCH_MS + 60_000
    assert track.due == (EPOCH_MS + 1000) * 1_000_000  # one sample a second
    for _ in range(30):  # a premium index of 0.2 %
        track.sample(D("0.002"))
    # predicted from the samples so far: P 0.002 -> 0.002 - 0.0005
    assert track.predicted(D(0)) == D("0.0015")
    assert track.settled_rate(boundary) is None  # not reached
    for _ in range(30):  # then none
        track.sample(D(0))
    # the average premium is 0.001: 0.001 + clamp(0.0001 - 0.001) = 0.0005
    assert track.settled_rate(boundary) == D("0.0005")
    assert track.due == (boundary + 1000) * 1_000_000
    assert track.predicted(D("-0.002")) == D("-0.0015")  # no sample yet: the premium now
    assert track.settled_rate(boundary + 1) is None  # not a funding time


def test_rates_before_the_epoch_are_a_seeded_past() -> None:
    track = FundingTrack(seed=7, interval_s=28800, epoch_ms=EPOCH_MS)
    past = [track.settled_rate(EPOCH_MS - k * 28_800_000) for k in range(20)]
    assert past == [past_rate(7, EPOCH_MS - k * 28_800_000) for k in range(20)]
    assert D("0.0001") in past and len(set(past)) > 2  # often the base rate, not always
    assert all(r is not None and abs(r) <= D("0.005") for r in past)
    assert FundingTrack(seed=8, interval_s=28800, epoch_ms=EPOCH_MS).settled_rate(EPOCH_MS) == past_rate(8, EPOCH_MS)


def test_copies_sample_the_same_market_whatever_their_advance_steps() -> None:
    inst = btcusdt(interval_s=1)
    epoch_ns = EPOCH_MS * 1_000_000
    a = SyntheticMarket(inst, SymbolMarketConfig("BTCUSDT"), 11, epoch_ns)
    b = SyntheticMarket(inst, SymbolMarketConfig("BTCUSDT"), 11, epoch_ns)
    for model in (a, b):  # an index that stands still, so the premium follows the trades
        model.index_price = lambda: D(65000)  # type: ignore[method-assign]
    for step in range(1, 351):  # 10 ms steps...
        a.advance(epoch_ns + step * 10_000_000)
    b.advance(epoch_ns + 3_500_000_000)  # ...or one jump of 3.5 s
    ta, tb = a.funding_track, b.funding_track
    assert ta is not None and tb is not None
    assert sorted(ta.settled) == [EPOCH_MS + 1000, EPOCH_MS + 2000, EPOCH_MS + 3000]
    assert ta.settled == tb.settled
    assert (ta.total, ta.count) == (tb.total, tb.count) and ta.count == 30  # 60 a second
    assert ta.total != 0  # the trades moved the mark away from the index
    assert a.funding_rate() == b.funding_rate()


def test_ticker_funding_fields_follow_the_interval() -> None:
    model = SyntheticMarket(btcusdt(), SymbolMarketConfig("BTCUSDT"), 11, EPOCH_MS * 1_000_000)
    fields = ticker_fields(model, EPOCH_MS + 5)
    assert (fields["fundingRate"], fields["fundingCap"]) == ("0.0001", "0.005")
    assert (fields["nextFundingTime"], fields["fundingIntervalHour"]) == (str(EPOCH_MS + 28_800_000), "8")
    fast = SyntheticMarket(btcusdt(5), SymbolMarketConfig("BTCUSDT"), 11, EPOCH_MS * 1_000_000)
    fields = ticker_fields(fast, EPOCH_MS + 7_001)
    assert (fields["nextFundingTime"], fields["fundingIntervalHour"]) == (str(EPOCH_MS + 10_000), "0.001389")


def history_exchange(interval_s: int) -> tuple[Exchange, FixedClock]:
    clock = FixedClock()
    clock.now = EPOCH_MS + 500
    account = AccountConfig("k", "s", {"USDT": D(1000)})
    config = MockExchangeConfig(accounts=[account], instruments=[btcusdt(interval_s), *default_instruments()[2:3]])
    return Exchange(config, clock=clock), clock


def test_funding_history_lists_settled_rates_newest_first() -> None:
    ex, clock = history_exchange(1)
    clock.now = EPOCH_MS + 3_200
    query = {"category": "linear", "symbol": "BTCUSDT", "limit": "5"}
    code, raw = ex.apply_batch([("market_query", ("/v5/market/funding/history", query))])[0]
    assert code == 0
    result = orjson.loads(raw)
    assert result["category"] == "linear"
    times = [int(i["fundingRateTimestamp"]) for i in result["list"]]
    # 3 settled since the start (sampled: the base rate, mark == index), then the seeded past
    assert times == [EPOCH_MS + 3000, EPOCH_MS + 2000, EPOCH_MS + 1000, EPOCH_MS, EPOCH_MS - 1000]
    assert [i["fundingRate"] for i in result["list"][:3]] == ["0.0001"] * 3
    model = ex.markets.get("linear", "BTCUSDT")
    assert model is not None and model.settled_funding_rate(EPOCH_MS) is not None
    assert D(result["list"][3]["fundingRate"]) == model.settled_funding_rate(EPOCH_MS)
    assert set(result["list"][0]) == {"symbol", "fundingRate", "fundingRateTimestamp"}
    window = query | {"startTime": str(EPOCH_MS + 1000), "endTime": str(EPOCH_MS + 2500)}
    code, raw = ex.apply_batch([("market_query", ("/v5/market/funding/history", window))])[0]
    assert [i["fundingRateTimestamp"] for i in orjson.loads(raw)["list"]] == [
        str(EPOCH_MS + 2000),
        str(EPOCH_MS + 1000),
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"category": "spot", "symbol": "BTCUSDT"},
        {"category": "linear"},
        {"category": "linear", "symbol": "BTCUSDT", "startTime": "1"},
        {"category": "linear", "symbol": "BTCUSDT", "limit": "201"},
    ],
)
def test_funding_history_refuses_bad_parameters(query: dict[str, str]) -> None:
    ex, _ = history_exchange(28800)
    code, _msg = ex.apply_batch([("market_query", ("/v5/market/funding/history", query))])[0]
    assert code == 10001


TOML = """
[[instruments]]
symbol = "BTCUSDT"
base_coin = "BTC"
quote_coin = "USDT"
price = 65000
tick_size = "0.10"
qty_step = "0.001"
min_qty = "0.001"
max_qty = "1190"
funding_interval_s = 5
"""


def test_toml_funding_interval_drives_tickers_and_history(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(TOML)
    (inst,) = MockExchangeConfig.from_toml(path).instruments
    assert inst.funding_interval_s == 5
    assert instrument(inst)["fundingInterval"] == 1  # minutes, at least 1
    assert instrument(btcusdt())["fundingInterval"] == 480
    clock = FixedClock()
    clock.now = EPOCH_MS + 12_000
    ex = Exchange(MockExchangeConfig.from_toml(path), clock=clock)
    clock.now = EPOCH_MS + 27_000
    query = {"category": "linear", "symbol": "BTCUSDT", "limit": "3"}
    code, raw = ex.apply_batch([("market_query", ("/v5/market/funding/history", query))])[0]
    assert code == 0
    stamps = [int(i["fundingRateTimestamp"]) for i in orjson.loads(raw)["list"]]
    assert stamps == [EPOCH_MS + 25_000, EPOCH_MS + 20_000, EPOCH_MS + 15_000]


@pytest.mark.parametrize(("value", "fragment"), [("0", "must be > 0"), ('"5s"', "expected an integer")])
def test_toml_funding_interval_must_be_positive_seconds(tmp_path: Path, value: str, fragment: str) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(TOML.replace("funding_interval_s = 5", f"funding_interval_s = {value}"))
    with pytest.raises(ConfigError, match=fragment):
        MockExchangeConfig.from_toml(path)
