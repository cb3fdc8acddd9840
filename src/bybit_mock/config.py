"""Typed configuration for the mock exchange, and its TOML form (its tables are read and checked
in :mod:`bybit_mock.config_checks`).

Everything the supervisor hands to a child process is in :class:`MockExchangeConfig`; it is
pickled once per process at spawn time, so it holds plain data only (str, int, Decimal,
lists and dataclasses), never sockets, locks or callables.

Amounts are :class:`~decimal.Decimal` so that balances, sizes and prices stay exact from the
config file to the wire (Bybit sends every number as a decimal string).

The ``with_*`` builders and :meth:`MockExchangeConfig.copy` return new, independent values and
never change the one they are called on. Instruments and categories are defined in
:mod:`bybit_mock.instruments` (below both this module and the market package) and re-exported
here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from .config_checks import (
    MAX_STREAM_RATE,
    ActivityConfig,
    ConfigError,
    activity_from,
    array_of,
    instrument_from,
    is_loopback,
    market_from,
    no_extra_keys,
    read_toml,
    scenarios_from,
    string_in,
    table_of,
    to_decimal,
    validate_market,
)
from .instruments import CATEGORIES, Category, InstrumentConfig, default_instruments
from .market.config import MarketConfig

if TYPE_CHECKING:
    from .market.canned_items import BookSnapshot, Candle, MarketItem, Tick

__all__ = [  # the instrument names are part of this module's API (``from bybit_mock.config import ...``)
    "CATEGORIES",
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "AccountConfig",
    "ActivityConfig",
    "Category",
    "ConfigError",
    "InstrumentConfig",
    "MockExchangeConfig",
    "PositionConfig",
    "Side",
    "default_instruments",
    "demo_account",
    "to_decimal",
]

Side = Literal["Buy", "Sell"]
RateLimits = Literal["bybit", "off"]
#: The values of :attr:`MockExchangeConfig.rate_limits`.
RATE_LIMITS: tuple[RateLimits, ...] = get_args(RateLimits)
AdminMode = Literal["on", "off"]
#: The values of :attr:`MockExchangeConfig.admin`.
ADMIN_MODES: tuple[AdminMode, ...] = get_args(AdminMode)

#: Credentials of the built-in demo account (``bybit-mock serve`` with no config). They are
#: public on purpose: the mock only ever listens where you tell it to.
DEMO_API_KEY = "bybit-mock-demo-key"
DEMO_API_SECRET = "bybit-mock-demo-secret"
DEMO_USDT = Decimal("100000")


@dataclass
class PositionConfig:
    """An open position an account starts with."""

    symbol: str
    side: Side
    size: Decimal
    entry_price: Decimal
    leverage: Decimal = Decimal("10")
    category: Category = "linear"

    def __post_init__(self) -> None:
        self.size = to_decimal(self.size, f"position {self.symbol} size")
        self.entry_price = to_decimal(self.entry_price, f"position {self.symbol} entry_price")
        self.leverage = to_decimal(self.leverage, f"position {self.symbol} leverage")
        if self.side not in ("Buy", "Sell"):
            raise ConfigError(f"position {self.symbol}: side must be 'Buy' or 'Sell', got {self.side!r}")
        if self.size <= 0 or self.entry_price <= 0 or self.leverage <= 0:
            raise ConfigError(f"position {self.symbol}: size, entry_price and leverage must be > 0")


@dataclass
class AccountConfig:
    """One API key, its secret, and what the account holds at start (and after ``reset()``)."""

    api_key: str
    api_secret: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: list[PositionConfig] = field(default_factory=list)
    #: private activity on this account (``engine/activity.py``; ``docs/soak.md``)
    activity: ActivityConfig | None = None

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ConfigError("account: api_key and api_secret must be non-empty strings")
        self.balances = {
            coin.upper(): to_decimal(amount, f"account {self.api_key} balance {coin}")
            for coin, amount in self.balances.items()
        }
        for coin, amount in self.balances.items():
            if amount < 0:
                raise ConfigError(f"account {self.api_key}: balance {coin} must be >= 0")

    def with_balance(self, coin: str, amount: Decimal | int | str) -> AccountConfig:
        """This account with a starting balance set; ``self`` is unchanged (chainable).

        A new value, not an update in place: the seed crate's Rust builder consumes ``self``, so
        there the old value cannot be reused; here it can, and must not change under its users.
        """
        balances = {**self.balances, coin.upper(): to_decimal(amount, f"account {self.api_key} balance {coin}")}
        return replace(self, balances=balances, positions=deepcopy(self.positions))

    def with_position(
        self,
        symbol: str,
        side: Side,
        size: Decimal | int | str,
        entry_price: Decimal | int | str,
        *,
        leverage: Decimal | int | str = 10,
        category: Category = "linear",
    ) -> AccountConfig:
        """This account with a starting position added; ``self`` is unchanged (chainable)."""
        position = PositionConfig(
            symbol,
            side,
            to_decimal(size, "size"),
            to_decimal(entry_price, "entry_price"),
            to_decimal(leverage, "leverage"),
            category,
        )
        return replace(self, balances=dict(self.balances), positions=[*deepcopy(self.positions), position])


def demo_account() -> AccountConfig:
    return AccountConfig(DEMO_API_KEY, DEMO_API_SECRET, {"USDT": DEMO_USDT})


@dataclass
class MockExchangeConfig:
    """Everything the mock needs to start.

    ``MockExchangeConfig()`` has no accounts (like the seed crate's ``new()``);
    :meth:`default` adds the demo account. Ports ``0`` mean "pick a free one".
    """

    accounts: list[AccountConfig] = field(default_factory=list)
    instruments: list[InstrumentConfig] = field(default_factory=default_instruments)
    #: Market data: sources, seeds and stream rates (defaults: synthetic, Bybit-like rates).
    market: MarketConfig = field(default_factory=MarketConfig)
    host: str = "127.0.0.1"
    rest_port: int = 0
    ws_port: int = 0
    rest_workers: int = 1
    ws_workers: int = 1
    #: Largest request body a REST worker accepts; bigger ones get HTTP 413 and a Bybit envelope.
    max_body_bytes: int = 1 << 20
    #: Largest request head (request line and headers) a REST worker reads; a bigger one gets
    #: HTTP 431 and a Bybit envelope. Real Bybit requests have heads well under 2 KiB.
    max_header_bytes: int = 64 << 10
    #: Seconds a REST request may take from its first byte to its last; a slower one (a
    #: slowloris) gets HTTP 408 and its connection is closed. Idle keep-alive is not limited.
    request_timeout: float = 10.0
    #: Largest WebSocket frame a client may send (Bybit caps a subscribe's args at 21 000 chars).
    max_ws_frame_bytes: int = 64 << 10
    #: Unsent bytes a WS connection may hold before it counts as a slow consumer and is closed
    #: (code 1013, after the frames it already has).
    ws_max_buffer_bytes: int = 4 << 20
    #: Client frames a WS connection may have waiting while it is paused (an auth check in
    #: flight, a subscribe held back by ``ack_delay_ms``); one more closes it with code 1008.
    ws_max_pending_requests: int = 256
    #: Milliseconds a subscribe ack and a ``/v5/trade`` reply wait before they are sent. pybit
    #: records a request's id only after sending it, so an instant answer is dropped or crashes
    #: its thread (KeyError on the subscribe ack); 20 ms is safe. Frames behind it wait too.
    ack_delay_ms: float = 20.0
    #: Closed orders, executions and transaction-log rows kept per account; older ones are
    #: forgotten (a soak test must not grow the state service without bound). Open orders
    #: are always kept.
    history_limit: int = 100_000
    #: Bybit's per-UID REST rate limits: ``"bybit"`` counts every signed request against
    #: Bybit's table (``engine/ratelimits.py``), answers the ``X-Bapi-Limit*`` headers and
    #: refuses with 10006 over the limit; ``"off"`` neither counts nor sends headers (load tests).
    rate_limits: RateLimits = "bybit"
    #: Seconds the supervisor waits for every process to report ready.
    start_timeout: float = 30.0
    log_level: str = "WARNING"
    #: Scenarios armed at start (and after every ``reset()``), in their JSON form (see
    #: ``docs/scenarios.md``); TOML ``[[scenarios]]`` or ``[scenarios] armed = [...]``.
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    #: Seed of the RNG that draws scenario probabilities (TOML ``[scenarios] seed``).
    scenario_seed: int = 1
    #: Scenario firings the journal keeps (oldest forgotten first).
    journal_limit: int = 10_000
    #: The HTTP admin API under ``/__admin/`` on the REST port (``docs/admin.md``): ``"on"``
    #: or ``"off"`` (then ``/__admin/*`` is an unknown route like any other).
    admin: AdminMode = "on"
    #: With a token, every admin request must carry it (``Authorization: Bearer <token>`` or
    #: ``X-Admin-Token``); without one the API is open, which is allowed on a loopback
    #: ``host`` only. Kept out of ``repr`` so it does not end up in logs.
    admin_token: str | None = field(default=None, repr=False)
    #: Prometheus metrics at ``/metrics`` on the REST port (``docs/metrics.md``); needs the
    #: ``metrics`` extra (prometheus-client). Off, nothing of it is imported or run.
    metrics: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def default(cls) -> MockExchangeConfig:
        """The built-in default: a demo account with 100 000 USDT and the default instruments."""
        return cls(accounts=[demo_account()])

    # The builders return a new config and leave ``self`` alone, so a shared base (a session
    # fixture's config, say) can be specialised per test without leaking into the others.

    def with_account(self, account: AccountConfig) -> MockExchangeConfig:
        """A copy with ``account`` added (chainable); ``ConfigError`` if its key is taken."""
        return self.copy(accounts=[*self.accounts, account])

    def with_instruments(self, instruments: list[InstrumentConfig]) -> MockExchangeConfig:
        """A copy listing exactly ``instruments`` (chainable)."""
        return self.copy(instruments=list(instruments))

    # Canned market data (``market/canned.py``): each symbol's items stream in the order given,
    # at ``pace`` items/s from its first subscriber on, or one ``step`` at a time.

    def with_candles(self, candles: Iterable[Candle], **timing: Any) -> MockExchangeConfig:
        """A copy streaming ``candles`` on ``kline.{interval}.{symbol}`` (the crate's ``with_candles``)."""
        return self.with_market_data(candles, kind="candle", **timing)

    def with_ticks(self, ticks: Iterable[Tick], **timing: Any) -> MockExchangeConfig:
        """A copy streaming ``ticks`` on ``publicTrade.{symbol}`` (the crate's ``with_ticks``)."""
        return self.with_market_data(ticks, kind="tick", **timing)

    def with_order_books(self, books: Iterable[BookSnapshot], **timing: Any) -> MockExchangeConfig:
        """A copy streaming ``books`` as snapshots on every ``orderbook.{depth}.{symbol}``."""
        return self.with_market_data(books, kind="book", **timing)

    def with_market_data(
        self, items: Iterable[MarketItem | Mapping[str, Any]], *, kind: str | None = None, **timing: Any
    ) -> MockExchangeConfig:
        """A copy with ``items`` (any kinds, or dict forms) added to their symbols' canned
        streams, which stop being synthetic; ``pace=`` (items/s) or ``step=True`` sets their timing."""
        return self._with_market(lambda market: market.add_canned(items, kind, **timing))

    def with_canned_market(self, symbol: str, *, category: Category = "linear", **timing: Any) -> MockExchangeConfig:
        """A copy where ``symbol`` is canned (its items may all come at run time)."""
        return self._with_market(lambda market: market.canned_symbol(symbol.upper(), category, **timing))

    def _with_market(self, change: Callable[[MarketConfig], object]) -> MockExchangeConfig:
        market = deepcopy(self.market)
        try:
            change(market)
        except (TypeError, ValueError) as exc:  # TypeError: a timing keyword that does not exist
            raise ConfigError(str(exc)) from None
        return self.copy(market=market)

    def copy(self, **changes: Any) -> MockExchangeConfig:
        """An independent copy, ``changes`` applied and the result validated.

        Deep: its lists, dicts and nested configs (accounts, market symbols) are copies too, as
        are the values in ``changes``, so changing one config never changes another.
        """
        return replace(deepcopy(self), **deepcopy(changes))

    def validate(self) -> None:
        from .scenarios.model import Scenario, ScenarioError  # noqa: PLC0415  # model imports nothing of ours

        for i, raw in enumerate(self.scenarios):
            try:
                Scenario.from_json(raw)
            except ScenarioError as exc:
                raise ConfigError(f"scenarios[{i}].{exc}") from None
        if self.journal_limit < 1:
            raise ConfigError("journal_limit must be >= 1")
        if self.rest_workers < 1 or self.ws_workers < 1:
            raise ConfigError("rest_workers and ws_workers must be >= 1")
        for port_name in ("rest_port", "ws_port"):
            port = getattr(self, port_name)
            if not isinstance(port, int) or not 0 <= port <= 65535:
                raise ConfigError(f"{port_name} must be an integer from 0 to 65535, got {port!r}")
        if self.ack_delay_ms < 0:
            raise ConfigError("ack_delay_ms must be >= 0")
        if self.history_limit < 100:
            raise ConfigError("history_limit must be >= 100")
        if self.max_body_bytes < 1024 or self.max_ws_frame_bytes < 1024:
            raise ConfigError("max_body_bytes and max_ws_frame_bytes must be >= 1024")
        if self.max_header_bytes < 1024:
            raise ConfigError("max_header_bytes must be >= 1024")
        if not self.request_timeout > 0:
            raise ConfigError("request_timeout must be > 0")
        if self.ws_max_pending_requests < 1:
            raise ConfigError("ws_max_pending_requests must be >= 1")
        if self.rate_limits not in RATE_LIMITS:
            raise ConfigError(f"rate_limits must be one of {', '.join(RATE_LIMITS)}, got {self.rate_limits!r}")
        self._validate_admin()
        if not isinstance(self.metrics, bool):
            raise ConfigError(f"metrics must be true or false, got {self.metrics!r}")
        if self.metrics and find_spec("prometheus_client") is None:
            raise ConfigError("metrics = true needs prometheus-client: pip install 'bybit-mock[metrics]'")
        keys = [a.api_key for a in self.accounts]
        if len(keys) != len(set(keys)):
            raise ConfigError("two accounts share an api_key")
        seen: set[tuple[str, str]] = set()
        for inst in self.instruments:
            ident = (inst.category, inst.symbol)
            if ident in seen:
                raise ConfigError(f"instrument {inst.category}/{inst.symbol} is defined twice")
            seen.add(ident)
            if inst.category not in CATEGORIES:
                raise ConfigError(f"instrument {inst.symbol}: unknown category {inst.category!r}")
        validate_market(self.market, seen)
        try:
            self.market.check_canned(self.instruments, MAX_STREAM_RATE)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for acct in self.accounts:
            act = acct.activity
            if act is not None and act.mode == "consistent" and (act.category, act.symbol) not in seen:
                raise ConfigError(f"account {acct.api_key}: activity on unknown instrument {act.category}/{act.symbol}")
            for pos in acct.positions:
                if (pos.category, pos.symbol) not in seen:
                    raise ConfigError(
                        f"account {acct.api_key}: position on unknown instrument {pos.category}/{pos.symbol}"
                    )

    def _validate_admin(self) -> None:
        """An open admin API on a reachable address would let anyone on the network set balances
        and arm faults, so a non-loopback ``host`` needs a token (or the API off): said at
        start, never discovered later."""
        if self.admin not in ADMIN_MODES:
            raise ConfigError(f"admin must be one of {', '.join(ADMIN_MODES)}, got {self.admin!r}")
        token = self.admin_token
        if token is not None and not (
            isinstance(token, str) and token and token == token.strip() and token.isascii() and token.isprintable()
        ):  # it travels in an HTTP header: printable ASCII, and no edge spaces a client would strip
            raise ConfigError("admin_token must be a non-empty string of printable ASCII, no leading or trailing space")
        if self.admin == "on" and token is None and not is_loopback(self.host):
            raise ConfigError(
                f"host {self.host!r} is not a loopback address: the admin API (/__admin/) needs an "
                'admin_token there (--admin-token, [server] admin_token), or admin = "off"'
            )

    # -- TOML -------------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> MockExchangeConfig:
        """Load a config file; see ``docs/configuration.md`` for its keys."""
        return cls.from_mapping(read_toml(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MockExchangeConfig:
        data = dict(data)
        server = table_of(data.pop("server", {}), "server")
        market = market_from(table_of(data.pop("market", {}), "market"))
        accounts = [_account_from(a) for a in array_of(data.pop("accounts", []), "accounts")]
        scenario_settings = scenarios_from(data.pop("scenarios", []))
        instruments_raw = data.pop("instruments", None)
        instruments = (
            default_instruments()
            if instruments_raw is None
            else [instrument_from(i) for i in array_of(instruments_raw, "instruments")]
        )
        if data:
            raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(data))}")
        known = {f.name for f in fields(cls)} - {"accounts", "instruments", "market", *scenario_settings}
        unknown = set(server) - known
        if unknown:
            raise ConfigError(f"[server]: unknown key(s): {', '.join(sorted(unknown))}")
        for name, raw in server.items():
            floats = ("start_timeout", "ack_delay_ms", "request_timeout")
            strings = ("host", "log_level", "rate_limits", "admin", "admin_token")
            expected = str if name in strings else (float if name in floats else int)
            if name == "metrics":
                expected = bool
            value = float(raw) if expected is float and isinstance(raw, int) and not isinstance(raw, bool) else raw
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
                raise ConfigError(f"[server] {name}: expected {expected.__name__}, got {raw!r}")
            server[name] = value
        return cls(accounts=accounts, instruments=instruments, market=market, **server, **scenario_settings)


def _account_from(raw: object) -> AccountConfig:
    table = table_of(raw, "accounts")
    key = string_in(table, "api_key", "[[accounts]]")
    secret = string_in(table, "api_secret", f"account {key}")
    balances = table_of(table.pop("balances", {}), f"accounts.{key}.balances")
    positions = []
    for praw in array_of(table.pop("positions", []), f"accounts.{key}.positions"):
        p = table_of(praw, "position")
        what = f"account {key} position"
        symbol = string_in(p, "symbol", what)
        pos = PositionConfig(
            symbol=symbol,
            side=string_in(p, "side", what),  # type: ignore[arg-type]  # checked in __post_init__
            size=to_decimal(p.pop("size", None), f"{what} {symbol} size"),
            entry_price=to_decimal(p.pop("entry_price", None), f"{what} {symbol} entry_price"),
            leverage=to_decimal(p.pop("leverage", 10), f"{what} {symbol} leverage"),
            category=string_in(p, "category", what, "linear"),  # type: ignore[arg-type]
        )
        no_extra_keys(p, f"{what} {symbol}")
        positions.append(pos)
    raw_activity = table.pop("activity", None)
    activity = None if raw_activity is None else activity_from(raw_activity, f"accounts.{key}.activity")
    no_extra_keys(table, f"account {key}")
    return AccountConfig(key, secret, balances, positions, activity)
