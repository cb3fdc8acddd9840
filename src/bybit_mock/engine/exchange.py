"""The exchange engine: the single source of truth, served by the state service.

Two kinds of callers reach it:

* **workers** call :meth:`Exchange.apply_batch` with a list of ``(op, args)`` commands; one
  Manager round trip carries every command a worker queued while the previous trip was in
  flight. Each command's reply is ``(0, value)`` or ``(retCode, message)``; a failing
  command never fails its neighbours. REST results come back already encoded by orjson, so
  the worker only wraps them in the envelope.
* **tests** call the state methods (``balances``, ``set_balance``, ``positions``,
  ``reset`` ...) through their own Manager proxy.

Bybit's per-UID REST rate limits are counted here (``ratelimits.py``), so they hold across
every REST worker: a ``rate_limited`` command runs its inner command only if the window has
room, and replies ``(code, value, LimitInfo)``; a refusal is ``(10006, ..., info)`` and changes
nothing.

Every command is a transaction. It is parsed and checked whole before it changes anything
(``requests.py``, ``margin.py``), so a refused command leaves the engine exactly as it was;
the pushes it builds go out only when it succeeds, and only to the accounts it changed
(``pushes.py``). A refusal after a change would be an engine bug: it is logged as one.

The parts do the work and receive what they use: the account book (``book.py``) with every
account, order and fill; prices and margin (``margin.py``); the pushes. They are
:class:`~.trading.Trading` (order entry and matching), :class:`~.tpsl.PositionStops`,
:class:`~.positions.PositionSettings`, :class:`~.queries.Queries` and :class:`~.funds.Funds`.

The Manager server runs one thread per client connection, so every public entry point takes
the engine lock. Nothing here reads the wall clock: ``clock`` is injected.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import orjson

from ..bybit import errors
from ..bybit.errors import BybitError
from ..config import AccountConfig, InstrumentConfig, MockExchangeConfig, to_decimal
from ..market import queries as market_queries
from ..market.markets import Markets
from .accounts import HEDGE_SIDES, ZERO, Account, Position
from .activity import Activity
from .book import AccountBook
from .canned_calls import CannedCalls
from .delivery import Delivery
from .events import EventLog
from .funding import FundingSettlement
from .funds import Funds
from .ledger import DEFAULT_LEVERAGE
from .liquidation import Liquidation
from .margin import Margin
from .ops import op_table
from .positions import PositionSettings
from .pushes import Pushes
from .queries import Queries
from .ratelimits import RATE_LIMITED, LimitInfo, RateLimiter, rate_limited
from .scenario_calls import ScenarioCalls
from .system_status import SystemStatus
from .tpsl import PositionStops
from .trading import Trading
from .views import CoinView, ExecutionView, OrderView, PositionView

log = logging.getLogger(__name__)

Clock = Callable[[], int]
#: ``(0, value)`` on success, ``(retCode, retMsg)`` on a Bybit error.
Reply = tuple[int, Any]
#: A ``rate_limited`` command's reply: a :data:`Reply` and the limiter's header values.
LimitedReply = tuple[int, Any, LimitInfo]
Command = tuple[str, tuple[Any, ...]]
#: seconds arming a scenario waits for every worker to know of it
ARM_ACK_TIMEOUT = 2.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Exchange:
    """Accounts, instruments and prices; see the module docstring for the calling rules."""

    def __init__(self, config: MockExchangeConfig, clock: Clock = wall_clock_ms) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.RLock()
        #: differs between two engines: how a worker that reconnects tells a restarted state
        #: service (a new engine, back at the configured start) from a brief network hiccup
        self.instance_id = os.urandom(8).hex()
        self.instruments: dict[tuple[str, str], InstrumentConfig] = {
            (i.category, i.symbol): i for i in config.instruments
        }
        self.events = EventLog()
        self.markets = Markets(list(self.instruments.values()), config.market, clock() * 1_000_000)
        self.margin = Margin(self.instruments, self.markets)
        self.pushes = Pushes(self.events, self.margin, self.instruments, clock)
        #: armed scenarios, their effects and journal (``scenario_calls.py``); reset clears them
        self.scenarios = ScenarioCalls(self, config.scenario_seed, config.journal_limit)
        self.canned = CannedCalls(self)  # canned market data: append, step, start
        #: each configured account's private activity at its rate (``activity.py``)
        activities = {a.api_key: a.activity for a in config.accounts if a.activity is not None}
        parts = lambda: (self.book, self.trading, self.pushes, self.events)  # noqa: E731  # reset() renews them
        self.activity = Activity(activities, self.instruments, parts)
        #: Bybit's per-UID REST limits (``rate_limited`` commands); ``reset()`` clears it
        self.limiter = RateLimiter(clock)
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the configured start: accounts, orders, balances, positions, ids and prices;
        scenarios, their journal and what they left in the workers (IP bans ...) are cleared."""
        with self._lock:
            now = self._clock()
            accounts = {a.api_key: Account.from_config(a, now) for a in self._config.accounts}
            book = self.book = AccountBook(accounts, self._config.history_limit, self._config.market.seed)
            clock, margin, pushes = self._clock, self.margin, self.pushes
            self.stops = PositionStops(book, margin, pushes, clock)
            self.trading = Trading(book, margin, pushes, clock, self.stops)
            self.liquidation = Liquidation(book, margin, pushes, clock, self.stops)
            self.position_settings = PositionSettings(book, margin, pushes, clock)
            self.queries = Queries(book, margin, pushes, clock)
            self.funds = Funds(book, margin, pushes, clock)
            self.system_status = SystemStatus(clock)  # maintenance windows a test announced
            self.funding = FundingSettlement(book, margin, pushes, clock)  # from the next funding time on
            self.delivery = Delivery(book, margin, pushes, clock, self.stops)  # dated futures' expiry
            self._ops = op_table(self)
            self.scenarios.reset()
            self.events.append("reset", None)  # workers drop what scenarios left (IP bans, stalls)
            for raw in self._config.scenarios:  # the config's, armed at every start
                self.scenarios.push(raw)
            self.limiter.clear()
            self.activity.restart(now)  # every account's activity from now, on the new book
            pushes.discard()
            # A market whose price was set restarts from its configured start (every WS worker
            # reloads it on the event below); the others keep streaming, so a reset between
            # tests costs microseconds, not a rebuild of every 2 x 1000-level book.
            if self.markets.rebuild_changed(now * 1_000_000):
                self.events.append("market_reload", None)
            seq = self.events.cursor - 1
        # Outside the lock: return once every worker has seen the reset (and what is armed
        # again), so the next test's first request meets the state it expects.
        self.events.wait_taken(seq, ARM_ACK_TIMEOUT)

    @property
    def ops(self) -> frozenset[str]:
        """The names :meth:`apply_batch` answers."""
        return frozenset(self._ops) | {RATE_LIMITED}

    def ping(self) -> bool:
        return True

    def instance(self) -> str:
        """This engine's :attr:`instance_id` (a restarted state service has a new one)."""
        return self.instance_id

    # -- worker entry point ---------------------------------------------------------------

    def apply_batch(self, commands: list[Command]) -> list[Reply | LimitedReply]:
        with self._lock:
            self._advance()  # once per batch: matching and margin see the market as of now
            replies = [self._apply(op, args) for op, args in commands]
            self.scenarios.sync()  # a scenario spent by these commands: workers stop asking
            return replies

    def apply_one(self, op: str, args: tuple[Any, ...]) -> Reply | LimitedReply:
        """One command, as :meth:`apply_batch` runs it (a scenario command's inner one)."""
        return self._apply(op, args)

    def _apply(self, op: str, args: tuple[Any, ...]) -> Reply | LimitedReply:
        if op == RATE_LIMITED:
            try:
                return rate_limited(self.limiter, self._run, *args)
            except Exception as exc:  # a malformed command (a worker bug) fails alone
                log.exception("state command %s failed", op)
                return (errors.SERVER_ERROR, f"Server error: {type(exc).__name__}: {exc}")
        return self._run(op, args)

    def _run(self, op: str, args: tuple[Any, ...]) -> Reply:
        fn = self._ops.get(op)
        if fn is None:
            return (errors.SERVER_ERROR, f"unknown state command {op!r}")
        version = self.book.version
        try:
            value = fn(*args)
        except BybitError as exc:
            self.pushes.discard()
            if self.book.version != version:  # every check must come before every change
                log.error("engine bug: %s was refused (%d %s) after it changed state", op, exc.code, exc.msg)
            return (exc.code, exc.msg)
        except Exception as exc:  # a bug must not take the state service down
            self.pushes.discard()
            log.exception("state command %s failed", op)
            return (errors.SERVER_ERROR, f"Server error: {type(exc).__name__}: {exc}")
        self._commit()
        return (0, value)

    def _commit(self) -> None:
        """The change stands: its pushes go out, then the order events it made fire."""
        self.pushes.commit()
        if self.pushes.orders_seen:
            self.scenarios.effects.order_events(self._clock())

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """A state-API change: under the lock, and its pushes go out only if it succeeds."""
        with self._lock:
            try:
                yield
            except BaseException:
                self.pushes.discard()
                raise
            self._commit()
            self.scenarios.sync()

    # -- market -----------------------------------------------------------------------------

    def advance_markets(self) -> None:
        """Bring every market model to now (the state service's clock thread calls this)."""
        with self._lock:
            self._advance()

    def _advance(self) -> int:
        """Markets to now, then trigger the stops and fill the resting orders they moved
        through (pushed at once: the market's move is its own change); returns now (ms)."""
        now_ms = self._clock()
        self.markets.advance(now_ms * 1_000_000)
        self.funding.run_due(now_ms, self._commit)  # funding times passed: each settles once (``funding.py``)
        if self.delivery.due(now_ms):
            self.delivery.run_due(now_ms)  # contracts past their delivery time: ``delivery.py``
            self._commit()
        if self.book.resting or self.book.triggers:
            self.trading.sweep(now_ms)
            self._commit()
        if self.liquidation.check(now_ms):
            self._commit()  # positions whose margin the move used up: taken over
        if self.scenarios.busy and self.scenarios.effects.run_due(now_ms):
            self._commit()  # fill steps, delayed messages and timers that came due
        if self.activity.busy and self.activity.run_due(now_ms):
            self._commit()  # the private activity due by now
        return now_ms

    def run_due(self) -> None:
        """Run the scenario work due now (a timer armed at 0 fires at once)."""
        with self._lock:
            self._advance()
            self.scenarios.sync()

    def market_models(self) -> tuple[str, int, bytes]:
        """This engine's instance id, its event cursor and every model pickled, as of now: how a
        WS worker starts (and resynchronises after a restart: the cursor is only good for the
        engine that issued it, so the reply names that engine).

        Pickled here, under the engine lock, because the Manager pickles a reply after the
        lock is released, while its other threads go on advancing these very models (a live
        model's deque changed mid-pickle: "deque mutated during iteration").
        """
        with self._lock:
            self._advance()
            return self.instance_id, self.events.cursor, pickle.dumps(list(self.markets), pickle.HIGHEST_PROTOCOL)

    def market_query(self, path: str, query: dict[str, Any]) -> bytes:
        """``/v5/market/{orderbook,recent-trade,kline,tickers}`` from the models, as of now."""
        now_ms = self._advance()
        return orjson.dumps(market_queries.answer(self.markets, path, query, now_ms))

    def wait_events(
        self, cursor: int, timeout: float, reader: str = "", bulk: bool = True
    ) -> tuple[int, list[tuple[str, Any]]]:
        """Long-poll the event log (never under the engine lock: see ``events.py``); ``bulk=False``
        leaves out the private stream's events."""
        return self.events.wait(cursor, min(max(timeout, 0.0), 30.0), reader, bulk)

    def watch(self, worker: str, api_keys: list[str]) -> None:
        """A WS worker's accounts with authenticated private connections (its whole set)."""
        with self._lock:
            self.pushes.watch(worker, api_keys)

    @property
    def watched(self) -> frozenset[str]:
        return self.pushes.watched

    def event_cursor(self) -> int:
        return self.events.cursor

    # -- state API for tests ----------------------------------------------------------------

    @property
    def accounts(self) -> dict[str, Account]:
        return self.book.accounts

    def secrets(self) -> dict[str, str]:
        """API key -> secret, for the workers' local HMAC checks."""
        with self._lock:  # the engine lock is re-entrant: apply_batch holds it already
            return {key: acct.secret for key, acct in self.book.accounts.items()}

    def secret(self, api_key: str) -> str | None:
        """One key's secret (None if unknown): how a worker checks a key it has not seen."""
        with self._lock:
            acct = self.book.accounts.get(api_key)
            return acct.secret if acct is not None else None

    def account_keys(self) -> list[str]:
        with self._lock:
            return list(self.book.accounts)

    def add_account(self, config: AccountConfig) -> None:
        with self._lock:
            if config.api_key in self.book.accounts:
                raise ValueError(f"account {config.api_key!r} already exists")
            for p in config.positions:
                self._instrument(p.category, p.symbol)
            self.book.accounts[config.api_key] = Account.from_config(config, self._clock())
            self.book.touch()

    def balances(self, api_key: str) -> dict[str, Decimal]:
        """Wallet balance per coin (what ``walletBalance`` shows)."""
        with self._lock:
            return {c: b.wallet for c, b in self.book.account(api_key).coins.items()}

    def coin_views(self, api_key: str) -> list[CoinView]:
        with self._lock:
            self._advance()
            return self.margin.valuation(self.book.account(api_key)).coins

    def set_balance(self, api_key: str, coin: str, amount: Decimal | int | str, push: bool = False) -> None:
        """Set a wallet balance behind the client's back; ``push`` announces it (a wallet message)."""
        value = to_decimal(amount, f"balance {coin}")
        if value < 0:
            raise ValueError("a balance cannot be negative")
        with self._changing():
            account = self.book.account(api_key)
            account.coin(coin.upper()).wallet = value
            self.book.touch()
            if push:
                self.pushes.emit_wallet(account)

    def positions(self, api_key: str) -> list[PositionView]:
        """Open positions (size > 0), marked to the current mark price."""
        with self._lock:
            self._advance()
            return [p for p in self.margin.valuation(self.book.account(api_key)).positions if p.size]

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
        push: bool = False,
    ) -> None:
        """Put a position in place behind the client's back; size 0 flattens it; ``push``
        announces it (a position message).

        ``position_idx`` 1 (long) or 2 (short) needs the symbol in hedge mode."""
        qty = to_decimal(size, "size")
        price = to_decimal(entry_price, "entry_price")
        if side not in ("Buy", "Sell"):
            raise ValueError("side must be 'Buy' or 'Sell'")
        if qty < 0 or price <= 0:
            raise ValueError("size must be >= 0 and entry_price > 0")
        with self._changing():
            inst = self._instrument(category, symbol)
            account = self.book.account(api_key)
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
            account.positions[(category, symbol, position_idx)] = Position(
                category,
                symbol,
                side,
                qty,
                price,
                lev,
                old.created_ms if old else now,
                now,
                self.book.ids.seq(),
                old.cum_realised_pnl if old else ZERO,
                position_idx=position_idx,
            )
            self.book.touch()
            if push:
                self.pushes.emit_position(account, inst, position_idx)

    def set_mark_price(self, symbol: str, price: Decimal | int | str, category: str = "linear") -> None:
        """Jump the market to ``price``: the book, the streams and the mark price move together."""
        value = to_decimal(price, "price")
        if value <= 0:
            raise ValueError("price must be > 0")
        with self._changing():
            self._instrument(category, symbol)
            model = self.markets.get(category, symbol)
            assert model is not None
            self._advance()
            model.set_price(value)
            self.markets.changed.add((category, symbol))
            self.events.append("market_reload", (category, symbol))
            self.trading.sweep(self._clock())  # resting orders the jump moved through fill now
            self.liquidation.check(self._clock())  # and positions it took past liqPrice go

    set_price = set_mark_price

    def freeze_market(self, symbol: str | None = None, category: str | None = None, frozen: bool = True) -> None:
        """Stop (or restart) the markets' own movement: book, prices and streams hold still.

        Prices set with :meth:`set_mark_price` then stay exactly where they were put, which is
        what a test asserting on PnL or fills at a known price needs. ``reset()`` thaws.
        """
        with self._lock:
            self.markets.freeze(self.markets.select(category, symbol), frozen, self._clock() * 1_000_000)
            self.events.append("market_reload", None)

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[OrderView]:
        """Open orders (New, PartiallyFilled, or Untriggered stops), oldest first."""
        with self._lock:
            return self.queries.open_orders(api_key, symbol)

    def order(self, api_key: str, order_id: str | None = None, order_link_id: str | None = None) -> OrderView | None:
        with self._lock:
            return self.queries.order(api_key, order_id, order_link_id)

    def executions_between(
        self, api_key: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[ExecutionView]:
        """Fills in time order, ``start_ms <= execTime <= end_ms`` (either bound optional)."""
        with self._lock:
            return self.queries.executions_between(api_key, start_ms, end_ms)

    def fill_order(
        self,
        api_key: str,
        order_id: str,
        qty: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> None:
        """Fill an open order (all of it by default) at ``price`` (its own by default), as maker.

        Money, position and the private pushes move exactly as for a market-driven fill."""
        with self._changing():
            order = self.book.orders.get(order_id)
            if order is None or order.api_key != api_key:
                raise ValueError(f"no order {order_id!r} for this account")
            if not order.is_active:
                raise ValueError(f"order {order_id} is {order.status}; only live (triggered) orders can fill")
            amount = order.leaves_qty if qty is None else to_decimal(qty, "qty")
            if not ZERO < amount <= order.leaves_qty:
                raise ValueError(f"qty must be in (0, {order.leaves_qty}]")
            at = order.price if price is None else to_decimal(price, "price")
            if at <= 0:
                raise ValueError("price must be > 0")
            self.trading.fill_resting(order, amount, at, self._clock())

    def deposit(self, api_key: str, coin: str, amount: Decimal | int | str, chain: str | None = None) -> str:
        """An on-chain deposit lands in the funding wallet; returns its transaction id."""
        with self._changing():
            return self.funds.deposit(api_key, coin, amount, chain)

    def funding_balances(self, api_key: str) -> dict[str, Decimal]:
        """The funding wallet, per coin."""
        with self._lock:
            return self.funds.funding_balances(api_key)

    def add_maintenance(self, title: str, begin_ms: int, end_ms: int, **fields: Any) -> str:
        """Announce a maintenance window on ``/v5/system/status`` (``system_status.py``)."""
        with self._lock:
            return self.system_status.add(title, begin_ms, end_ms, **fields)

    # -- scenarios (state API; the JSON form is the one ``/__admin/scenarios`` takes) ---------

    def scenario_push(self, scenario: Any) -> str:
        """Arm a scenario (a :class:`~bybit_mock.scenarios.Scenario` or its JSON form); its id.

        Returns once every worker has learnt it is armed (up to :data:`ARM_ACK_TIMEOUT` s), so
        a request sent next meets it; the wait is outside the engine lock."""
        with self._lock:
            ident = self.scenarios.push(scenario)
            seq = self.events.cursor - 1  # the summary event (or a later one) says it is armed
        if not self.events.wait_taken(seq, ARM_ACK_TIMEOUT):
            log.warning("a worker did not learn of scenario %s within %.1f s", ident, ARM_ACK_TIMEOUT)
        return ident

    def scenario_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.scenarios.registry.listing()

    def scenario_get(self, ident: str) -> dict[str, Any] | None:
        with self._lock:
            return self.scenarios.registry.get(ident)

    def scenario_remove(self, ident: str) -> bool:
        with self._lock:
            removed = self.scenarios.registry.remove(ident)
            self.scenarios.sync()
            return removed

    def scenario_clear(self) -> int:
        """Disarm every scenario (the journal stays); how many there were."""
        with self._lock:
            count = self.scenarios.registry.remove_all()
            self.scenarios.sync()
            return count

    def scenario_journal(self, scenario: str | None = None, since_seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return self.scenarios.registry.journal(scenario, since_seq)

    def scenario_journal_clear(self) -> None:
        with self._lock:
            self.scenarios.registry.clear_journal()

    def now_ms(self) -> int:
        """The engine's clock (scenario effects read it, under the lock)."""
        return self._clock()

    def activity_status(self) -> dict[str, dict[str, Any]]:
        """Each configured account's private activity: mode, rate and counts (``activity.py``)."""
        with self._lock:
            self._advance()
            return self.activity.status()

    # -- canned market data (``canned_calls.py``) ---------------------------------------------

    def market_append(self, kind: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add canned items (dicts, as JSON has them) to their symbols' streams: ``canned_calls.py``."""
        with self._changing():
            return self.canned.append(kind, items)

    def market_step(self, category: str, symbol: str, n: int = 1) -> dict[str, Any]:
        """Release a step-mode canned market's next ``n`` items (0: only its status)."""
        with self._changing():
            return self.canned.step(category, symbol, n)

    # -- helpers ----------------------------------------------------------------------------

    def _instrument(self, category: str, symbol: str) -> InstrumentConfig:
        inst = self.instruments.get((category, symbol))
        if inst is None:
            raise ValueError(f"unknown instrument {category}/{symbol}")
        return inst
