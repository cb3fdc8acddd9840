"""Market-data settings: which symbols stream, from which source, at which rates.

Plain dataclasses only (they are pickled into every worker). Validation and the TOML form
live in :mod:`bybit_mock.config`, beside the rest of the configuration.

Rates are messages per second per stream and per symbol; ``0`` switches a stream off. The
defaults follow Bybit's own push intervals (order book depth 1 every 10 ms, 50 every 20 ms,
200 every 100 ms, 1000 every 200 ms; tickers every 100 ms, 50 ms on spot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..instruments import BOOK_DEPTHS

Source = Literal["synthetic", "replay"]

#: Every futures and spot order-book depth at its Bybit-like default rate (messages/s).
DEFAULT_BOOK_RATES: dict[int, float] = dict(zip(BOOK_DEPTHS["linear"], (100.0, 50.0, 10.0, 5.0), strict=True))


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

    def for_symbol(self, category: str, symbol: str) -> SymbolMarketConfig:
        for s in self.symbols:
            if s.category == category and s.symbol == symbol:
                return s
        return SymbolMarketConfig(symbol=symbol, category=category)
