"""Dated futures at expiry (``engine/delivery.py``): exact settlement, long and short, linear and
inverse; the records and pushes; a delivered contract refuses orders and is listed as Closed."""

from __future__ import annotations

from decimal import Decimal

import orjson

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.config import InstrumentConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.rest.app import Call
from bybit_mock.rest.routes import Instruments
from tests.unit.helpers import FixedClock, ok, pushes, run

D = Decimal
T = 1_766_736_000_000  # 26 Dec 2025 08:00 UTC
LINEAR_F = InstrumentConfig(
    "BTCUSDT-26DEC25", "linear", "BTC", "USDT", D(65000), D("0.5"), D("0.001"), D("0.001"), D(500), D(100),
    delivery_time_ms=T, delivery_fee_rate=D("0.0005"),
)  # fmt: skip
INVERSE_F = InstrumentConfig(
    "BTCUSDZ25", "inverse", "BTC", "USD", D(65000), D("0.5"), D(1), D(1), D(10**6), D(10**6), min_notional=D(0),
    delivery_time_ms=T, delivery_fee_rate=D("0.0005"),
)  # fmt: skip
PERP = InstrumentConfig("BTCUSDT", "linear", "BTC", "USDT", D(65000), D("0.1"), D("0.001"), D("0.001"), D(500), D(100))
START = {"USDT": D(20000), "BTC": D(1)}


def delivering() -> tuple[Exchange, FixedClock]:
    """alice long and bob short on both futures; the index at 65 000; a minute before delivery."""
    clock = FixedClock()
    clock.now = T - 60_000
    accounts = [AccountConfig(k, "secret", dict(START)) for k in ("alice", "bob")]
    config = MockExchangeConfig(accounts=accounts, instruments=[PERP, LINEAR_F, INVERSE_F])
    ex = Exchange(config, clock=clock)
    ex.watch("test", ["alice", "bob"])
    ex.freeze_market()
    for inst in (LINEAR_F, INVERSE_F):
        ex.set_mark_price(inst.symbol, 65000, category=inst.category)
    ex.set_position("alice", LINEAR_F.symbol, "Buy", "0.5", 60000, leverage=10)
    ex.set_position("bob", LINEAR_F.symbol, "Sell", "0.2", 70000, leverage=10)
    ex.set_position("alice", INVERSE_F.symbol, "Buy", "13000", 52000, leverage=10, category="inverse")
    ex.set_position("bob", INVERSE_F.symbol, "Sell", "6500", 50000, leverage=10, category="inverse")
    return ex, clock


def test_delivery_settles_long_and_short_linear_and_inverse_exactly() -> None:
    ex, clock = delivering()
    clock.now = T + 5
    ex.run_due()
    # linear long 0.5 @ 60 000 -> 65 000: PnL 2 500, fee 0.5 x 65 000 x 0.0005 = 16.25
    # linear short 0.2 @ 70 000 -> 65 000: PnL 1 000, fee 6.5
    assert ex.balances("alice")["USDT"] == D("22483.75")
    assert ex.balances("bob")["USDT"] == D("20993.5")
    # inverse long 13 000 USD @ 52 000: 13 000 x (1/52 000 - 1/65 000) = 0.05 BTC, fee 0.2 BTC x 0.0005
    # inverse short 6 500 USD @ 50 000: -6 500 x (1/50 000 - 1/65 000) = -0.03 BTC, fee 0.00005
    assert ex.balances("alice")["BTC"] == D("1.0499")
    assert ex.balances("bob")["BTC"] == D("0.96995")
    assert ex.positions("alice") == [] and ex.positions("bob") == []


def test_delivery_records_log_rows_and_pushes() -> None:
    ex, clock = delivering()
    resting = {"category": "linear", "symbol": LINEAR_F.symbol, "side": "Buy", "orderType": "Limit", "qty": "0.01"}
    order_id = ok(ex, "order_create", resting | {"price": "50000"}, key="alice")["orderId"]
    cursor = ex.event_cursor()
    clock.now = T + 5
    ex.run_due()
    (row,) = ok(ex, "transaction_log", {"type": "DELIVERY", "category": "linear"}, key="alice")["list"]
    assert (row["symbol"], row["side"], row["qty"], row["size"]) == (LINEAR_F.symbol, "Sell", "0.5", "0")
    assert (row["cashFlow"], row["fee"], row["change"], row["cashBalance"]) == ("2500", "16.25", "2483.75", "22483.75")
    assert (row["tradePrice"], row["feeRate"], row["transactionTime"]) == ("65000", "0.0005", str(T + 5))
    record = ok(ex, "delivery_record", {"category": "linear"}, key="bob")
    assert record == {
        "category": "linear",
        "list": [
            {"deliveryTime": T, "symbol": LINEAR_F.symbol, "side": "Sell", "position": "0.2",
             "deliveryPrice": "65000", "strike": "", "fee": "6.5", "deliveryRpl": "1000"},
        ],
        "nextPageCursor": "",
    }  # fmt: skip
    inverse = ok(ex, "delivery_record", {"category": "inverse"}, key="alice")["list"]
    assert [(r["symbol"], r["deliveryRpl"], r["fee"]) for r in inverse] == [(INVERSE_F.symbol, "0.05", "0.0001")]
    topics = [(topic, data) for topic, data in pushes(ex, cursor)]
    orders = [d for topic, data in topics if topic == "order" for d in data]
    assert [(o["orderId"], o["orderStatus"], o["cancelType"]) for o in orders] == [
        (order_id, "Cancelled", "CancelBySettle")
    ]
    flat = [d for topic, data in topics if topic == "position" for d in data]
    assert {(p["symbol"], p["size"]) for p in flat} == {(LINEAR_F.symbol, "0"), (INVERSE_F.symbol, "0")}
    assert sum(1 for topic, _ in topics if topic == "wallet") == 4  # per account, per contract


def test_a_delivered_contract_refuses_orders_and_is_listed_closed() -> None:
    ex, clock = delivering()
    order = {"category": "linear", "symbol": LINEAR_F.symbol, "side": "Buy", "orderType": "Market", "qty": "0.01"}
    assert run(ex, "order_create", order, key="alice")[0] == 0  # still live a minute before
    clock.now = T
    assert run(ex, "order_create", order, key="alice") == (110074, "This contract is not live")
    assert run(ex, "order_create", order | {"symbol": "BTCUSDT"}, key="alice")[0] == 0  # the perpetual trades on
    listing = Instruments(MockExchangeConfig(instruments=[PERP, LINEAR_F]))

    def symbols(query: dict[str, str], now_ms: int) -> list[tuple[str, str]]:
        items = orjson.loads(listing(Call(query, "", now_ms, now_ms * 1_000_000)))["list"]
        return [(i["symbol"], i["status"]) for i in items]

    assert symbols({"category": "linear"}, T - 1) == [("BTCUSDT", "Trading"), (LINEAR_F.symbol, "Trading")]
    assert symbols({"category": "linear"}, T) == [("BTCUSDT", "Trading")]
    assert symbols({"category": "linear", "status": "Closed"}, T) == [(LINEAR_F.symbol, "Closed")]


def test_a_contract_with_nothing_open_is_delivered_quietly() -> None:
    ex, clock = delivering()
    for key in ("alice", "bob"):
        ex.set_position(key, LINEAR_F.symbol, "Buy", "0", 65000)
        ex.set_position(key, INVERSE_F.symbol, "Buy", "0", 65000, category="inverse")
    cursor = ex.event_cursor()
    clock.now = T + 1
    ex.run_due()
    assert pushes(ex, cursor) == []
    assert ok(ex, "delivery_record", {"category": "linear"}, key="alice")["list"] == []
    assert ex.balances("alice") == START
