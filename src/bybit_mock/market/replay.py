"""A market model that replays a recording of Bybit's public WebSocket messages.

:class:`ReplayMarket` has the interface of :class:`~.synthetic.SyntheticMarket` (``advance``,
``book``, ``trades``, ``candles``, ``last_tick``, ``version``, ``book_u``, ``set_price`` ...),
so the engine matches orders against it and REST answers from it exactly as for the synthetic
model; what changes is where the market comes from.

The recording (a JSONL file of Bybit's public messages) is read, checked and decoded by
:mod:`.recording`; this module plays it in time.

Timing. Message ``k`` (from 0, counting only this symbol's lines) is due at

* ``epoch + k * 1e9 / replay_rate`` when ``replay_rate`` is set, whatever the recorded timing;
* otherwise ``epoch + (ts_k - ts_0) / speed`` (recorded ms, scaled). A line recorded with an
  earlier ``ts`` than the line before it (topics come from different Bybit servers) is due
  with its predecessor: file order is always kept.

So the first message (normally the book snapshot) is due at the epoch itself. At the end of the
file, ``loop`` starts again: pass ``p`` is offset by ``p`` times the recording's duration plus
one average gap (speed mode) or simply continues the count (rate mode); without ``loop`` the
market holds its last state and nothing more is emitted. A loop replays the recording as is:
``u``, ``seq`` and trade ids repeat, but every pass starts with the recording's snapshot, which
resets a client's book as Bybit's own snapshots do.

What each message does to the model:

* the **deepest** ``orderbook`` topic of the file is the book: a snapshot replaces it, a delta
  applies (size ``"0"`` deletes); ``version`` is its ``seq`` and ``book_u()`` its ``u``.
  Shallower book topics are only re-emitted.
* ``publicTrade`` entries become :class:`~.synthetic.Trade` s (recent trades, ``last_tick``,
  ``last_direction`` from ``L`` or from the price move, one-minute candles).
* ``tickers`` drive ``last_tick`` only if the file has no trades for the symbol.
* ``kline`` is only re-emitted (the model's candles are built from the trades).
* the index and mark price (:mod:`.prices`) are the recorded ticker's ``indexPrice`` and
  ``markPrice`` from the first ticker that has them on (moved by the ``set_price`` offset);
  before that, or in a recording with no tickers, the index is an EMA of the replayed trades
  and the mark that index plus a smoothed premium, both updated at each trade message.

Each applied message is also appended to ``out`` as ``("raw", t_ns, topic, message)`` where
``message`` is the recorded dict with its times moved to the replay: ``ts`` is the due time in
ms, ``cts`` (book), trade ``T`` and kline ``timestamp`` move by the same amount, and kline
``start``/``end`` and ticker ``nextFundingTime`` move by *whole intervals*, so they describe the
candle (funding slot) that contains the new time, as they did at recording time. Everything
else, key order included, is as recorded. The emitted dict shares nested values (level lists,
entries' strings) with the recording: encode it, never mutate it.

``set_price(p)`` (how a test's price jump reaches a replayed market) moves the book so its
best ask is ``p`` and from then on adds that constant tick offset to every replayed price:
book levels, trades, and the price fields of the emitted messages (book ``b``/``a``, trade
``p``, kline open/high/low/close, ticker prices). Levels that would fall to a price <= 0 are
dropped from the book and from the messages alike.

A frozen market (``Markets.freeze``) skips its messages and holds its book. Deltas only make
sense on the book they were recorded against, so on thawing, the book is rebuilt silently from
the recording's last snapshot up to the present; the skipped trades stay skipped.

Copies of the model travel to every WS worker by pickle; the decoded recording is not pickled
but loaded again from the same file, checked by a digest (``recording.load_recording``).
"""

from __future__ import annotations

import bisect
import calendar
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..instruments import InstrumentConfig
from .book import Book
from .candles import INTERVAL_MINUTES, CandleStore, PastPrices, interval_end, interval_start
from .config import SymbolMarketConfig
from .model import Event, PricedMarket, Trade
from .prices import PriceTrack
from .recording import (
    BOOK,
    BOOK_OTHER,
    HOUR_MS,
    KLINE,
    KLINE_PRICE_FIELDS,
    TICKER,
    TICKER_PRICE_FIELDS,
    TRADE,
    Msg,
    Recording,
    load_recording,
)
from .synthetic import RECENT_TRADES

# -- timing ------------------------------------------------------------------------------


class ReplayTimeline:
    """When message ``g`` (global: ``pass * n + index``) is due, and which is next.

    It offers what the publisher and :meth:`Markets.freeze` use of a synthetic model's
    :class:`~.schedule.Schedule`: ``next_time()`` and ``skip_to()``.
    """

    __slots__ = ("epoch_ns", "loop", "n", "pass_ns", "period_ns", "position", "rel_ns")

    def __init__(self, epoch_ns: int, ts: list[int], rate: float | None, speed: float, loop: bool) -> None:
        self.epoch_ns = epoch_ns
        self.n = len(ts)
        self.loop = loop
        self.position = 0  # the next message to pop
        self.period_ns = 0.0
        self.rel_ns: list[int] = []
        self.pass_ns = 0
        if rate is not None:
            self.period_ns = 1e9 / rate
        else:
            rel, top = [], 0
            for t in ts:
                top = max(top, int((t - ts[0]) * 1_000_000 / speed))  # keep file order (see module doc)
                rel.append(top)
            self.rel_ns = rel
            duration = rel[-1]
            gap = duration // (self.n - 1) if self.n > 1 and duration > 0 else int(1e9 / speed)
            self.pass_ns = max(1, duration + gap)

    def due_time(self, g: int) -> int:
        if self.period_ns:
            return self.epoch_ns + int(g * self.period_ns)
        p, i = divmod(g, self.n)
        return self.epoch_ns + p * self.pass_ns + self.rel_ns[i]

    def next_time(self) -> int | None:
        if not self.loop and self.position >= self.n:
            return None
        return self.due_time(self.position)

    def pop_due(self, now_ns: int) -> tuple[int, int] | None:
        """``(due time, g)`` of the next message if it is due by ``now_ns``."""
        g = self.position
        if not self.loop and g >= self.n:
            return None
        t = self.due_time(g)
        if t > now_ns:
            return None
        self.position = g + 1
        return t, g

    def first_after(self, now_ns: int) -> int:
        """The first ``g`` due strictly after ``now_ns`` (``n`` at most without a loop)."""
        elapsed = now_ns - self.epoch_ns
        if elapsed < 0:
            return 0
        if self.period_ns:
            g = int(elapsed // self.period_ns) + 1
            while g > 0 and self.due_time(g - 1) > now_ns:  # float rounding at the boundary
                g -= 1
            while self.due_time(g) <= now_ns:
                g += 1
        else:
            p, within = divmod(elapsed, self.pass_ns)
            g = p * self.n + bisect.bisect_right(self.rel_ns, within)
        return g if self.loop else min(g, self.n)

    def skip_to(self, now_ns: int) -> None:
        """Drop every message due by ``now_ns`` unapplied (a frozen market)."""
        self.position = max(self.position, self.first_after(now_ns))

    def count(self, stream: int = 0) -> int:
        """Messages popped so far (``Schedule.count`` of the single stream)."""
        return self.position


# -- the model ----------------------------------------------------------------------------


class ReplayMarket(PricedMarket):
    def __init__(self, inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int, epoch_ns: int) -> None:
        if not cfg.replay_file:
            raise ValueError(f"{inst.category} {inst.symbol}: source 'replay' needs replay_file")
        if cfg.replay_rate is not None and not cfg.replay_rate > 0:
            raise ValueError(f"{inst.category} {inst.symbol}: replay_rate must be > 0, got {cfg.replay_rate}")
        if not cfg.speed > 0:
            raise ValueError(f"{inst.category} {inst.symbol}: speed must be > 0, got {cfg.speed}")
        self._identify(inst, cfg, market_seed)
        self.replay_file = str(Path(cfg.replay_file).resolve())
        rec = self._rec = load_recording(self.replay_file, inst)
        self.digest = rec.digest
        self.recorded_topics = rec.topics
        self.schedule = ReplayTimeline(epoch_ns, [m.ts for m in rec.msgs], cfg.replay_rate, cfg.speed, cfg.loop)
        self.epoch_ns = epoch_ns
        self.now_ns = epoch_ns
        self.frozen = False
        #: ticks added to every replayed price since ``set_price`` (0: as recorded)
        self.offset = 0
        self.book = Book()
        self.version = 0
        self._book_u = 0
        #: the next message the model has applied up to; it lags the timeline after a freeze
        self._applied = 0
        start_tick = max(1, rec.first_tick if rec.first_tick is not None else self.prices.to_count(inst.price))
        self.last_tick = start_tick
        self.last_direction = "ZeroPlusTick"
        self.level_lots_typical = rec.level_lots_typical
        self.open_interest = self._open_interest(self.level_lots_typical, epoch_ns)
        #: the recorded ticker as a client has it (snapshot merged with the deltas since), and the
        #: (replay ms, recorded ms, funding slot) of its last message, to move its times
        self._ticker: dict[str, Any] = {}
        self._ticker_times = (0, 0, 8 * HOUR_MS)
        self.trades: deque[Trade] = deque(maxlen=RECENT_TRADES)
        self._last_trade_ms = epoch_ns // 1_000_000
        self.candles = CandleStore(PastPrices(self.seed, start_tick, epoch_ns // 1_000_000, rec.lots_per_minute))
        self.track: PriceTrack = PriceTrack(self.prices, self.candles.past, self.seed, epoch_ns // 1_000_000, False)

    # -- pickling: the recording is reloaded (and checked) in the receiving process ------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_rec"]
        state.pop("_ticker_windows", None)  # a cache of ticker.py; cheaper to rebuild than to ship
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        rec = load_recording(self.replay_file, self.inst)
        if rec.digest != self.digest:
            raise ValueError(f"{self.replay_file}: the replay file changed while the mock was running")
        self._rec = rec

    # -- time -----------------------------------------------------------------------------

    @property
    def recording(self) -> Recording:
        return self._rec

    def _advance_events(self, now_ns: int, out: list[Event] | None = None) -> None:
        """Apply every message due by ``now_ns``; append ``("raw", t_ns, topic, message)`` to ``out``."""
        timeline = self.schedule
        if self.frozen:
            timeline.skip_to(now_ns)
            self.now_ns = max(self.now_ns, now_ns)
            return
        if timeline.position != self._applied:
            self._resync_book()
        pop = timeline.pop_due
        while (due := pop(now_ns)) is not None:
            self._apply(due[0], due[1], out)
        self._applied = timeline.position
        self.now_ns = max(self.now_ns, now_ns)

    def book_u(self, depth: int) -> int:
        """``u`` of the last applied message of the book topic (whatever ``depth`` is asked)."""
        return self._book_u

    def _apply(self, t_ns: int, g: int, out: list[Event] | None) -> None:
        msg = self._rec.msgs[g % self.schedule.n]
        t_ms = t_ns // 1_000_000
        shift = t_ms - msg.ts
        kind = msg.kind
        if kind == BOOK:
            self._apply_book(msg)
        elif kind == TRADE:
            self._apply_trades(msg, shift)
        elif kind == TICKER:
            data = msg.raw["data"]
            if msg.raw.get("type") == "snapshot" or not self._ticker:
                self._ticker = dict(data)
            else:
                self._ticker.update(data)
            self._ticker_times = (t_ms, msg.ts, msg.funding_ms)
            self._track_ticker(data, t_ms)
            if not self._rec.has_trades and msg.last_tick is not None:
                tick = msg.last_tick + self.offset
                if tick > 0:
                    direction = data.get("tickDirection")
                    self.last_direction = direction if isinstance(direction, str) else self._direction(tick)
                    self.last_tick = tick
        if out is not None:
            out.append(("raw", t_ns, msg.topic, self._render(msg, t_ms, shift)))

    def _apply_book(self, msg: Msg) -> None:
        book, off = self.book, self.offset
        if msg.snapshot:
            book.bids.clear()
            book.asks.clear()
        for side, levels in ((book.bids, msg.bids), (book.asks, msg.asks)):
            for tick, lots in levels:
                if tick + off > 0:
                    side.set(tick + off, lots)
        self._book_u = msg.u
        self.version = msg.seq

    def _fine(self, text: Any) -> int | None:
        """A recorded ticker price in the index grid's units, moved by the offset (None if absent)."""
        if not isinstance(text, str) or not text:
            return None
        track = self.track
        try:
            count = track.fine.to_count(Decimal(text)) + self.offset * track.ratio
        except (InvalidOperation, ArithmeticError):
            return None
        return count if count > 0 else None

    def _track_ticker(self, data: dict[str, Any], t_ms: int) -> None:
        index, mark = self._fine(data.get("indexPrice")), self._fine(data.get("markPrice"))
        if index is not None or mark is not None:
            self.track.record_replayed(max(t_ms, self._last_trade_ms), index, mark)

    def _apply_trades(self, msg: Msg, shift: int) -> None:
        off = self.offset
        if msg.trades:
            self.track.step_index(max(msg.trades[0][0] + shift, self._last_trade_ms), self.last_tick)
        for t, side, recorded_tick, lots, trade_id, recorded_direction, seq in msg.trades:
            tick = recorded_tick + off
            if tick <= 0:
                continue
            # Candles need time to go forward; shifted times can step back by a few ms between
            # messages (rate mode, loop seams), so the model's clock never does.
            t_ms = max(t + shift, self._last_trade_ms)
            self._last_trade_ms = t_ms
            direction = recorded_direction or self._direction(tick)
            trade = Trade(t_ms, side, tick, lots, trade_id, direction, seq if seq is not None else self.version)
            self.last_tick, self.last_direction = tick, direction
            self.trades.append(trade)
            self.candles.add_trade(t_ms, tick, lots)
            self.open_interest.on_trade(t_ms, lots)
        if msg.trades:
            self.track.settle(self._last_trade_ms, self.book, self.last_tick)

    def _resync_book(self) -> None:
        """After a freeze skipped messages, rebuild the book as the recording has it now.

        Deltas only apply to the book they were recorded against, so the book is replayed
        silently from the last snapshot up to the timeline's position. Trades are not: a frozen
        market had none.
        """
        rec, n = self._rec, self.schedule.n
        last = self.schedule.position - 1
        self._applied = self.schedule.position
        if last < 0:
            return
        p, i = divmod(last, n)
        snap = rec.snap_at_or_before[i]
        if snap >= 0:
            start = p * n + snap
        elif p > 0 and rec.snap_at_or_before[-1] >= 0:
            start = (p - 1) * n + rec.snap_at_or_before[-1]
        else:
            return
        for g in range(start, last + 1):
            msg = rec.msgs[g % n]
            if msg.kind == BOOK:
                self._apply_book(msg)

    # -- emitted messages -----------------------------------------------------------------

    def _render(self, msg: Msg, t_ms: int, shift: int) -> dict[str, Any]:
        """The recorded message as the replay sends it (see the module doc); the recording is not touched."""
        raw = msg.raw
        out = dict(raw)  # keeps Bybit's key order; only values change
        out["ts"] = t_ms
        kind, off = msg.kind, self.offset
        if kind in (BOOK, BOOK_OTHER):
            if "cts" in raw:
                out["cts"] = raw["cts"] + shift
            if off:
                data = out["data"] = dict(raw["data"])
                data["b"] = self._shift_levels(raw["data"]["b"], msg.bids)
                data["a"] = self._shift_levels(raw["data"]["a"], msg.asks)
        elif kind == TRADE:
            entries = []
            for entry, decoded in zip(raw["data"], msg.trades, strict=True):
                e = dict(entry)
                e["T"] = decoded[0] + shift
                if off:
                    if decoded[2] + off <= 0:
                        continue
                    e["p"] = self.prices.fmt(decoded[2] + off)
                entries.append(e)
            out["data"] = entries
        elif kind == KLINE:
            out["data"] = [self._render_kline(e, msg, t_ms, shift) for e in raw["data"]]
        elif kind == TICKER:
            out["data"] = self._render_ticker(raw["data"], t_ms, msg.ts, msg.funding_ms)
        return out

    def _render_ticker(self, recorded: dict[str, Any], t_ms: int, ts: int, slot: int) -> dict[str, Any]:
        data = dict(recorded)
        nft = data.get("nextFundingTime")
        if isinstance(nft, str) and nft.isdigit() and nft != "0":
            data["nextFundingTime"] = str(int(nft) + (t_ms // slot - ts // slot) * slot)
        if self.offset:
            for key, value in data.items():
                if key in TICKER_PRICE_FIELDS and value:
                    data[key] = self._shift_price_text(value)
        return data

    def ticker_snapshot(self) -> dict[str, Any] | None:
        """The recorded ticker as of now (snapshot plus deltas), times and prices as replayed.

        What a new ``tickers`` subscriber of a replayed market should get as its snapshot, so the
        recorded deltas that follow apply to it; None before the first recorded ticker.
        """
        if not self._ticker:
            return None
        return self._render_ticker(self._ticker, *self._ticker_times)

    def _shift_levels(self, raw_levels: list[list[str]], decoded: list[tuple[int, int]]) -> list[list[str]]:
        fmt, off = self.prices.fmt, self.offset
        return [[fmt(tick + off), level[1]] for level, (tick, _) in zip(raw_levels, decoded, strict=True)
                if tick + off > 0]  # fmt: skip

    def _shift_price_text(self, text: Any) -> Any:
        """A price string moved by the offset; index prices have more decimals than the tick, so Decimal."""
        try:
            value = Decimal(text) + self.prices.decimal(self.offset)
        except (InvalidOperation, TypeError):
            return text
        return str(max(value, self.prices.step))

    def _render_kline(self, entry: dict[str, Any], msg: Msg, t_ms: int, shift: int) -> dict[str, Any]:
        e = dict(entry)
        recorded = entry.get("timestamp")
        ref_old = recorded if isinstance(recorded, int) else msg.ts
        ref_new = ref_old + shift
        if isinstance(recorded, int):
            e["timestamp"] = ref_new
        interval = entry.get("interval", msg.interval)
        start = entry.get("start")
        if isinstance(start, int) and interval in INTERVAL_MINUTES:
            new_start = shift_candle_start(interval, start, ref_old, ref_new)
            e["start"] = new_start
            if "end" in entry:
                e["end"] = interval_end(interval, new_start) - 1
        if self.offset:
            for key in KLINE_PRICE_FIELDS:
                if key in e:
                    e[key] = self._shift_price_text(e[key])
        return e

    # -- control --------------------------------------------------------------------------

    def set_price(self, price: Decimal) -> None:
        """Jump: the book moves so its best ask is ``price``, and every later replayed price follows;
        the index and mark move to ``price`` until the next recorded ones (moved by the offset)."""
        self.offset += self._jump(price)
        self._jump_track(max(self.now_ns // 1_000_000, self._last_trade_ms))


def shift_candle_start(interval: str, start: int, ref_old: int, ref_new: int) -> int:
    """Move a candle's start by whole intervals, as far as ``ref_old`` moved to ``ref_new``.

    The candle keeps its place relative to the reference time: the open candle stays the one
    containing it, a just-confirmed one stays the one before.
    """
    if interval == "M":
        months = _month_index(ref_new) - _month_index(ref_old)
        year, month0 = divmod(_month_index(start) + months, 12)
        return calendar.timegm((year, month0 + 1, 1, 0, 0, 0)) * 1000
    return start + interval_start(interval, ref_new) - interval_start(interval, ref_old)


def _month_index(t_ms: int) -> int:
    d = datetime.fromtimestamp(t_ms / 1000, UTC)
    return d.year * 12 + d.month - 1


def bundled_sample() -> Path:
    """The sample recording shipped with the package (BTCUSDT linear, about 40 s)."""
    return Path(__file__).resolve().parent.parent / "data" / "sample-btcusdt-linear.jsonl"
