"""Index, mark and premium index of one contract, beside the last price the book makes.

Bybit quotes three prices per contract: the **last** trade price (the book's), the **index**
(the spot exchanges' average, which the contract's price follows because funding pays whoever
pulls it back) and the **mark** (the index plus a smoothed premium, what PnL, margin and
liquidation use). :class:`PriceTrack` holds the index and mark of one model, on the grid Bybit
prints them with (one unit of the instrument's price scale, finer than the tick: BTCUSDT's tick
is 0.10, its index "68599.93"), and one-minute candles of each for the ``*-price-kline``
endpoints.

Every change happens at a scheduled event of the model (a trade of the synthetic book, a replayed
trade or ticker) or at a jump (``set_price``), never in ``advance()`` itself, so every replica of a
model holds the same index and mark at the same instant (see ``market/model.py``).

* **Index** of a synthetic market: ``P0 * exp(W(t) - W(epoch) + B(t) - B(epoch))``, where ``W``
  is the wave :class:`~.candles.PastPrices` draws the last price's history with (so the index
  continues the chart the klines show before the epoch) and ``B`` a small seeded basis wave (a
  few basis points, periods of minutes to hours). At the epoch the three prices are the
  instrument's start price (as after a jump); they part within seconds of trading. The index
  is the walk's value at the start of each second (:data:`INDEX_STEP_MS`), taken up at the
  trade events of that second; the synthetic book's takers lean toward it (see
  :func:`buy_probability`), so the last price follows it. A replay takes the recorded ticker's
  ``indexPrice`` when the recording has one, otherwise an EMA of its trades (one minute).
* **Mark**: ``index + premium``, the premium an EMA (time constant :data:`PREMIUM_TAU_MS`) of
  ``mid - index`` updated at each trade event, as Bybit's "index + moving average of the basis";
  a replayed ``markPrice`` wins where recorded.
* **Premium index** (what funding averages): Bybit's
  ``(max(0, impact bid - index) - max(0, index - impact ask)) / index`` with the best bid and
  ask as impact prices, in millionths, recorded at each trade event.

A jump moves the index and mark to the new price and resets the premium; a synthetic index keeps
walking from there (its wave is scaled so it is continuous at the jump).

Before the epoch the candles come from closed forms (``W`` and ``B`` counted from the epoch):
index ``P0*exp(W+B)``, mark ``P0*exp(W+0.3B)`` (a smoothed share of the last-index gap),
premium index ``exp(-B) - 1``.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

from .book import Book
from .candles import MINUTE_MS, Candle, CandleStore, PastPrices
from .fixed import Fixed

#: the premium EMA's time constant (Bybit averages the basis over 30 minutes; one minute here so
#: a test sees the mark leave the index within seconds)
PREMIUM_TAU_MS = 60_000.0
#: a replay with no recorded index derives it as an EMA of its trades with this time constant
DERIVED_INDEX_TAU_MS = 60_000.0
#: a synthetic index is re-evaluated once per step of time (Bybit publishes its index about once
#: a second); between steps, trade events reuse the step's value, which keeps a trade cheap
INDEX_STEP_MS = 1_000
#: the premium index is kept in millionths (Bybit prints it with 6 decimals)
PREMIUM_SCALE = 1_000_000
PREMIUM_FIXED = Fixed(Decimal("0.000001"))
#: the share of the instantaneous basis the mark carries before the epoch (closed form)
_PAST_MARK_SHARE = 0.3
#: how far (relative) last may stray from the index before takers lean hard toward it
_PULL_SCALE = 0.0002
_MAX_LEAN = 0.4


def buy_probability(index: int, last: int) -> float:
    """The chance a synthetic taker buys: 0.5 at the index, up to 0.9 (0.1) as the last price
    falls below (rises above) it, so the book's random walk mean-reverts to the index."""
    if index <= 0:
        return 0.5
    return 0.5 + _MAX_LEAN * math.tanh((index - last) / index / _PULL_SCALE)


class PathPast(PastPrices):
    """A candle history before the epoch from a closed form ``value_at(t)`` (no volume)."""

    def __init__(self, track: PriceTrack, kind: str, epoch_ms: int) -> None:  # no waves of its own
        self.track = track
        self.kind = kind
        self.epoch_ms = epoch_ms
        self.start_tick = self.tick_at(epoch_ms)
        self.lots_per_minute = 0.0

    def tick_at(self, t_ms: int) -> int:
        return self.track.past_value(self.kind, t_ms)

    def candle(self, start: int, end: int) -> Candle:
        span = max(1, end - start)
        values = [self.tick_at(start + span * i // self._SAMPLES) for i in range(self._SAMPLES)]
        close = self.tick_at(end) if end >= self.epoch_ms else self.tick_at(end - 1)
        values.append(close)
        return Candle(start, values[0], max(values), min(values), close)


class PriceTrack:
    """The index, mark and premium index of one model (see the module docstring).

    ``index`` and ``mark`` are counts of :attr:`fine` (one unit of the price scale); ``premium``
    is the mark's smoothed premium in the same units (a float, updated only at events);
    ``premium_index`` is in millionths.
    """

    def __init__(self, prices: Fixed, past: PastPrices, seed: int, epoch_ms: int, walk: bool = True) -> None:
        self.fine = Fixed(Decimal(1).scaleb(-prices.scale))
        self.ratio = prices.units  # fine units per tick
        self.walk = walk  # a seeded index (synthetic) or one that follows the trades (replay)
        self._past = past
        self._start = float(past.start_tick * self.ratio)
        rng = random.Random(seed * 7_919 + 13)
        # the basis wave: periods ~10 min to ~8 h, a few basis points in all
        self._basis: list[tuple[float, float, float]] = []
        for i in range(4):
            period_ms = 600_000 * 3.2**i
            self._basis.append((0.00015 * rng.uniform(0.5, 1.5), 2 * math.pi / period_ms, rng.uniform(0, 2 * math.pi)))
        self._scale = 1.0  # a jump rescales the walk so it is continuous there
        self._step = -1  # the time step of the last walk evaluation (the index is its value)
        # the basis counts from the epoch, where the three prices start equal (as after a jump)
        self._basis0 = 0.0
        self._basis0 = self._basis_at(epoch_ms)
        self.index = self.past_value("index", epoch_ms)
        self.mark = self.past_value("mark", epoch_ms)
        self.premium = float(self.mark - self.index)
        self.premium_index = self.past_value("premium", epoch_ms)
        self.updated_ms = epoch_ms
        self._recorded_ms = epoch_ms
        #: a replay's recorded prices (unshifted counts), used instead of the derived ones
        self.recorded_index: int | None = None
        self.recorded_mark: int | None = None
        self.index_candles = CandleStore(PathPast(self, "index", epoch_ms))
        self.mark_candles = CandleStore(PathPast(self, "mark", epoch_ms))
        self.premium_candles = CandleStore(PathPast(self, "premium", epoch_ms))

    # -- closed forms ---------------------------------------------------------------------

    def _basis_at(self, t_ms: int) -> float:
        return sum(a * math.sin(w * t_ms + p) for a, w, p in self._basis) - self._basis0

    def _wave_at(self, t_ms: int) -> float:
        past = self._past
        return past._wave(t_ms) - past._base

    def past_value(self, kind: str, t_ms: int) -> int:
        """The closed-form index, mark (fine units) or premium index (millionths) at ``t_ms``."""
        basis = self._basis_at(t_ms)
        if kind == "premium":
            return round((math.exp(-basis) - 1) * PREMIUM_SCALE)
        share = 1.0 if kind == "index" else _PAST_MARK_SHARE
        return max(1, round(self._start * math.exp(self._wave_at(t_ms) + share * basis)))

    def _raw_walk(self, step_ms: int) -> float:
        return self._start * math.exp(self._wave_at(step_ms) + self._basis_at(step_ms))

    def walk_at(self, t_ms: int) -> int:
        """The synthetic index at ``t_ms`` (its time step's value, after any jump's rescaling),
        in fine units."""
        step = t_ms - t_ms % INDEX_STEP_MS
        return max(1, round(self._raw_walk(step) * self._scale))

    # -- events ---------------------------------------------------------------------------

    def index_tick(self) -> int:
        """The index on the tick grid (what the synthetic takers compare the last price with)."""
        return round(self.index / self.ratio)

    def step_index(self, t_ms: int, last_tick: int) -> None:
        """Before a trade event's fills: the index as of ``t_ms``."""
        if self.recorded_index is not None:
            return
        if self.walk:
            step = t_ms // INDEX_STEP_MS
            if step != self._step:  # a pure function of the step: replicas agree however they advance
                self._step = step
                self.index = self.walk_at(t_ms)
        else:  # a replay with no recorded index: an EMA of its trades
            alpha = 1.0 - math.exp(-max(0, t_ms - self.updated_ms) / DERIVED_INDEX_TAU_MS)
            last = last_tick * self.ratio
            self.index = max(1, round(self.index + alpha * (last - self.index)))

    def settle(self, t_ms: int, book: Book, last_tick: int) -> None:
        """After a trade event's fills: the premium, mark and premium index, and the candles."""
        bid, ask = book.bids.best_tick(), book.asks.best_tick()
        ratio, index = self.ratio, self.index
        mid = (bid + ask) * ratio / 2 if bid is not None and ask is not None else float(last_tick * ratio)
        alpha = 1.0 - math.exp(-max(0, t_ms - self.updated_ms) / PREMIUM_TAU_MS)
        self.premium += alpha * (mid - index - self.premium)
        self.updated_ms = max(self.updated_ms, t_ms)
        self.mark = self.recorded_mark if self.recorded_mark is not None else max(1, index + round(self.premium))
        over = max(0, bid * ratio - index) if bid is not None else 0
        under = max(0, index - ask * ratio) if ask is not None else 0
        self.premium_index = round((over - under) * PREMIUM_SCALE / index)
        self._record(t_ms)

    def record_replayed(self, t_ms: int, index: int | None, mark: int | None) -> None:
        """A replayed ticker's ``indexPrice``/``markPrice`` (fine units, offset applied)."""
        if index is not None:
            self.recorded_index = self.index = index
        if mark is not None:
            self.recorded_mark = self.mark = mark
        self.premium = float(self.mark - self.index)
        self._record(t_ms)

    def jump(self, t_ms: int, tick: int) -> None:
        """``set_price``: index and mark move to the price, the premium resets to 0."""
        price = tick * self.ratio
        if self.walk:
            self._scale = price / self._raw_walk(t_ms - t_ms % INDEX_STEP_MS)
            self._step = t_ms // INDEX_STEP_MS
        self.index = self.mark = price
        if self.recorded_index is not None:
            self.recorded_index = price
        if self.recorded_mark is not None:
            self.recorded_mark = price
        self.premium = 0.0
        self.premium_index = 0
        self.updated_ms = max(self.updated_ms, t_ms)
        self._record(t_ms)

    def _record(self, t_ms: int) -> None:
        # candles need time to go forward (replayed times may step back a few ms)
        t = self._recorded_ms = max(t_ms, self._recorded_ms)
        _note(self.index_candles, t, self.index)
        _note(self.mark_candles, t, self.mark)
        _note(self.premium_candles, t, self.premium_index)

    # -- reading --------------------------------------------------------------------------

    def index_price(self) -> Decimal:
        return self.fine.decimal(self.index)

    def mark_price(self) -> Decimal:
        return self.fine.decimal(self.mark)

    def premium_index_value(self) -> Decimal:
        return PREMIUM_FIXED.decimal(self.premium_index)

    def candles(self, kind: str) -> tuple[CandleStore, Fixed]:
        """The one-minute store of ``index``, ``mark`` or ``premium`` and how its values print."""
        if kind == "index":
            return self.index_candles, self.fine
        if kind == "mark":
            return self.mark_candles, self.fine
        return self.premium_candles, PREMIUM_FIXED


def _note(store: CandleStore, t_ms: int, value: int) -> None:
    """``store.add_trade(t_ms, value, 0)``, short-cut within the open minute (every trade event
    notes three values)."""
    cur = store.current
    if cur is not None and t_ms - cur.start < MINUTE_MS:
        if value > cur.high:
            cur.high = value
        elif value < cur.low:
            cur.low = value
        cur.close = value
    else:
        store.add_trade(t_ms, value, 0)
