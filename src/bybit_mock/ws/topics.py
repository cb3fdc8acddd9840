"""Which topic names exist, per channel."""

from __future__ import annotations

from ..config import MockExchangeConfig

ORDERBOOK_DEPTHS = {
    "linear": ("1", "50", "200", "1000"),
    "inverse": ("1", "50", "200", "1000"),
    "spot": ("1", "50", "200", "1000"),
    "option": ("25", "100"),
}
KLINE_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")

PRIVATE_TOPICS = frozenset(
    ["order", "execution", "execution.fast", "position", "wallet", "greeks", "dcp"]
    + [f"{t}.{c}" for t in ("order", "execution", "position") for c in ("linear", "inverse", "spot", "option")]
    + [f"execution.fast.{c}" for c in ("linear", "inverse", "spot", "option")]
)


class PublicTopics:
    """Validates ``orderbook.{depth}.{S}``, ``publicTrade.{S}``, ``kline.{i}.{S}``, ``tickers.{S}``."""

    def __init__(self, config: MockExchangeConfig) -> None:
        self.symbols: dict[str, frozenset[str]] = {c: frozenset() for c in ORDERBOOK_DEPTHS}
        for inst in config.instruments:
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
