"""What every market model (synthetic or replayed) shares.

* :class:`MarketModel`: the interface the rest of the package uses (the engine, the REST
  queries, the tickers, the WS publisher), whatever the model's source. mypy checks that
  :class:`~.synthetic.SyntheticMarket` and :class:`~.replay.ReplayMarket` satisfy it.
* :class:`Trade` and :data:`Event`: what a model records and reports as time advances.
* :class:`PricedMarket`: the code both models share: the last price, its tick direction,
  the mark price, and how a price jump moves the book.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .book import Book
from .candles import CandleStore
from .fixed import Fixed

if TYPE_CHECKING:
    from ..instruments import InstrumentConfig
    from .config import SymbolMarketConfig


#: Bybit's funding rate with no premium: the interest rate part, 0.01 % per 8 h
BASE_FUNDING_RATE = Decimal("0.0001")


class Trade(NamedTuple):
    t_ms: int
    side: str  # taker side
    tick: int
    lots: int
    trade_id: str
    direction: str  # PlusTick, ZeroPlusTick, MinusTick, ZeroMinusTick
    seq: int


#: What ``advance`` reports: ("trade", t_ns, [Trade, ...]) | ("book", t_ns, depth, u, seq) from the
#: synthetic model, ("raw", t_ns, topic, message) from a replay.
Event = tuple[Any, ...]


class Timeline(Protocol):
    """When a model's next message is due (``Schedule`` or ``ReplayTimeline``)."""

    def next_time(self) -> int | None: ...

    def skip_to(self, now_ns: int) -> None: ...


class MarketModel(Protocol):
    """One symbol's market as its users see it.

    Members that callers only read are read-only properties, so a model may declare a narrower
    type (both models' ``category`` is a ``Category`` literal) or a plain attribute.
    """

    #: a frozen model holds its book and prices; :meth:`~.markets.Markets.freeze` sets it
    frozen: bool

    @property
    def inst(self) -> InstrumentConfig: ...
    @property
    def category(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def prices(self) -> Fixed: ...
    @property
    def sizes(self) -> Fixed: ...
    @property
    def book(self) -> Book: ...
    @property
    def trades(self) -> Sequence[Trade]: ...  # the recent ones, oldest first
    @property
    def candles(self) -> CandleStore: ...
    @property
    def schedule(self) -> Timeline: ...
    @property
    def version(self) -> int: ...  # the book's version: Bybit's ``seq``
    @property
    def last_tick(self) -> int: ...
    @property
    def last_direction(self) -> str: ...
    @property
    def level_lots_typical(self) -> float: ...  # a typical level's lots (tickers' open interest)
    @property
    def recorded_topics(self) -> frozenset[str]: ...  # sent verbatim from a recording, not made
    def advance(self, now_ns: int, out: list[Event] | None = None) -> None: ...
    def book_u(self, depth: int) -> int: ...  # ``u`` of the last ``orderbook.{depth}`` message
    def mark_tick(self) -> int: ...
    def mark_price(self) -> Decimal: ...
    def index_price(self) -> Decimal: ...
    def funding_rate(self) -> Decimal: ...  # the rate that settles at the next funding time, as of now
    def settled_funding_rate(self, boundary_ms: int) -> Decimal | None: ...  # the rate settled then
    def set_price(self, price: Decimal) -> None: ...  # a jump: the best ask moves to ``price``
    def ticker_snapshot(self) -> dict[str, Any] | None: ...  # a recorded ticker, if there is one


def symbol_seed(market_seed: int, category: str, symbol: str) -> int:
    """A stable per-symbol seed (``hash()`` is salted per process, so it cannot be used)."""
    return zlib.crc32(f"{market_seed}/{category}/{symbol}".encode()) ^ (market_seed << 32)


class PricedMarket:
    book: Book
    prices: Fixed
    last_tick: int
    last_direction: str

    def _identify(self, inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int) -> None:
        """What every model knows of its instrument: names, price and size grids, its seed."""
        self.inst = inst
        self.category = inst.category
        self.symbol = inst.symbol
        self.prices = Fixed(inst.tick_size, inst.price_scale)
        self.sizes = Fixed(inst.qty_step)
        self.seed = cfg.seed if cfg.seed is not None else symbol_seed(market_seed, inst.category, inst.symbol)

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

    def index_price(self) -> Decimal:
        """The index price (for now the mark: the price model makes the three distinct)."""
        return self.mark_price()

    def funding_rate(self) -> Decimal:
        """The funding rate that settles at the next funding time, as of now (for now Bybit's
        base rate, 0.01 %: the price model derives it from the premium)."""
        return BASE_FUNDING_RATE

    def settled_funding_rate(self, boundary_ms: int) -> Decimal | None:
        """The rate that settled at the funding time ``boundary_ms`` (a multiple of the
        instrument's ``funding_interval_s``), or None if the model has not reached it (for
        now Bybit's base rate: the price model records the rates it settles)."""
        return BASE_FUNDING_RATE
