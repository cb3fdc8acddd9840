"""Scripted market-data faults on one worker's ticks, without models or sockets."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from bybit_mock.ws import market_faults
from bybit_mock.ws.fanout import FanOut, Outbox
from bybit_mock.ws.market_faults import MarketFaults, read_u, shift_u
from bybit_mock.ws.publisher import MarketPublisher

BOOK, TRADES, TICKER = "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT"


class Published:
    """The publisher's outgoing side, recorded."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[bytes]]] = []
        self.snapshots: list[tuple[str, str]] = []


def faults(*topics: str, category: str = "linear") -> tuple[MarketFaults, MarketPublisher, Published]:
    loop = asyncio.get_running_loop()
    out = Published()
    box = Outbox(_NoRaw(), "test", lambda reason: None)

    def boxes_of(cat: str, topic: str) -> list[Outbox]:
        return [box] if (cat, topic) in keys else []

    keys = {(category, t) for t in topics}
    publisher = MarketPublisher(loop, FanOut(loop, 1 << 20), boxes_of, lambda c, s: (0.0, 0.0))
    publisher.on_subscribe = lambda cat, topic, b: out.snapshots.append((cat, topic))  # type: ignore[method-assign]
    publisher.fanout.publish_batch = lambda boxes, p: out.batches.append(("held", list(p)))  # type: ignore[method-assign]
    return MarketFaults(publisher, loop, lambda: keys), publisher, out


class _NoRaw:
    def write(self, data: bytes) -> None:
        raise AssertionError("nothing is written in these tests")

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def book(u: int) -> bytes:
    return orjson.dumps({"topic": BOOK, "type": "delta", "ts": 1, "data": {"s": "BTCUSDT", "b": [], "a": [], "u": u}})


def trade(seq: int) -> bytes:
    return orjson.dumps({"topic": TRADES, "data": [{"seq": seq}]})


def run(mf: MarketFaults, batch: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    mf.filter("linear", batch)
    return batch


def test_u_is_read_and_shifted_in_place() -> None:
    assert read_u(book(41)) == 41 and read_u(b"{}") is None
    shifted = shift_u(book(41), -1)
    assert orjson.loads(shifted)["data"]["u"] == 42 and orjson.loads(shifted)["topic"] == BOOK


async def test_targets_follow_the_actions_fields_and_the_trigger_context() -> None:
    mf, _, _ = faults(BOOK, "orderbook.1.BTCUSDT", "orderbook.50.ETHUSDT", TRADES, TICKER)
    gap = {"type": "book_gap"}
    assert mf.targets(gap | {"symbol": "BTCUSDT", "depth": 50}, {}) == [("linear", BOOK)]
    assert len(mf.targets(gap, {})) == 3
    assert mf.targets(gap, {"symbol": "ETHUSDT"}) == [("linear", "orderbook.50.ETHUSDT")]
    assert mf.targets(gap | {"category": "spot"}, {}) == []
    assert mf.targets({"type": "duplicate_trades"}, {}) == [("linear", TRADES)]
    assert mf.targets({"type": "stale", "topic": "tickers.*", "ms": 1}, {}) == [("linear", TICKER)]
    assert "no subscriber" in mf.install({"type": "reorder_trades", "symbol": "DOGEUSDT", "count": 2}, {})


async def test_book_gap_moves_the_offset_the_publisher_subtracts() -> None:
    mf, publisher, _ = faults(BOOK)
    note = mf.install({"type": "book_gap"}, {})
    assert "u skips one" in note and publisher.u_offsets == {("linear", BOOK): -1}
    mf.install({"type": "book_gap"}, {})
    assert publisher.u_offsets == {("linear", BOOK): -2}
    mf.forget("linear", BOOK)  # the last subscriber left: numbering is the model's again
    assert publisher.u_offsets == {} and mf.topics == {}


async def test_book_reset_replaces_the_tick_with_a_snapshot_numbered_1() -> None:
    mf, publisher, out = faults(BOOK)
    mf.install({"type": "book_reset", "symbol": "BTCUSDT"}, {})
    assert run(mf, {BOOK: [book(500), book(501)]}) == {BOOK: []}
    assert out.snapshots == [("linear", BOOK)]  # built by the publisher: 501 - 500 = 1
    assert publisher.u_offsets == {("linear", BOOK): 500}
    assert run(mf, {BOOK: [book(502)]}) == {BOOK: [book(502)]}  # the publisher numbers it 2
    assert mf.topics == {}  # spent; the offset stays until the topic is forgotten


async def test_duplicates_then_normal() -> None:
    mf, _, _ = faults(TRADES)
    mf.install({"type": "duplicate_trades", "count": 3}, {})
    assert run(mf, {TRADES: [trade(1), trade(2)]})[TRADES] == [trade(1), trade(1), trade(2), trade(2)]
    assert run(mf, {TRADES: [trade(3), trade(4)]})[TRADES] == [trade(3), trade(3), trade(4)]
    assert mf.topics == {}


async def test_reorder_across_ticks() -> None:
    mf, _, _ = faults(TRADES)
    mf.install({"type": "reorder_trades", "count": 2}, {})
    assert run(mf, {TRADES: [trade(1)]})[TRADES] == []
    assert run(mf, {TRADES: [trade(2), trade(3)]})[TRADES] == [trade(2), trade(1), trade(3)]
    assert mf.topics == {}


async def test_reorder_lets_held_messages_go_when_the_stream_dries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(market_faults, "HOLD_S", 0.01)
    mf, _, out = faults(TRADES)
    mf.install({"type": "reorder_trades", "count": 3}, {})
    run(mf, {TRADES: [trade(1), trade(2)]})
    await asyncio.sleep(0.05)
    assert out.batches == [("held", [trade(2), trade(1)])]
    assert mf.topics == {}


async def test_stale_silences_one_topic_then_resnapshots_it() -> None:
    mf, _, out = faults(BOOK, TRADES)
    mf.install({"type": "stale", "topic": "orderbook.*", "ms": 30}, {})
    assert run(mf, {BOOK: [book(1)], TRADES: [trade(1)]}) == {BOOK: [], TRADES: [trade(1)]}
    await asyncio.sleep(0.06)
    assert out.snapshots == [("linear", BOOK)]
    assert run(mf, {BOOK: [book(2)]}) == {BOOK: [book(2)]}


async def test_a_recorded_topics_prebuilt_messages_are_renumbered(monkeypatch: pytest.MonkeyPatch) -> None:
    mf, _, _ = faults(BOOK)
    monkeypatch.setattr(mf, "_recorded", lambda key: True)
    mf.install({"type": "book_gap"}, {})
    assert [read_u(p) for p in run(mf, {BOOK: [book(10), book(11)]})[BOOK]] == [11, 12]


def test_nothing_installed_leaves_the_tick_alone() -> None:
    loop = asyncio.new_event_loop()
    try:
        publisher = MarketPublisher(loop, FanOut(loop, 1), lambda c, t: [], lambda c, s: (0.0, 0.0))
        mf = MarketFaults(publisher, loop, lambda: [("linear", BOOK)])
        batch = {BOOK: [book(1)]}
        mf.filter("linear", batch)
        assert batch == {BOOK: [book(1)]}
    finally:
        loop.close()
