"""What every market model (synthetic or replayed) shares: the last price, its tick
direction, the mark price, and how a price jump moves the book."""

from __future__ import annotations

from decimal import Decimal

from .book import Book
from .fixed import Fixed


class PricedMarket:
    book: Book
    prices: Fixed
    last_tick: int
    last_direction: str

    def _direction(self, tick: int) -> str:
        """Bybit's tick direction of a trade at ``tick`` after the last one."""
        last = self.last_tick
        if tick > last:
            return "PlusTick"
        if tick < last:
            return "MinusTick"
        return "ZeroPlusTick" if self.last_direction in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"

    def _jump(self, price: Decimal) -> int:
        """Move the book so its best ask is ``price``, which becomes the last price; return the shift in ticks."""
        target = max(2, self.prices.to_count(price))
        best_ask = self.book.asks.best_tick()
        delta = target - (best_ask if best_ask is not None else self.last_tick)
        self.book.asks.shift(delta)
        self.book.bids.shift(delta)
        while self.book.bids.keys and self.book.bids.keys[-1] >= 0:  # keys are -tick: drop ticks <= 0
            self.book.bids.set(self.book.bids.worst_tick() or 0, 0)
        self.last_direction = self._direction(target)
        self.last_tick = target
        return delta

    def mark_tick(self) -> int:
        """The mark price used for accounting: the last trade price."""
        return self.last_tick

    def mark_price(self) -> Decimal:
        return self.prices.decimal(self.last_tick)
