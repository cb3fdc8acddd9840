"""What every part of the engine is given: the account book, prices and margin, pushes, a clock.

The parts (order entry, TP/SL, position settings, queries, funds) receive these explicitly,
instead of being mixed into one host class that would provide them by convention: what a part
uses is in its constructor, and mypy sees every call it makes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import InstrumentConfig
from .book import AccountBook, Ident
from .margin import Margin
from .pushes import Pushes


class Part:
    def __init__(self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int]) -> None:
        self.book = book
        self.margin = margin
        self.pushes = pushes
        self._clock = clock
        self.instruments: dict[Ident, InstrumentConfig] = margin.instruments
