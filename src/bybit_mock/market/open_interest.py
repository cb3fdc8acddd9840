"""Open interest that follows the trade flow, and its history (``/v5/market/open-interest``).

A contract's open interest is kept in lots, one side's worth (Bybit's ``singleOpenInterest``;
its ``openInterest`` counts both sides, twice that). It starts at about 2 000 typical orders'
worth and changes only at the model's trades, so it is a deterministic function of the
model's seed and its trade events, like the rest of the model: the engine and every WS
worker, advancing their own copies, hold the same figure at the same instant whatever their
advance steps. At each trade of ``n`` lots both parties either open (open interest ``+ n``)
or close (``- n``), drawn from the open interest's own seeded stream (the trade flow's draws
stay as they were) with a pull back toward the starting level, so it wanders but stays
plausible; it never falls below a quarter of the start.

History: the value at every 5-minute boundary since the model's epoch is recorded as trades
cross it (a boundary no trade crossed yet has the current value); the longer intervals read
the same boundaries. Before the epoch the history is a seeded smooth walk (a few slow waves,
a pure function of the seed and the time) that arrives at the starting value.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..bybit import params
from ..bybit.errors import params_error

if TYPE_CHECKING:
    from .model import MarketModel

STEP_MS = 5 * 60_000
#: ``intervalTime`` -> milliseconds (Bybit's values)
INTERVALS = {
    "5min": STEP_MS,
    "15min": 3 * STEP_MS,
    "30min": 6 * STEP_MS,
    "1h": 12 * STEP_MS,
    "4h": 48 * STEP_MS,
    "1d": 288 * STEP_MS,
}
#: the past's waves: (period ms, relative amplitude)
_WAVES = ((6 * 3_600_000, 0.03), (41 * 3_600_000, 0.06), (9 * 86_400_000, 0.10))
_EIGHT = Decimal("0.00000001")


class OpenInterest:
    def __init__(self, seed: int, start_lots: int, epoch_ms: int) -> None:
        self.rng = random.Random(seed ^ 0x0F1A7E5E)
        self.start = max(4, start_lots)
        self.lots = self.start
        self.floor = self.start // 4
        self.epoch_ms = epoch_ms
        self.phases = [self.rng.uniform(0.0, 2 * math.pi) for _ in _WAVES]
        #: the first 5-minute boundary at or after the epoch; ``recorded[i]`` is the value at
        #: ``first + i x STEP_MS``
        self.first = -(-epoch_ms // STEP_MS) * STEP_MS
        self.recorded: list[int] = []

    def on_trade(self, t_ms: int, lots: int) -> None:
        """A trade of ``lots`` at ``t_ms``: the boundaries it passed keep the value before it."""
        due = (t_ms - self.first) // STEP_MS + 1 - len(self.recorded)
        if due > 0:
            self.recorded.extend([self.lots] * due)
        # the further above the start, the likelier a trade closes positions (and vice versa)
        pull = (self.lots - self.start) / self.start
        opening = min(0.8, max(0.2, 0.5 - 0.5 * pull))
        if self.rng.random() < opening:
            self.lots += lots
        else:
            self.lots = max(self.floor, self.lots - lots)

    def at(self, boundary_ms: int) -> int:
        """The open interest (lots, one side) at a 5-minute boundary up to now."""
        if boundary_ms < self.first:
            return self._past(boundary_ms)
        index = (boundary_ms - self.first) // STEP_MS
        return self.recorded[index] if index < len(self.recorded) else self.lots

    def _past(self, t_ms: int) -> int:
        turn = 2 * math.pi
        wave = sum(
            amp * (math.sin(turn * t_ms / period + phase) - math.sin(turn * self.epoch_ms / period + phase))
            for (period, amp), phase in zip(_WAVES, self.phases, strict=True)
        )
        return max(self.floor, round(self.start * math.exp(wave)))


def values(model: MarketModel, lots: int, mark: Decimal) -> dict[str, str]:
    """The tickers' open-interest fields for ``lots`` (one side) at ``mark``: contracts for
    both sides and one, and their value (linear: in the quote coin; inverse: in the coin)."""
    single = model.sizes.decimal(lots)
    value = single / mark if model.category == "inverse" and mark else single * mark
    fmt = model.sizes.fmt
    return {
        "openInterest": fmt(2 * lots),
        "openInterestValue": str((2 * value).quantize(Decimal("0.01"))),
        "singleOpenInterest": fmt(lots),
        "singleOpenInterestValue": str(value.quantize(Decimal("0.01"))),
    }


def history(models: Mapping[str, MarketModel], category: str, query: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """``GET /v5/market/open-interest``: newest first, a page of ``limit`` (1..200, default 50)."""
    if category not in ("linear", "inverse"):
        raise params_error("params error: category only support linear or inverse")
    symbol = params.required(query, "symbol")
    model = models.get(symbol)
    if model is None:
        raise params_error("params error: symbol invalid")
    interval = params.required(query, "intervalTime")
    step = INTERVALS.get(interval)
    if step is None:
        raise params_error("params error: intervalTime invalid")
    limit = params.limit(query, 50, 200)
    start, end = params.integer(query, "startTime"), params.integer(query, "endTime")
    newest = now_ms if end is None else min(end, now_ms)
    cursor = params.text(query, "cursor")
    if cursor is not None:  # the last item of the previous page: continue before it
        newest = min(newest, _cursor_time(cursor) - 1)
    oldest = start if start is not None else 0
    t = newest - newest % step
    items: list[dict[str, str]] = []
    fmt = model.sizes.fmt
    while t >= oldest and len(items) < limit:
        lots = model.open_interest.at(t)
        both = model.sizes.decimal(2 * lots).quantize(_EIGHT)
        items.append({"openInterest": str(both), "singleOpenInterest": fmt(lots), "timestamp": str(t)})
        t -= step
    more = len(items) == limit and t >= oldest
    next_cursor = f"lastid%3D{t // step + 1}%26lasttime%3D{(t + step) // 1000}" if more else ""
    return {"symbol": model.symbol, "category": category, "list": items, "nextPageCursor": next_cursor}


def _cursor_time(cursor: str) -> int:
    """The ``lasttime`` (seconds) a cursor names, in ms (Bybit's ``lastid=..&lasttime=..``, URL-encoded)."""
    text = cursor.replace("%3D", "=").replace("%26", "&").replace("%3d", "=")
    for part in text.split("&"):
        key, _, value = part.partition("=")
        if key == "lasttime" and value.isdigit():
            return int(value) * 1000
    raise params_error("params error: cursor invalid")
