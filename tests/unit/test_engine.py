"""The sans-I/O engine, driven directly with an injected clock."""

from __future__ import annotations

import pickle
from decimal import Decimal

import orjson
import pytest

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from tests.fixtures import recorded_response
from tests.unit.helpers import FixedClock as Clock

KEY = "acct"


def make(**balances: str) -> Exchange:
    acct = AccountConfig(KEY, "secret", dict(balances) or {"USDT": "10000"})
    acct = acct.with_position("ETHUSDT", "Sell", "2", "3600", leverage=5)
    return Exchange(MockExchangeConfig(accounts=[acct]), clock=Clock())


def ok(reply: tuple[int, object]) -> dict:  # type: ignore[type-arg]
    code, value = reply
    assert code == 0, value
    assert isinstance(value, bytes)
    return orjson.loads(value)  # type: ignore[no-any-return]


def test_wallet_balance_values() -> None:
    ex = make()
    (reply,) = ex.apply_batch([("wallet_balance", (KEY, {"accountType": "UNIFIED"}))])
    acct = ok(reply)["list"][0]
    # short 2 ETH from 3600, mark 3500 -> +200 unrealised; IM = 7200 / 5 = 1440
    assert acct["accountType"] == "UNIFIED"
    assert acct["totalWalletBalance"] == "10000"
    assert acct["totalPerpUPL"] == "200"
    assert acct["totalEquity"] == "10200"
    assert acct["totalInitialMargin"] == "1440"
    assert acct["totalAvailableBalance"] == "8760"
    (coin,) = acct["coin"]
    assert (coin["coin"], coin["walletBalance"], coin["equity"], coin["totalPositionIM"]) == (
        "USDT",
        "10000",
        "10200",
        "1440",
    )


def test_wallet_balance_has_every_recorded_field() -> None:
    recorded = recorded_response("fetchBalance")
    real_acct = recorded["result"]["list"][0]
    ex = make()
    acct = ok(ex.apply_batch([("wallet_balance", (KEY, {"accountType": "UNIFIED"}))])[0])["list"][0]
    assert set(real_acct) <= set(acct)
    assert set(real_acct["coin"][0]) <= set(acct["coin"][0])


def test_wallet_coin_filter_and_zero_coins() -> None:
    ex = make(USDT="10", BTC="0")
    acct = ok(ex.apply_batch([("wallet_balance", (KEY, {"accountType": "UNIFIED"}))])[0])["list"][0]
    assert [c["coin"] for c in acct["coin"]] == ["USDT"]  # zero coins hidden without a filter
    acct = ok(ex.apply_batch([("wallet_balance", (KEY, {"accountType": "UNIFIED", "coin": "BTC,SOL"}))])[0])
    assert [c["coin"] for c in acct["list"][0]["coin"]] == ["BTC", "SOL"]


@pytest.mark.parametrize(
    ("query", "code"),
    [({}, 10001), ({"accountType": "CONTRACT"}, 10001), ({"accountType": "SPOT"}, 10001)],
)
def test_wallet_balance_param_errors(query: dict[str, str], code: int) -> None:
    (reply,) = make().apply_batch([("wallet_balance", (KEY, query))])
    assert reply[0] == code


def test_position_list_rules_and_fields() -> None:
    ex = make()
    recorded = recorded_response("fetchPositions")
    real_item = recorded["result"]["list"][0]
    result = ok(ex.apply_batch([("position_list", (KEY, {"category": "linear", "settleCoin": "USDT"}))])[0])
    (item,) = result["list"]
    assert set(real_item) - {"nextPageCursor"} <= set(item)
    assert (item["symbol"], item["side"], item["size"], item["avgPrice"]) == ("ETHUSDT", "Sell", "2", "3600")
    assert item["unrealisedPnl"] == "200"
    assert isinstance(item["positionIdx"], int) and isinstance(item["seq"], int)
    assert result["nextPageCursor"] == "" and result["category"] == "linear"
    # with a symbol, a flat position is still returned
    flat = ok(ex.apply_batch([("position_list", (KEY, {"category": "linear", "symbol": "BTCUSDT"}))])[0])
    assert flat["list"][0]["size"] == "0" and flat["list"][0]["side"] == ""


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"category": "spot", "symbol": "BTCUSDT"},
        {"category": "linear"},
        {"category": "linear", "symbol": "NOPE"},
        {"category": "linear", "settleCoin": "USDT", "limit": "0"},
        {"category": "linear", "settleCoin": "USDT", "cursor": "garbage"},
    ],
)
def test_position_list_param_errors(query: dict[str, str]) -> None:
    (reply,) = make().apply_batch([("position_list", (KEY, query))])
    assert reply[0] == 10001, reply


def test_position_pagination() -> None:
    ex = make()
    ex.set_position(KEY, "BTCUSDT", "Buy", "1", "60000")
    query = {"category": "linear", "settleCoin": "USDT", "limit": "1"}
    first = ok(ex.apply_batch([("position_list", (KEY, query))])[0])
    assert len(first["list"]) == 1 and first["nextPageCursor"]
    second = ok(
        ex.apply_batch(
            [
                (
                    "position_list",
                    (
                        KEY,
                        {"category": "linear", "settleCoin": "USDT", "limit": "1", "cursor": first["nextPageCursor"]},
                    ),
                )
            ]
        )[0]
    )
    assert len(second["list"]) == 1 and second["nextPageCursor"] == ""
    assert {first["list"][0]["symbol"], second["list"][0]["symbol"]} == {"BTCUSDT", "ETHUSDT"}


def test_batch_isolates_failures_and_unknown_ops() -> None:
    replies = make().apply_batch(
        [
            ("wallet_balance", ("nobody", {"accountType": "UNIFIED"})),
            ("bogus", ()),
            ("wallet_balance", (KEY, {"accountType": "UNIFIED"})),
        ]
    )
    assert replies[0] == (10003, "API key is invalid.")
    assert replies[1][0] == 10016
    assert replies[2][0] == 0


def test_internal_error_becomes_10016_not_a_crash() -> None:
    replies = make().apply_batch([("wallet_balance", (KEY, {"accountType": ["UNIFIED"]}))])
    assert replies[0][0] == 10001  # a list where a string belongs is a params error
    replies = make().apply_batch([("position_list", (KEY,))])  # wrong arity: a bug, not a crash
    assert replies[0][0] == 10016


def test_state_api_and_reset() -> None:
    ex = make()
    ex.set_balance(KEY, "usdt", "5")
    ex.set_position(KEY, "BTCUSDT", "Buy", "0.1", "64000", leverage=20)
    ex.set_mark_price("BTCUSDT", "66000")
    assert ex.balances(KEY) == {"USDT": Decimal("5")}
    btc = next(p for p in ex.positions(KEY) if p.symbol == "BTCUSDT")
    assert btc.unrealised_pnl == Decimal("200.0") and btc.leverage == 20
    ex.set_position(KEY, "ETHUSDT", "Sell", "0", "1")
    assert [p.symbol for p in ex.positions(KEY)] == ["BTCUSDT"]
    ex.reset()
    assert ex.balances(KEY) == {"USDT": Decimal("10000")}
    assert [(p.symbol, p.size) for p in ex.positions(KEY)] == [("ETHUSDT", Decimal("2"))]


def test_add_account_and_validation() -> None:
    ex = make()
    ex.add_account(AccountConfig("new", "s", {"USDT": 1}))
    assert set(ex.account_keys()) == {KEY, "new"}
    assert ex.secrets()["new"] == "s"
    with pytest.raises(ValueError):
        ex.add_account(AccountConfig("new", "s"))
    with pytest.raises(ValueError):
        ex.set_balance(KEY, "USDT", -1)
    with pytest.raises(ValueError):
        ex.set_position(KEY, "DOGEUSDT", "Buy", 1, 1)


def test_private_events_are_built_only_for_watched_accounts() -> None:
    ex = make()
    order = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.1",
        "price": "3000",
    }
    cursor = ex.event_cursor()
    ok(ex.apply_batch([("order_create", (KEY, order))])[0])
    assert [kind for kind, _ in ex.wait_events(cursor, 0)[1]] == []  # nobody listens
    ex.apply_batch([("watch", ("ws-0", [KEY]))])
    ok(ex.apply_batch([("order_create", (KEY, order))])[0])
    ((kind, (key, pushes)),) = ex.wait_events(cursor, 0)[1]
    assert kind == "private" and key == KEY and [topic for topic, *_ in pushes] == ["order", "position", "wallet"]
    ex.watch("ws-1", [KEY])
    ex.watch("ws-0", [])
    assert ex.watched == {KEY}  # still watched through ws-1
    ex.watch("ws-1", [])
    assert ex.watched == frozenset()


def test_market_models_reply_is_a_snapshot_taken_under_the_lock() -> None:
    """The Manager pickles a reply after the engine lock is released while its other threads
    advance the same models; the reply must already be bytes (CI once saw "deque mutated
    during iteration" when it was the live models)."""
    clock = Clock()
    ex = Exchange(MockExchangeConfig(), clock=clock)
    code, (instance, cursor, blob) = ex.apply_batch([("market_models", ())])[0]
    assert code == 0 and isinstance(blob, bytes) and cursor == ex.event_cursor() and instance == ex.instance()
    before = {(m.category, m.symbol): m.now_ns for m in pickle.loads(blob)}
    clock.now += 60_000
    ex.advance_markets()
    assert {(m.category, m.symbol): m.now_ns for m in pickle.loads(blob)} == before
    assert all(m.now_ns > before[(m.category, m.symbol)] for m in ex.markets)
