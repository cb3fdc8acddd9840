"""Recordings of Bybit's public WebSocket messages: the file format, read, checked and decoded.

The recording is JSONL: one public message per line, exactly as Bybit sent it
(``orderbook.{depth}.{S}``, ``publicTrade.{S}``, ``kline.{interval}.{S}``, ``tickers.{S}``).
Lines of other symbols are skipped; control lines (``{"op": ...}`` acks and pongs a recorder
may have kept) and blank lines are ignored; anything else that is not such a message is a
``ValueError`` naming the file and line.

Each line of the symbol becomes a :class:`Msg` with its prices and sizes already in ticks and
lots; a :class:`Recording` holds them, immutable once built, with what the replay needs to
know up front (the book topic, the first price, typical sizes). Decoding a file is the slow
part of starting a replayed market, so each process caches the ``CACHE_SIZE`` recordings it
used last, keyed by the file's identity and the instrument's filters.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import threading
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from ..instruments import InstrumentConfig
from .candles import INTERVAL_MINUTES
from .fixed import Fixed

# Message kinds (small ints: the hot path compares them once per message).
BOOK, BOOK_OTHER, TRADE, TICKER, KLINE = range(5)
_KINDS = {"orderbook": BOOK, "publicTrade": TRADE, "tickers": TICKER, "kline": KLINE}

#: Ticker fields that are prices (moved by ``set_price``); the others are sizes, ratios, times.
TICKER_PRICE_FIELDS = frozenset(
    {
        "lastPrice", "prevPrice24h", "highPrice24h", "lowPrice24h", "prevPrice1h", "markPrice", "indexPrice",
        "usdIndexPrice", "bid1Price", "ask1Price", "preOpenPrice", "predictedDeliveryPrice",
    }
)  # fmt: skip
KLINE_PRICE_FIELDS = ("open", "close", "high", "low")
HOUR_MS = 3_600_000


class _LineError(ValueError):
    """A problem in one line; the loader adds the file and line number."""


class Msg:
    """One pre-decoded message of the recording."""

    __slots__ = ("asks", "bids", "funding_ms", "interval", "kind", "last_tick", "raw", "seq", "snapshot", "topic",
                 "trades", "ts", "u")  # fmt: skip

    def __init__(self, kind: int, topic: str, ts: int, raw: dict[str, Any]) -> None:
        self.kind = kind
        self.topic = topic
        self.ts = ts
        self.raw = raw
        self.snapshot = False
        self.bids: list[tuple[int, int]] = []
        self.asks: list[tuple[int, int]] = []
        self.u = 0
        self.seq = 0
        #: (T, side, tick, lots, id, direction or "", seq or None) per trade entry
        self.trades: list[tuple[int, str, int, int, str, str, int | None]] = []
        self.interval = ""
        #: tickers: the funding interval in ms in force at this message (for nextFundingTime)
        self.funding_ms = 8 * HOUR_MS
        #: tickers: lastPrice in ticks, if the message has it
        self.last_tick: int | None = None


class Recording:
    """A validated, decoded recording of one symbol (immutable once built)."""

    def __init__(self, path: str, digest: str, msgs: list[Msg]) -> None:
        self.path = path
        self.digest = digest
        self.msgs = msgs
        self.book_topic = _deepest_book_topic(msgs)
        for m in msgs:
            if m.kind == BOOK and m.topic != self.book_topic:
                m.kind = BOOK_OTHER
        self.has_trades = any(m.kind == TRADE for m in msgs)
        #: every topic the recording has for the symbol (a publisher can leave these to the replay)
        self.topics = frozenset(m.topic for m in msgs)
        #: per message index: the index of the last book snapshot at or before it (-1: none)
        self.snap_at_or_before: list[int] = []
        last = -1
        for i, m in enumerate(msgs):
            if m.kind == BOOK and m.snapshot:
                last = i
            self.snap_at_or_before.append(last)
        self.first_tick = self._first_tick()
        self.lots_per_minute, self.level_lots_typical = self._typical_sizes()

    def _first_tick(self) -> int | None:
        """The price the recording starts at: first trade, else first ticker, else best ask."""
        for m in self.msgs:
            if m.kind == TRADE and m.trades:
                return m.trades[0][2]
        for m in self.msgs:
            if m.kind == TICKER and m.last_tick is not None:
                return m.last_tick
        for m in self.msgs:
            if m.kind == BOOK and m.asks:
                return min(t for t, _ in m.asks)
        return None

    def _typical_sizes(self) -> tuple[float, float]:
        lots = sum(t[3] for m in self.msgs if m.kind == TRADE for t in m.trades)
        span_ms = max(1, self.msgs[-1].ts - self.msgs[0].ts) if self.msgs else 1
        levels = next((m.bids + m.asks for m in self.msgs if m.kind == BOOK and m.snapshot), [])
        level_lots = float(statistics.median(q for _, q in levels)) if levels else 1.0
        return max(1.0, lots * 60_000 / span_ms), max(1.0, level_lots)


def _deepest_book_topic(msgs: list[Msg]) -> str | None:
    depths = {m.topic: int(m.topic.split(".")[1]) for m in msgs if m.kind == BOOK}
    return max(depths, key=lambda t: depths[t]) if depths else None


# -- decoding ------------------------------------------------------------------------------


def parse_count(text: object, fixed: Fixed, what: str) -> int:
    """A decimal string as a whole number of ``fixed`` steps; off the grid is an error.

    Plain strings are parsed with integer arithmetic (a recording has millions of levels);
    anything unusual (an exponent) goes through Decimal.
    """
    if not isinstance(text, str) or not text:
        raise _LineError(f"{what}: expected a decimal string, got {text!r}")
    whole, dot, frac = text.partition(".")
    scale = fixed.scale
    value: int
    if whole.isascii() and whole.isdigit() and (not dot or (frac.isascii() and frac.isdigit())):
        if len(frac) > scale:
            if frac[scale:].strip("0"):
                raise _LineError(f"{what}: {text} is not a multiple of {fixed.step}")
            frac = frac[:scale]
        value = int(whole) * 10**scale + (int(frac.ljust(scale, "0")) if scale else 0)
    else:
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise _LineError(f"{what}: not a decimal number: {text!r}") from None
        if not d.is_finite() or d < 0:
            raise _LineError(f"{what}: not a non-negative number: {text!r}")
        scaled = d.scaleb(scale)
        if scaled != scaled.to_integral_value():
            raise _LineError(f"{what}: {text} is not a multiple of {fixed.step}")
        value = int(scaled)
    count, rest = divmod(value, fixed.units)
    if rest:
        raise _LineError(f"{what}: {text} is not a multiple of {fixed.step}")
    return count


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # Bybit sends these as JSON numbers; a string of digits is accepted (some recorders quote them).
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        raise _LineError(f"{what}: expected an integer, got {value!r}")
    return value


def _levels(data: dict[str, Any], key: str, prices: Fixed, sizes: Fixed) -> list[tuple[int, int]]:
    raw = data.get(key)
    if not isinstance(raw, list):
        raise _LineError(f"data.{key}: expected a list of [price, size]")
    out = []
    for level in raw:
        if not isinstance(level, list) or len(level) != 2:
            raise _LineError(f"data.{key}: expected [price, size], got {level!r}")
        price = parse_count(level[0], prices, f"data.{key} price")
        out.append((price, parse_count(level[1], sizes, f"data.{key} size")))
    return out


def decode(obj: dict[str, Any], kind: int, topic: str, prices: Fixed, sizes: Fixed) -> Msg:
    """Check one message's shape and decode what the model needs from it."""
    msg = Msg(kind, topic, _int(obj.get("ts"), "ts"), obj)
    data = obj.get("data")
    if kind == BOOK:
        parts = topic.split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):  # isdigit alone: "²" too
            raise _LineError(f"bad orderbook topic {topic!r} (expected orderbook.<depth>.<symbol>)")
        kind_name = obj.get("type")
        if kind_name not in ("snapshot", "delta"):
            raise _LineError(f"orderbook type must be 'snapshot' or 'delta', got {kind_name!r}")
        if not isinstance(data, dict):
            raise _LineError("orderbook data must be an object")
        msg.snapshot = kind_name == "snapshot"
        msg.bids = _levels(data, "b", prices, sizes)
        msg.asks = _levels(data, "a", prices, sizes)
        msg.u = _int(data.get("u"), "data.u")
        msg.seq = _int(data.get("seq", 0), "data.seq")
        if "cts" in obj:
            _int(obj["cts"], "cts")
    elif kind == TRADE:
        if not isinstance(data, list):
            raise _LineError("publicTrade data must be a list")
        for n, e in enumerate(data):
            if not isinstance(e, dict):
                raise _LineError(f"data[{n}]: expected an object")
            side = e.get("S")
            if side not in ("Buy", "Sell"):
                raise _LineError(f"data[{n}].S must be 'Buy' or 'Sell', got {side!r}")
            direction = e.get("L", "")
            seq = _int(e["seq"], f"data[{n}].seq") if "seq" in e else None
            msg.trades.append(
                (
                    _int(e.get("T"), f"data[{n}].T"),
                    side,
                    parse_count(e.get("p"), prices, f"data[{n}].p"),
                    parse_count(e.get("v"), sizes, f"data[{n}].v"),
                    str(e.get("i", "")),
                    direction if isinstance(direction, str) else "",
                    seq,
                )
            )
    elif kind == KLINE:
        parts = topic.split(".")
        if len(parts) != 3 or parts[1] not in INTERVAL_MINUTES:
            raise _LineError(f"bad kline topic {topic!r} (expected kline.<interval>.<symbol>)")
        msg.interval = parts[1]
        if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
            raise _LineError("kline data must be a list of objects")
        for n, e in enumerate(data):
            for key in ("start", "end"):
                if key in e:
                    _int(e[key], f"data[{n}].{key}")
    elif kind == TICKER:
        if not isinstance(data, dict):
            raise _LineError("tickers data must be an object")
        last = data.get("lastPrice")
        if last:
            msg.last_tick = parse_count(last, prices, "data.lastPrice")
    return msg


def _topic_of(obj: object) -> tuple[str, str] | None:
    """``(kind, symbol)`` of a data message; None for a control line; error otherwise."""
    if not isinstance(obj, dict):
        raise _LineError(f"expected a JSON object, got {type(obj).__name__}")
    topic = obj.get("topic")
    if topic is None:
        if "op" in obj or "success" in obj:
            return None  # a subscribe ack or a pong the recorder kept
        raise _LineError("no 'topic' (expected a Bybit public message)")
    if not isinstance(topic, str) or "." not in topic:
        raise _LineError(f"bad topic {topic!r}")
    kind = topic.split(".", 1)[0]
    if kind not in _KINDS:
        raise _LineError(f"unknown topic kind {kind!r} in {topic!r} (expected one of {', '.join(_KINDS)})")
    return kind, topic.rsplit(".", 1)[1]


def load_recording(path: str | os.PathLike[str], inst: InstrumentConfig) -> Recording:
    """Read, validate and decode the lines of ``inst.symbol`` (cached: the ``CACHE_SIZE`` last used)."""
    p = Path(path)
    try:
        resolved = str(p.resolve())
        st = os.stat(resolved)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the replay file: {exc.strerror or exc}") from None
    key = (resolved, st.st_size, st.st_mtime_ns, inst.category, inst.symbol, inst.tick_size, inst.price_scale,
           inst.qty_step)  # fmt: skip
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    try:
        content = Path(resolved).read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the replay file: {exc.strerror or exc}") from None
    rec = decode_recording(content, str(path), inst)
    with _CACHE_LOCK:
        _CACHE[key] = rec
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return rec


#: Decoded recordings kept per process, most recently used last. A long-lived process (a test
#: session building many mocks) may load many files; the models that use a recording hold it
#: themselves, so forgetting one here costs only a reload when it is next wanted.
CACHE_SIZE = 8
_CACHE: OrderedDict[tuple[Any, ...], Recording] = OrderedDict()
#: the state service runs a thread per connection: a reorder must not race an eviction
_CACHE_LOCK = threading.Lock()


def decode_recording(content: bytes, name: str, inst: InstrumentConfig) -> Recording:
    prices = Fixed(inst.tick_size, inst.price_scale)
    sizes = Fixed(inst.qty_step)
    msgs: list[Msg] = []
    book_started: set[str] = set()
    funding_ms = 8 * HOUR_MS  # Bybit's default slot; a ticker snapshot says which one is in force
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _LineError(f"not JSON ({exc})") from None
            found = _topic_of(obj)
            if found is None or found[1] != inst.symbol:
                continue
            topic = obj["topic"]
            kind = _KINDS[found[0]]
            msg = decode(obj, kind, topic, prices, sizes)
            if kind == BOOK and topic not in book_started:
                # A delta only means something on top of a snapshot, and Bybit always sends
                # one first on subscribe, so a recording that lacks it is cut or broken.
                if not msg.snapshot:
                    raise _LineError(f"the first {topic} message is a delta; a recording must start with its snapshot")
                book_started.add(topic)
            if kind == TICKER:
                hours = obj["data"].get("fundingIntervalHour")
                if isinstance(hours, str) and hours.isascii() and hours.isdigit() and int(hours) > 0:
                    funding_ms = int(hours) * HOUR_MS
                msg.funding_ms = funding_ms
        except _LineError as exc:
            raise ValueError(f"{name}:{lineno}: {exc}") from None
        msgs.append(msg)
    if not msgs:
        raise ValueError(f"{name}: no message for {inst.symbol} (topics must end with .{inst.symbol})")
    return Recording(name, hashlib.blake2b(content, digest_size=16).hexdigest(), msgs)
