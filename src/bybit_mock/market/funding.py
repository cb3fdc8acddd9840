"""Funding rates of a perpetual: Bybit's premium-index formula, sampled at fixed times.

Bybit fixes a perpetual's funding rate at every funding time (00:00, 08:00, 16:00 UTC for
an 8 h interval: multiples of the interval since the Unix epoch) from the premium index
``P`` averaged over the interval that ends there::

    F = P + clamp(0.01 % - P, -0.05 %, +0.05 %)      then clamped to +-fundingCap

where ``P`` is the model's premium index (``model.premium_index()``, Bybit's impact-price
formula, the figure ``/v5/market/premium-index-price-kline`` shows; 0 on a canned market, whose
three prices are one, so ``F`` is the base 0.01 % there). The interest part and its clamp are
Bybit's 8 h figures, used as they are for any interval, so a soak test with a 5 s interval
sees the same rates an 8 h market would.

Determinism (the models are replicated, see ``model.py``): ``P`` is sampled at fixed
instants, ``n`` per interval at ``boundary_before + k * interval / n`` (one a minute for 8 h,
at least 60 per interval), and a sample at time ``t`` reads the market after every event due
by ``t``. ``FundingTrack.due`` tells the model's ``advance`` where to stop to take it,
so a copy advanced in 10 ms steps and one advanced in one jump take the same samples.

Before the model's epoch there is nothing to sample: the rates settled then are a seeded
past (:func:`past_rate`), as the candles before the epoch are, so a funding-history query
for last week answers the same on every run.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from decimal import ROUND_HALF_EVEN, Decimal

#: Bybit's interest part of the rate (0.01 % per interval) and the clamp around it
BASE_FUNDING_RATE = Decimal("0.0001")
PREMIUM_CLAMP = Decimal("0.0005")
#: the +- cap of a rate (tickers' ``fundingCap``; 0.5 % for BTCUSDT)
FUNDING_CAP = Decimal("0.005")
#: rates are kept to Bybit's 8 decimals
RATE_STEP = Decimal("0.00000001")
#: samples of the premium per interval: one a minute, at least this many
MIN_SAMPLES = 60
#: settled rates a model keeps (older ones answer None): 2.8 h at a 1 s interval, 9 years at 8 h
KEPT_RATES = 10_000
ZERO = Decimal(0)


def funding_rate_of(premium: Decimal, cap: Decimal = FUNDING_CAP) -> Decimal:
    """Bybit's rate from an average premium index: ``P + clamp(0.01 % - P, +-0.05 %)``, capped."""
    rate = premium + min(max(BASE_FUNDING_RATE - premium, -PREMIUM_CLAMP), PREMIUM_CLAMP)
    return min(max(rate, -cap), cap).quantize(RATE_STEP, ROUND_HALF_EVEN)


def past_rate(seed: int, boundary_ms: int, cap: Decimal = FUNDING_CAP) -> Decimal:
    """A rate settled before the model's epoch: a seeded function of the funding time.

    Like a calm real market: half the time no premium (the base 0.01 %), else an average
    premium of a few basis points either way (to 6 decimals) through Bybit's formula."""
    rng = random.Random(zlib.crc32(f"funding/{seed}/{boundary_ms}".encode()))
    if rng.random() < 0.5:
        return BASE_FUNDING_RATE
    premium = Decimal(str(round(rng.gauss(0.0, 0.0008), 6)))
    return funding_rate_of(premium, cap)


class FundingTrack:
    """One perpetual's premium samples and settled rates (module docstring: how).

    Plain attributes only: it travels inside its model's pickle to every WS worker."""

    def __init__(self, seed: int, interval_s: int, epoch_ms: int, cap: Decimal = FUNDING_CAP) -> None:
        self.seed = seed
        self.interval_ms = max(1, interval_s) * 1000
        self.samples_per_interval = max(MIN_SAMPLES, self.interval_ms // 60_000)
        self.cap = cap
        self.epoch_ms = epoch_ms
        #: the funding time that ends the interval being sampled, and the next sample's number in it (1..n)
        self.boundary_ms = self.next_boundary(epoch_ms)
        self.k = self._first_k(epoch_ms)
        #: when the next sample is due (ns): the model advances to there, then :meth:`sample`
        self.due = self._sample_ms(self.boundary_ms, self.k) * 1_000_000
        #: the premium samples of the current interval: their sum and count
        self.total = ZERO
        self.count = 0
        #: funding time -> the rate settled then (newest last), bounded by ``KEPT_RATES``
        self.settled: dict[int, Decimal] = {}
        self._order: deque[int] = deque()

    def next_boundary(self, t_ms: int) -> int:
        """The first funding time strictly after ``t_ms``."""
        return (t_ms // self.interval_ms + 1) * self.interval_ms

    def _sample_ms(self, boundary_ms: int, k: int) -> int:
        start = boundary_ms - self.interval_ms
        return start + k * self.interval_ms // self.samples_per_interval

    def _first_k(self, epoch_ms: int) -> int:
        """The first sample after the epoch in its interval (earlier ones were before it)."""
        k = 1
        while self._sample_ms(self.boundary_ms, k) <= epoch_ms:
            k += 1
        return k

    def sample(self, premium: Decimal) -> None:
        """Take the sample due at :attr:`due`: the premium index as the market stands then
        (the one ``/v5/market/premium-index-price-kline`` shows); the last sample of an
        interval settles its rate."""
        self.total += premium
        self.count += 1
        if self.k < self.samples_per_interval:
            self.k += 1
        else:
            self._settle(self.boundary_ms, funding_rate_of(self.total / self.count, self.cap))
            self.total, self.count = ZERO, 0
            self.boundary_ms += self.interval_ms
            self.k = 1
        self.due = self._sample_ms(self.boundary_ms, self.k) * 1_000_000

    def _settle(self, boundary_ms: int, rate: Decimal) -> None:
        self.settled[boundary_ms] = rate
        self._order.append(boundary_ms)
        while len(self._order) > KEPT_RATES:
            del self.settled[self._order.popleft()]

    def predicted(self, premium: Decimal) -> Decimal:
        """The rate that would settle at the next funding time from the samples so far (the
        current ``premium`` index if none is taken yet): tickers' ``fundingRate``."""
        average = self.total / self.count if self.count else premium
        return funding_rate_of(average, self.cap)

    def settled_rate(self, boundary_ms: int) -> Decimal | None:
        """The rate settled at ``boundary_ms``: sampled since the epoch, the seeded past before
        it, None if not a funding time, not reached yet or no longer kept."""
        if boundary_ms % self.interval_ms:
            return None
        if boundary_ms <= self.epoch_ms:
            return past_rate(self.seed, boundary_ms, self.cap)
        return self.settled.get(boundary_ms)
