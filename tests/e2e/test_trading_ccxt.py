"""ccxt's bybit (default options) and ccxt pro's ``watch_orders`` trading against the mock."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest

from bybit_mock import MockExchange

from .test_market_clients import ccxt_pro
from .test_rest_ccxt import ccxt_bybit


def test_swap_round_trip_with_default_options(market: MockExchange) -> None:
    client = ccxt_bybit(market)
    client.load_markets()
    symbol = "BTC/USDT:USDT"
    bought = client.create_order(symbol, "market", "buy", 0.01)
    assert bought["id"]
    limit = client.create_order(symbol, "limit", "sell", 0.01, 70000)
    open_orders = client.fetch_open_orders(symbol)
    assert [o["id"] for o in open_orders] == [limit["id"]]
    assert open_orders[0]["price"] == 70000 and open_orders[0]["amount"] == 0.01 and open_orders[0]["status"] == "open"
    client.cancel_order(limit["id"], symbol)
    assert client.fetch_open_orders(symbol) == []
    (position,) = client.fetch_positions([symbol])
    assert position["side"] == "long" and position["contracts"] == 0.01 and position["entryPrice"] == 65000
    (trade,) = client.fetch_my_trades(symbol)
    assert trade["order"] == bought["id"] and trade["price"] == 65000 and trade["amount"] == 0.01
    assert trade["fee"]["cost"] == pytest.approx(0.3575) and trade["takerOrMaker"] == "taker"
    balance = client.fetch_balance()
    assert balance["USDT"]["total"] == pytest.approx(100000 - 0.3575)
    assert balance["USDT"]["used"] > 0  # the position's initial margin
    book = client.fetch_order_book(symbol)
    assert book["asks"][0][0] == 65000 and book["bids"][0][0] < 65000
    assert client.fetch_ticker(symbol)["last"] == 65000
    assert len(client.fetch_ohlcv(symbol, "1m", limit=5)) == 5


def test_spot_orders_with_default_options(market: MockExchange) -> None:
    client = ccxt_bybit(market)
    client.load_markets()
    # ccxt's default: a spot market buy takes the price to work out the cost it sends as qty.
    client.create_order("BTC/USDT", "market", "buy", 0.01, 65000)
    assert market.state.balance(market.api_key, "BTC") == Decimal("0.00999")
    order = client.create_order("BTC/USDT", "limit", "sell", 0.005, 70000)
    assert [o["id"] for o in client.fetch_open_orders("BTC/USDT")] == [order["id"]]
    client.cancel_order(order["id"], "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(order["id"], "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "limit", "sell", 1, 70000)


async def test_ccxt_pro_watch_orders(market: MockExchange) -> None:
    client = ccxt_pro(market)
    try:
        await client.load_markets()
        watcher = asyncio.ensure_future(client.watch_orders("BTC/USDT:USDT"))
        await asyncio.sleep(0.5)  # auth + subscribe
        placed = await client.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 60000)
        orders = await asyncio.wait_for(watcher, 5)
    finally:
        await client.close()
    assert [o["id"] for o in orders] == [placed["id"]]
    assert orders[0]["status"] == "open" and orders[0]["price"] == 60000 and orders[0]["symbol"] == "BTC/USDT:USDT"


def test_funds_ledger_and_account_settings_with_ccxt(market: MockExchange) -> None:
    client = ccxt_bybit(market)
    client.load_markets()
    tx_id = market.state.deposit(market.api_key, "USDT", 250)
    (deposit,) = client.fetch_deposits("USDT")
    assert (deposit["txid"], deposit["amount"], deposit["status"]) == (tx_id, 250, "ok")
    assert client.fetch_balance({"type": "funding"})["USDT"]["total"] == 250  # the FUND wallet
    moved = client.transfer("USDT", 250, "funding", "unified")
    assert moved["id"]
    client.transfer("USDT", 50, "unified", "funding")
    transfers = client.fetch_transfers("USDT")
    assert sorted((t["amount"], t["fromAccount"], t["toAccount"]) for t in transfers) == [
        (50, "unified", "fund"),  # ccxt's own account names
        (250, "fund", "unified"),
    ]
    assert market.state.funding_balances(market.api_key) == {"USDT": Decimal(50)}
    assert market.state.balance(market.api_key, "USDT") == 100000 + 200

    client.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    entries = client.fetch_ledger("USDT")
    trade = next(e for e in entries if e["type"] == "trade")
    assert trade["amount"] == pytest.approx(0.3575) and trade["after"] == pytest.approx(100200 - 0.3575)
    assert {e["type"] for e in entries} == {"trade", "transaction"}  # ccxt: TRANSFER_IN/OUT

    fee = client.fetch_trading_fee("BTC/USDT:USDT")
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.00055)
    tiers = client.fetch_leverage_tiers(["BTC/USDT:USDT"])["BTC/USDT:USDT"]
    assert tiers[0]["maxLeverage"] == 100
    client.set_margin_mode("isolated", "BTC/USDT:USDT")
    assert client.privateGetV5AccountInfo()["result"]["marginMode"] == "ISOLATED_MARGIN"
