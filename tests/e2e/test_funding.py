"""Funding over real sockets: a 2 s funding interval, so a settlement comes within seconds.

pybit reads the funding history, the Funding execution and the SETTLEMENT row; ccxt's
``fetch_funding_rate``, ``fetch_funding_rate_history`` and ``fetch_funding_history`` run
unmodified; a plain websockets client receives the Funding execution and the wallet push.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.instruments import default_instruments

from .conftest import now_ms, pybit_http
from .test_rest_ccxt import ccxt_bybit
from .test_trading_pybit import pushes
from .test_trading_ws import call
from .test_ws import auth_msg

INTERVAL_MS = 2000
LINEAR = {"category": "linear", "symbol": "BTCUSDT"}


@pytest.fixture(scope="module")
def funding_mock() -> Iterator[MockExchange]:
    """The default mock with BTCUSDT (linear) funding every 2 s."""
    instruments = [
        dataclasses.replace(i, funding_interval_s=2) if (i.category, i.symbol) == ("linear", "BTCUSDT") else i
        for i in default_instruments()
    ]
    with MockExchange(MockExchangeConfig.default().with_instruments(instruments)) as ex:
        yield ex


@pytest.fixture
def long_btc(funding_mock: MockExchange) -> MockExchange:
    """A long of 0.1 BTCUSDT at a frozen 65 000 (mark == index: the base rate, 0.01 %)."""
    ex = funding_mock
    ex.state.reset()
    ex.state.freeze_market()
    ex.state.set_mark_price("BTCUSDT", 65000)
    ex.state.set_position(ex.api_key, "BTCUSDT", "Buy", "0.1", 65000)
    return ex


def funding_executions(ex: MockExchange, seconds: float = 6) -> list[dict[str, Any]]:
    """The account's Funding executions, once there is one (polled through pybit)."""
    session = pybit_http(ex)
    deadline = time.monotonic() + seconds
    while True:
        items: list[dict[str, Any]] = session.get_executions(**LINEAR, execType="Funding")["result"]["list"]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_pybit_reads_the_settlement_everywhere(long_btc: MockExchange) -> None:
    ex = long_btc
    session = pybit_http(ex)
    (ticker,) = session.get_tickers(**LINEAR)["result"]["list"]
    assert (ticker["fundingRate"], ticker["fundingIntervalHour"], ticker["fundingCap"]) == (
        "0.0001",
        "0.000556",
        "0.005",
    )
    assert int(ticker["nextFundingTime"]) % INTERVAL_MS == 0 and int(ticker["nextFundingTime"]) > now_ms() - 1000
    (instrument,) = session.get_instruments_info(**LINEAR)["result"]["list"]
    assert instrument["fundingInterval"] == 1  # minutes; a sub-minute interval shows 1

    first = funding_executions(ex)[-1]  # the oldest: the first funding time after the position
    assert (first["execType"], first["side"], first["execQty"], first["execPrice"]) == (
        "Funding",
        "Buy",
        "0.1",
        "65000.00",
    )
    assert (first["execValue"], first["execFee"], first["feeRate"]) == ("6500", "0.65", "0.0001")
    assert int(first["execTime"]) % INTERVAL_MS == 0

    rows = session.get_transaction_log(accountType="UNIFIED", category="linear", type="SETTLEMENT")["result"]["list"]
    row = next(r for r in rows if r["tradeId"] == first["execId"])
    assert (row["funding"], row["change"], row["cashFlow"], row["transactionTime"]) == (
        "0.65", "-0.65", "0", first["execTime"],
    )  # fmt: skip
    for _ in range(5):  # wallet = start - every payment (read between two settlements)
        paid = sum(Decimal(r["funding"]) for r in rows)
        wallet = session.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]["coin"][0]
        again = session.get_transaction_log(accountType="UNIFIED", type="SETTLEMENT")["result"]["list"]
        if len(again) == len(rows):
            break
        rows = again
    assert paid == Decimal("0.65") * len(rows) and Decimal(wallet["walletBalance"]) == 100_000 - paid

    history = session.get_funding_rate_history(**LINEAR, limit=5)["result"]
    assert history["category"] == "linear"
    times = [int(i["fundingRateTimestamp"]) for i in history["list"]]
    assert len(times) == 5 and times == sorted(times, reverse=True)
    assert all(b - a == INTERVAL_MS for a, b in zip(times[1:], times, strict=False))
    assert int(first["execTime"]) in times or int(first["execTime"]) < times[-1]
    assert {i["symbol"] for i in history["list"]} == {"BTCUSDT"}


def test_ccxt_funding_methods_unmodified(long_btc: MockExchange) -> None:
    ex = long_btc
    client = ccxt_bybit(ex)
    rate = client.fetch_funding_rate("BTC/USDT:USDT")
    assert rate["fundingRate"] == 0.0001 and rate["fundingTimestamp"] % INTERVAL_MS == 0
    assert rate["markPrice"] == 65000

    assert funding_executions(ex)  # a funding time passed since the reset: the rates after it are sampled
    since = now_ms() - 20_000
    rates = client.fetch_funding_rate_history("BTC/USDT:USDT", since=since, params={"until": now_ms()})
    assert len(rates) >= 9  # one every 2 s, oldest first as ccxt sorts them
    stamps = [r["timestamp"] for r in rates]
    assert stamps == sorted(stamps) and all(s % INTERVAL_MS == 0 and s >= since for s in stamps)
    assert rates[-1]["fundingRate"] == 0.0001 and rates[-1]["symbol"] == "BTC/USDT:USDT"

    paid = client.fetch_funding_history("BTC/USDT:USDT")  # GET /v5/execution/list?execType=Funding
    assert paid and all(p["symbol"] == "BTC/USDT:USDT" and p["code"] == "USDT" for p in paid)
    assert {(p["amount"], p["rate"]) for p in paid} == {(0.65, 0.0001)}


async def test_private_stream_gets_the_funding_execution_and_wallet(long_btc: MockExchange) -> None:
    ex = long_btc
    async with connect(ex.ws_private_url) as ws:
        assert (await call(ws, auth_msg(ex)))["success"] is True
        assert (await call(ws, {"op": "subscribe", "args": ["execution", "wallet", "position"]}))["success"] is True
        got = await pushes(ws, 3, seconds=6)
    topics = [m["topic"] for m in got]
    assert topics == ["execution", "position", "wallet"], topics
    (execution,) = got[0]["data"]
    assert (execution["execType"], execution["execFee"], execution["category"]) == ("Funding", "0.65", "linear")
    (usdt,) = [c for c in got[2]["data"][0]["coin"] if c["coin"] == "USDT"]
    assert Decimal(usdt["walletBalance"]) < 100_000
    assert Decimal(got[1]["data"][0]["cumRealisedPnl"]) <= Decimal("-0.65")
