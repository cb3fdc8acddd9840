"""Property tests over random order flows, on the engine with an injected clock.

Each example builds an exchange (frozen markets, one account with USDT and BTC), runs a random
sequence of creates, amends, cancels, forced fills and price moves on linear and spot BTCUSDT,
and checks after every step and at the end:

* an accepted order never leaves the account with negative available balance, and spot coin
  holds never exceed the wallet;
* the margin check's shortcut (``available_balance``) equals the full valuation's figure;
* money is conserved: USDT wallet = start + realised PnL - fees (linear) - spot cash flows,
  and the transaction log's changes add up to every coin's wallet;
* no order's filled quantity exceeds its quantity, and statuses only move along legal edges
  (conditional orders, attached TP/SL and a position's TP/SL/trailing stop included);
* the REST snapshot (orders, position, wallet) equals the state replayed from private events;

half of the examples run BTCUSDT in hedge mode, each linear order on a random side's
position (so some open and some close).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, START_BTC, START_USDT, decoded, new_exchange, run

D = Decimal

LEGAL = {
    ("New", "New"),
    ("New", "PartiallyFilled"),
    ("New", "Filled"),
    ("New", "Cancelled"),
    ("PartiallyFilled", "PartiallyFilled"),
    ("PartiallyFilled", "Filled"),
    ("PartiallyFilled", "Cancelled"),
    ("PartiallyFilled", "PartiallyFilledCanceled"),
    ("Untriggered", "Untriggered"),
    ("Untriggered", "Triggered"),  # pushed on its own, as Bybit does, before what follows
    ("Untriggered", "Deactivated"),
    ("Triggered", "New"),
    ("Triggered", "PartiallyFilled"),
    ("Triggered", "Filled"),
    ("Triggered", "Cancelled"),  # refused once live (no position left to reduce, no margin)
}


categories = st.sampled_from(["linear", "spot"])
sides = st.sampled_from(["Buy", "Sell"])
qtys = st.sampled_from(["0.001", "0.005", "0.01", "0.05", "0.3"])
offsets = st.integers(min_value=-40, max_value=40)  # limit price: 65000 + 50 * offset
ops = st.one_of(
    st.tuples(st.just("market"), categories, sides, qtys),
    st.tuples(st.just("limit"), categories, sides, qtys, offsets, st.sampled_from(["GTC", "IOC", "FOK", "PostOnly"])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("amend"), st.integers(0, 50), offsets),
    st.tuples(st.just("fill"), st.integers(0, 50), st.sampled_from(["all", "part"])),
    st.tuples(st.just("move"), categories, offsets),
    st.tuples(st.just("stop"), sides, qtys, offsets, st.sampled_from(["Market", "Limit"])),
    st.tuples(st.just("tpsl"), sides, qtys, st.integers(1, 40), st.integers(1, 40)),
    st.tuples(st.just("trading_stop"), st.integers(0, 40), st.integers(0, 40), st.integers(0, 20)),
)


def unclipped_available(ex: Exchange) -> Decimal:
    return ex.margin.valuation(ex.accounts[KEY]).unclipped_available


def step(ex: Exchange, op: tuple[Any, ...], pick_idx: Callable[[], int]) -> None:
    """One operation; ``pick_idx`` gives a linear order's positionIdx (0, or 1/2 in hedge mode)."""
    kind = op[0]
    open_orders = ex.open_orders(KEY)

    def idx(category: str = "linear") -> dict[str, int]:
        return {"positionIdx": pick_idx()} if category == "linear" else {}

    if kind == "market":
        _, category, side, qty = op
        if category == "spot" and side == "Buy":
            qty = str(D(qty) * 65000)  # a spot market buy's qty is quote to spend
        query = {"category": category, "symbol": "BTCUSDT", "side": side, "orderType": "Market", "qty": qty}
        run(ex, "order_create", query | idx(category))
    elif kind == "limit":
        _, category, side, qty, offset, tif = op
        price = str(65000 + 50 * offset)
        query = {"category": category, "symbol": "BTCUSDT", "side": side, "orderType": "Limit"}
        run(ex, "order_create", query | {"qty": qty, "price": price, "timeInForce": tif} | idx(category))
    elif kind == "cancel" and open_orders:
        o = open_orders[op[1] % len(open_orders)]
        code, _ = run(ex, "order_cancel", {"category": o.category, "symbol": "BTCUSDT", "orderId": o.order_id})
        assert code == 0
    elif kind == "amend" and open_orders:
        o = open_orders[op[1] % len(open_orders)]
        query = {"category": o.category, "symbol": "BTCUSDT", "orderId": o.order_id, "price": str(65000 + 50 * op[2])}
        run(ex, "order_amend", query)
    elif kind == "fill" and (live := [o for o in open_orders if o.status != "Untriggered"]):
        o = live[op[1] % len(live)]
        left = o.qty - o.filled_qty
        part = (left / 2).quantize(D("0.001")) if op[2] == "part" else left
        if part > 0:
            ex.fill_order(KEY, o.order_id, part)
    elif kind == "move":
        _, category, offset = op
        ex.set_mark_price("BTCUSDT", 65000 + 50 * offset, category=category)
    elif kind == "stop":  # a linear conditional order, its trigger on either side of the market
        _, side, qty, offset, order_type = op
        last = ex.markets.models[("linear", "BTCUSDT")].mark_price()
        trigger = last + 50 * offset
        if trigger > 0 and offset:
            query = {"category": "linear", "symbol": "BTCUSDT", "side": side, "orderType": order_type, "qty": qty}
            query |= {"triggerPrice": str(trigger), "triggerDirection": 1 if offset > 0 else 2}
            run(ex, "order_create", query | ({"price": str(trigger)} if order_type == "Limit" else {}) | idx())
    elif kind == "tpsl":  # a linear market order with TP and SL attached
        _, side, qty, up, down = op
        last = ex.markets.models[("linear", "BTCUSDT")].mark_price()
        tp, sl = (last + 50 * up, last - 50 * down) if side == "Buy" else (last - 50 * up, last + 50 * down)
        query = {"category": "linear", "symbol": "BTCUSDT", "side": side, "orderType": "Market", "qty": qty}
        run(ex, "order_create", query | {"takeProfit": str(tp), "stopLoss": str(sl)} | idx())
    elif kind == "trading_stop":  # the position's own TP/SL/trailing stop (0 clears)
        _, up, down, trail = op
        last = ex.markets.models[("linear", "BTCUSDT")].mark_price()
        which = idx()
        listed = run(ex, "position_list", {"category": "linear", "symbol": "BTCUSDT"})[1]["list"]
        long = next(p for p in listed if p["positionIdx"] == which.get("positionIdx", 0))["side"] == "Buy"
        tp = last + 50 * up if long else last - 50 * up
        sl = last - 50 * down if long else last + 50 * down
        query = {"category": "linear", "symbol": "BTCUSDT", "trailingStop": str(50 * trail)} | which
        run(ex, "trading_stop", query | {"takeProfit": str(tp if up else 0), "stopLoss": str(sl if down else 0)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=5, max_size=40), st.booleans(), st.data())
def test_random_order_flows_keep_the_books_straight(
    flow: list[tuple[Any, ...]], hedge: bool, data: st.DataObject
) -> None:
    ex = new_exchange()
    if hedge:  # a long (positionIdx 1) and a short (2); orders pick either, so some close
        run(ex, "switch_mode", {"category": "linear", "symbol": "BTCUSDT", "mode": 3})
    indices = st.sampled_from([1, 2]) if hedge else st.just(0)
    cursor = ex.event_cursor()
    for op in flow:
        before = unclipped_available(ex)
        step(ex, op, lambda: data.draw(indices))
        if op[0] in ("market", "limit", "amend") and before >= 0:
            assert unclipped_available(ex) >= 0, op
        for coin in ex.accounts[KEY].coins.values():
            # a realised loss beyond the coin's balance leaves it negative (a unified account
            # borrows against its other collateral, the BTC here); nothing is locked then
            assert 0 <= coin.locked <= max(coin.wallet, 0) and coin.order_im >= 0
        # the margin check's shortcut gives what the full valuation gives (up to the 28th digit:
        # the sums are grouped differently)
        shortcut, full = ex.margin.available(ex.accounts[KEY]), ex.margin.valuation(ex.accounts[KEY]).total_available
        assert abs(shortcut - full) < D("1e-12"), (shortcut, full)

    _, events = ex.wait_events(cursor, 0)
    pushed = [msg for kind, data in events if kind == "private" and data[0] == KEY for msg in decoded(data[1])]

    # statuses move along legal edges only; cumulative fills never exceed the order qty
    last: dict[str, dict[str, Any]] = {}
    for topic, items in pushed:
        if topic != "order":
            continue
        for item in items:
            previous = last.get(item["orderId"])
            if previous is not None:
                assert (previous["orderStatus"], item["orderStatus"]) in LEGAL, (previous, item)
            assert D(item["cumExecQty"]) <= D(item["qty"])
            last[item["orderId"]] = item

    # money: USDT = start + linear (PnL - fees) - spot buys + spot sells (less their fee)
    executions = ex.executions_between(KEY)
    usdt = START_USDT
    btc = START_BTC
    for e in executions:
        if e.category == "linear":
            usdt += e.realised_pnl - e.fee
        elif e.side == "Buy":
            usdt -= e.price * e.qty
            btc += e.qty - e.fee
        else:
            usdt += e.price * e.qty - e.fee
            btc -= e.qty
    assert ex.balances(KEY)["USDT"] == usdt
    assert ex.balances(KEY).get("BTC", D(0)) == btc
    # the transaction log reconciles: start + its changes = the wallet, per coin
    for coin, start in (("USDT", START_USDT), ("BTC", START_BTC)):
        logged = sum((row.change for row in ex.accounts[KEY].log if row.currency == coin), D(0))
        # (up to Decimal's 28th digit: an averaged entry price need not terminate)
        assert abs(start + logged - ex.balances(KEY).get(coin, D(0))) < D("1e-15"), coin

    # REST snapshot == state replayed from the pushes
    history: dict[str, dict[str, Any]] = {}
    for category in ("linear", "spot"):
        page = run(ex, "order_history", {"category": category, "limit": "50"})[1]
        history |= {o["orderId"]: o for o in page["list"]}
    assert set(history) == set(last)
    for order_id, pushed_item in last.items():
        rest_item = history[order_id]
        for field in ("orderStatus", "cumExecQty", "cumExecValue", "cumExecFee", "leavesQty", "price", "qty"):
            assert rest_item[field] == pushed_item[field], (field, rest_item, pushed_item)
    # hedge mode: the long stays long and the short short (a closing order never flips them)
    allowed_sides = {0: {"", "Buy", "Sell"}, 1: {"", "Buy"}, 2: {"", "Sell"}}
    for item in (item for topic, items in pushed if topic == "position" for item in items):
        assert item["side"] in allowed_sides[item["positionIdx"]], item
    pushed_positions = {item["positionIdx"]: item for topic, items in pushed if topic == "position" for item in items}
    for rest_position in run(ex, "position_list", {"category": "linear", "symbol": "BTCUSDT"})[1]["list"]:
        pushed_position = pushed_positions.get(rest_position["positionIdx"])
        if pushed_position is not None:
            assert (pushed_position["size"], pushed_position["entryPrice"]) == (
                rest_position["size"],
                rest_position["avgPrice"],
            )
        else:
            assert rest_position["size"] == "0"
    wallets = [item for topic, items in pushed if topic == "wallet" for item in items]
    if wallets:
        rest_wallet = run(ex, "wallet_balance", {"accountType": "UNIFIED"})[1]["list"][0]
        pushed_coins = {c["coin"]: c["walletBalance"] for c in wallets[-1]["coin"]}
        rest_coins = {c["coin"]: c["walletBalance"] for c in rest_wallet["coin"]}
        assert {k: v for k, v in pushed_coins.items() if v != "0"} == {k: v for k, v in rest_coins.items() if v != "0"}
