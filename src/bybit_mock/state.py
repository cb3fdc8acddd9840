"""``MockExchangeState``: read and change the exchange from the test process.

Each method is one call to the state service (a blocking round trip of tens of
microseconds), made from the caller's thread: fine in tests, never in an event loop's hot path.
Changes made here are "behind the client's back": the next REST call or stream sees them.

If the state service is killed, the supervisor starts a new one from the configured start;
calls raise ``ConnectionError`` while it is down and work again once it is back (the first
call after the restart reconnects).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .config import AccountConfig, Category, Side
from .engine.views import CoinView, ExecutionView, OrderView, PositionView
from .market.canned_items import BookSnapshot, Candle, MarketItem, Tick, item_to_dict
from .service.manager import StateProxy


class MockExchangeState:
    def __init__(self, address: Any, authkey: bytes) -> None:
        self._proxy = StateProxy(address, authkey)

    @property
    def proxy(self) -> StateProxy:
        """The reconnecting proxy these calls go through (``exchange.scenarios`` shares it)."""
        return self._proxy

    def reset(self) -> None:
        """Back to the configured start: accounts, balances, positions, prices; scenarios
        disarmed (the config's re-armed) and their journal emptied."""
        self._proxy.reset()

    def account_keys(self) -> list[str]:
        keys: list[str] = self._proxy.account_keys()
        return keys

    def add_account(self, account: AccountConfig) -> None:
        """Create an account at run time; its key works on REST and WS at once."""
        self._proxy.add_account(account)

    def balances(self, api_key: str) -> dict[str, Decimal]:
        """Wallet balance per coin."""
        result: dict[str, Decimal] = self._proxy.balances(api_key)
        return result

    def balance(self, api_key: str, coin: str) -> Decimal:
        return self.balances(api_key).get(coin.upper(), Decimal(0))

    def coins(self, api_key: str) -> list[CoinView]:
        """Per-coin wallet view: balance, equity, unrealised PnL, margins."""
        result: list[CoinView] = self._proxy.coin_views(api_key)
        return result

    def set_balance(self, api_key: str, coin: str, amount: Decimal | int | str, *, push: bool = False) -> None:
        """Set a wallet balance behind the client's back. Without ``push`` the client learns of
        it only by asking (REST): the reconciliation case; with it, a ``wallet`` message goes out."""
        self._proxy.set_balance(api_key, coin, amount, push)

    def positions(self, api_key: str) -> list[PositionView]:
        """Open positions marked to the current mark price."""
        result: list[PositionView] = self._proxy.positions(api_key)
        return result

    def position(self, api_key: str, symbol: str, category: Category = "linear") -> PositionView | None:
        for p in self.positions(api_key):
            if p.symbol == symbol and p.category == category:
                return p
        return None

    def set_position(
        self,
        api_key: str,
        symbol: str,
        side: Side,
        size: Decimal | int | str,
        entry_price: Decimal | int | str,
        *,
        leverage: Decimal | int | str | None = None,
        category: Category = "linear",
        position_idx: int = 0,
        push: bool = False,
    ) -> None:
        """Put a position in place (size 0 closes it). ``position_idx`` 1 (long) or 2
        (short) for a symbol in hedge mode; ``push`` sends a ``position`` message."""
        self._proxy.set_position(api_key, symbol, side, size, entry_price, leverage, category, position_idx, push)

    def deposit(self, api_key: str, coin: str, amount: Decimal | int | str, chain: str | None = None) -> str:
        """An on-chain deposit: it lands in the funding wallet (``FUND``) and is listed by
        ``/v5/asset/deposit/query-record``; returns its transaction id. Move it to trading
        with ``/v5/asset/transfer/inter-transfer``, as on Bybit."""
        tx_id: str = self._proxy.deposit(api_key, coin, amount, chain)
        return tx_id

    def funding_balances(self, api_key: str) -> dict[str, Decimal]:
        """The funding wallet (``FUND``) per coin; :meth:`balances` is the unified wallet."""
        result: dict[str, Decimal] = self._proxy.funding_balances(api_key)
        return result

    def set_mark_price(self, symbol: str, price: Decimal | int | str, category: Category = "linear") -> None:
        """Jump the market to ``price``: book, streams, matching and mark price move together.

        The market goes on moving from there unless it is frozen (:meth:`freeze_market`).
        """
        self._proxy.set_mark_price(symbol, price, category)

    set_price = set_mark_price

    def freeze_market(self, symbol: str | None = None, category: Category | None = None) -> None:
        """Hold markets still (all by default): no trades, no book changes, silent streams.

        Subscribers get a fresh snapshot; prices stay where they are or where
        :meth:`set_mark_price` puts them. :meth:`thaw_market` and :meth:`reset` undo it.
        """
        self._proxy.freeze_market(symbol, category, True)

    def thaw_market(self, symbol: str | None = None, category: Category | None = None) -> None:
        self._proxy.freeze_market(symbol, category, False)

    # -- orders and fills -------------------------------------------------------------------

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[OrderView]:
        """Open orders (New, PartiallyFilled, or Untriggered stops), oldest first."""
        result: list[OrderView] = self._proxy.open_orders(api_key, symbol)
        return result

    def order(self, api_key: str, order_id: str | None = None, *, order_link_id: str | None = None) -> OrderView | None:
        """One order (any status) by ``orderId`` or ``orderLinkId``; None if there is none."""
        result: OrderView | None = self._proxy.order(api_key, order_id, order_link_id)
        return result

    def executions(self, api_key: str, start_ms: int | None = None, end_ms: int | None = None) -> list[ExecutionView]:
        """Fills in time order, optionally within ``[start_ms, end_ms]``."""
        result: list[ExecutionView] = self._proxy.executions_between(api_key, start_ms, end_ms)
        return result

    def fill_order(
        self,
        api_key: str,
        order_id: str,
        qty: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> None:
        """Fill a live order now (all of it by default, at its own price by default); an
        Untriggered stop cannot be filled (ValueError) until its trigger price is reached.

        The account's private stream gets the order, execution, position and wallet messages,
        exactly as when the market fills it.
        """
        self._proxy.fill_order(api_key, order_id, qty, price)

    # -- canned market data (``MockExchangeConfig.with_candles`` ...) ------------------------

    def append_market_data(self, items: Iterable[MarketItem]) -> list[dict[str, Any]]:
        """Add candles, ticks and books (mixed) to their canned symbols' streams, in order.

        A paced stream that ran dry goes on at once; a step-mode one waits for
        :meth:`step_market`. Returns each symbol's :meth:`market_status`. ``ValueError`` (and
        nothing added) if an item is off its instrument's grid or its symbol is not canned.
        """
        result: list[dict[str, Any]] = self._proxy.market_append(None, [item_to_dict(i) for i in items])
        return result

    def append_candles(self, candles: Iterable[Candle]) -> list[dict[str, Any]]:
        return self.append_market_data(candles)

    def append_ticks(self, ticks: Iterable[Tick]) -> list[dict[str, Any]]:
        return self.append_market_data(ticks)

    def append_order_books(self, books: Iterable[BookSnapshot]) -> list[dict[str, Any]]:
        return self.append_market_data(books)

    def step_market(self, symbol: str, n: int = 1, *, category: Category = "linear") -> int:
        """Release the next ``n`` items of a step-mode canned market: they apply now (REST and
        matching see them) and stream at once. Returns how many there were to release."""
        released: int = self._proxy.market_step(category, symbol, n)["stepped"]
        return released

    def market_status(self, symbol: str, *, category: Category = "linear") -> dict[str, Any]:
        """A canned market's ``mode`` ("pace" or "step"), ``pace``, ``started``, and its counts
        of ``items``, ``released`` (scheduled) and ``applied`` (in the market now)."""
        status: dict[str, Any] = self._proxy.market_step(category, symbol, 0)
        return status

    def activity(self) -> dict[str, dict[str, Any]]:
        """Each configured account's private activity since the last reset, by API key:
        ``mode``, ``rate``, ``started_ms``, and how many events were ``done``, ``failed``
        (consistent: refused by the engine, no margin left) and ``skipped`` (due during a stall
        of more than a second, dropped rather than burst). ``done + failed + skipped`` is what
        the rate made due by now (``docs/soak.md``)."""
        status: dict[str, dict[str, Any]] = self._proxy.activity_status()
        return status

    def add_maintenance(
        self,
        title: str,
        begin_ms: int,
        end_ms: int,
        *,
        href: str = "",
        service_types: Iterable[int] = (1, 2, 3, 4, 5),
        product: Iterable[int] = (1, 2, 3, 4),
        maintain_type: int = 1,
    ) -> str:
        """Announce a maintenance window on ``GET /v5/system/status`` from ``begin_ms`` to
        ``end_ms`` (ms since the epoch); its ``state`` is ``scheduled``, ``ongoing`` or
        ``completed`` as the clock passes them (ccxt's ``fetch_status`` says ``maintenance``
        while one is ongoing). It only announces: script the outage itself with scenarios.
        Returns the window's id; ``reset()`` clears every window."""
        window_id: str = self._proxy.add_maintenance(
            title,
            begin_ms,
            end_ms,
            href=href,
            service_types=tuple(service_types),
            product=tuple(product),
            maintain_type=maintain_type,
        )
        return window_id
