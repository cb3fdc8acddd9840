"""A replayed market (the bundled sample recording) over real sockets and REST."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest
from pybit.unified_trading import HTTP

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.market.config import MarketConfig, SymbolMarketConfig
from bybit_mock.market.replay import bundled_sample
from tests.e2e.streams import apply_book, collect, subscribed


@pytest.fixture(scope="module")
def replay_mock() -> Iterator[MockExchange]:
    cfg = MockExchangeConfig.default()
    cfg.market = MarketConfig(
        tesser_compat=True,
        symbols=[SymbolMarketConfig("BTCUSDT", "linear", source="replay", replay_file=str(bundled_sample()))],
    )
    with MockExchange(cfg) as ex:
        yield ex


async def test_replayed_streams_reach_subscribers(replay_mock: MockExchange) -> None:
    recorded_ids = set()
    for line in bundled_sample().read_bytes().splitlines():
        msg = orjson.loads(line)
        if msg.get("topic") == "publicTrade.BTCUSDT":
            recorded_ids.update(t["i"] for t in msg["data"])
    url = replay_mock.ws_public_url("linear")
    async with subscribed(url, "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT") as ws:
        msgs = await collect(ws, 1.5)
    books = [m for m in msgs if m["topic"] == "orderbook.50.BTCUSDT"]
    assert books[0]["type"] == "snapshot" and len(books) > 10
    book: dict[str, dict[str, str]] = {}
    for m in books:
        apply_book(book, m)  # strict: a delete of an unknown level fails
        assert max(Decimal(p) for p in book["b"]) < min(Decimal(p) for p in book["a"])
    trades = [t for m in msgs if m["topic"] == "publicTrade.BTCUSDT" for t in m["data"]]
    assert trades and {t["i"] for t in trades} <= recorded_ids
    assert all(m["_topic"] == m["topic"] for m in msgs if m["topic"] == "publicTrade.BTCUSDT")  # tesser option
    tickers = [m for m in msgs if m["topic"] == "tickers.BTCUSDT"]
    assert tickers[0]["type"] == "snapshot" and all(m["type"] == "delta" for m in tickers[1:])
    # ETHUSDT has no entry: it stays synthetic beside the replayed BTCUSDT.
    async with subscribed(url, "publicTrade.ETHUSDT") as ws:
        assert await collect(ws, 0.5)


def test_rest_answers_from_the_replayed_book(replay_mock: MockExchange) -> None:
    http = HTTP(retry_codes={0})
    http.endpoint = replay_mock.rest_url
    book = http.get_orderbook(category="linear", symbol="BTCUSDT", limit=50)["result"]
    assert len(book["b"]) == 50 and Decimal(book["b"][0][0]) < Decimal(book["a"][0][0])
