"""Records and ids: cursors that name a record, ids a run can replay, and reset to the start."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from tests.unit.helpers import KEY, LINEAR, Clock, new_exchange, ok, run

D = Decimal
#: each paged list: (op, base query, the id field of an item, the list's key in the result)
LISTS = {
    "orders": ("order_history", {"category": "linear"}, "orderId", "list"),
    "fills": ("execution_list", {"category": "linear"}, "execId", "list"),
    "ledger": ("transaction_log", {}, "id", "list"),
    "transfers": ("transfer_list", {}, "transferId", "list"),
    "deposits": ("deposit_records", {}, "txID", "rows"),
}


def write(ex: Exchange, n: int) -> None:
    """A write that adds one record to every list: an order that fills (order, fill, ledger
    row), a transfer (transfer, ledger row) and a deposit."""
    ok(ex, "order_create", LINEAR | {"side": "Buy" if n % 2 else "Sell", "orderType": "Market", "qty": "0.001"})
    transfer = {"transferId": f"t{n}", "coin": "USDT", "amount": "1", "fromAccountType": "UNIFIED"}
    ok(ex, "transfer", transfer | {"toAccountType": "FUND"})
    ex.deposit(KEY, "USDT", 1)


def every_id(ex: Exchange, name: str) -> list[str]:
    op, query, field, key = LISTS[name]
    items = []
    cursor = ""
    while True:
        page = ok(ex, op, query | {"limit": "50", **({"cursor": cursor} if cursor else {})})
        items += [item[field] for item in page[key]]
        cursor = page["nextPageCursor"]
        if not cursor:
            return items


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(LISTS)),
    st.integers(3, 12),
    st.integers(1, 4),
    st.lists(st.integers(0, 3), min_size=1, max_size=12),
)
def test_paging_while_writing_never_repeats_or_skips_a_record(
    name: str, existing: int, limit: int, writes_between_pages: list[int]
) -> None:
    """A client pages a list while the account keeps trading: every record that existed when
    it started is seen exactly once, newest first, whatever arrives between its pages."""
    ex = new_exchange()
    for n in range(existing):
        write(ex, n)
    before = every_id(ex, name)
    op, query, field, key = LISTS[name]
    seen: list[str] = []
    cursor = ""
    written = existing
    for extra in [*writes_between_pages, *[0] * 100]:
        page = ok(ex, op, query | {"limit": str(limit), **({"cursor": cursor} if cursor else {})})
        seen += [item[field] for item in page[key]]
        cursor = page["nextPageCursor"]
        if not cursor:
            break
        for _ in range(extra):
            write(ex, written)
            written += 1
    assert len(seen) == len(set(seen)), "a record came twice"
    assert seen == before, "the pages are not the records that existed, newest first"


def test_a_pruned_record_does_not_shift_the_pages() -> None:
    """History pruned between pages (``history_limit``) never makes a page repeat a record."""
    account = AccountConfig(KEY, "secret", {"USDT": D(10**7)})
    ex = Exchange(MockExchangeConfig(accounts=[account], history_limit=100), clock=Clock())
    ex.freeze_market()
    market = LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.001"}
    for _ in range(100):
        ok(ex, "order_create", market)
    first = ok(ex, "execution_list", {"category": "linear", "limit": "60"})
    for _ in range(20):  # 120 fills: the oldest are pruned
        ok(ex, "order_create", market)
    second = ok(ex, "execution_list", {"category": "linear", "limit": "100", "cursor": first["nextPageCursor"]})
    ids = [e["execId"] for e in first["list"]] + [e["execId"] for e in second["list"]]
    assert len(ids) == len(set(ids))
    assert 0 < len(second["list"]) <= 40


def test_a_bad_cursor_is_refused() -> None:
    ex = new_exchange()
    for cursor in ("garbage", "²:0", "-1:0", "1" * 40):
        assert run(ex, "execution_list", {"category": "linear", "cursor": cursor})[0] == 10001, cursor


def ids_of_a_session(ex: Exchange) -> list[Any]:
    """The ids a short session makes: orders (linear and spot), fills, ledger rows, a deposit."""
    out = []
    for category in ("linear", "spot"):
        query = {"category": category, "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
        out.append(ok(ex, "order_create", query | {"qty": "0.001", "price": "60000"})["orderId"])
    out.append(ok(ex, "order_create", LINEAR | {"side": "Buy", "orderType": "Market", "qty": "0.001"})["orderId"])
    out += [e.exec_id for e in ex.executions_between(KEY)]
    out += [row["id"] for row in ok(ex, "transaction_log", {})["list"]]
    out.append(ex.deposit(KEY, "USDT", 1))
    return out


def test_same_config_and_requests_give_the_same_ids() -> None:
    """So a failing run can be replayed: ids come from the config's seed, not the clock."""
    first = ids_of_a_session(new_exchange())
    assert ids_of_a_session(new_exchange()) == first
    seeded = new_exchange()
    seeded._config.market.seed += 1
    seeded.reset()
    assert ids_of_a_session(seeded)[0] != first[0]


def test_reset_starts_every_id_and_counter_again() -> None:
    ex = new_exchange()
    first = ids_of_a_session(ex)
    ex.reset()
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 65000)
    ex.set_mark_price("BTCUSDT", 65000, category="spot")
    assert ids_of_a_session(ex) == first  # the transaction log's ids included


def test_secrets_wait_for_the_engine_lock() -> None:
    """The Manager serves each connection on its own thread: ``secrets`` must not read the
    accounts while another thread changes them."""
    ex = new_exchange()
    got: list[dict[str, str]] = []
    with ex._lock:
        reader = threading.Thread(target=lambda: got.append(ex.secrets()))
        reader.start()
        reader.join(0.2)
        assert reader.is_alive() and not got  # waiting for the lock
    reader.join(5)
    assert got == [{KEY: "secret"}]


def test_freeze_market_takes_symbol_then_category() -> None:
    ex = new_exchange()
    ex.freeze_market("BTCUSDT", "spot", frozen=False)
    assert not ex.markets.get("spot", "BTCUSDT").frozen  # type: ignore[union-attr]
    assert ex.markets.get("linear", "BTCUSDT").frozen  # type: ignore[union-attr]
