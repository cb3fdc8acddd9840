"""Dated futures and options through real clients: ccxt's ``load_markets`` finds every market
type, pybit lists each category, ccxt reads an option ticker, and a short-lived future is
delivered under a pybit client holding a position."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.config import InstrumentConfig
from tests.e2e.conftest import now_ms, pybit_http
from tests.e2e.test_rest_ccxt import ccxt_bybit

pytestmark = pytest.mark.e2e
D = Decimal


def test_ccxt_load_markets_finds_spot_swap_future_and_option(bybit_mock: MockExchange) -> None:
    markets = ccxt_bybit(bybit_mock).load_markets()
    types = {m["type"] for m in markets.values()}
    assert {"spot", "swap", "future", "option"} <= types
    futures = {s: m for s, m in markets.items() if m["type"] == "future"}
    assert len(futures) == 4  # BTC linear and inverse, two quarterly expiries
    for m in futures.values():
        assert m["expiry"] == int(m["info"]["deliveryTime"]) > now_ms()
        assert m["info"]["contractType"] in ("LinearFutures", "InverseFutures")
        assert m["symbol"].endswith(m["expiryDatetime"][2:10].replace("-", ""))  # BTC/USDT:USDT-251226
    assert markets["BTC/USD:BTC"]["type"] == "swap" and markets["BTC/USD:BTC"]["inverse"]
    options = [m for m in markets.values() if m["type"] == "option"]
    assert len(options) == 12
    assert {m["optionType"] for m in options} == {"call", "put"}
    assert {m["strike"] for m in options} == {60000, 65000, 70000}
    assert all(m["settle"] == "USDT" and m["expiry"] > now_ms() for m in options)


def test_pybit_instruments_info_for_each_category(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    linear = session.get_instruments_info(category="linear")["result"]["list"]
    assert {i["contractType"] for i in linear} == {"LinearPerpetual", "LinearFutures"}
    dated = [i for i in linear if i["contractType"] == "LinearFutures"]
    assert all(i["deliveryFeeRate"] == "0.0005" and int(i["deliveryTime"]) > now_ms() for i in dated)
    inverse = session.get_instruments_info(category="inverse")["result"]["list"]
    assert {(i["contractType"], i["settleCoin"]) for i in inverse} == {
        ("InversePerpetual", "BTC"),
        ("InverseFutures", "BTC"),
    }
    spot = session.get_instruments_info(category="spot")["result"]["list"]
    assert {i["symbol"] for i in spot} == {"BTCUSDT", "ETHUSDT"}
    option = session.get_instruments_info(category="option", baseCoin="BTC")["result"]
    assert len(option["list"]) == 12
    first = option["list"][0]
    assert list(first) == [
        "symbol", "status", "baseCoin", "quoteCoin", "settleCoin", "optionsType", "launchTime", "deliveryTime",
        "deliveryFeeRate", "priceFilter", "lotSizeFilter", "displayName",
    ]  # fmt: skip
    assert first["symbol"].endswith("-USDT") and first["optionsType"] in ("Call", "Put")
    assert session.get_instruments_info(category="option", baseCoin="ETH")["result"]["list"] == []


def test_ccxt_fetch_ticker_and_order_book_on_an_option(bybit_mock: MockExchange) -> None:
    client = ccxt_bybit(bybit_mock)
    markets = client.load_markets()
    symbol = next(s for s, m in markets.items() if m["type"] == "option" and m["strike"] == 65000)
    ticker = client.fetch_ticker(symbol)
    info = ticker["info"]
    assert info["symbol"] == markets[symbol]["id"]
    assert 0 < float(info["markIv"]) < 1 and float(info["gamma"]) > 0 and float(info["vega"]) > 0
    assert ticker["bid"] < float(info["markPrice"]) < ticker["ask"]
    assert ticker["indexPrice"] == pytest.approx(float(info["underlyingPrice"]), rel=1e-6)
    book = client.fetch_order_book(symbol, 25)
    assert len(book["bids"]) == 25 and len(book["asks"]) == 25 and book["bids"][0][0] == ticker["bid"]


def test_futures_tickers_show_delivery_and_basis_without_funding(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    items = session.get_tickers(category="linear")["result"]["list"]
    dated = [t for t in items if "-" in t["symbol"]]
    assert len(dated) == 2
    for t in dated:
        assert t["fundingRate"] == "" and int(t["deliveryTime"]) > now_ms()
        assert D(t["basis"]) == D(t["lastPrice"]) - D(t["indexPrice"])
        assert t["predictedDeliveryPrice"] == t["indexPrice"]


SHORT = "BTCUSDT-SHORT"
LIFE_MS = 20_000


@pytest.fixture
def short_lived() -> Iterator[tuple[MockExchange, InstrumentConfig]]:
    """The default mock with a linear future delivered 20 s after its config is made."""
    future = InstrumentConfig(
        SHORT, "linear", "BTC", "USDT", D(65000), D("0.5"), D("0.001"), D("0.001"), D(100), D(100),
        delivery_time_ms=now_ms() + LIFE_MS, delivery_fee_rate=D("0.0005"),
    )  # fmt: skip
    config = MockExchangeConfig.default()
    config.instruments.append(future)
    with MockExchange(config) as ex:
        yield ex, future


def wait_for(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_short_lived_future_is_delivered_under_a_pybit_position(
    short_lived: tuple[MockExchange, InstrumentConfig],
) -> None:
    ex, future = short_lived
    ex.state.freeze_market(SHORT, "linear")
    ex.state.set_mark_price(SHORT, 65000)
    session = pybit_http(ex)
    session.place_order(category="linear", symbol=SHORT, side="Buy", orderType="Market", qty="0.01")
    resting = session.place_order(
        category="linear", symbol=SHORT, side="Buy", orderType="Limit", qty="0.01", price="60000"
    )["result"]["orderId"]
    (pos,) = session.get_positions(category="linear", symbol=SHORT)["result"]["list"]
    assert (pos["side"], pos["size"], pos["avgPrice"]) == ("Buy", "0.01", "65000")
    ex.state.set_mark_price(SHORT, 66000)  # the index at delivery: PnL 0.01 x 1 000 = 10, fee 0.33
    before = D(
        session.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]["coin"][0]["walletBalance"]
    )

    def delivered() -> list[dict[str, Any]] | None:
        rows = session.get_option_delivery_record(category="linear")["result"]["list"]
        return rows or None

    (record,) = wait_for(delivered, LIFE_MS / 1000 + 10)
    assert record == {
        "deliveryTime": future.delivery_time_ms, "symbol": SHORT, "side": "Buy", "position": "0.01",
        "deliveryPrice": "66000", "strike": "", "fee": "0.33", "deliveryRpl": "10",
    }  # fmt: skip
    positions = session.get_positions(category="linear", symbol=SHORT)["result"]["list"]
    assert [p["size"] for p in positions] == ["0"]
    wallet = session.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]["coin"][0]
    assert D(wallet["walletBalance"]) == before + D("9.67")
    (row,) = session.get_transaction_log(type="DELIVERY")["result"]["list"]
    assert (row["symbol"], row["cashFlow"], row["fee"], row["cashBalance"]) == (
        SHORT, "10", "0.33", wallet["walletBalance"],
    )  # fmt: skip
    (order,) = session.get_order_history(category="linear", orderId=resting)["result"]["list"]
    assert (order["orderStatus"], order["cancelType"]) == ("Cancelled", "CancelBySettle")
    with pytest.raises(Exception, match="110074"):
        session.place_order(category="linear", symbol=SHORT, side="Buy", orderType="Market", qty="0.01")
    closed = session.get_instruments_info(category="linear", status="Closed")["result"]["list"]
    assert [(i["symbol"], i["status"]) for i in closed] == [(SHORT, "Closed")]


async def test_ws_ticker_of_a_dated_future_carries_its_delivery(bybit_mock: MockExchange) -> None:
    symbol = next(i.symbol for i in bybit_mock.config.instruments if i.category == "linear" and i.dated)
    async with connect(bybit_mock.ws_public_url("linear")) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": [f"tickers.{symbol}"]}).decode())
        while True:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg.get("type") == "snapshot":
                break
    data = msg["data"]
    assert data["symbol"] == symbol and int(data["deliveryTime"]) > now_ms()
    assert data["fundingRate"] == "" and data["deliveryFeeRate"] == "0.0005"
    assert D(data["basis"]) == D(data["lastPrice"]) - D(data["indexPrice"])
    assert list(data)[-5:] == ["deliveryTime", "basisRate", "deliveryFeeRate", "predictedDeliveryPrice", "basis"]
