"""Canned market data in plain Python types: candles, ticks and order books a test writes down.

These are what ``MockExchangeConfig.with_candles / with_ticks / with_order_books`` take and
what ``MockExchangeState.append_*`` sends at run time (the seed crate's ``with_candles`` and
``with_ticks``, plus books). A canned market (:mod:`.canned`) streams them in order on their
topics: a :class:`Candle` on ``kline.{interval}.{symbol}``, a :class:`Tick` on
``publicTrade.{symbol}``, a :class:`BookSnapshot` on every ``orderbook.{depth}.{symbol}``.

Numbers may be given as ``Decimal``, ``int``, ``float`` (read through its shortest repr, so
``0.1`` is 0.1) or a plain decimal string; they are kept as ``Decimal``. Every item also has a
plain-dict form (:func:`item_to_dict`, :func:`items_from_dicts`): numbers as strings, times as
integers. That is how items cross to the state service and what an HTTP admin API or a TOML
file gives; a bad field is a ``ValueError`` that names it.

Only the shape is checked here. Whether a price is on the instrument's tick grid is checked
where the instrument is known (:func:`.canned.to_records`, at config time and at append).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from ..bybit.numbers import parse_decimal
from ..instruments import CATEGORIES
from .candles import INTERVAL_MINUTES

Number = Decimal | int | float | str
Kind = Literal["candle", "tick", "book"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def number(value: object, what: str) -> Decimal:
    """A number as Decimal; ``ValueError`` naming ``what`` if it is not a finite one."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what}: not a finite number: {value!r}")
        return value
    parsed = parse_decimal(value)  # Bybit's own grammar: no exponent, no bool, bounded digits
    if parsed is None:
        raise ValueError(f"{what}: expected a number (a plain decimal string, int, float or Decimal), got {value!r}")
    return parsed


def _positive(value: object, what: str) -> Decimal:
    result = number(value, what)
    if result <= 0:
        raise ValueError(f"{what}: must be > 0, got {value!r}")
    return result


def _optional_ms(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: expected a time in milliseconds (an int >= 0) or None, got {value!r}")
    return value


def _head(symbol: object, category: object, what: str) -> tuple[str, str]:
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"{what}.symbol: expected a non-empty string, got {symbol!r}")
    if category not in CATEGORIES:
        raise ValueError(f"{what}.category: must be one of {', '.join(CATEGORIES)}, got {category!r}")
    return symbol.upper(), str(category)


@dataclass(frozen=True, init=False)
class Candle:
    """One candle of ``interval`` (Bybit's names: ``"1"`` ... ``"720"``, ``"D"``, ``"W"``, ``"M"``).

    ``start_ms`` (the crate's ``timestamp``) is the candle's start; ``None`` puts it one
    interval after the previous candle of the symbol and interval (the same start if that one
    was not confirmed: an update of the open candle), the first one in the interval holding
    the moment the market was built. ``confirm=False`` streams an open candle's update.
    """

    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    interval: str
    start_ms: int | None
    confirm: bool
    category: str

    def __init__(
        self,
        symbol: str,
        open: Number,  # the crate's and Bybit's name
        high: Number,
        low: Number,
        close: Number,
        volume: Number,
        *,
        interval: str = "1",
        start_ms: int | None = None,
        confirm: bool = True,
        category: str = "linear",
    ) -> None:
        what = "candle"
        sym, cat = _head(symbol, category, what)
        prices = {name: _positive(v, f"{what}.{name}") for name, v in
                  (("open", open), ("high", high), ("low", low), ("close", close))}  # fmt: skip
        vol = number(volume, f"{what}.volume")
        if vol < 0:
            raise ValueError(f"{what}.volume: must be >= 0, got {volume!r}")
        body = (prices["open"], prices["close"])
        if prices["low"] > min(body) or prices["high"] < max(body):
            raise ValueError(f"{what}.high/low: need low <= open, close <= high, got {prices}")
        if interval not in INTERVAL_MINUTES:
            raise ValueError(f"{what}.interval: must be one of {', '.join(INTERVAL_MINUTES)}, got {interval!r}")
        if not isinstance(confirm, bool):
            raise ValueError(f"{what}.confirm: expected true or false, got {confirm!r}")
        _set(self, symbol=sym, volume=vol, interval=interval, confirm=confirm, category=cat, **prices)
        _set(self, start_ms=_optional_ms(start_ms, f"{what}.start_ms"))


@dataclass(frozen=True, init=False)
class Tick:
    """One public trade: ``side`` is the taker's (``"Buy"`` or ``"Sell"``).

    ``time_ms`` (the crate's ``exchange_timestamp``) is the trade's time; ``None`` means the
    moment it is streamed. ``trade_id`` defaults to a deterministic id of Bybit's shape.
    """

    symbol: str
    price: Decimal
    size: Decimal
    side: str
    time_ms: int | None
    trade_id: str | None
    category: str

    def __init__(
        self,
        symbol: str,
        price: Number,
        size: Number,
        side: str,
        *,
        time_ms: int | None = None,
        trade_id: str | None = None,
        category: str = "linear",
    ) -> None:
        what = "tick"
        sym, cat = _head(symbol, category, what)
        if not isinstance(side, str) or side.capitalize() not in ("Buy", "Sell"):
            raise ValueError(f"{what}.side: must be 'Buy' or 'Sell', got {side!r}")
        if trade_id is not None and (not isinstance(trade_id, str) or not trade_id):
            raise ValueError(f"{what}.trade_id: expected a non-empty string or None, got {trade_id!r}")
        _set(self, symbol=sym, price=_positive(price, f"{what}.price"), size=_positive(size, f"{what}.size"))
        _set(self, side=side.capitalize(), time_ms=_optional_ms(time_ms, f"{what}.time_ms"), trade_id=trade_id)
        _set(self, category=cat)


Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, init=False)
class BookSnapshot:
    """The whole order book at one moment: ``(price, size)`` levels per side, in any order.

    It replaces the book: every ``orderbook.{depth}`` topic gets it as a snapshot (its best
    ``depth`` levels), and orders match against it until the next one.
    """

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    category: str

    def __init__(
        self,
        symbol: str,
        bids: Iterable[tuple[Number, Number] | list[Number]],
        asks: Iterable[tuple[Number, Number] | list[Number]],
        *,
        category: str = "linear",
    ) -> None:
        what = "book"
        sym, cat = _head(symbol, category, what)
        sides = {"bids": _levels(bids, f"{what}.bids", reverse=True), "asks": _levels(asks, f"{what}.asks")}
        if sides["bids"] and sides["asks"] and sides["bids"][0][0] >= sides["asks"][0][0]:
            raise ValueError(f"{what}: crossed book, best bid {sides['bids'][0][0]} >= best ask {sides['asks'][0][0]}")
        _set(self, symbol=sym, category=cat, **sides)


def _levels(raw: object, what: str, reverse: bool = False) -> tuple[Level, ...]:
    """Levels sorted best first; a repeated price is an error (which size would it be?)."""
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
        raise ValueError(f"{what}: expected a list of [price, size] pairs, got {raw!r}")
    out: dict[Decimal, Decimal] = {}
    for i, level in enumerate(raw):
        if isinstance(level, str | bytes) or not isinstance(level, list | tuple) or len(level) != 2:
            raise ValueError(f"{what}[{i}]: expected [price, size], got {level!r}")
        price = _positive(level[0], f"{what}[{i}] price")
        if price in out:
            raise ValueError(f"{what}[{i}]: price {price} is listed twice")
        out[price] = _positive(level[1], f"{what}[{i}] size")
    return tuple(sorted(out.items(), reverse=reverse))


def _set(obj: object, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)  # frozen: set once, in __init__


MarketItem = Candle | Tick | BookSnapshot
_CLASSES: dict[Kind, type[MarketItem]] = {"candle": Candle, "tick": Tick, "book": BookSnapshot}


def kind_of(item: MarketItem) -> Kind:
    return "candle" if isinstance(item, Candle) else "tick" if isinstance(item, Tick) else "book"


# -- the plain-dict form ------------------------------------------------------------------

_POSITIONAL: dict[Kind, tuple[str, ...]] = {
    "candle": ("symbol", "open", "high", "low", "close", "volume"),
    "tick": ("symbol", "price", "size", "side"),
    "book": ("symbol", "bids", "asks"),
}
_KEYWORD: dict[Kind, tuple[str, ...]] = {
    "candle": ("interval", "start_ms", "confirm", "category"),
    "tick": ("time_ms", "trade_id", "category"),
    "book": ("category",),
}


def item_from_dict(
    kind: object, raw: object, what: str = "item", defaults: Mapping[str, Any] | None = None
) -> MarketItem:
    """One item from its dict form; ``defaults`` fills absent keys (a TOML table's symbol).

    The dict may name its own ``kind``; if ``kind`` is given too they must agree.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what}: expected an object, got {type(raw).__name__}")
    fields = {**(defaults or {}), **raw}
    own = fields.pop("kind", None)
    if kind is None:
        kind = own
    elif own is not None and own != kind:
        raise ValueError(f"{what}.kind: {own!r} in an append of {kind!r} items")
    if kind not in KINDS:
        raise ValueError(f"{what}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    k: Kind = kind
    missing = [name for name in _POSITIONAL[k] if name not in fields]
    if missing:
        raise ValueError(f"{what}: {k} needs {', '.join(missing)}")
    unknown = set(fields) - set(_POSITIONAL[k]) - set(_KEYWORD[k])
    if unknown:
        raise ValueError(f"{what}: unknown field(s) for a {k}: {', '.join(sorted(unknown))}")
    args = [fields[name] for name in _POSITIONAL[k]]
    kwargs = {name: fields[name] for name in _KEYWORD[k] if name in fields}
    try:
        return _CLASSES[k](*args, **kwargs)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    except TypeError as exc:  # e.g. a non-string symbol reaching .upper()
        raise ValueError(f"{what}: {exc}") from None


def items_from_dicts(kind: object, raw: object) -> list[MarketItem]:
    """A list of dict-form items (``kind`` None: each names its own); errors name the index."""
    if not isinstance(raw, list | tuple):
        raise ValueError(f"items: expected a list of objects, got {type(raw).__name__}")
    return [item_from_dict(kind, entry, f"items[{i}]") for i, entry in enumerate(raw)]


def item_to_dict(item: MarketItem) -> dict[str, Any]:
    """The dict form (with ``kind``): numbers as strings, so it is JSON as it stands."""
    kind = kind_of(item)
    out: dict[str, Any] = {"kind": kind}
    for name in (*_POSITIONAL[kind], *_KEYWORD[kind]):
        value = getattr(item, name)
        if isinstance(value, Decimal):
            value = str(value)
        elif name in ("bids", "asks"):
            value = [[str(p), str(q)] for p, q in value]
        out[name] = value
    return out
