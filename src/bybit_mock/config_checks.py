"""What the configuration is checked with: its error, exact numbers, and the TOML file's tables.

These stand below :mod:`bybit_mock.config` (which builds the typed config from them) and import
nothing of it: the instruments and market tables are read here into their own dataclasses, the
accounts in ``config.py`` beside :class:`~bybit_mock.config.AccountConfig`.
"""

from __future__ import annotations

import ipaddress
import time
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .instruments import BOOK_DEPTHS, CATEGORIES, InstrumentConfig
from .market.config import MarketConfig, SymbolMarketConfig


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


def to_decimal(value: object, what: str) -> Decimal:
    """Parse a config number. Floats go through ``str`` so ``0.1`` stays ``0.1``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{what}: not a number: {value!r}") from None
        if not result.is_finite():
            raise ConfigError(f"{what}: not a finite number: {value!r}")
        return result
    raise ConfigError(f"{what}: expected a number, got {type(value).__name__}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's tables, not yet checked (the CLI merges its flags into ``[server]`` first,
    so that a flag can satisfy a rule the file alone breaks: ``--admin-token`` for its ``host``)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine only (127.0.0.0/8, ::1,
    ``localhost``); ``""`` and ``0.0.0.0`` mean every interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def scenarios_from(raw: object) -> dict[str, Any]:
    """``[[scenarios]]`` (a list of scenarios), or ``[scenarios]`` with ``seed``,
    ``journal_limit`` and ``armed = [...]`` (TOML cannot have both under one name)."""
    if isinstance(raw, list):
        return {"scenarios": raw}
    table = table_of(raw, "scenarios")
    out: dict[str, Any] = {"scenarios": array_of(table.pop("armed", []), "scenarios.armed")}
    for name, key in (("seed", "scenario_seed"), ("journal_limit", "journal_limit")):
        if name in table:
            value = table.pop(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"[scenarios] {name}: expected int, got {value!r}")
            out[key] = value
    if table:
        unknown = ", ".join(sorted(table))
        raise ConfigError(f"[scenarios]: unknown key(s): {unknown} (known: seed, journal_limit, armed)")
    return out


def table_of(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"[{what}] must be a table")
    return dict(value)


def array_of(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be an array of tables ([[{what}]])")
    return value


def string_in(table: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    value = table.pop(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what}: {key} must be a non-empty string")
    return value


def no_extra_keys(table: dict[str, Any], what: str) -> None:
    if table:
        raise ConfigError(f"{what}: unknown key(s): {', '.join(sorted(table))}")


_INSTRUMENT_DECIMALS = (
    "price",
    "tick_size",
    "qty_step",
    "min_qty",
    "max_qty",
    "max_mkt_qty",
    "min_notional",
    "max_leverage",
    "max_price",
    "maker_fee",
    "taker_fee",
    "maintenance_margin_rate",
    "delivery_fee_rate",
    "strike",
)


def instrument_from(raw: object) -> InstrumentConfig:
    table = table_of(raw, "instruments")
    symbol = string_in(table, "symbol", "[[instruments]]").upper()
    category = string_in(table, "category", f"instrument {symbol}", "linear")
    if category not in CATEGORIES:
        raise ConfigError(f"instrument {symbol}: unknown category {category!r}")
    base = string_in(table, "base_coin", f"instrument {symbol}").upper()
    quote = string_in(table, "quote_coin", f"instrument {symbol}").upper()
    kwargs: dict[str, Any] = {}
    for name in _INSTRUMENT_DECIMALS:
        if name in table:
            kwargs[name] = to_decimal(table.pop(name), f"instrument {symbol} {name}")
    if "expires_in_s" in table:  # a short-lived contract for tests: delivered that long after start
        if "delivery_time_ms" in table:
            raise ConfigError(f"instrument {symbol}: give delivery_time_ms or expires_in_s, not both")
        seconds = to_decimal(table.pop("expires_in_s"), f"instrument {symbol} expires_in_s")
        if seconds <= 0:
            raise ConfigError(f"instrument {symbol}: expires_in_s must be > 0")
        kwargs["delivery_time_ms"] = time.time_ns() // 1_000_000 + int(seconds * 1000)
    if "option_type" in table:
        kwargs["option_type"] = string_in(table, "option_type", f"instrument {symbol}")
    for name in ("launch_time_ms", "symbol_id", "funding_interval_s", "delivery_time_ms"):
        if name in table:
            value = table.pop(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"instrument {symbol} {name}: expected an integer")
            kwargs[name] = value
    no_extra_keys(table, f"instrument {symbol}")
    for required in ("price", "tick_size", "qty_step", "min_qty", "max_qty"):
        if required not in kwargs:
            raise ConfigError(f"instrument {symbol}: {required} is required")
    kwargs.setdefault("max_mkt_qty", kwargs["max_qty"])
    for name in ("price", "tick_size", "qty_step", "min_qty", "max_qty", "funding_interval_s"):
        if kwargs.get(name, 1) <= 0:
            raise ConfigError(f"instrument {symbol}: {name} must be > 0")
    check_dated(symbol, category, kwargs)
    return InstrumentConfig(symbol, category, base, quote, **kwargs)


def check_dated(symbol: str, category: str, kwargs: dict[str, Any]) -> None:
    """Dated futures and options: a delivery time (``delivery_time_ms`` or ``expires_in_s``);
    options also ``option_type`` (Call or Put) and ``strike``; spot none of these."""
    what = f"instrument {symbol}"
    if kwargs.get("delivery_time_ms", 0) < 0:
        raise ConfigError(f"{what}: delivery_time_ms must be >= 0")
    if category == "option":
        if not kwargs.get("delivery_time_ms"):
            raise ConfigError(f"{what}: an option needs delivery_time_ms (or expires_in_s)")
        if kwargs.get("option_type") not in ("Call", "Put"):
            raise ConfigError(f"{what}: option_type must be 'Call' or 'Put'")
        if kwargs.get("strike", 0) <= 0:
            raise ConfigError(f"{what}: strike must be > 0")
    elif "option_type" in kwargs or "strike" in kwargs:
        raise ConfigError(f"{what}: option_type and strike are for options only")
    elif category == "spot" and kwargs.get("delivery_time_ms"):
        raise ConfigError(f"{what}: spot has no delivery time")


MAX_STREAM_RATE = 100_000.0


def validate_market(market: MarketConfig, instruments: set[tuple[str, str]]) -> None:
    seen: set[tuple[str, str]] = set()
    for sm in market.symbols:
        what = f"market symbol {sm.category}/{sm.symbol}"
        if (sm.category, sm.symbol) not in instruments:
            raise ConfigError(f"{what}: no such instrument (add it to [[instruments]])")
        if (sm.category, sm.symbol) in seen:
            raise ConfigError(f"{what}: defined twice")
        seen.add((sm.category, sm.symbol))
        if sm.source not in ("synthetic", "replay", "canned"):
            raise ConfigError(f"{what}: source must be 'synthetic', 'replay' or 'canned', got {sm.source!r}")
        rates = {"trade_rate": sm.trade_rate, "kline_rate": sm.kline_rate, "ticker_rate": sm.effective_ticker_rate}
        rates |= {f"book_rates.{d}": r for d, r in sm.book_rates.items()}
        if sm.replay_rate is not None:
            rates["replay_rate"] = sm.replay_rate
        for name, rate in rates.items():
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= MAX_STREAM_RATE:
                raise ConfigError(f"{what}: {name} must be a number from 0 to {MAX_STREAM_RATE:.0f} messages/s")
        depths = BOOK_DEPTHS[sm.category]  # the category is known: checked above with the instrument
        for depth in sm.book_rates:
            if depth not in depths:
                raise ConfigError(f"{what}: order book depth {depth} does not exist (use {depths})")
        if not isinstance(sm.levels, int) or sm.levels < 1:
            raise ConfigError(f"{what}: levels must be an integer >= 1")
        if sm.speed <= 0:
            raise ConfigError(f"{what}: speed must be > 0")
        if sm.source == "replay":
            if not sm.replay_file:
                raise ConfigError(f"{what}: source 'replay' needs replay_file")
            if not Path(sm.replay_file).is_file():
                raise ConfigError(f"{what}: replay_file not found: {sm.replay_file}")


_SYMBOL_MARKET_NUMBERS = ("trade_rate", "ticker_rate", "kline_rate", "order_notional", "replay_rate", "speed",
                          "pace")  # fmt: skip


def market_from(table: dict[str, Any]) -> MarketConfig:
    market = MarketConfig()
    seed = table.pop("seed", market.seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError("[market] seed: expected an integer")
    market.seed = seed
    tesser = table.pop("tesser_compat", False)
    if not isinstance(tesser, bool):
        raise ConfigError("[market] tesser_compat: expected true or false")
    market.tesser_compat = tesser
    for raw in array_of(table.pop("symbols", []), "market.symbols"):
        t = table_of(raw, "market.symbols")
        symbol = string_in(t, "symbol", "[[market.symbols]]").upper()
        what = f"[[market.symbols]] {symbol}"
        sm = SymbolMarketConfig(symbol=symbol, category=string_in(t, "category", what, "linear"))
        sm.source = string_in(t, "source", what, "synthetic")  # type: ignore[assignment]  # validated later
        for name in _SYMBOL_MARKET_NUMBERS:
            if name in t:
                value = t.pop(name)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"{what}: {name} must be a number")
                setattr(sm, name, float(value))
        for name in ("levels", "seed"):
            if name in t:
                value = t.pop(name)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{what}: {name} must be an integer")
                setattr(sm, name, value)
        if "loop" in t:
            loop = t.pop("loop")
            if not isinstance(loop, bool):
                raise ConfigError(f"{what}: loop must be true or false")
            sm.loop = loop
        if "step" in t:
            step = t.pop("step")
            if not isinstance(step, bool):
                raise ConfigError(f"{what}: step must be true or false")
            sm.step = step
        if "items" in t:
            try:
                sm.canned = sm.items_from(array_of(t.pop("items"), f"{what} items"))
            except ValueError as exc:
                raise ConfigError(f"{what}: {exc}") from None
        if "replay_file" in t:
            sm.replay_file = string_in(t, "replay_file", what)
        if "book_rates" in t:
            rates = table_of(t.pop("book_rates"), f"{what} book_rates")
            try:
                sm.book_rates = {int(depth): float(rate) for depth, rate in rates.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"{what}: book_rates must map depths to rates, e.g. {{ 50 = 50 }}") from None
        no_extra_keys(t, what)
        market.symbols.append(sm)
    no_extra_keys(table, "[market]")
    return market


#: private activity per account (``[accounts.activity]``): events per second, both modes
ACTIVITY_RATES = (1.0, 10_000.0)
ACTIVITY_MODES = ("consistent", "canned")


@dataclass(frozen=True)
class ActivityConfig:
    """Private activity on one account at ``rate`` events/s (``engine/activity.py``).

    ``consistent``: another trader on the account places, fills and cancels ``qty`` (default
    the instrument's minimum) of ``category``/``symbol`` through the engine, so REST agrees
    with the pushes. ``canned``: the private messages of the JSONL ``file`` (default the bundled
    sample) replayed with fresh ids and times, which REST knows nothing of.
    """

    mode: str
    rate: float
    symbol: str = "BTCUSDT"
    category: str = "linear"
    qty: Decimal | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ACTIVITY_MODES:
            raise ConfigError(f"activity: mode must be one of {', '.join(ACTIVITY_MODES)}, got {self.mode!r}")
        low, high = ACTIVITY_RATES
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not low <= self.rate <= high:
            raise ConfigError(f"activity: rate must be a number from {low:g} to {high:g} events/s, got {self.rate!r}")
        if self.qty is not None and self.qty <= 0:
            raise ConfigError("activity: qty must be > 0")
        if self.file is not None and self.mode != "canned":
            raise ConfigError("activity: file is only for mode 'canned'")
        if self.file is not None and not Path(self.file).is_file():
            raise ConfigError(f"activity: no file {self.file!r}")


def activity_from(raw: object, what: str) -> ActivityConfig:
    """An account's ``activity`` table (see ``docs/soak.md``, "Private activity")."""
    table = dict(table_of(raw, what))
    mode = string_in(table, "mode", what)
    rate = table.pop("rate", None)
    symbol = string_in(table, "symbol", what, "BTCUSDT").upper()
    category = string_in(table, "category", what, "linear")
    qty = to_decimal(table.pop("qty"), f"{what} qty") if "qty" in table else None
    file = string_in(table, "file", what) if "file" in table else None
    no_extra_keys(table, what)
    return ActivityConfig(mode, rate, symbol, category, qty, file)  # rate: checked in __post_init__
