"""The seeded synthetic market of one symbol: a book, trades and candles that evolve in time.

The model is a deterministic function of (instrument, settings, seed, epoch): every process
that advances it to the same instant holds the same book, the same trades and the same
candles. That is how the WS workers publish locally with no per-message IPC while the engine,
advancing its own copy, matches orders against exactly the market the streams show.

What happens at each scheduled event (see :mod:`.schedule` for the timing):

* **trade** (``trade_rate``): a taker of random side and log-normal size takes liquidity
  from the opposite best levels (several fills if it sweeps a level). Taken-out levels are
  replaced at the far end, so each side keeps ``levels`` levels. Prices follow from the order
  flow: a random walk of ticks, as on a real book, that leans toward the index price (the
  taker buys more often when the last price is below the index, :func:`.prices.buy_probability`),
  so the last price follows the index. The index, mark and premium index move at each trade
  event (:mod:`.prices`).
* **book tick** (one stream per configured depth): one change inside that depth's window,
  so every message of that depth has something to say: a new best level inside a wide
  spread (and the farthest level dropped), a level removed (and one added at the far end),
  or a size changed. Changes near the top are likelier, as on a real book.

A jump (``set_price``) shifts the whole book so the best ask sits at the new price and the
last trade price, the index and the mark are the new price.
"""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal
from typing import Any

from ..instruments import InstrumentConfig
from .book import Book, BookSide
from .candles import CandleStore, PastPrices
from .config import SymbolMarketConfig
from .model import Event, PricedMarket, Trade, symbol_seed
from .prices import PriceTrack, buy_probability
from .schedule import Schedule

#: ``Trade`` and ``Event`` live in :mod:`.model` now; older imports of them from here keep working.
__all__ = ["RECENT_TRADES", "U_BASE", "Event", "SyntheticMarket", "Trade", "symbol_seed"]

#: ``u`` of order-book messages starts here, so no message ever carries Bybit's ``u == 1``
#: ("service restarted, overwrite your book") by accident.
U_BASE = 1_000_000
RECENT_TRADES = 1_000


class SyntheticMarket(PricedMarket):
    #: nothing is sent verbatim from a recording: the publisher makes every message
    recorded_topics: frozenset[str] = frozenset()

    def __init__(self, inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int, epoch_ns: int) -> None:
        self._identify(inst, cfg, market_seed)
        self.rng = random.Random(self.seed)
        self.levels = max(1, cfg.levels)
        self.depths = sorted(d for d, r in cfg.book_rates.items() if r > 0)
        self.schedule = Schedule(epoch_ns, [cfg.trade_rate] + [cfg.book_rates[d] for d in self.depths])
        self.epoch_ns = epoch_ns
        self.now_ns = epoch_ns
        #: a frozen market keeps its book and prices; its streams are silent until thawed
        self.frozen = False

        start_tick = max(2, self.prices.to_count(inst.price))
        price = float(inst.price)
        lot = float(inst.qty_step)
        self.min_lots = max(1, self.sizes.to_count(inst.min_qty))
        # an inverse contract's quantity is in the quote coin (USD) already: no division by the price
        base_qty = cfg.order_notional if inst.category == "inverse" else cfg.order_notional / price
        self.trade_lots_typical = max(1.0, base_qty / lot / 4)
        self.level_lots_typical = max(1.0, base_qty / lot)
        self.book = Book()
        self.version = self.rng.randrange(10**9, 4 * 10**9)  # Bybit's ``seq``: the book's version
        self.last_tick = start_tick
        self.last_direction = "ZeroPlusTick"
        self.trades: deque[Trade] = deque(maxlen=RECENT_TRADES)
        self._trade_no = 0
        self.open_interest = self._open_interest(self.level_lots_typical, epoch_ns)
        self._build_book(start_tick)
        lots_per_minute = max(1.0, cfg.trade_rate) * 60 * self.trade_lots_typical
        self.candles = CandleStore(PastPrices(self.seed, start_tick, epoch_ns // 1_000_000, lots_per_minute))
        epoch_ms = epoch_ns // 1_000_000
        self.track: PriceTrack
        if inst.dated:
            # a dated future's index is its underlying's: the walk of the perpetual on the same
            # pair (BTCUSDT for BTCUSDT-25DEC26), seeded as that model is, so the two indexes
            # agree and the future's basis is to the index its perpetual shows
            seed = symbol_seed(market_seed, inst.category, inst.base_coin + inst.quote_coin)
            self.track = PriceTrack(
                self.prices, PastPrices(seed, start_tick, epoch_ms, lots_per_minute), seed, epoch_ms
            )
        else:
            self.track = PriceTrack(self.prices, self.candles.past, self.seed, epoch_ms)

    # -- shape ----------------------------------------------------------------------------

    def _level_lots(self) -> int:
        return max(self.min_lots, int(self.level_lots_typical * self.rng.lognormvariate(0.0, 0.8)))

    def _trade_lots(self) -> int:
        return max(self.min_lots, int(self.trade_lots_typical * self.rng.lognormvariate(0.0, 1.0)))

    def _gap(self, index: int) -> int:
        """Ticks between neighbouring levels: tight near the top, sparser deeper down."""
        if index < 50:
            return 1
        return 1 + int(self.rng.expovariate(1.0))

    def _build_book(self, start_tick: int) -> None:
        for side, first, step in ((self.book.asks, start_tick, 1), (self.book.bids, start_tick - 1, -1)):
            tick = first
            for i in range(self.levels):
                if tick <= 0:
                    break
                side.set(tick, self._level_lots())
                tick += step * self._gap(i)

    def _refill_far(self, side: BookSide) -> None:
        if len(side) >= self.levels:
            return
        worst = side.worst_tick()
        if worst is None:
            return
        tick = worst + side.sign * self._gap(len(side))
        if tick > 0:
            side.set(tick, self._level_lots())

    # -- time -----------------------------------------------------------------------------

    def _advance_events(self, now_ns: int, out: list[Event] | None = None) -> None:
        """Apply every event due by ``now_ns``; append what happened to ``out`` if given."""
        if self.frozen:
            self.schedule.skip_to(now_ns)
            self.now_ns = max(self.now_ns, now_ns)
            return
        pop = self.schedule.pop_due
        depths = self.depths
        while (due := pop(now_ns)) is not None:
            t_ns, stream, k = due
            if stream == 0:
                trades = self._trade(t_ns // 1_000_000)
                if out is not None and trades:
                    out.append(("trade", t_ns, trades))
            else:
                depth = depths[stream - 1]
                self._book_tick(depth)
                if out is not None:
                    out.append(("book", t_ns, depth, U_BASE + k, self.version))
        self.now_ns = max(self.now_ns, now_ns)

    def book_u(self, depth: int) -> int:
        """``u`` of the last message of ``orderbook.{depth}`` (or of the deepest stream)."""
        if depth in self.depths:
            return U_BASE + self.schedule.count(self.depths.index(depth) + 1) - 1
        return U_BASE + (self.schedule.count(len(self.depths)) - 1 if self.depths else 0)

    # -- events ---------------------------------------------------------------------------

    def _next_trade_id(self) -> str:
        self._trade_no += 1
        if self.category == "spot":
            return str(2_290_000_000_000_000_000 + self.seed % 10**12 * 1000 + self._trade_no)
        x = self.rng.getrandbits(128)
        h = f"{x:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _trade(self, t_ms: int) -> list[Trade]:
        rng = self.rng
        track = self.track
        track.step_index(t_ms, self.last_tick)
        side = "Buy" if rng.random() < buy_probability(track.index_tick(), self.last_tick) else "Sell"
        book_side = self.book.asks if side == "Buy" else self.book.bids
        want = self._trade_lots()
        fills: list[Trade] = []
        while want > 0 and book_side.keys and len(fills) < 4:
            tick = book_side.tick_at(0)
            have = book_side.size_at_tick(tick)
            take = min(have, want)
            book_side.set(tick, have - take)
            if take == have:
                self._refill_far(book_side)
            want -= take
            self.version += 1
            direction = self._direction(tick)
            trade = Trade(t_ms, side, tick, take, self._next_trade_id(), direction, self.version)
            self.last_tick, self.last_direction = tick, direction
            fills.append(trade)
            self.trades.append(trade)
            self.candles.add_trade(t_ms, tick, take)
            self.open_interest.on_trade(t_ms, take)
        track.settle(t_ms, self.book, self.last_tick)
        return fills

    def _book_tick(self, depth: int) -> None:
        rng = self.rng
        book = self.book
        side = book.bids if rng.random() < 0.5 else book.asks
        if not side.keys:
            return
        best_bid, best_ask = book.bids.best_tick(), book.asks.best_tick()
        spread = best_ask - best_bid if best_bid is not None and best_ask is not None else 0
        roll = rng.random()
        self.version += 1
        if spread > 1 and roll < 0.35:
            # Someone improves the price: a new best level inside the spread.
            best = side.tick_at(0)
            side.set(best - side.sign, self._level_lots())
            if len(side) > self.levels:
                worst = side.worst_tick()
                assert worst is not None
                side.set(worst, 0)
            return
        window = min(depth, len(side))
        index = 0 if window == 1 else min(window - 1, int(rng.expovariate(4.0 / window)))
        tick = side.tick_at(index)
        if roll < 0.5 and window > 1:
            # A level is cancelled and liquidity reappears elsewhere in the window, so the
            # book's density near the top stays what it was.
            side.set(tick, 0)
            lo, hi = side.tick_at(0), side.tick_at(min(window, len(side)) - 1)
            empty = lo + side.sign * rng.randrange(0, abs(hi - lo) + 1)
            if side.size_at_tick(empty) == 0 and empty != tick and empty > 0:
                side.set(empty, self._level_lots())
            else:
                self._refill_far(side)
            return
        old = side.size_at_tick(tick)
        new = self._level_lots()
        side.set(tick, new if new != old else new + 1)

    def ticker_snapshot(self) -> dict[str, Any] | None:
        """None: tickers are computed from the model (:mod:`.ticker`), there is no recorded one."""
        return None

    # -- control --------------------------------------------------------------------------

    def set_price(self, price: Decimal) -> None:
        """Jump: the book moves so its best ask is ``price``; the last trade, index and mark
        prices become ``price`` (the premium resets)."""
        self._jump(price)
        self._jump_track(self.now_ns // 1_000_000)
        self.version += 1
