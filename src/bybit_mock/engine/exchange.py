"""The exchange engine: the single source of truth, served by the state service.

Two kinds of callers reach it:

* **workers** call :meth:`Exchange.apply_batch` with a list of ``(op, args)`` commands; one
  Manager round trip carries every command a worker queued while the previous trip was in
  flight. Each command's reply is ``(0, value)`` or ``(retCode, message)``; a failing
  command never fails its neighbours. REST results come back already encoded by orjson, so
  the worker only wraps them in the envelope.
* **tests** call the state methods (``balances``, ``set_balance``, ``positions``,
  ``reset`` ...) through their own Manager proxy.

The Manager server runs one thread per client connection, so every public entry point takes
the engine lock. Nothing here reads the wall clock: ``clock`` is injected.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import orjson

from ..bybit import errors, params, shapes
from ..bybit.errors import BybitError
from ..config import AccountConfig, InstrumentConfig, MockExchangeConfig, to_decimal
from ..market import queries
from ..market.markets import Markets
from .accounts import HEDGE_SIDES, ZERO, Account, Position, Valuation, available_balance, free_by_coin
from .events import EventLog
from .funds import Funds
from .ledger import DEFAULT_LEVERAGE, flat_position
from .trading import Trading
from .views import CoinView, PositionView

log = logging.getLogger(__name__)

Clock = Callable[[], int]
#: ``(0, value)`` on success, ``(retCode, retMsg)`` on a Bybit error.
Reply = tuple[int, Any]
Command = tuple[str, tuple[Any, ...]]

_STABLECOINS = frozenset({"USDT", "USDC"})
_ONE = Decimal(1)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Exchange(Trading, Funds):
    """Accounts, instruments and prices; see the module docstring for the calling rules."""

    def __init__(self, config: MockExchangeConfig, clock: Clock = wall_clock_ms) -> None:
        self._config = config
        self._history_limit = config.history_limit
        self._clock = clock
        self._lock = threading.RLock()
        #: differs between two engines: how a worker that reconnects tells a restarted state
        #: service (a new engine, back at the configured start) from a brief network hiccup
        self.instance_id = os.urandom(8).hex()
        self.instruments: dict[tuple[str, str], InstrumentConfig] = {
            (i.category, i.symbol): i for i in config.instruments
        }
        self._ops: dict[str, Callable[..., Any]] = {
            "instance": self.instance,
            "secrets": self.secrets,
            "secret": self.secret,
            "wallet_balance": self.wallet_balance,
            "position_list": self.position_list,
            "market_models": self.market_models,
            "market_query": self.market_query,
            "watch": self.watch,
            "order_create": _encoded(self.order_create),
            "trading_stop": _encoded(self.trading_stop),
            "set_leverage": _encoded(self.set_leverage),
            "switch_mode": _encoded(self.switch_mode),
            "order_create_batch": partial(self.order_batch, "create"),
            "order_amend_batch": partial(self.order_batch, "amend"),
            "order_cancel_batch": partial(self.order_batch, "cancel"),
            "order_amend": _encoded(self.order_amend),
            "order_cancel": _encoded(self.order_cancel),
            "order_cancel_all": _encoded(self.order_cancel_all),
            "order_realtime": _encoded(self.order_realtime),
            "order_history": _encoded(self.order_history),
            "execution_list": _encoded(self.execution_list),
            "account_info": _encoded(self.account_info),
            "set_margin_mode": _encoded(self.set_margin_mode),
            "transfer": _encoded(self.transfer),
            "transfer_list": _encoded(self.transfer_list),
            "funding_balance": _encoded(self.funding_balance),
            "deposit_records": _encoded(self.deposit_records),
            "transaction_log": _encoded(self.transaction_log),
        }
        self.accounts: dict[str, Account] = {}
        #: bumped by every change to account state; with the market's prices it keys the
        #: read caches (a wallet read under load is mostly a cache hit: see ``wallet_balance``)
        self._state_version = 0
        self._wallet_cache: dict[tuple[Any, ...], bytes] = {}
        self.events = EventLog()
        #: WS worker -> accounts with a private connection there; pushes are built for these only
        self._watchers: dict[str, frozenset[str]] = {}
        self.watched: frozenset[str] = frozenset()
        self.markets = Markets([], config.market, 0)
        self._seq = 0
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the configured start: accounts, balances, positions and prices."""
        with self._lock:
            now = self._clock()
            self.accounts = {a.api_key: Account.from_config(a, now) for a in self._config.accounts}
            self._reset_trading()
            self._touch()
            # A market whose price was set restarts from its configured start (every WS worker
            # reloads it on the event below); the others keep streaming, so a reset between
            # tests costs microseconds, not a rebuild of every 2 x 1000-level book.
            if not self.markets.models:
                self.markets = Markets(list(self.instruments.values()), self._config.market, now * 1_000_000)
            elif self.markets.rebuild_changed(now * 1_000_000):
                self.events.append("market_reload", None)
            self._seq = 0

    def ping(self) -> bool:
        return True

    def instance(self) -> str:
        """This engine's :attr:`instance_id` (a restarted state service has a new one)."""
        return self.instance_id

    # -- market -----------------------------------------------------------------------------

    def advance_markets(self) -> None:
        """Bring every market model to now (the state service's clock thread calls this)."""
        with self._lock:
            self._advance()

    def _advance(self) -> int:
        """Markets to now, then trigger the stops and fill the resting orders they moved
        through; returns now (ms)."""
        now_ms = self._clock()
        self.markets.advance(now_ms * 1_000_000)
        if self.resting or self.triggers:
            self._sweep(now_ms)
        return now_ms

    @property
    def mark_prices(self) -> dict[tuple[str, str], Decimal]:
        """The models' prices as they stand: no advance, so no sweep can run in the middle of
        an operation (a stop triggered while an order is half placed would push out of order).
        Entry points advance first: ``apply_batch``, the state API, the clock thread."""
        return self.markets.mark_prices()

    def market_models(self) -> tuple[int, bytes]:
        """The event cursor and every model pickled, as of now: how a WS worker starts.

        Pickled here, under the engine lock, because the Manager pickles a reply after the
        lock is released, while its other threads go on advancing these very models (a live
        model's deque changed mid-pickle: "deque mutated during iteration").
        """
        with self._lock:
            self._advance()
            return self.events.cursor, pickle.dumps(list(self.markets), pickle.HIGHEST_PROTOCOL)

    def market_query(self, path: str, query: dict[str, Any]) -> bytes:
        """``/v5/market/{orderbook,recent-trade,kline,tickers}`` from the models, as of now."""
        now_ms = self._advance()
        return orjson.dumps(queries.answer(self.markets, path, query, now_ms))

    def wait_events(self, cursor: int, timeout: float) -> tuple[int, list[tuple[str, Any]]]:
        """Long-poll the event log (never under the engine lock: see ``events.py``)."""
        return self.events.wait(cursor, min(max(timeout, 0.0), 30.0))

    def watch(self, worker: str, api_keys: list[str]) -> None:
        """A WS worker's accounts with authenticated private connections (its whole set).

        Private pushes are built only for watched accounts: encoding order, position and
        wallet messages is most of an order's cost, and nobody may be listening.
        """
        with self._lock:
            self._watchers[worker] = frozenset(api_keys)
            self.watched = frozenset().union(*self._watchers.values())

    def event_cursor(self) -> int:
        return self.events.cursor

    # -- worker entry point ---------------------------------------------------------------

    def apply_batch(self, commands: list[Command]) -> list[Reply]:
        with self._lock:
            self._advance()  # once per batch: matching and margin see the market as of now
            return [self._apply(op, args) for op, args in commands]

    def _apply(self, op: str, args: tuple[Any, ...]) -> Reply:
        fn = self._ops.get(op)
        if fn is None:
            return (errors.SERVER_ERROR, f"unknown state command {op!r}")
        try:
            return (0, fn(*args))
        except BybitError as exc:
            return (exc.code, exc.msg)
        except Exception as exc:  # a bug must not take the state service down
            log.exception("state command %s failed", op)
            return (errors.SERVER_ERROR, f"Server error: {type(exc).__name__}: {exc}")

    # -- commands -------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """API key -> secret, for the workers' local HMAC checks."""
        return {key: acct.secret for key, acct in self.accounts.items()}

    def secret(self, api_key: str) -> str | None:
        """One key's secret (None if unknown): how a worker checks a key it has not seen."""
        acct = self.accounts.get(api_key)
        return acct.secret if acct is not None else None

    def _touch(self) -> None:
        """Account state changed: cached reads are stale."""
        self._state_version += 1
        self._wallet_cache.clear()

    def wallet_balance(self, api_key: str, query: dict[str, Any]) -> bytes:
        """``GET /v5/account/wallet-balance`` result.

        Valuing an account is tens of microseconds of Decimal arithmetic, and bots poll their
        wallet far more often than prices or balances change, so the encoded answer is cached
        under (account state version, every market's last price, key, query).
        """
        account_type = params.required(query, "accountType")
        if account_type != "UNIFIED":
            raise errors.params_error("accountType only support UNIFIED.")
        key = (self._state_version, self.markets.price_key(), api_key, params.text(query, "coin"))
        cached = self._wallet_cache.get(key)
        if cached is None:
            if len(self._wallet_cache) > 1024:
                self._wallet_cache.clear()
            cached = self._wallet_cache[key] = self._wallet_balance(api_key, query)
        return cached

    def _wallet_balance(self, api_key: str, query: dict[str, Any]) -> bytes:
        valuation = self._valuation(self._account(api_key))
        wanted = params.text(query, "coin")
        if wanted is None:
            coins = [c for c in valuation.coins if c.wallet_balance or c.equity]
        else:
            names = [name.strip().upper() for name in wanted.split(",") if name.strip()]
            by_name = {c.coin: c for c in valuation.coins}
            coins = [by_name.get(n) or _empty_coin(n, self._usd_price(n)) for n in names]
        return orjson.dumps({"list": [shapes.wallet_account(valuation, coins)]})

    def position_list(self, api_key: str, query: dict[str, Any]) -> bytes:
        """``GET /v5/position/list`` result."""
        category = params.category(query, ("linear", "inverse", "option"))
        symbol = params.text(query, "symbol")
        settle = params.text(query, "settleCoin")
        if category in ("linear", "inverse") and symbol is None and settle is None:
            raise errors.params_error("params error: symbol or settleCoin is required")
        account = self._account(api_key)
        items: list[dict[str, Any]] = []
        if symbol is not None:
            inst = self.instruments.get((category, symbol))
            if inst is None:
                raise errors.params_error(f"params error: symbol invalid: {symbol}")
            for idx in account.position_indices(category, symbol):  # hedge mode: both, even flat
                pos = account.positions.get((category, symbol, idx)) or self._flat(category, symbol, idx)
                items.append(self._position_json(pos, inst))
        else:
            for (cat, _sym, _idx), pos in sorted(account.positions.items()):
                inst = self.instruments[(cat, pos.symbol)]
                if cat == category and pos.size and (settle is None or inst.settle_coin == settle):
                    items.append(self._position_json(pos, inst))
        chunk, cursor = params.page(items, query, default=20, maximum=200)
        return orjson.dumps({"list": chunk, "nextPageCursor": cursor, "category": category})

    # -- state API for tests ----------------------------------------------------------------

    def account_keys(self) -> list[str]:
        with self._lock:
            return list(self.accounts)

    def add_account(self, config: AccountConfig) -> None:
        with self._lock:
            if config.api_key in self.accounts:
                raise ValueError(f"account {config.api_key!r} already exists")
            for p in config.positions:
                self._instrument(p.category, p.symbol)
            self.accounts[config.api_key] = Account.from_config(config, self._clock())
            self._touch()

    def balances(self, api_key: str) -> dict[str, Decimal]:
        """Wallet balance per coin (what ``walletBalance`` shows)."""
        with self._lock:
            return {c: b.wallet for c, b in self._account(api_key).coins.items()}

    def coin_views(self, api_key: str) -> list[CoinView]:
        with self._lock:
            self._advance()
            return self._valuation(self._account(api_key)).coins

    def set_balance(self, api_key: str, coin: str, amount: Decimal | int | str) -> None:
        value = to_decimal(amount, f"balance {coin}")
        if value < 0:
            raise ValueError("a balance cannot be negative")
        with self._lock:
            self._account(api_key).coin(coin.upper()).wallet = value
            self._touch()

    def positions(self, api_key: str) -> list[PositionView]:
        """Open positions (size > 0), marked to the current mark price."""
        with self._lock:
            self._advance()
            return [p for p in self._valuation(self._account(api_key)).positions if p.size]

    def set_position(
        self,
        api_key: str,
        symbol: str,
        side: str,
        size: Decimal | int | str,
        entry_price: Decimal | int | str,
        leverage: Decimal | int | str | None = None,
        category: str = "linear",
        position_idx: int = 0,
    ) -> None:
        """Put a position in place behind the client's back; size 0 flattens it.

        ``position_idx`` 1 (long) or 2 (short) needs the symbol in hedge mode."""
        qty = to_decimal(size, "size")
        price = to_decimal(entry_price, "entry_price")
        if side not in ("Buy", "Sell"):
            raise ValueError("side must be 'Buy' or 'Sell'")
        if qty < 0 or price <= 0:
            raise ValueError("size must be >= 0 and entry_price > 0")
        with self._lock:
            self._instrument(category, symbol)
            account = self._account(api_key)
            if position_idx not in account.position_indices(category, symbol):
                raise ValueError(f"position_idx {position_idx} does not match {symbol}'s position mode")
            if HEDGE_SIDES.get(position_idx, side) != side:
                raise ValueError(f"position_idx {position_idx} holds the {HEDGE_SIDES[position_idx]} side")
            now = self._clock()
            old = account.positions.get((category, symbol, position_idx))
            lev = (
                to_decimal(leverage, "leverage")
                if leverage is not None
                else (old.leverage if old else DEFAULT_LEVERAGE)
            )
            self._seq += 1
            self._touch()
            account.positions[(category, symbol, position_idx)] = Position(
                category,
                symbol,
                side,
                qty,
                price,
                lev,
                old.created_ms if old else now,
                now,
                self._seq,
                old.cum_realised_pnl if old else ZERO,
                position_idx=position_idx,
            )

    def set_mark_price(self, symbol: str, price: Decimal | int | str, category: str = "linear") -> None:
        """Jump the market to ``price``: the book, the streams and the mark price move together."""
        value = to_decimal(price, "price")
        if value <= 0:
            raise ValueError("price must be > 0")
        with self._lock:
            self._instrument(category, symbol)
            model = self.markets.get(category, symbol)
            assert model is not None
            self._advance()
            model.set_price(value)
            self.markets.changed.add((category, symbol))
            self.events.append("market_reload", (category, symbol))
            self._sweep(self._clock())  # resting orders the jump moved through fill now

    set_price = set_mark_price

    def freeze_market(self, category: str | None = None, symbol: str | None = None, frozen: bool = True) -> None:
        """Stop (or restart) the markets' own movement: book, prices and streams hold still.

        Prices set with :meth:`set_mark_price` then stay exactly where they were put, which is
        what a test asserting on PnL or fills at a known price needs. ``reset()`` thaws.
        """
        with self._lock:
            self.markets.freeze(self.markets.select(category, symbol), frozen, self._clock() * 1_000_000)
            self.events.append("market_reload", None)

    # -- helpers ----------------------------------------------------------------------------

    def _account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise BybitError(errors.INVALID_API_KEY, errors.INVALID_API_KEY_MSG)
        return account

    def _instrument(self, category: str, symbol: str) -> InstrumentConfig:
        inst = self.instruments.get((category, symbol))
        if inst is None:
            raise ValueError(f"unknown instrument {category}/{symbol}")
        return inst

    def _usd_price(self, coin: str) -> Decimal:
        if coin in _STABLECOINS:
            return _ONE
        for category in ("spot", "linear"):
            price = self.markets.mark_price((category, f"{coin}USDT"))
            if price is not None:
                return price
        return ZERO

    def _mark(self, ident: tuple[str, str]) -> Decimal:
        price = self.markets.mark_price(ident)
        assert price is not None, ident  # every position's instrument has a model
        return price

    def _valuation(self, account: Account) -> Valuation:
        coins = set(account.coins) | {self.instruments[i[:2]].settle_coin for i in account.positions}
        return Valuation(account, self.instruments, self.mark_prices, {c: self._usd_price(c) for c in coins})

    def _available(self, account: Account) -> Decimal:
        return available_balance(account, self.instruments, self._mark, self._usd_price)

    def _free_by_coin(self, account: Account) -> dict[str, Decimal]:
        return free_by_coin(account, self.instruments, self._mark)

    def _flat(self, category: str, symbol: str, idx: int = 0) -> Position:
        """A flat position to show where none is held (not stored: reads have no side effects)."""
        return flat_position(category, symbol, idx, self._clock())

    def _position_json(self, pos: Position, inst: InstrumentConfig) -> dict[str, Any]:
        mark = self.markets.mark_price((inst.category, inst.symbol))
        return shapes.position(pos, inst, mark if mark is not None else inst.price)


def _encoded(fn: Callable[..., Any]) -> Callable[..., bytes]:
    """A command whose result a REST worker wraps in the envelope as it is."""

    def run(*args: Any) -> bytes:
        return orjson.dumps(fn(*args))

    return run


def _empty_coin(name: str, usd: Decimal) -> CoinView:
    return CoinView(name, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, usd)
