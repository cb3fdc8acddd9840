"""Margin mode, the funding wallet, transfers, deposits and the transaction log, on the engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from bybit_mock.config import MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.rest.account_info import FeeRate
from bybit_mock.rest.app import Call
from bybit_mock.rest.routes import RiskLimit
from tests.fixtures import recorded_response
from tests.unit.helpers import KEY, LINEAR, START_BTC, START_USDT, new_exchange, ok, pushes, run

D = Decimal


def transfer(ex: Exchange, amount: str, source: str, target: str, transfer_id: str, coin: str = "USDT") -> int:
    query = {"transferId": transfer_id, "coin": coin, "amount": amount}
    code, _ = run(ex, "transfer", query | {"fromAccountType": source, "toAccountType": target})
    return code


def log(ex: Exchange, **query: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(ex, "transaction_log", query | {"limit": "50"})["list"]
    return rows


def test_isolated_margin_lends_no_unrealised_profit_to_available() -> None:
    ex = new_exchange()
    assert ok(ex, "account_info", {})["marginMode"] == "REGULAR_MARGIN"
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.1"})
    ex.set_mark_price("BTCUSDT", 70000)  # about +500 USDT unrealised
    cross = ex.margin.valuation(ex.accounts[KEY])
    assert ok(ex, "set_margin_mode", {"setMarginMode": "ISOLATED_MARGIN"}) == {"reasons": []}
    info = ok(ex, "account_info", {})
    assert info["marginMode"] == "ISOLATED_MARGIN" and int(info["updatedTime"]) > 0
    isolated = ex.margin.valuation(ex.accounts[KEY])
    assert cross.total_available - isolated.total_available == cross.total_upl > 400
    assert ex.margin.available(ex.accounts[KEY]) == isolated.total_available  # the margin check agrees
    assert run(ex, "set_margin_mode", {"setMarginMode": "PORTFOLIO_MARGIN"})[0] == 3400045
    assert run(ex, "set_margin_mode", {"setMarginMode": "FOO"})[0] == 10001
    ok(ex, "set_margin_mode", {"setMarginMode": "REGULAR_MARGIN"})
    assert ex.margin.valuation(ex.accounts[KEY]).total_available == cross.total_available


def test_transfers_move_coins_between_wallets_by_bybit_rules() -> None:
    ex = new_exchange()
    cursor = ex.event_cursor()
    assert transfer(ex, "1000", "UNIFIED", "FUND", "t1") == 0
    assert ex.balances(KEY)["USDT"] == START_USDT - 1000 and ex.funding_balances(KEY) == {"USDT": D(1000)}
    assert transfer(ex, "1000", "UNIFIED", "FUND", "t1") == 131214  # a transfer id once
    assert transfer(ex, "5", "FUND", "FUND", "t2") == 131211
    assert transfer(ex, "5", "UNIFIED", "SPOT", "t2") == 131203
    assert transfer(ex, "0", "UNIFIED", "FUND", "t2") == 131215
    assert transfer(ex, "0.000000001", "UNIFIED", "FUND", "t2") == 131210
    assert transfer(ex, "1000.01", "FUND", "UNIFIED", "t2") == 131212  # the funding wallet has 1000
    assert transfer(ex, "400", "FUND", "UNIFIED", "t3") == 0
    # out of the unified wallet only what the margin does not need
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "2", "price": "60000"})
    usdt = ex.accounts[KEY].coins["USDT"]
    free = min(usdt.wallet - usdt.order_im, ex.margin.available(ex.accounts[KEY])).quantize(D(1))
    assert free < START_USDT - 600 - 10_000  # the resting order's margin is held back
    assert transfer(ex, str(free + 1), "UNIFIED", "FUND", "t4") == 131212
    assert transfer(ex, str(free - 1), "UNIFIED", "FUND", "t4") == 0

    listed = ok(ex, "transfer_list", {"coin": "USDT"})["list"]
    assert [t["transferId"] for t in listed] == ["t4", "t3", "t1"]  # newest first
    assert listed[1] | {"timestamp": "x"} == {
        "transferId": "t3", "coin": "USDT", "amount": "400", "fromAccountType": "FUND",
        "toAccountType": "UNIFIED", "timestamp": "x", "status": "SUCCESS",
    }  # fmt: skip
    # every field Bybit's recorded answer has (its per-item nextPageCursor is an artefact)
    assert set(recorded_response("fetchTransfers")["result"]["list"][0]) - {"nextPageCursor"} <= set(listed[0])
    page = ok(ex, "transfer_list", {"limit": "2"})
    assert len(page["list"]) == 2 and page["nextPageCursor"]
    fund = ok(ex, "funding_balance", {"accountType": "FUND", "coin": "USDT"})
    assert fund["accountType"] == "FUND" and fund["balance"][0]["walletBalance"] == str(
        ex.funding_balances(KEY)["USDT"]
    )
    wallets = [item for topic, items in pushes(ex, cursor) if topic == "wallet" for item in items]
    assert len(wallets) >= 3  # each transfer pushes the unified wallet


def test_deposits_land_in_the_funding_wallet_and_are_listed() -> None:
    ex = new_exchange()
    tx = ex.deposit(KEY, "btc", "0.5")
    assert ex.funding_balances(KEY) == {"BTC": D("0.5")} and ex.balances(KEY)["BTC"] == START_BTC
    (row,) = ok(ex, "deposit_records", {"coin": "BTC"})["rows"]
    assert (row["coin"], row["amount"], row["txID"], row["status"]) == ("BTC", "0.5", tx, 3)
    assert ok(ex, "deposit_records", {"coin": "ETH"})["rows"] == []
    assert transfer(ex, "0.5", "FUND", "UNIFIED", "d1", coin="BTC") == 0
    assert ex.balances(KEY)["BTC"] == START_BTC + D("0.5")


def test_transaction_log_reconciles_every_coin() -> None:
    ex = new_exchange()
    ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.1"})
    ex.set_mark_price("BTCUSDT", 66000)
    ok(ex, "order_create", LINEAR | {"side": "Sell", "orderType": "Market", "qty": "0.1"})
    spot = {"category": "spot", "symbol": "BTCUSDT", "orderType": "Market"}
    ok(ex, "order_create", spot | {"side": "Sell", "qty": "0.05"})
    transfer(ex, "100", "UNIFIED", "FUND", "t1")

    rows = log(ex)
    assert set(recorded_response("fetchLedger")["result"]["list"][0]) - {"nextPageCursor"} <= set(rows[0])
    assert [r["type"] for r in rows][:1] == ["TRANSFER_OUT"]  # newest first
    close = next(r for r in rows if r["category"] == "linear" and r["side"] == "Sell")
    assert D(close["cashFlow"]) > 0 and close["size"] == "0" and close["currency"] == "USDT"
    assert D(close["change"]) == D(close["cashFlow"]) - D(close["fee"])
    # every coin: start + the sum of its changes is the wallet; the newest row's cashBalance too
    for coin, start in (("USDT", START_USDT), ("BTC", START_BTC)):
        mine = [r for r in rows if r["currency"] == coin]
        assert start + sum(D(r["change"]) for r in mine) == ex.balances(KEY)[coin] == D(mine[0]["cashBalance"])
    sold = log(ex, category="spot")  # a spot fill moves two coins: a row each
    assert [(r["currency"], r["side"]) for r in sold] == [("USDT", "Sell"), ("BTC", "Sell")]
    assert (D(sold[1]["change"]), D(sold[0]["cashFlow"])) == (D("-0.05"), D("0.05") * D(sold[0]["tradePrice"]))
    assert {r["type"] for r in log(ex, type="TRADE")} == {"TRADE"}
    assert all(r["currency"] == "BTC" for r in log(ex, currency="BTC"))
    assert run(ex, "transaction_log", {"accountType": "FUND"})[0] == 10001


def test_fee_rate_and_risk_limit_follow_the_configuration() -> None:
    config = MockExchangeConfig.default()
    fees = orjson.loads(FeeRate(config)(Call({"category": "linear", "symbol": "BTCUSDT"}, KEY, 0, 0)))
    inst = next(i for i in config.instruments if (i.category, i.symbol) == ("linear", "BTCUSDT"))
    assert fees["list"] == [
        {"symbol": "BTCUSDT", "takerFeeRate": str(inst.taker_fee), "makerFeeRate": str(inst.maker_fee)}
    ]
    tiers = orjson.loads(RiskLimit(config)(Call({"category": "linear"}, "", 0, 0)))
    btc = next(t for t in tiers["list"] if t["symbol"] == "BTCUSDT")
    assert (btc["id"], btc["maxLeverage"], D(btc["initialMargin"])) == (1, "100.00", 1 / inst.max_leverage)
