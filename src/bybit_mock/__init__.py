"""bybit-mock: a programmable, multiprocess, high-throughput mock of the Bybit v5 exchange."""

from .config import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    AccountConfig,
    ConfigError,
    InstrumentConfig,
    MockExchangeConfig,
    PositionConfig,
)
from .engine.views import CoinView, PositionView
from .mock import MockExchange
from .state import MockExchangeState
from .supervisor import StartError

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "AccountConfig",
    "CoinView",
    "ConfigError",
    "InstrumentConfig",
    "MockExchange",
    "MockExchangeConfig",
    "MockExchangeState",
    "PositionConfig",
    "PositionView",
    "StartError",
]

__version__ = "0.1.0"
