"""What every market model (synthetic or replayed) shares.

* :class:`MarketModel`: the interface the rest of the package uses (the engine, the REST
  queries, the tickers, the WS publisher), whatever the model's source. mypy checks that
  :class:`~.synthetic.SyntheticMarket` and :class:`~.replay.ReplayMarket` satisfy it.
* :class:`Trade` and :data:`Event`: what a model records and reports as time advances.
* :class:`PricedMarket`: the code the models share: the last price, its tick direction,
  the index and mark price (a :class:`~.prices.PriceTrack` where the model has one, the last
  price where it has not: a canned market), and how a price jump moves the book.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .book import Book
from .candles import CandleStore, ConstantPast
from .fixed import Fixed
from .funding import BASE_FUNDING_RATE, FundingTrack
from .open_interest import OpenInterest
from .prices import PREMIUM_FIXED, PriceTrack

if TYPE_CHECKING:
    from ..instruments import InstrumentConfig
    from .config import SymbolMarketConfig

__all__ = ["BASE_FUNDING_RATE", "Event", "MarketModel", "PricedMarket", "Timeline", "Trade", "symbol_seed"]


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
    def inst(self) -> InstrumentConfig: ...  # the instrument it trades (its funding interval ...)
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
    def level_lots_typical(self) -> float: ...  # a typical level's lots
    @property
    def open_interest(self) -> OpenInterest: ...  # moves at the model's trades (``open_interest.py``)
    @property
    def recorded_topics(self) -> frozenset[str]: ...  # sent verbatim from a recording, not made
    def advance(self, now_ns: int, out: list[Event] | None = None) -> None: ...
    def book_u(self, depth: int) -> int: ...  # ``u`` of the last ``orderbook.{depth}`` message
    def mark_tick(self) -> int: ...  # the mark on the tick grid (nearest tick)
    def mark_price(self) -> Decimal: ...  # index + smoothed premium; changes only at events
    def index_price(self) -> Decimal: ...  # changes only at events
    def last_price(self) -> Decimal: ...
    def premium_index(self) -> Decimal: ...  # Bybit's premium index as of the last event
    def price_state(self) -> tuple[int, int, int]: ...  # changes whenever last, index or mark does
    def price_candles(self, kind: str) -> tuple[CandleStore, Fixed]: ...  # "index" | "mark" | "premium"
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
    candles: CandleStore
    last_tick: int
    last_direction: str
    epoch_ns: int
    #: a perpetual's premium samples and settled rates (None: spot); made on first use
    _funding_track: FundingTrack | None
    open_interest: OpenInterest
    #: the index and mark (None: both are the last price, as on a canned market)
    track: PriceTrack | None = None

    def _identify(self, inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int) -> None:
        """What every model knows of its instrument: names, price and size grids, its seed."""
        self.inst = inst
        self.category = inst.category
        self.symbol = inst.symbol
        self.prices = Fixed(inst.tick_size, inst.price_scale)
        self.sizes = Fixed(inst.qty_step)
        self.seed = cfg.seed if cfg.seed is not None else symbol_seed(market_seed, inst.category, inst.symbol)

    def _open_interest(self, level_lots_typical: float, epoch_ns: int) -> OpenInterest:
        """The model's open interest: about 2 000 typical orders' worth at the start."""
        return OpenInterest(self.seed, int(level_lots_typical * 2_000), epoch_ns // 1_000_000)

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

    def _jump_track(self, t_ms: int) -> None:
        """After a jump: the index and mark move to the new last price, the premium resets."""
        if self.track is not None:
            self.track.jump(t_ms, self.last_tick)

    def mark_tick(self) -> int:
        """The mark price on the tick grid (the nearest tick)."""
        track = self.track
        return self.last_tick if track is None else round(track.mark / track.ratio)

    def mark_price(self) -> Decimal:
        """What PnL and margin use: the index plus a smoothed premium (see :mod:`.prices`)."""
        track = self.track
        return self.prices.decimal(self.last_tick) if track is None else track.mark_price()

    def index_price(self) -> Decimal:
        track = self.track
        return self.prices.decimal(self.last_tick) if track is None else track.index_price()

    def last_price(self) -> Decimal:
        return self.prices.decimal(self.last_tick)

    def premium_index(self) -> Decimal:
        """Bybit's premium index as of the last trade event (0 without a track)."""
        track = self.track
        return PREMIUM_FIXED.decimal(0) if track is None else track.premium_index_value()

    def price_state(self) -> tuple[int, int, int]:
        """``(last tick, index, mark)``: a cheap key that changes whenever one of them does."""
        track = self.track
        if track is None:
            return self.last_tick, self.last_tick, self.last_tick
        return self.last_tick, track.index, track.mark

    def price_candles(self, kind: str) -> tuple[CandleStore, Fixed]:
        """One-minute candles of the ``index``, ``mark`` or ``premium`` index and their format."""
        if self.track is not None:
            return self.track.candles(kind)
        if kind == "premium":
            return _FLAT_PREMIUM, PREMIUM_FIXED
        return self.candles, self.prices

    # -- funding (``funding.py``) ---------------------------------------------------------

    def _advance_events(self, now_ns: int, out: list[Event] | None) -> None:
        raise NotImplementedError  # each model applies its own events

    def advance(self, now_ns: int, out: list[Event] | None = None) -> None:
        """Apply every event due by ``now_ns`` (``out``: what happened), stopping at each
        premium sample due on the way, so every copy samples the market at the same instants
        whatever its advance steps."""
        track = self.funding_track
        if track is not None:
            while track.due <= now_ns:
                self._advance_events(track.due, out)
                track.sample(self.premium_index())
        self._advance_events(now_ns, out)

    @property
    def funding_track(self) -> FundingTrack | None:
        """The premium samples and settled rates of a perpetual (None for spot), made on first
        use from the model's epoch, so every copy has the same one however late it asks."""
        try:
            return self._funding_track
        except AttributeError:
            inst = self.inst
            track = None
            if inst.perpetual:  # spot, dated futures and options are never funded
                track = FundingTrack(self.seed, inst.funding_interval_s, self.epoch_ns // 1_000_000)
            self._funding_track = track
            return track

    def funding_rate(self) -> Decimal:
        """The funding rate that settles at the next funding time, as of now: Bybit's formula
        on the premium samples of the interval so far (0 for spot)."""
        track = self.funding_track
        return track.predicted(self.premium_index()) if track is not None else Decimal(0)

    def settled_funding_rate(self, boundary_ms: int) -> Decimal | None:
        """The rate that settled at the funding time ``boundary_ms`` (a multiple of the
        instrument's ``funding_interval_s``), or None if the model has not reached it (or it
        is not a funding time, or the model is spot)."""
        track = self.funding_track
        return track.settled_rate(boundary_ms) if track is not None else None


#: the premium-index candles of a model with no track (a canned market): 0 at every time
_FLAT_PREMIUM = CandleStore(ConstantPast(0, 0))
