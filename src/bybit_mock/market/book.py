"""An order book of integer price ticks and integer size lots.

Prices are ``ticks`` (price / tick size) and sizes ``lots`` (size / qty step), so the hot path
never touches Decimal and formatting is exact. Each side keeps its levels as an ascending list
of *keys* ordered best first (asks: ``tick``; bids: ``-tick``), so one bisect-based class
serves both sides; with ~1000 levels a list insert is a short memmove, cheaper in Python than
any tree.
"""

from __future__ import annotations

from bisect import bisect_left, insort


class BookSide:
    __slots__ = ("keys", "sign", "sizes")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # +1 asks, -1 bids
        self.keys: list[int] = []  # best first
        self.sizes: dict[int, int] = {}  # key -> lots

    def __len__(self) -> int:
        return len(self.keys)

    def best_tick(self) -> int | None:
        return self.keys[0] * self.sign if self.keys else None

    def worst_tick(self) -> int | None:
        return self.keys[-1] * self.sign if self.keys else None

    def tick_at(self, index: int) -> int:
        return self.keys[index] * self.sign

    def size_at_tick(self, tick: int) -> int:
        return self.sizes.get(tick * self.sign, 0)

    def set(self, tick: int, lots: int) -> None:
        """Insert, update or (``lots == 0``) delete a level."""
        key = tick * self.sign
        if lots <= 0:
            if self.sizes.pop(key, None) is not None:
                del self.keys[bisect_left(self.keys, key)]
            return
        if key not in self.sizes:
            insort(self.keys, key)
        self.sizes[key] = lots

    def top(self, depth: int) -> list[tuple[int, int]]:
        """``(tick, lots)`` of the best ``depth`` levels, best first."""
        sign, sizes = self.sign, self.sizes
        return [(k * sign, sizes[k]) for k in self.keys[:depth]]

    def top_dict(self, depth: int) -> dict[int, int]:
        sizes = self.sizes
        return {k: sizes[k] for k in self.keys[:depth]}

    def shift(self, ticks: int) -> None:
        """Move every level by ``ticks`` (a price jump keeps the book's shape)."""
        delta = ticks * self.sign
        self.keys = [k + delta for k in self.keys]
        self.sizes = {k + delta: v for k, v in self.sizes.items()}

    def clear(self) -> None:
        self.keys.clear()
        self.sizes.clear()


class Book:
    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(-1)
        self.asks = BookSide(1)

    def side(self, name: str) -> BookSide:
        """``"b"`` or ``"a"``."""
        return self.bids if name == "b" else self.asks

    def mid_ticks2(self) -> int | None:
        """Twice the mid price in ticks (an integer, so no rounding choice is needed here)."""
        bid, ask = self.bids.best_tick(), self.asks.best_tick()
        if bid is None or ask is None:
            return None
        return bid + ask
