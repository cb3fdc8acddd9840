"""Market-data settings: which symbols stream, from which source, at which rates.

Plain dataclasses only (they are pickled into every worker). Validation and the TOML form
live in :mod:`bybit_mock.config`, beside the rest of the configuration.

Rates are messages per second per stream and per symbol; ``0`` switches a stream off. The
defaults follow Bybit's own push intervals (order book depth 1 every 10 ms, 50 every 20 ms,
200 every 100 ms, 1000 every 200 ms; tickers every 100 ms, 50 ms on spot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..instruments import BOOK_DEPTHS, InstrumentConfig

if TYPE_CHECKING:
    from .canned_items import MarketItem

Source = Literal["synthetic", "replay", "canned"]

#: Every futures and spot order-book depth at its Bybit-like default rate (messages/s).
DEFAULT_BOOK_RATES: dict[int, float] = dict(zip(BOOK_DEPTHS["linear"], (100.0, 50.0, 10.0, 5.0), strict=True))

#: A dated future's defaults when the config names it in no ``[[market.symbols]]``: a fifth of
#: a perpetual's trades and book messages (its tickers and klines stay at the defaults).
DATED_TRADE_RATE = 4.0
DATED_BOOK_RATES: dict[int, float] = dict(zip(BOOK_DEPTHS["linear"], (20.0, 10.0, 2.0, 1.0), strict=True))


@dataclass
class SymbolMarketConfig:
    """One symbol's market: its source, rates and shape."""

    symbol: str
    category: str = "linear"
    source: Source = "synthetic"
    #: ``publicTrade`` messages/s (a message is one taker order, possibly several fills).
    trade_rate: float = 20.0
    #: ``orderbook.{depth}`` messages/s per depth; a depth missing from the mapping is off.
    book_rates: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_BOOK_RATES))
    #: ``tickers`` messages/s; ``None`` means Bybit's own (10/s, 20/s on spot).
    ticker_rate: float | None = None
    #: ``kline.{interval}`` messages/s, for every interval someone subscribes to.
    kline_rate: float = 1.0
    #: Price levels per side of the synthetic book (at least 1000, so depth 1000 is full).
    levels: int = 1000
    #: Typical taker order notional in quote coin; sets trade and level sizes.
    order_notional: float = 20_000.0
    #: Per-symbol seed; ``None`` derives one from the market seed and the symbol.
    seed: int | None = None
    #: replay: a JSONL file of Bybit messages, one per line, exactly as Bybit sent them.
    replay_file: str | None = None
    #: replay: ``None`` replays at the recorded timestamps times ``speed``; a number replays at
    #: that many messages/s whatever the recording's timing.
    replay_rate: float | None = None
    speed: float = 1.0
    #: replay: start again at the end of the file (``False``: the stream stops there).
    loop: bool = True
    #: canned: the items (``Candle``, ``Tick``, ``BookSnapshot``) streamed in order (``canned.py``)
    canned: list[MarketItem] = field(default_factory=list)
    #: canned: items per second, from the first subscriber on ...
    pace: float = 10.0
    #: ... or none until the test releases them (``MockExchangeState.step_market``)
    step: bool = False

    def items_from(self, raw: list[Any]) -> list[MarketItem]:
        """Canned items from their dict forms (a TOML ``items`` array); symbol and category
        default to this symbol's. ``ValueError`` names a bad one."""
        from .canned_items import item_from_dict  # noqa: PLC0415  # loaded only when canned data is configured

        defaults = {"symbol": self.symbol, "category": self.category}
        return [item_from_dict(None, item, f"items[{i}]", defaults) for i, item in enumerate(raw)]

    @property
    def effective_ticker_rate(self) -> float:
        if self.ticker_rate is not None:
            return self.ticker_rate
        return 20.0 if self.category == "spot" else 10.0


@dataclass
class MarketConfig:
    """Settings shared by every symbol's market."""

    seed: int = 1
    #: Add the fields Tesser's Rust connector requires beside Bybit's own (``_topic`` on trade
    #: entries, ``_start``/``_end`` on kline entries); real Bybit does not send them.
    tesser_compat: bool = False
    #: Per-symbol settings; an instrument with no entry streams with the defaults.
    symbols: list[SymbolMarketConfig] = field(default_factory=list)

    def for_symbol(self, category: str, symbol: str, dated: bool = False) -> SymbolMarketConfig:
        """The symbol's settings; with no entry, the defaults (a ``dated`` contract's are
        quieter: :data:`DATED_TRADE_RATE` and :data:`DATED_BOOK_RATES`, so the default dated
        futures add little to what every WS worker advances)."""
        for s in self.symbols:
            if s.category == category and s.symbol == symbol:
                return s
        if dated:
            return SymbolMarketConfig(symbol, category, trade_rate=DATED_TRADE_RATE, book_rates=dict(DATED_BOOK_RATES))
        return SymbolMarketConfig(symbol=symbol, category=category)

    def check_canned(self, instruments: list[InstrumentConfig], max_pace: float) -> None:
        """Canned symbols' timing and every item on its instrument's grid (``ValueError``): said
        when the config is made, in the test process, not by a state service that fails to start."""
        by_ident: dict[tuple[str, str], InstrumentConfig] = {(i.category, i.symbol): i for i in instruments}
        for sm in self.symbols:
            what = f"market symbol {sm.category}/{sm.symbol}"
            if sm.source != "canned":
                if sm.canned:
                    raise ValueError(f"{what}: canned items need source 'canned', not {sm.source!r}")
                continue
            from .canned import check_config  # noqa: PLC0415  # loaded only when canned data is configured

            try:
                check_config(by_ident[(sm.category, sm.symbol)], sm, max_pace)
            except ValueError as exc:
                raise ValueError(f"{what}: {exc}") from None

    def add_canned(
        self,
        items: Iterable[MarketItem | Mapping[str, Any]],
        kind: str | None = None,
        pace: float | None = None,
        step: bool | None = None,
    ) -> None:
        """Append ``items`` (or their dict forms) to their symbols' canned streams, in order;
        ``kind`` (``"candle"``, ``"tick"``, ``"book"``) is what they must all be. ``ValueError``
        names a bad item. Changes this config: the callers work on a copy."""
        from .canned_items import BookSnapshot, Candle, Tick, item_from_dict, kind_of  # noqa: PLC0415  # only when used

        for i, raw in enumerate(items):
            what = f"items[{i}]"
            item = raw if isinstance(raw, Candle | Tick | BookSnapshot) else item_from_dict(kind, raw, what)
            if kind is not None and kind_of(item) != kind:
                raise ValueError(f"{what}: a {kind_of(item)} where {kind} items were expected")
            self.canned_symbol(item.symbol, item.category, pace, step).canned.append(item)

    def canned_symbol(
        self, symbol: str, category: str = "linear", pace: float | None = None, step: bool | None = None
    ) -> SymbolMarketConfig:
        """The symbol's settings, made canned (from synthetic), ``pace`` and ``step`` set if given."""
        found = next((s for s in self.symbols if (s.category, s.symbol) == (category, symbol)), None)
        if found is None:
            found = SymbolMarketConfig(symbol=symbol, category=category, source="canned")
            self.symbols.append(found)
        if found.source == "replay":
            raise ValueError(f"{category}/{symbol} replays a recording; it cannot stream canned data too")
        found.source = "canned"
        if pace is not None:
            found.pace = pace
        if step is not None:
            found.step = step
        return found
