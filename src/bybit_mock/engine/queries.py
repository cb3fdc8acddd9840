"""What an account can read: wallet, positions, orders and fills, over REST and the state API.

Reads never write: nothing here creates a coin, a position or an account, so asking about a
coin the account never held (or a symbol it never traded) shows zeros and leaves the state
as it was. Lists of records (orders, fills) are newest first and paged by a cursor that
names a record (``params.page_records``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from ..bybit import errors, params
from ..instruments import CONTRACTS
from . import requests, shapes
from .accounts import ZERO
from .book import AccountBook
from .ledger import flat_position
from .margin import Margin
from .orders import Order
from .part import Part
from .pushes import Pushes
from .views import CoinView, ExecutionView, OrderView

#: most encoded wallet answers kept (the cache is cleared when it fills)
_WALLET_CACHE_SIZE = 1024


class Queries(Part):
    def __init__(self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int]) -> None:
        super().__init__(book, margin, pushes, clock)
        self._wallet_cache: dict[tuple[Any, ...], bytes] = {}
        self._wallet_version = -1

    def wallet_balance(self, api_key: str, query: dict[str, Any]) -> bytes:
        """``GET /v5/account/wallet-balance`` result.

        Valuing an account is tens of microseconds of Decimal arithmetic, and bots poll their
        wallet far more often than prices or balances change, so the encoded answer is cached
        under (account state version, every market's last price, key, query).
        """
        account_type = params.required(query, "accountType")
        if account_type != "UNIFIED":
            raise errors.params_error("accountType only support UNIFIED.")
        if self._wallet_version != self.book.version:
            self._wallet_cache.clear()
            self._wallet_version = self.book.version
        key = (self.margin.markets.price_key(), api_key, params.text(query, "coin"))
        cached = self._wallet_cache.get(key)
        if cached is None:
            if len(self._wallet_cache) >= _WALLET_CACHE_SIZE:
                self._wallet_cache.clear()
            cached = self._wallet_cache[key] = self._wallet_balance(api_key, query)
        return cached

    def _wallet_balance(self, api_key: str, query: dict[str, Any]) -> bytes:
        valuation = self.margin.valuation(self.book.account(api_key))
        wanted = params.text(query, "coin")
        if wanted is None:
            coins = [c for c in valuation.coins if c.wallet_balance or c.equity]
        else:
            names = [name.strip().upper() for name in wanted.split(",") if name.strip()]
            by_name = {c.coin: c for c in valuation.coins}
            coins = [by_name.get(n) or _empty_coin(n, self.margin.usd_price(n)) for n in names]
        return orjson.dumps({"list": [shapes.wallet_account(valuation, coins)]})

    def position_list(self, api_key: str, query: dict[str, Any]) -> bytes:
        """``GET /v5/position/list`` result: linear needs ``symbol`` or ``settleCoin``; inverse
        lists every inverse position without either (ccxt pro's ``watch_positions`` asks so)."""
        category = params.category(query, (*CONTRACTS, "option"))
        symbol = params.text(query, "symbol")
        settle = params.text(query, "settleCoin")
        if category == "linear" and symbol is None and settle is None:
            raise errors.params_error("params error: symbol or settleCoin is required")
        account = self.book.account(api_key)
        items: list[dict[str, Any]] = []
        if symbol is not None:
            inst = self.instruments.get((category, symbol))
            if inst is None:
                raise errors.params_error(f"params error: symbol invalid: {symbol}")
            for idx in account.position_indices(category, symbol):  # hedge mode: both, even flat
                pos = account.positions.get((category, symbol, idx))
                if pos is None:  # shown flat, not stored: a read has no side effects
                    pos = flat_position(category, symbol, idx, self._clock())
                items.append(self.pushes.position_json(pos, inst, account))
        else:
            for (cat, _sym, _idx), pos in sorted(account.positions.items()):
                inst = self.instruments[(cat, pos.symbol)]
                if cat == category and pos.size and (settle is None or inst.settle_coin == settle):
                    items.append(self.pushes.position_json(pos, inst, account))
        chunk, cursor = params.page(items, query, default=20, maximum=200)
        return orjson.dumps({"list": chunk, "nextPageCursor": cursor, "category": category})

    # -- orders and fills ---------------------------------------------------------------------

    def order_realtime(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = requests.OrderFilter.of(query).scoped()
        open_only = params.integer(query, "openOnly") or 0
        by_id = which.order_id is not None or which.link_id is not None
        orders = [
            o
            for o in reversed(self.book.account_orders.get(api_key, []))
            if which.matches(o, self.instruments) and (by_id or (o.is_open if open_only == 0 else not o.is_open))
        ]
        if open_only and not by_id:
            orders = orders[:500]
        return self._order_page(orders, query, which.category)

    def order_history(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = requests.OrderFilter.of(query)
        status = params.text(query, "orderStatus")
        start, end = requests.window(query, self._clock())
        orders = [
            o
            for o in reversed(self.book.account_orders.get(api_key, []))
            if which.matches(o, self.instruments)
            and (status is None or o.status == status)
            and start <= o.created_ms <= end
        ]
        return self._order_page(orders, query, which.category)

    def execution_list(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        which = requests.OrderFilter.of(query)
        exec_type = params.text(query, "execType")
        start, end = requests.window(query, self._clock())
        found = [
            e
            for e in reversed(self.book.executions.get(api_key, []))
            if which.matches(e.order, self.instruments)
            and exec_type in (None, e.exec_type)
            and start <= e.time_ms <= end
        ]
        chunk, cursor = params.page_records(found, query, 50, 100, lambda e: e.seq)
        items = [shapes.execution_item(e, self.instruments[(e.order.category, e.order.symbol)]) for e in chunk]
        return {"nextPageCursor": cursor, "category": which.category, "list": items}

    def _order_page(self, orders: list[Order], query: dict[str, Any], category: str) -> dict[str, Any]:
        chunk, cursor = params.page_records(orders, query, 20, 50, lambda o: o.seq)
        items = [shapes.order_item(o, self.instruments[(o.category, o.symbol)]) for o in chunk]
        return {"nextPageCursor": cursor, "category": category, "list": items}

    # -- state API ----------------------------------------------------------------------------

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[OrderView]:
        self.book.account(api_key)
        return [OrderView.of(o) for o in self.book.open_orders(api_key) if symbol in (None, o.symbol)]

    def order(self, api_key: str, order_id: str | None, order_link_id: str | None) -> OrderView | None:
        book = self.book
        found = book.orders.get(order_id) if order_id else book.link_ids.get((api_key, order_link_id or ""))
        return OrderView.of(found) if found is not None and found.api_key == api_key else None

    def executions_between(self, api_key: str, start_ms: int | None, end_ms: int | None) -> list[ExecutionView]:
        return [
            ExecutionView.of(e)
            for e in self.book.executions.get(api_key, [])
            if (start_ms is None or e.time_ms >= start_ms) and (end_ms is None or e.time_ms <= end_ms)
        ]


def _empty_coin(name: str, usd: Decimal) -> CoinView:
    return CoinView(name, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, usd)
