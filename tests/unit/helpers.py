"""What the engine's unit tests share: clocks, a ready exchange, and calls through its op table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from bybit_mock import AccountConfig, MockExchangeConfig
from bybit_mock.engine.exchange import Exchange

KEY = "prop"
START_USDT = Decimal(20000)
START_BTC = Decimal("0.2")
LINEAR = {"category": "linear", "symbol": "BTCUSDT"}
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


class Clock:
    """A clock that moves 1 ms at every reading: every event has its own time."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        self.now += 1
        return self.now


class FixedClock(Clock):
    """A clock that stands still until a test moves ``now``."""

    def __call__(self) -> int:
        return self.now


def new_exchange() -> Exchange:
    """One watched account with USDT and BTC; markets frozen, BTCUSDT at 65 000 (linear, spot)."""
    account = AccountConfig(KEY, "secret", {"USDT": START_USDT, "BTC": START_BTC})
    ex = Exchange(MockExchangeConfig(accounts=[account]), clock=Clock())
    ex.watch("test", [KEY])  # as a WS worker with a private connection for the account does
    ex.freeze_market()
    ex.set_mark_price("BTCUSDT", 65000)
    ex.set_mark_price("BTCUSDT", 65000, category="spot")
    return ex


def run(ex: Exchange, command: str, query: dict[str, Any], key: str = KEY) -> tuple[int, Any]:
    """One command through ``apply_batch``: ``(0, decoded result)`` or ``(retCode, retMsg)``."""
    ((code, value),) = ex.apply_batch([(command, (key, query))])
    return code, orjson.loads(value) if code == 0 and isinstance(value, bytes) else value


def ok(ex: Exchange, command: str, query: dict[str, Any], key: str = KEY) -> Any:
    code, value = run(ex, command, query, key)
    assert code == 0, value
    return value


def order(ex: Exchange, order_id: str, category: str = "linear") -> dict[str, Any]:
    result = ok(ex, "order_realtime", {"category": category, "symbol": "BTCUSDT", "orderId": order_id})
    (item,) = result["list"]
    return item  # type: ignore[no-any-return]


def position(ex: Exchange) -> dict[str, Any]:
    (item,) = ok(ex, "position_list", LINEAR)["list"]
    return item  # type: ignore[no-any-return]


def pushes(ex: Exchange, cursor: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every private message since ``cursor``, whichever account it went to."""
    _, events = ex.events.wait(cursor, 0)
    return [m for kind, data in events if kind == "private" for m in decoded(data[1])]


def decoded(wire: list[tuple[str, str, bytes]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """A committed push as the engine logs it (topic, category, data JSON), its data decoded."""
    return [(topic, orjson.loads(data)) for topic, _category, data in wire]
