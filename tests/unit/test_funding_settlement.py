"""Funding settlement (engine/funding.py): payments, the SETTLEMENT row, the Funding execution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, FixedClock, ok, pushes

D = Decimal
HOURS_8 = 28_800_000
#: the funding time after the clock's start (1 700 000 000 000 is not one)
FIRST = (1_700_000_000_000 // HOURS_8 + 1) * HOURS_8
LINEAR = {"category": "linear", "symbol": "BTCUSDT"}
INVERSE = {"category": "inverse", "symbol": "BTCUSD"}


def funding_exchange() -> tuple[Exchange, FixedClock]:
    """BTCUSDT (linear, spot) at 65 000 and BTCUSD (inverse) at 36 000, frozen; a watched account."""
    clock = FixedClock()
    account = AccountConfig(KEY, "secret", {"USDT": D(20000), "BTC": D(1)})
    ex = Exchange(MockExchangeConfig(accounts=[account]), clock=clock)  # BTCUSD is listed by default
    ex.watch("test", [KEY])
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 65000)
    ex.set_mark_price("BTCUSD", 36000, category="inverse")
    return ex, clock


def inject_rate(ex: Exchange, symbol: str, rate: str, category: str = "linear") -> None:
    """The rate the model fixes at every funding time (the premium is the price model's)."""
    model = ex.markets.get(category, symbol)
    assert model is not None
    model.settled_funding_rate = lambda boundary_ms: D(rate)  # type: ignore[method-assign]


def fundings(ex: Exchange, query: dict[str, str] = LINEAR) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(ex, "execution_list", query | {"execType": "Funding"})["list"]
    return items


def settlement_rows(ex: Exchange) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(ex, "transaction_log", {"type": "SETTLEMENT"})["list"]
    return rows


def test_a_long_pays_a_positive_rate_at_the_funding_time() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.5", 60000)
    clock.now = FIRST - 1
    ex.advance_markets()
    assert fundings(ex) == [] and ex.balances(KEY)["USDT"] == 20000  # not yet
    cursor = ex.event_cursor()
    clock.now = FIRST
    ex.advance_markets()
    # 0.5 BTC at the mark 65 000 is 32 500 USDT; x 0.01 % (mark == index: the base rate)
    assert ex.balances(KEY)["USDT"] == D("19996.75")
    (item,) = fundings(ex)
    expected = {
        "symbol": "BTCUSDT", "side": "Buy", "execType": "Funding", "execQty": "0.5", "execPrice": "65000.00",
        "markPrice": "65000.00", "execValue": "32500", "execFee": "3.25", "feeRate": "0.0001",
        "execTime": str(FIRST), "orderType": "UNKNOWN", "stopOrderType": "UNKNOWN", "createType": "",
        "orderQty": "0", "orderPrice": "0", "leavesQty": "0", "closedSize": "0", "isMaker": False,
        "orderLinkId": "", "feeCurrency": "",
    }  # fmt: skip
    assert {k: item[k] for k in expected} == expected
    assert ok(ex, "execution_list", LINEAR | {"execType": "Trade"})["list"] == []
    (row,) = settlement_rows(ex)
    expected = {
        "type": "SETTLEMENT", "symbol": "BTCUSDT", "category": "linear", "side": "Buy", "currency": "USDT",
        "transactionTime": str(FIRST), "qty": "0.5", "size": "0.5", "tradePrice": "65000", "funding": "3.25",
        "fee": "0", "cashFlow": "0", "change": "-3.25", "cashBalance": "19996.75", "feeRate": "0.0001",
        "tradeId": item["execId"],
    }  # fmt: skip
    assert {k: row[k] for k in expected} == expected
    (pos,) = ok(ex, "position_list", LINEAR)["list"]
    assert (pos["curRealisedPnl"], pos["cumRealisedPnl"]) == ("-3.25", "-3.25")
    messages = pushes(ex, cursor)
    assert [topic for topic, _ in messages] == ["execution", "position", "wallet"]
    (pushed,) = messages[0][1]
    assert (pushed["execType"], pushed["execFee"], pushed["category"]) == ("Funding", "3.25", "linear")
    assert messages[1][1][0]["cumRealisedPnl"] == "-3.25"
    (usdt,) = [c for c in messages[2][1][0]["coin"] if c["coin"] == "USDT"]
    assert (usdt["walletBalance"], usdt["cumRealisedPnl"]) == ("19996.75", "-3.25")
    clock.now = FIRST + HOURS_8 - 1
    ex.advance_markets()
    assert len(fundings(ex)) == 1  # each funding time settles once


def test_a_short_receives_a_positive_rate_and_pays_a_negative_one() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSDT", "Sell", "0.2", 65000)
    clock.now = FIRST
    ex.advance_markets()
    # 0.2 x 65 000 = 13 000 USDT x 0.01 %: received
    assert ex.balances(KEY)["USDT"] == D("20001.3")
    (item,) = fundings(ex)
    assert (item["side"], item["execFee"], item["feeRate"]) == ("Sell", "-1.3", "-0.0001")
    inject_rate(ex, "BTCUSDT", "-0.0003")
    clock.now = FIRST + HOURS_8
    ex.advance_markets()
    # a negative rate: shorts pay 13 000 x 0.03 %
    assert ex.balances(KEY)["USDT"] == D("20001.3") - D("3.9")
    newest = fundings(ex)[0]
    assert (newest["execFee"], newest["feeRate"], newest["execTime"]) == ("3.9", "0.0003", str(FIRST + HOURS_8))
    assert [r["change"] for r in settlement_rows(ex)] == ["-3.9", "1.3"]
    (pos,) = ok(ex, "position_list", LINEAR)["list"]
    assert pos["cumRealisedPnl"] == "-2.6"


def test_a_long_receives_a_negative_rate() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.1", 65000)
    inject_rate(ex, "BTCUSDT", "-0.00125")
    ex.set_mark_price("BTCUSDT", 64000)
    clock.now = FIRST
    ex.advance_markets()
    # 0.1 x 64 000 (the mark, not the entry) = 6 400 x -0.125 %: received
    assert ex.balances(KEY)["USDT"] == D(20008)
    (item,) = fundings(ex)
    assert (item["execFee"], item["feeRate"], item["execPrice"], item["execValue"]) == (
        "-8", "-0.00125", "64000.00", "6400",
    )  # fmt: skip


def test_inverse_positions_pay_in_the_coin_on_their_coin_value() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSD", "Buy", "36000", 30000, category="inverse")
    ex.set_position(KEY, "BTCUSDT", "Sell", "0.1", 65000)  # settled in USDT, apart
    ex.set_mark_price("BTCUSD", 40000, category="inverse")
    clock.now = FIRST
    ex.advance_markets()
    # 36 000 USD at the mark 40 000 is 0.9 BTC; x 0.01 % = 0.00009 BTC paid
    assert ex.balances(KEY)["BTC"] == D("0.99991")
    assert ex.balances(KEY)["USDT"] == D("20000.65")  # the linear short received 6 500 x 0.01 %
    (item,) = fundings(ex, INVERSE)
    assert (item["execQty"], item["execValue"], item["execFee"], item["execPrice"]) == (
        "36000", "0.9", "0.00009", "40000.00",
    )  # fmt: skip
    rows = {r["currency"]: r for r in settlement_rows(ex)}
    assert (rows["BTC"]["funding"], rows["BTC"]["cashBalance"]) == ("0.00009", "0.99991")


def test_a_clock_jump_settles_every_funding_time_passed_once_each() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSDT", "Buy", "1", 65000)
    rates = {FIRST: "0.0001", FIRST + HOURS_8: "0.0002", FIRST + 2 * HOURS_8: "-0.0004"}
    model = ex.markets.get("linear", "BTCUSDT")
    assert model is not None
    model.settled_funding_rate = lambda b: D(rates[b])  # type: ignore[method-assign]
    clock.now = FIRST + 2 * HOURS_8 + 5  # three funding times at once
    cursor = ex.event_cursor()
    ex.advance_markets()
    items = fundings(ex)
    assert [(i["execTime"], i["execFee"]) for i in items] == [
        (str(FIRST + 2 * HOURS_8), "-26"), (str(FIRST + HOURS_8), "13"), (str(FIRST), "6.5"),
    ]  # fmt: skip
    assert ex.balances(KEY)["USDT"] == D(20000) - D("6.5") - 13 + 26
    assert [r["cashBalance"] for r in settlement_rows(ex)] == ["20006.5", "19980.5", "19993.5"]
    wallets = [m for topic, m in pushes(ex, cursor) if topic == "wallet"]
    assert len(wallets) == 3  # one change (and push) per funding time
    ex.advance_markets()
    assert len(fundings(ex)) == 3


def test_flat_positions_and_spot_holdings_pay_nothing() -> None:
    ex, clock = funding_exchange()
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.5", 65000)
    ex.set_position(KEY, "BTCUSDT", "Buy", "0", 65000)  # closed again
    clock.now = FIRST
    ex.advance_markets()
    assert fundings(ex) == [] and settlement_rows(ex) == []
    assert ex.balances(KEY) == {"USDT": D(20000), "BTC": D(1)}


def test_hedge_mode_sides_settle_apart() -> None:
    ex, clock = funding_exchange()
    ok(ex, "switch_mode", LINEAR | {"mode": 3})
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.3", 65000, position_idx=1)
    ex.set_position(KEY, "BTCUSDT", "Sell", "0.1", 65000, position_idx=2)
    clock.now = FIRST
    ex.advance_markets()
    fees = sorted((i["side"], i["execFee"]) for i in fundings(ex))
    assert fees == [("Buy", "1.95"), ("Sell", "-0.65")]
    assert ex.balances(KEY)["USDT"] == D("19998.7")
