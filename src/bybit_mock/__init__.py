"""bybit-mock: a programmable, multiprocess, high-throughput mock of the Bybit v5 exchange.

The configuration names are imported eagerly (plain dataclasses, cheap). The rest is imported
on first use (PEP 562): the pytest plugin is loaded through the ``pytest11`` entry point into
every pytest run where the package is installed, and importing ``MockExchange`` pulls in
uvloop, picows, httptools and ``multiprocessing.managers``, a cost that only the runs that
start a mock should pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    AccountConfig,
    ConfigError,
    InstrumentConfig,
    MockExchangeConfig,
    PositionConfig,
)

if TYPE_CHECKING:
    from .engine.views import CoinView, PositionView
    from .market.canned_items import BookSnapshot, Candle, Tick
    from .mock import MockExchange
    from .scenarios import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioError, ScenarioTrigger
    from .state import MockExchangeState
    from .supervisor import StartError

#: name -> the module that defines it, imported when the name is first read
_LAZY = {
    "BookSnapshot": ".market.canned_items",
    "Candle": ".market.canned_items",
    "Tick": ".market.canned_items",
    "CoinView": ".engine.views",
    "PositionView": ".engine.views",
    "MockExchange": ".mock",
    "Match": ".scenarios",
    "OrderFillStep": ".scenarios",
    "Scenario": ".scenarios",
    "ScenarioAction": ".scenarios",
    "ScenarioError": ".scenarios",
    "ScenarioTrigger": ".scenarios",
    "MockExchangeState": ".state",
    "StartError": ".supervisor",
}

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "AccountConfig",
    "BookSnapshot",
    "Candle",
    "CoinView",
    "ConfigError",
    "InstrumentConfig",
    "Match",
    "MockExchange",
    "MockExchangeConfig",
    "MockExchangeState",
    "OrderFillStep",
    "PositionConfig",
    "PositionView",
    "Scenario",
    "ScenarioAction",
    "ScenarioError",
    "ScenarioTrigger",
    "StartError",
    "Tick",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
