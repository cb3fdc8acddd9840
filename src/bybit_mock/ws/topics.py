"""Which topic names exist, per channel."""

from __future__ import annotations

from ..config import MockExchangeConfig
from ..instruments import BOOK_DEPTHS, CATEGORIES

#: the depths as they appear in a topic name
ORDERBOOK_DEPTHS = {category: tuple(str(d) for d in depths) for category, depths in BOOK_DEPTHS.items()}
KLINE_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")

PRIVATE_TOPICS = frozenset(
    ["order", "execution", "execution.fast", "position", "wallet", "greeks", "dcp"]
    + [f"{t}.{c}" for t in ("order", "execution", "position") for c in CATEGORIES]
    + [f"execution.fast.{c}" for c in CATEGORIES]
)


class PublicTopics:
    """Validates ``orderbook.{depth}.{S}``, ``publicTrade.{S}``, ``kline.{i}.{S}``, ``tickers.{S}``."""

    def __init__(self, config: MockExchangeConfig) -> None:
        self.symbols: dict[str, frozenset[str]] = {c: frozenset() for c in CATEGORIES}
        for inst in config.instruments:
            if inst.category != "option":  # options are priced on demand over REST: no streams
                self.symbols[inst.category] = self.symbols[inst.category] | {inst.symbol}

    def is_valid(self, category: str, topic: str) -> bool:
        parts = topic.split(".")
        symbols = self.symbols.get(category, frozenset())
        if len(parts) == 2:
            kind, symbol = parts
            return kind in ("publicTrade", "tickers") and symbol in symbols
        if len(parts) == 3:
            kind, arg, symbol = parts
            if symbol not in symbols:
                return False
            if kind == "orderbook":
                return arg in ORDERBOOK_DEPTHS[category]
            if kind == "kline":
                return arg in KLINE_INTERVALS and category != "option"
        return False
