"""Public market streams over real sockets: shapes, order-book consistency, rates, control."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from bybit_mock import MockExchange
from tests.e2e.streams import apply_book, collect, subscribed


async def test_orderbook_snapshot_then_consistent_deltas(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("linear"), "orderbook.50.BTCUSDT") as ws:
        msgs = await collect(ws, 1.5)
    assert msgs[0]["type"] == "snapshot" and len(msgs[0]["data"]["b"]) == 50
    assert all(m["type"] == "delta" for m in msgs[1:]) and len(msgs) > 50
    book: dict[str, dict[str, str]] = {}
    for prev, msg in zip([None, *msgs], msgs, strict=False):
        apply_book(book, msg)
        assert msg["topic"] == "orderbook.50.BTCUSDT" and msg["data"]["s"] == "BTCUSDT"
        assert isinstance(msg["ts"], int) and isinstance(msg["cts"], int) and msg["cts"] <= msg["ts"]
        if prev is not None:
            assert msg["data"]["u"] == prev["data"]["u"] + 1
            assert msg["data"]["seq"] > prev["data"]["seq"]
        assert len(book["b"]) == 50 and len(book["a"]) == 50
        assert max(Decimal(p) for p in book["b"]) < min(Decimal(p) for p in book["a"])


async def test_level_one_is_snapshots_with_ts_first(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("spot"), "orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT") as ws:
        msgs = await collect(ws, 0.5)
    level1 = [m for m in msgs if m["topic"] == "orderbook.1.BTCUSDT"]
    assert len(level1) > 20 and all(m["type"] == "snapshot" for m in level1)
    assert all(len(m["data"]["b"]) == 1 == len(m["data"]["a"]) for m in level1)
    assert all(list(m) == ["topic", "ts", "type", "data", "cts"] for m in msgs)  # spot: ts first


async def test_trades_and_klines(bybit_mock: MockExchange) -> None:
    async with subscribed(bybit_mock.ws_public_url("linear"), "publicTrade.ETHUSDT", "kline.1.ETHUSDT") as ws:
        msgs = await collect(ws, 2.2)
    trades = [t for m in msgs if m["topic"] == "publicTrade.ETHUSDT" for t in m["data"]]
    assert len(trades) > 20
    assert {t["s"] for t in trades} == {"ETHUSDT"} and {t["S"] for t in trades} == {"Buy", "Sell"}
    assert [t["T"] for t in trades] == sorted(t["T"] for t in trades)
    assert len({t["i"] for t in trades}) == len(trades)
    klines = [m for m in msgs if m["topic"] == "kline.1.ETHUSDT"]
    assert len(klines) >= 2
    last = klines[-1]["data"][-1]
    assert last["interval"] == "1" and last["confirm"] is False and last["end"] == last["start"] + 59_999
    assert Decimal(last["low"]) <= Decimal(last["close"]) <= Decimal(last["high"])
    assert "_start" not in last  # tesser fields only when asked for


async def test_price_jump_reaches_the_stream_and_the_engine(bybit_mock: MockExchange) -> None:
    state = bybit_mock.state
    async with subscribed(bybit_mock.ws_public_url("linear"), "orderbook.1.BTCUSDT") as ws:
        await collect(ws, 0.2)
        state.freeze_market()
        state.set_mark_price("BTCUSDT", "70000")
        msgs = await collect(ws, 0.3)
    assert msgs, "subscribers are re-sent a snapshot after a jump"
    assert msgs[-1]["data"]["a"][0][0] == "70000.00"
    state.set_position(bybit_mock.api_key, "BTCUSDT", "Buy", "1", "69000")
    (pos,) = state.positions(bybit_mock.api_key)
    assert pos.mark_price == Decimal("70000.00") and pos.unrealised_pnl == Decimal("1000")


async def test_delivered_rate_is_within_two_percent(custom_mock: MockExchange) -> None:
    # 400 trades/s configured for BTCUSDT: count what arrives in a 2.5 s window.
    async with subscribed(custom_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as ws:
        await collect(ws, 0.3)
        start = time.monotonic()
        msgs = await collect(ws, 2.5)
        elapsed = time.monotonic() - start
    rate = len(msgs) / elapsed
    assert abs(rate - 400) / 400 < 0.02, f"{rate:.1f} msg/s delivered for 400 configured"


async def test_every_worker_publishes_the_same_market(custom_mock: MockExchange) -> None:
    # Two WS workers share the port; several connections land on both. Each runs its own copy
    # of the model, so the same trades (same ids, prices, sizes) must reach everyone.
    async def one() -> dict[int, tuple[str, str, str]]:
        async with subscribed(custom_mock.ws_public_url("linear"), "publicTrade.BTCUSDT") as ws:
            msgs = await collect(ws, 1.0)
        return {t["seq"]: (t["i"], t["p"], t["v"]) for m in msgs for t in m["data"]}

    results = await asyncio.gather(*(one() for _ in range(6)))
    common = set.intersection(*(set(r) for r in results))
    assert len(common) > 100
    for seq in common:
        assert len({r[seq] for r in results}) == 1


async def test_tesser_compat_adds_its_fields(custom_mock: MockExchange) -> None:
    async with subscribed(custom_mock.ws_public_url("linear"), "publicTrade.BTCUSDT", "kline.5.BTCUSDT") as ws:
        msgs = await collect(ws, 1.2)
    trade = next(m for m in msgs if m["topic"] == "publicTrade.BTCUSDT")
    assert trade["_topic"] == "publicTrade.BTCUSDT"
    kline = next(m for m in msgs if m["topic"] == "kline.5.BTCUSDT")["data"][0]
    assert kline["_start"] == kline["start"] and kline["_end"] == kline["end"]


async def test_disabled_stream_is_silent_after_its_snapshot(custom_mock: MockExchange) -> None:
    async with subscribed(custom_mock.ws_public_url("linear"), "publicTrade.ETHUSDT", "orderbook.200.ETHUSDT") as ws:
        msgs = await collect(ws, 0.5)
    assert [m["type"] for m in msgs] == ["snapshot"]  # the book snapshot; no trades, no 200-deltas
