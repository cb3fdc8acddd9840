"""Every engine operation is atomic and private to its account.

* A refused request leaves the whole engine (accounts, orders, books, stops, fills, ledgers,
  ids) exactly as it was and pushes nothing.
* A read never writes, refused or not.
* A push reaches only an account whose state the request changed, and carries only that
  account's orders.
* Money reconciles per account and coin (start + the transaction log's changes = wallet),
  and the orders' last pushed states equal what REST lists.

The property test drives random requests, valid and invalid, on every engine operation
and on three accounts (two with a private connection, one without).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.bybit.numbers import fmt
from bybit_mock.config import default_instruments
from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import LINEAR, Clock, decoded

D = Decimal
KEYS = ("alice", "bob", "carol")  # carol has no private connection
START = {"USDT": D(50_000), "BTC": D(1)}
WRITES = (
    "order_create", "order_amend", "order_cancel", "order_cancel_all", "order_create_batch",
    "order_amend_batch", "order_cancel_batch", "trading_stop", "set_leverage", "switch_mode",
    "set_margin_mode", "transfer",
)  # fmt: skip
READS = (
    "wallet_balance", "position_list", "order_realtime", "order_history", "execution_list",
    "account_info", "transfer_list", "funding_balance", "deposit_records", "transaction_log",
)  # fmt: skip


def new_exchange() -> Exchange:
    accounts = [AccountConfig(k, "secret", dict(START)) for k in KEYS]
    config = MockExchangeConfig(accounts=accounts, instruments=default_instruments())  # with the BTCUSD inverse
    ex = Exchange(config, clock=Clock())
    ex.watch("ws-0", ["alice", "bob"])
    for key, side in zip(KEYS, ("Buy", "Sell", "Buy"), strict=True):
        ex.set_position(key, "BTCUSDT", side, "0.2", 65000)
        ex.set_position(key, "BTCUSD", side, "1000", 65000, category="inverse")
        ex.deposit(key, "USDT", 1000)  # the funding wallet, for transfers both ways
    ex.freeze_market()
    for category in ("linear", "spot", "inverse"):
        ex.set_mark_price("BTCUSD" if category == "inverse" else "BTCUSDT", 65000, category=category)
    return ex


def _fields(obj: Any) -> Any:
    """A dataclass (slotted or not) as a comparable tuple of its fields."""
    return tuple((f.name, _plain(getattr(obj, f.name))) for f in dataclasses.fields(obj))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _plain(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, set):
        return tuple(sorted(repr(v) for v in value))
    return value


def account_state(ex: Exchange, key: str) -> Any:
    book = ex.book
    account = book.accounts[key]

    def on_books(books: dict[Any, dict[str, Any]]) -> Any:
        return tuple(
            sorted((repr(i), oid) for i, orders in books.items() for oid, o in orders.items() if o.api_key == key)
        )

    return (
        _fields(account),
        tuple(_fields(o) for o in book.account_orders.get(key, [])),
        tuple(e.exec_id for e in book.executions.get(key, [])),
        tuple(sorted(repr(k) for k, o in book.link_ids.items() if o.api_key == key)),
        on_books(book.resting),
        on_books(book.triggers),
        tuple(sorted((repr(k), tuple(sorted(v))) for k, v in book.position_stops.items() if k[0] == key and v)),
        tuple(sorted((repr(k), n) for k, n in book.open_counts.items() if k[0] == key and n)),
    )


def engine_state(ex: Exchange) -> Any:
    """Everything a request could change (not the read caches)."""
    book = ex.book
    return (
        tuple(account_state(ex, k) for k in sorted(book.accounts)),
        book.ids._rng.getstate(),  # an id drawn for a refused order would change it
        repr(book.ids._seq),
        repr(book.ids._spot),
        book.version,
        book.rest_count,
        book.arm_count,
        tuple(sorted(book.orders)),
        ex.events.cursor,
    )


def call(ex: Exchange, op: str, key: str, query: dict[str, Any]) -> tuple[int, Any]:
    ((code, value),) = ex.apply_batch([(op, (key, query))])
    return code, value


def private_events(ex: Exchange, cursor: int) -> list[tuple[str, list[tuple[str, list[dict[str, Any]]]]]]:
    _, events = ex.wait_events(cursor, 0)
    return [(key, decoded(wire)) for kind, (key, wire) in ((k, d) for k, d in events if k == "private")]


# -- the reproduction from the issue --------------------------------------------------------


def test_refused_trading_stop_changes_nothing_and_leaks_nothing_to_another_account() -> None:
    ex = new_exchange()
    ex.set_position("alice", "BTCUSDT", "Buy", "0.1", 65000)
    before = engine_state(ex)
    cursor = ex.event_cursor()
    # a valid takeProfit (above the price) and an invalid stopLoss (also above the price)
    code, msg = call(
        ex,
        "trading_stop",
        "alice",
        {"category": "linear", "symbol": "BTCUSDT", "takeProfit": "66000", "stopLoss": "67000"},
    )
    assert code == 10001, msg
    assert engine_state(ex) == before
    assert ex.accounts["alice"].positions[("linear", "BTCUSDT", 0)].take_profit == 0
    assert ex.open_orders("alice") == []
    assert private_events(ex, cursor) == []
    # bob's next push carries bob's order only
    code, placed = call(
        ex,
        "order_create",
        "bob",
        LINEAR | {"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "60000"},
    )
    assert code == 0
    pushed = private_events(ex, cursor)
    assert [key for key, _ in pushed] == ["bob"]
    (orders,) = [items for topic, items in pushed[0][1] if topic == "order"]
    assert [o["orderId"] for o in orders] == [orjson.loads(placed)["orderId"]]


def test_a_refused_order_draws_no_id() -> None:
    """Ids are the config seed's sequence: a refused order must not use one up."""
    ex, twin = new_exchange(), new_exchange()
    order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01"}
    assert call(ex, "order_create", "alice", order | {"price": "60000", "triggerPrice": "1"})[0] == 10001
    ids = [orjson.loads(call(e, "order_create", "alice", order | {"price": "60000"})[1])["orderId"] for e in (ex, twin)]
    assert ids[0] == ids[1]


def test_reads_never_write() -> None:
    """A refused spot sell of a coin the account lacks, and reads of coins and symbols it never
    held, leave no coin row, no position and no account behind."""
    ex = new_exchange()
    before = engine_state(ex)
    sell = {"category": "spot", "symbol": "ETHUSDT", "side": "Sell", "orderType": "Limit", "qty": "1", "price": "3000"}
    assert call(ex, "order_create", "alice", sell)[0] == 170131
    assert call(ex, "order_create", "alice", sell | {"orderType": "Market", "price": ""})[0] == 170131
    transfer = {"transferId": "t1", "coin": "ETH", "amount": "1", "fromAccountType": "UNIFIED", "toAccountType": "FUND"}
    assert call(ex, "transfer", "alice", transfer)[0] == 131212
    reads = [
        ("wallet_balance", {"accountType": "UNIFIED", "coin": "ETH,SOL"}),
        ("position_list", {"category": "linear", "symbol": "ETHUSDT"}),
        ("position_list", {"category": "inverse"}),
        ("funding_balance", {"accountType": "UNIFIED", "coin": "ETH"}),
        ("funding_balance", {"accountType": "FUND", "coin": "ETH"}),
        ("order_realtime", {"category": "spot", "symbol": "ETHUSDT"}),
        ("transaction_log", {"currency": "ETH"}),
    ]
    for op, query in reads:
        assert call(ex, op, "alice", query)[0] == 0, op
    assert call(ex, "wallet_balance", "nobody", {"accountType": "UNIFIED"})[0] == 10003
    assert engine_state(ex) == before
    assert "ETH" not in ex.balances("alice")
    assert ("linear", "ETHUSDT", 0) not in ex.accounts["alice"].positions
    assert set(ex.accounts) == set(KEYS)
    funding = orjson.loads(call(ex, "funding_balance", "alice", {"accountType": "UNIFIED"})[1])
    assert {row["coin"] for row in funding["balance"]} == {"USDT", "BTC"}
    # the state API's reads too
    ex.balances("alice"), ex.coin_views("alice"), ex.positions("alice"), ex.open_orders("alice")
    ex.order("alice", "nope"), ex.executions_between("alice"), ex.funding_balances("alice")
    assert engine_state(ex) == before


def test_a_position_list_of_inverse_needs_no_symbol() -> None:
    ex = new_exchange()
    ex.set_position("alice", "BTCUSD", "Buy", "1000", 65000, category="inverse")
    code, value = call(ex, "position_list", "alice", {"category": "inverse"})
    assert code == 0
    assert [p["symbol"] for p in orjson.loads(value)["list"]] == ["BTCUSD"]
    assert call(ex, "position_list", "alice", {"category": "linear"})[0] == 10001


# -- the property test ----------------------------------------------------------------------

JUNK = st.sampled_from(["", "abc", "-1", "0", "1e30", "0.00001", "99999999", "NaN", [1], {"a": 1}, None, True])
SYMBOLS = {"linear": ["BTCUSDT", "ETHUSDT"], "spot": ["BTCUSDT", "ETHUSDT"], "inverse": ["BTCUSD"]}
QTY = {
    "linear": ["0.001", "0.01", "0.1", "5"],
    "spot": ["0.001", "0.01", "0.5", "3"],
    "inverse": ["100", "1000", "90000"],
}


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``value``, one time in eight junk: most requests are valid, many are not."""
    return st.integers(0, 7).flatmap(lambda n: JUNK if n == 7 else value)


@st.composite
def requests(
    draw: st.DrawFn, ex_orders: list[tuple[str, str, str, str]], mark: Decimal
) -> tuple[str, str, dict[str, Any]]:
    key = draw(st.sampled_from(KEYS))
    op = draw(st.sampled_from(WRITES + READS + ("order_create",) * 6 + ("order_amend", "order_cancel") * 2))
    contract = op in ("trading_stop", "set_leverage", "switch_mode")
    category = draw(st.sampled_from(["linear", "inverse"] if contract else ["linear", "spot", "inverse"]))
    symbol = draw(st.sampled_from(SYMBOLS[category]))
    price = lambda: str(65000 + 100 * draw(st.integers(-30, 30)))  # noqa: E731
    q: dict[str, Any] = {"category": draw(maybe(st.just(category))), "symbol": draw(maybe(st.just(symbol)))}
    if ex_orders and "order_" in op and op.split("_")[1] in ("amend", "cancel") and draw(st.integers(0, 7)):
        key = draw(st.sampled_from(ex_orders))[0]  # mostly the owner; sometimes another account tries
    mine = [o for o in ex_orders if o[0] == key]
    if op in ("order_create", "order_create_batch"):
        entry = {
            "side": draw(maybe(st.sampled_from(["Buy", "Sell"]))),
            "orderType": draw(maybe(st.sampled_from(["Market", "Limit"]))),
            "qty": draw(maybe(st.sampled_from(QTY[category]))),
            "price": draw(maybe(st.just(price()))),
            "timeInForce": draw(st.sampled_from(["GTC", "IOC", "FOK", "PostOnly", "GTC"])),
        }
        extra = draw(st.sampled_from(["none", "tpsl", "trigger", "reduce", "link"]))
        if extra == "tpsl":
            entry |= {"takeProfit": draw(maybe(st.just(price()))), "stopLoss": draw(maybe(st.just(price())))}
        elif extra == "trigger":
            entry |= {
                "triggerPrice": draw(maybe(st.just(price()))),
                "triggerDirection": draw(maybe(st.sampled_from([1, 2]))),
            }
        elif extra == "reduce":
            entry["reduceOnly"] = draw(maybe(st.just(True)))
        elif extra == "link":
            entry["orderLinkId"] = draw(maybe(st.sampled_from(["x1", "x2"])))
        if op == "order_create":
            q |= entry
        else:
            q["request"] = [entry | {"symbol": symbol} for _ in range(draw(st.integers(1, 3)))]
    elif op in ("order_amend", "order_cancel", "order_amend_batch", "order_cancel_batch"):
        ref: dict[str, Any] = {"orderId": draw(maybe(st.sampled_from([o[2] for o in mine] or ["nope"])))}
        if mine:
            _, cat, oid, sym = draw(st.sampled_from(mine))
            q |= {"category": cat, "symbol": sym}
            ref["orderId"] = draw(maybe(st.just(oid)))
        if "amend" in op:
            ref |= draw(
                st.sampled_from([{"price": price()}, {"qty": draw(maybe(st.just("0.02")))}, {"triggerPrice": price()}])
            )
        if "batch" in op:
            q["request"] = [ref | {"symbol": q["symbol"]}]
        else:
            q |= ref
    elif op == "trading_stop":  # mostly on the right side of a long (alice, carol) or short (bob)
        up = 1 if key != "bob" else -1
        q |= {
            "takeProfit": draw(maybe(st.just(str(mark + up * 100 * draw(st.integers(-3, 20)))))),
            "stopLoss": draw(maybe(st.just(str(mark - up * 100 * draw(st.integers(-3, 20)))))),
            "tpslMode": draw(st.sampled_from(["Full", "Partial"])),
            "tpSize": draw(maybe(st.just("0.01"))),
            "slSize": draw(maybe(st.just("0.01"))),
        }
        if draw(st.booleans()):
            q["trailingStop"] = draw(maybe(st.just("500")))
    elif op == "set_leverage":
        lev = draw(maybe(st.sampled_from(["1", "5", "10", "100"])))
        q |= {"buyLeverage": lev, "sellLeverage": lev if draw(st.integers(0, 5)) else "3"}
    elif op == "switch_mode":
        q["mode"] = draw(maybe(st.sampled_from([0, 3])))
    elif op == "set_margin_mode":
        q = {"setMarginMode": draw(maybe(st.sampled_from(["REGULAR_MARGIN", "ISOLATED_MARGIN", "PORTFOLIO_MARGIN"])))}
    elif op == "transfer":
        way = draw(st.booleans())
        q = {
            "transferId": f"t{draw(st.integers(0, 30))}",
            "coin": draw(maybe(st.sampled_from(["USDT", "BTC", "ETH"]))),
            "amount": draw(maybe(st.sampled_from(["1", "100", "1", "100", "100000", "0.000000001"]))),
            "fromAccountType": "UNIFIED" if way else "FUND",
            "toAccountType": "FUND" if way else "UNIFIED",
        }
    elif op == "wallet_balance":
        q = {"accountType": draw(maybe(st.just("UNIFIED"))), "coin": draw(maybe(st.just("ETH")))}
    elif op in ("funding_balance",):
        q = {"accountType": draw(maybe(st.sampled_from(["UNIFIED", "FUND"])))}
    elif op in ("order_history", "execution_list", "transaction_log", "transfer_list", "deposit_records"):
        q |= {"limit": draw(maybe(st.just("2"))), "cursor": draw(maybe(st.just("3:0,3:0")))}
    if draw(st.integers(0, 19)) == 0:  # a parameter of the wrong shape anywhere
        q[draw(st.sampled_from(sorted(q) or ["category"]))] = draw(JUNK)
    return key, op, q


def changed_accounts(before: dict[str, Any], ex: Exchange) -> set[str]:
    return {k for k in KEYS if account_state(ex, k) != before[k]}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_requests_are_atomic_and_private(data: st.DataObject) -> None:
    ex = new_exchange()
    cursor = ex.event_cursor()
    for _ in range(data.draw(st.integers(10, 40))):
        if data.draw(st.integers(0, 7)) == 0:  # the market moves, or a test fills an order
            if (live := [o for k in KEYS for o in ex.open_orders(k) if o.status != "Untriggered"]) and data.draw(
                st.booleans()
            ):
                o = data.draw(st.sampled_from(live))
                ex.fill_order(next(k for k in KEYS if ex.order(k, o.order_id)), o.order_id)
            else:
                ex.set_mark_price("BTCUSDT", 65000 + 100 * data.draw(st.integers(-30, 30)))
            continue
        known = [(o.api_key, o.category, o.order_id, o.symbol) for o in ex.book.orders.values() if o.is_open]
        key, op, query = data.draw(requests(known, ex.margin.mark(("linear", "BTCUSDT"))))
        ex.advance_markets()  # a batch first brings the market to now: its fills are not the request's
        before = engine_state(ex)
        per_account = {k: account_state(ex, k) for k in KEYS}
        mark = ex.event_cursor()
        code, value = call(ex, op, key, query)
        assert code != 10016, (op, query, value)  # an engine bug, not a refusal
        if op in READS:
            assert engine_state(ex) == before, (op, query)  # reads never write
            continue
        if code != 0:
            assert engine_state(ex) == before, (op, query, code, value)
            assert private_events(ex, mark) == [], (op, query)
            continue
        changed = changed_accounts(per_account, ex)
        for account, messages in private_events(ex, mark):
            assert account in changed, (op, query, account)
            assert account != "carol"  # no private connection, nothing built
            for topic, items in messages:
                if topic == "order":  # an account's push carries its own orders only
                    assert all(
                        ex.book.orders[i["orderId"]].api_key == account for i in items if i["orderId"] in ex.book.orders
                    )
    # money reconciles per account and coin: start + the log's changes = the wallet
    for key in KEYS:
        account = ex.accounts[key]
        for coin in set(account.coins) | set(START):
            logged = sum((row.change for row in account.log if row.currency == coin), D(0))
            moved = sum(
                (t.amount * (1 if t.to_type == "UNIFIED" else -1) for t in account.transfers if t.coin == coin), D(0)
            )
            assert abs(START.get(coin, D(0)) + logged - account.balance_of(coin).wallet) < D("1e-15"), (key, coin)
            deposited = sum((d.amount for d in account.deposits if d.coin == coin), D(0))
            assert account.funding.get(coin, D(0)) == deposited - moved, (key, coin)
    # REST lists each order as its last push left it (watched accounts)
    last: dict[str, dict[str, Any]] = {}
    for _account, messages in private_events(ex, cursor):
        for topic, items in messages:
            if topic == "order":
                last |= {i["orderId"]: i for i in items}
    for order_id, pushed in last.items():
        order = ex.book.orders.get(order_id)
        if order is not None:
            assert (pushed["orderStatus"], pushed["cumExecQty"]) == (order.status, fmt(order.cum_qty)), order_id
