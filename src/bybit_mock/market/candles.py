"""Klines: one-minute candles built from the model's trades, and a deterministic past.

The market starts at its epoch, but clients ask for history (ccxt's ``fetch_ohlcv`` wants
hundreds of candles before now). Before the epoch, the price is a closed-form function of
time: ``P0 * exp(sum_i a_i * (sin(w_i t + phi_i) - sin(w_i e + phi_i)))`` with seeded
amplitudes, frequencies and phases. It is continuous, ends exactly at the start price at the
epoch, looks like a market at every scale from minutes to months, and costs O(1) to evaluate
at any instant, so any candle of any interval is computed on demand with no stored history.

After the epoch, candles aggregate the model's own trades: the open minute is updated per
trade, closed minutes are kept for a bounded time (7 days) and longer intervals are summed
from them (and from the past function for the part before the epoch).
"""

from __future__ import annotations

import calendar
import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE_MS = 60_000
DAY_MS = 1_440 * MINUTE_MS
WEEK_MS = 7 * DAY_MS
_MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; Bybit's weeks start on Monday
KEEP_MINUTES = 7 * 1_440

#: Bybit's kline intervals and their length in minutes (``M`` is a calendar month).
INTERVAL_MINUTES: dict[str, int] = {
    "1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240,
    "360": 360, "720": 720, "D": 1_440, "W": 10_080, "M": 43_200,
}  # fmt: skip


def interval_start(interval: str, t_ms: int) -> int:
    """Start of the candle of ``interval`` that contains ``t_ms`` (UTC)."""
    if interval == "M":
        d = datetime.fromtimestamp(t_ms / 1000, UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    if interval == "W":
        return (t_ms - _MONDAY_OFFSET_MS) // WEEK_MS * WEEK_MS + _MONDAY_OFFSET_MS
    length = INTERVAL_MINUTES[interval] * MINUTE_MS
    return t_ms // length * length


def interval_end(interval: str, start_ms: int) -> int:
    """First millisecond after the candle that starts at ``start_ms``."""
    if interval == "M":
        d = datetime.fromtimestamp(start_ms / 1000, UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    if interval == "W":
        return start_ms + WEEK_MS
    return start_ms + INTERVAL_MINUTES[interval] * MINUTE_MS


@dataclass(slots=True)
class Candle:
    """Prices in ticks; ``volume`` in lots; ``turnover`` in tick*lot units (exact)."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    turnover: int = 0

    def add(self, tick: int, lots: int) -> None:
        self.high = max(self.high, tick)
        self.low = min(self.low, tick)
        self.close = tick
        self.volume += lots
        self.turnover += tick * lots

    def merge(self, later: Candle) -> None:
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.volume += later.volume
        self.turnover += later.turnover


class PastPrices:
    """The deterministic price path before the epoch (see the module docstring)."""

    _SAMPLES = 6

    def __init__(self, seed: int, start_tick: int, epoch_ms: int, lots_per_minute: float) -> None:
        rng = random.Random(seed)
        self.start_tick = start_tick
        self.epoch_ms = epoch_ms
        self.lots_per_minute = lots_per_minute
        # Periods from ~3 minutes to ~1 year, amplitude growing like sqrt(period) (a random walk's
        # scaling), about 1 % over a day.
        self.terms: list[tuple[float, float, float]] = []
        for i in range(16):
            period_min = 3 * 2.3**i
            amp = 0.0007 * math.sqrt(period_min / 60) * rng.uniform(0.5, 1.5)
            omega = 2 * math.pi / (period_min * MINUTE_MS)
            self.terms.append((amp, omega, rng.uniform(0, 2 * math.pi)))
        self._base = self._wave(epoch_ms)
        self._seed = seed

    def _wave(self, t_ms: int) -> float:
        return sum(a * math.sin(w * t_ms + p) for a, w, p in self.terms)

    def tick_at(self, t_ms: int) -> int:
        return max(1, round(self.start_tick * math.exp(self._wave(t_ms) - self._base)))

    def candle(self, start: int, end: int) -> Candle:
        """The candle for ``[start, end)``; ``end`` is at most the epoch."""
        span = max(1, end - start)
        ticks = [self.tick_at(start + span * i // self._SAMPLES) for i in range(self._SAMPLES)]
        close = self.tick_at(end) if end >= self.epoch_ms else self.tick_at(end - 1)
        ticks.append(close)
        minutes = span / MINUTE_MS
        noise = random.Random(self._seed * 1_000_003 + start).uniform(0.4, 1.6)
        volume = max(1, int(self.lots_per_minute * minutes * noise))
        return Candle(start, ticks[0], max(ticks), min(ticks), close, volume, volume * ticks[0])


class ConstantPast(PastPrices):
    """One value at every time before the epoch, no volume: a canned market's history (flat at
    its first price) and the premium index of a model whose three prices are one (0)."""

    def __init__(self, value: int, epoch_ms: int) -> None:  # no waves: nothing of the parent's state
        self.start_tick = value
        self.epoch_ms = epoch_ms
        self.lots_per_minute = 0.0

    def tick_at(self, t_ms: int) -> int:
        return self.start_tick

    def candle(self, start: int, end: int) -> Candle:
        v = self.start_tick
        return Candle(start, v, v, v, v)


class CandleStore:
    """One-minute candles since the epoch plus the past; answers any interval and range."""

    def __init__(self, past: PastPrices) -> None:
        self.past = past
        self.epoch_ms = past.epoch_ms
        self.closed: deque[Candle] = deque(maxlen=KEEP_MINUTES)
        self.current: Candle | None = None

    def add_trade(self, t_ms: int, tick: int, lots: int) -> None:
        cur = self.current
        start = t_ms - t_ms % MINUTE_MS
        if cur is None or start != cur.start:
            if cur is not None:
                self._close_through(cur, start)
            cur = self.current = Candle(start, tick, tick, tick, tick)
        cur.add(tick, lots)

    def _close_through(self, cur: Candle, next_start: int) -> None:
        """Close ``cur`` and record flat, empty minutes for any gap before ``next_start``."""
        self.closed.append(cur)
        t = cur.start + MINUTE_MS
        last = cur.close
        gap = (next_start - t) // MINUTE_MS
        if gap > KEEP_MINUTES:
            t = next_start - KEEP_MINUTES * MINUTE_MS
        while t < next_start:
            self.closed.append(Candle(t, last, last, last, last))
            t += MINUTE_MS

    def _minutes(self, start: int, end: int, now_ms: int) -> list[Candle]:
        """Recorded minute candles (closed, then the open one) overlapping ``[start, end)``."""
        out = self._closed_between(start, end)
        cur = self.current
        # The open minute may have started before ``start`` (the minute holding the epoch).
        if cur is not None and cur.start < end and cur.start + MINUTE_MS > start and cur.start <= now_ms:
            out.append(cur)
        return out

    def _closed_between(self, start: int, end: int) -> list[Candle]:
        closed = self.closed
        if not closed or closed[-1].start + MINUTE_MS <= start or closed[0].start >= end:
            return []
        first = closed[0].start
        lo = max(0, (start - first) // MINUTE_MS)
        hi = min(len(closed), (end - first + MINUTE_MS - 1) // MINUTE_MS)
        return [closed[i] for i in range(lo, hi)]

    def candle(self, interval: str, start: int, now_ms: int) -> Candle | None:
        """The candle of ``interval`` starting at ``start``, as of ``now_ms`` (None if in the future)."""
        if start > now_ms:
            return None
        return self.span(start, min(interval_end(interval, start), now_ms + 1), now_ms)

    def span(self, start: int, end: int, now_ms: int) -> Candle:
        """Open, high, low, close and volume over ``[start, end)``."""
        result: Candle | None = None
        if start < self.epoch_ms:
            result = self.past.candle(start, min(end, self.epoch_ms))
        if end > self.epoch_ms:
            for m in self._minutes(max(start, self.epoch_ms), end, now_ms):
                if result is None:
                    result = Candle(start, m.open, m.high, m.low, m.close, m.volume, m.turnover)
                else:
                    result.merge(m)
        if result is None:  # no trade yet in this span: flat at the last known price
            last = self.last_tick_before(start)
            result = Candle(start, last, last, last, last)
        result.start = start
        return result

    def last_tick_before(self, t_ms: int) -> int:
        cur = self.current
        if cur is not None and cur.start < t_ms:
            return cur.close
        for c in reversed(self.closed):
            if c.start < t_ms:
                return c.close
        return self.past.tick_at(min(t_ms, self.epoch_ms))

    def klines(self, interval: str, start: int | None, end: int | None, limit: int, now_ms: int) -> list[Candle]:
        """Bybit's ``/v5/market/kline`` selection: newest first, at most ``limit``.

        With ``start`` and no ``end``, the ``limit`` candles from the one holding ``start``
        on (what ccxt's ``fetch_ohlcv(since, limit)`` asks for); otherwise the newest ``limit``
        up to ``end`` (or now), none starting before ``start``.
        """
        if start is not None and end is None:
            t = interval_start(interval, start)
            forward: list[Candle] = []
            while len(forward) < limit and (candle := self.candle(interval, t, now_ms)) is not None:
                forward.append(candle)
                t = interval_end(interval, t)
            return forward[::-1]
        end = now_ms if end is None else min(end, now_ms)
        out: list[Candle] = []
        t = interval_start(interval, end)
        while len(out) < limit:
            if start is not None and t < start:
                break
            candle = self.candle(interval, t, now_ms)
            if candle is not None:
                out.append(candle)
            if t <= 0:
                break
            t = interval_start(interval, t - 1)
        return out
