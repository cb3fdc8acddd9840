"""A canned market: the candles, ticks and order books a test wrote down, streamed in order.

The items (:mod:`.canned_items`) of one symbol form one sequence, in the order they were
given (config first, then run-time appends). Item ``k`` is applied at its due time:

* **pace** mode (``pace`` items/s, default 10): the clock starts with the first subscriber to
  any of the symbol's topics (on any WS worker; the worker asks the engine, which starts it
  for everyone), so a client that connects after the mock started still sees every item, as
  with the seed crate. Item ``k`` of a run is due at ``start + k / pace``; an item appended to a
  stream that ran dry starts a new run at once.
* **step** mode: nothing is due until the test releases it (:meth:`CannedMarket.release`,
  ``MockExchangeState.step_market``); released items are due at that moment.

Applying an item changes the market the engine matches against and REST shows:

* a candle is stored for ``/v5/market/kline`` (by interval and start, an update replacing the
  open candle) and its close becomes the last price; it streams on ``kline.{interval}.{S}``;
* a tick becomes a trade (``/v5/market/recent-trade``, the tickers' 24 h figures) at the last
  price; it streams on ``publicTrade.{S}``;
* a book snapshot becomes the book and streams as a snapshot on every ``orderbook.{depth}.{S}``
  (its best ``depth`` levels). Until the first one, the book is one deep level at the last
  price on each side, so a market order fills exactly at the last price.

When the items run out the streams go quiet: there is no synthetic data for a canned symbol.
A price jump (``set_mark_price``) moves the book and last price as on any market; the next
item sets them again. A frozen canned market holds its items (they are not dropped, as a
synthetic market's messages are): on thawing, the next one is due at once.

Every WS worker holds a pickled copy, applies the items as they come due and publishes them;
after a reload (a step, an append, a start) :meth:`CannedMarket.resume` makes the new copy
send exactly the items the old one had not, so a subscriber sees each item once. A reset
builds a new model (a new ``generation``), and the stream starts again from the config.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..instruments import BOOK_DEPTHS, CONTRACTS, InstrumentConfig
from . import messages
from .book import Book
from .candles import INTERVAL_MINUTES, Candle, CandleStore, ConstantPast, PastPrices, interval_end, interval_start
from .canned_items import BookSnapshot, MarketItem, Tick
from .canned_items import Candle as CannedCandle
from .config import SymbolMarketConfig
from .fixed import Fixed
from .model import Event, MarketModel, PricedMarket, Trade
from .synthetic import RECENT_TRADES, U_BASE

# -- the items as the model keeps them: prices in ticks, sizes in lots -----------------------


class CandleRecord:
    __slots__ = ("bar", "confirm", "interval", "start_ms", "t_ns")

    def __init__(self, interval: str, confirm: bool, start_ms: int | None, bar: Candle) -> None:
        self.interval = interval
        self.confirm = confirm
        self.start_ms = start_ms  # as given; ``bar.start`` is resolved when the item is added
        self.bar = bar
        self.t_ns = 0  # when it was applied (its messages' ``ts``)


class TickRecord:
    __slots__ = ("lots", "side", "t_ns", "tick", "time_ms", "trade", "trade_id")

    def __init__(self, side: str, tick: int, lots: int, time_ms: int | None, trade_id: str | None) -> None:
        self.side = side
        self.tick = tick
        self.lots = lots
        self.time_ms = time_ms
        self.trade_id = trade_id or ""
        self.trade: Trade | None = None  # the trade it became, once applied
        self.t_ns = 0


class BookRecord:
    __slots__ = ("asks", "bids", "seq", "t_ns", "u")

    def __init__(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        self.bids = bids
        self.asks = asks
        self.u = 0
        self.seq = 0
        self.t_ns = 0


Record = CandleRecord | TickRecord | BookRecord


def _count(value: Decimal, fixed: Fixed, what: str, grid: str) -> int:
    """``value`` as a whole number of steps; off the grid is an error (Bybit's prices never are)."""
    steps = value / fixed.step
    if steps != steps.to_integral_value():
        raise ValueError(f"{what}: {value} is not a multiple of the {grid} {fixed.step}")
    return int(steps)


def to_record(item: MarketItem, prices: Fixed, sizes: Fixed, what: str) -> Record:
    """One item in ticks and lots, checked against the instrument's tick size and qty step."""

    def price(value: Decimal, name: str) -> int:
        return _count(value, prices, f"{what}.{name}", "tick size")

    def size(value: Decimal, name: str) -> int:
        return _count(value, sizes, f"{what}.{name}", "qty step")

    if isinstance(item, CannedCandle):
        close, lots = price(item.close, "close"), size(item.volume, "volume")
        bar = Candle(0, price(item.open, "open"), price(item.high, "high"), price(item.low, "low"), close, lots)
        bar.turnover = close * lots  # tick*lot units: the volume at the close
        return CandleRecord(item.interval, item.confirm, item.start_ms, bar)
    if isinstance(item, Tick):
        return TickRecord(item.side, price(item.price, "price"), size(item.size, "size"), item.time_ms, item.trade_id)
    bids = [(price(p, f"bids[{i}] price"), size(q, f"bids[{i}] size")) for i, (p, q) in enumerate(item.bids)]
    asks = [(price(p, f"asks[{i}] price"), size(q, f"asks[{i}] size")) for i, (p, q) in enumerate(item.asks)]
    return BookRecord(bids, asks)


def check_config(inst: InstrumentConfig, cfg: SymbolMarketConfig, max_pace: float = float("inf")) -> None:
    """What building the model would refuse, said at config time (``ValueError``)."""
    if isinstance(cfg.pace, bool) or not isinstance(cfg.pace, int | float) or not 0 < cfg.pace <= max_pace:
        raise ValueError(f"pace must be a number of items/s > 0 and <= {max_pace:.0f}, got {cfg.pace!r}")
    if not isinstance(cfg.step, bool):
        raise ValueError(f"step must be True or False, got {cfg.step!r}")
    prices, sizes = Fixed(inst.tick_size, inst.price_scale), Fixed(inst.qty_step)
    for i, item in enumerate(cfg.canned):
        what = f"items[{i}]"
        if not isinstance(item, CannedCandle | Tick | BookSnapshot):
            raise ValueError(f"{what}: expected a Candle, Tick or BookSnapshot, got {type(item).__name__}")
        if (item.category, item.symbol) != (inst.category, inst.symbol):
            raise ValueError(f"{what}: an item of {item.category}/{item.symbol} in {inst.category}/{inst.symbol}")
        to_record(item, prices, sizes, what)


def canned_topics(category: str, symbol: str) -> frozenset[str]:
    """The topics a canned market sends itself: the publisher never makes klines or book deltas for them."""
    klines = {f"kline.{i}.{symbol}" for i in INTERVAL_MINUTES}
    return frozenset(klines | {f"orderbook.{d}.{symbol}" for d in BOOK_DEPTHS[category]})


# -- timing -------------------------------------------------------------------------------


class CannedTimeline:
    """Due times of the scheduled items (``due[g]`` for item ``g``) and the next one to apply.

    It offers what the publisher and :meth:`Markets.freeze` use of a ``Schedule``. While
    ``held`` (the market is frozen) nothing is due; thawing moves the pending items later so
    the next one is due at once (they are held, never dropped).
    """

    __slots__ = ("due", "held", "position")

    def __init__(self) -> None:
        self.due: list[int] = []
        self.position = 0
        self.held = False

    def next_time(self) -> int | None:
        if self.held or self.position >= len(self.due):
            return None
        return self.due[self.position]

    def skip_to(self, now_ns: int) -> None:
        due, pos = self.due, self.position
        if not self.held and pos < len(due) and due[pos] < now_ns:
            shift = now_ns - due[pos]
            for g in range(pos, len(due)):
                due[g] += shift


# -- candles ------------------------------------------------------------------------------


class CannedCandles(CandleStore):
    """``/v5/market/kline`` answers with the canned candles only; the ticks feed the inherited
    one-minute store, which the tickers' 24-hour figures read."""

    def __init__(self, past: PastPrices) -> None:
        super().__init__(past)
        #: interval -> start -> the latest candle given for it
        self.bars: dict[str, dict[int, Candle]] = {}

    def put(self, interval: str, bar: Candle) -> None:
        self.bars.setdefault(interval, {})[bar.start] = bar

    def klines(self, interval: str, start: int | None, end: int | None, limit: int, now_ms: int) -> list[Candle]:
        """Bybit's selection (see :meth:`CandleStore.klines`) over the canned candles, newest first."""
        bars = sorted(self.bars.get(interval, {}).values(), key=lambda c: c.start)
        if start is not None and end is None:
            first = interval_start(interval, start)
            return [c for c in bars if c.start >= first][:limit][::-1]
        chosen = [c for c in bars if (start is None or c.start >= start) and (end is None or c.start <= end)]
        return chosen[::-1][:limit]


# -- the model ----------------------------------------------------------------------------


class CannedMarket(PricedMarket):
    """One symbol's canned market (see the module docstring); the engine changes it with
    :meth:`append`, :meth:`release` and :meth:`start`, every copy applies it with :meth:`advance`.

    It has no index or mark of its own (``track`` is None): both are its last price, so a
    canned test sees exactly the prices it scripted."""

    candles: CannedCandles

    def __init__(self, inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int, epoch_ns: int) -> None:
        check_config(inst, cfg)
        self._identify(inst, cfg, market_seed)
        self.step_mode = cfg.step
        self.pace = float(cfg.pace)
        #: tells a reset (a new model) from a reload of this one, for :meth:`resume`
        self.generation = os.urandom(8).hex()
        self.epoch_ns = epoch_ns
        self.now_ns = epoch_ns
        self.schedule = CannedTimeline()
        self.frozen = False
        self.recorded_topics = canned_topics(inst.category, inst.symbol)
        self.records: list[Record] = []
        #: pace mode: the clock runs (``start``); and the current run's (start, items)
        self.started = False
        self._run = (0, 0)
        self._appended = False
        self.book = Book()
        self.version = 0
        self._books = 0  # book snapshots applied: their ``u``
        self._deep = max(1, self.sizes.to_count(inst.max_qty))  # the implicit book's levels
        self.trades: deque[Trade] = deque(maxlen=RECENT_TRADES)
        self.level_lots_typical = 1.0
        self.open_interest = self._open_interest(self.level_lots_typical, epoch_ns)
        records = [to_record(item, self.prices, self.sizes, f"items[{i}]") for i, item in enumerate(cfg.canned)]
        # Until the first item the market sits at the price it starts from (the instrument's, if none has one).
        first = next((t for r in records if (t := _first_price(r)) is not None), None)
        self.last_tick = first if first is not None else max(1, self.prices.to_count(inst.price))
        self.last_direction = "ZeroPlusTick"
        self._follow_last()
        epoch_ms = epoch_ns // 1_000_000
        self.candles = CannedCandles(ConstantPast(self.last_tick, epoch_ms))
        self._fed_ms = epoch_ms  # the 24 h store's clock: it only goes forward
        #: interval -> (start, confirmed) of the last candle added, to place the next one
        self._starts: dict[str, tuple[int, bool]] = {}
        self._add(records)

    # -- the frozen flag is the timeline's (a frozen canned market holds its items) --------

    @property
    def frozen(self) -> bool:
        return self.schedule.held

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.schedule.held = value

    # -- control (the engine's, under its lock) ----------------------------------------------

    @property
    def pristine(self) -> bool:
        """As configured: not started, nothing released or appended (a reset need not rebuild it)."""
        return not self.started and not self.schedule.due and not self._appended

    @property
    def awaiting_start(self) -> bool:
        return not self.step_mode and not self.started

    def check(self, items: Iterable[tuple[str, MarketItem]]) -> list[Record]:
        """``(name, item)`` pairs as records, or ``ValueError`` naming the first bad one."""
        return [to_record(item, self.prices, self.sizes, what) for what, item in items]

    def append(self, records: list[Record], now_ns: int) -> None:
        """Add checked records after the others (paced from now if the clock runs)."""
        self._appended = True
        self._add(records)
        if self.started:
            self._schedule_paced(now_ns)

    def start(self, now_ns: int) -> bool:
        """Start a paced stream's clock now (its first subscriber); False if it needs none."""
        if not self.awaiting_start:
            return False
        self.started = True
        self._run = (now_ns, 0)
        self._schedule_paced(now_ns)
        return True

    def release(self, n: int, now_ns: int) -> int:
        """Step mode: the next ``n`` items are due now; returns how many there were."""
        due = self.schedule.due
        count = min(n, len(self.records) - len(due))
        due.extend([now_ns] * count)
        return count

    def status(self) -> dict[str, Any]:
        """Where the stream stands (plain values: the state API and an admin API return it)."""
        return {
            "category": self.category,
            "symbol": self.symbol,
            "mode": "step" if self.step_mode else "pace",
            "pace": self.pace,
            "started": self.started or self.step_mode,
            "items": len(self.records),
            "released": len(self.schedule.due),
            "applied": self.schedule.position,
        }

    def _add(self, records: list[Record]) -> None:
        """Place candles without a start and name ticks without an id (fixed once, here, so
        every copy of the model sends the same)."""
        for rec in records:
            if isinstance(rec, CandleRecord):
                start = rec.start_ms
                last = self._starts.get(rec.interval)
                if start is None:
                    if last is None:
                        start = interval_start(rec.interval, self.epoch_ns // 1_000_000)
                    else:
                        start = interval_end(rec.interval, last[0]) if last[1] else last[0]
                rec.bar.start = start
                self._starts[rec.interval] = (start, rec.confirm)
            elif isinstance(rec, TickRecord) and not rec.trade_id:
                rec.trade_id = self._trade_id(len(self.records) + 1)
            self.records.append(rec)

    def _trade_id(self, n: int) -> str:
        if self.category == "spot":
            return str(2_290_000_000_000_000_000 + self.seed % 10**12 * 1000 + n)
        h = hashlib.blake2b(f"{self.seed}/{n}".encode(), digest_size=16).hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _schedule_paced(self, now_ns: int) -> None:
        """Due times for the unscheduled items, ``1 / pace`` apart, computed, never accumulated."""
        due, period = self.schedule.due, 1e9 / self.pace
        while len(due) < len(self.records):
            start, k = self._run
            t = start + int(k * period)
            if t < now_ns:  # the stream ran dry: a new run from now
                start, k, t = now_ns, 0, now_ns
            due.append(t)
            self._run = (start, k + 1)

    # -- time -----------------------------------------------------------------------------

    def _advance_events(self, now_ns: int, out: list[Event] | None = None) -> None:
        """Apply every item due by ``now_ns``; append its messages' events to ``out`` if given."""
        timeline = self.schedule
        if not timeline.held:
            due, records = timeline.due, self.records
            while timeline.position < len(due) and due[timeline.position] <= now_ns:
                g = timeline.position
                timeline.position = g + 1
                self._apply(records[g], due[g])
                if out is not None:
                    self._render(records[g], out)
        self.now_ns = max(self.now_ns, now_ns)

    def resume(self, old: MarketModel | None, now_ns: int, out: list[Event]) -> bool:
        """Take over from ``old``, this worker's copy before a reload, and advance to now.

        Items this copy has applied (the engine did) that ``old`` had not sent go to ``out``;
        items ``old`` sent that this copy has not applied yet are applied silently. So each
        item reaches a subscriber once. A new model (a reset, a new engine) starts over: all it
        has applied is news. Returns True if this continues ``old``'s stream.
        """
        timeline = self.schedule
        continues = isinstance(old, CannedMarket) and old.generation == self.generation
        if old is None:
            sent = timeline.position  # a worker's first load: nobody has subscribed yet
        else:
            sent = old.schedule.position if isinstance(old, CannedMarket) and continues else 0
        for g in range(sent, timeline.position):
            self._render(self.records[g], out)
        while timeline.position < min(sent, len(timeline.due)):
            g = timeline.position
            timeline.position = g + 1
            self._apply(self.records[g], timeline.due[g])
        self.advance(now_ns, out)
        return continues

    def _apply(self, rec: Record, t_ns: int) -> None:
        rec.t_ns = t_ns
        self.version += 1
        if isinstance(rec, CandleRecord):
            self.candles.put(rec.interval, rec.bar)
            self._move(rec.bar.close)
        elif isinstance(rec, TickRecord):
            t_ms = rec.time_ms if rec.time_ms is not None else t_ns // 1_000_000
            trade = Trade(t_ms, rec.side, rec.tick, rec.lots, rec.trade_id, self._direction(rec.tick), self.version)
            rec.trade = trade
            self.trades.append(trade)
            self._fed_ms = max(self._fed_ms, t_ms)
            self.candles.add_trade(self._fed_ms, rec.tick, rec.lots)
            self.open_interest.on_trade(self._fed_ms, rec.lots)
            self._move(rec.tick)
        else:
            book = self.book
            book.bids.clear()
            book.asks.clear()
            for side, levels in ((book.bids, rec.bids), (book.asks, rec.asks)):
                for tick, lots in levels:
                    side.set(tick, lots)
            self._books += 1
            rec.u, rec.seq = U_BASE + self._books, self.version

    def _move(self, tick: int) -> None:
        self.last_direction = self._direction(tick)
        self.last_tick = tick
        self._follow_last()

    def _follow_last(self) -> None:
        """Before any canned book, the book is one deep level at the last price on each side."""
        if self._books:
            return
        book = self.book
        book.bids.clear()
        book.asks.clear()
        book.bids.set(self.last_tick, self._deep)
        book.asks.set(self.last_tick, self._deep)

    def _render(self, rec: Record, out: list[Event]) -> None:
        """An applied item's stream events: ``("trade", ...)`` for a tick (the publisher makes
        the message, Tesser's fields included) and ``("raw", t_ns, topic, message)`` otherwise."""
        t_ns, symbol = rec.t_ns, self.symbol
        ts = t_ns // 1_000_000
        if isinstance(rec, TickRecord):
            assert rec.trade is not None
            out.append(("trade", t_ns, [rec.trade]))
        elif isinstance(rec, CandleRecord):
            topic = f"kline.{rec.interval}.{symbol}"
            entry = messages.kline_entry(rec.interval, rec.bar, rec.confirm, ts, self.prices, self.sizes, False)
            out.append(("raw", t_ns, topic, messages.kline_dict(topic, [entry], ts)))
        else:
            for depth in BOOK_DEPTHS[self.category]:
                topic = f"orderbook.{depth}.{symbol}"
                ts_first = self.category not in CONTRACTS or depth == 1  # Bybit's key order
                msg = messages.book_dict(topic, "snapshot", symbol, rec.bids[:depth], rec.asks[:depth], rec.u,
                                         rec.seq, ts, ts, self.prices, self.sizes, ts_first)  # fmt: skip
                out.append(("raw", t_ns, topic, msg))

    # -- what every model answers -----------------------------------------------------------

    def book_u(self, depth: int) -> int:
        """``u`` of the last canned book (0 before the first: nothing has been sent)."""
        return U_BASE + self._books if self._books else 0

    def ticker_snapshot(self) -> dict[str, Any] | None:
        return None  # tickers are computed from the model

    def set_price(self, price: Decimal) -> None:
        """Jump: the book moves so its best ask is ``price``, the last price becomes ``price``."""
        self._jump(price)
        self.version += 1


def _first_price(rec: Record) -> int | None:
    """The price an item starts at (a candle's open, a tick's, a book's best ask or bid)."""
    if isinstance(rec, CandleRecord):
        return rec.bar.open
    if isinstance(rec, TickRecord):
        return rec.tick
    levels = rec.asks or rec.bids
    return levels[0][0] if levels else None
