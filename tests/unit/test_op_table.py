"""Every engine command a worker can send exists in the engine's op table.

A REST route, a ``/v5/trade`` op or a worker's housekeeping call naming a command the engine
does not have would answer 10016 at run time; this catches it when the name is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bybit_mock import MockExchangeConfig
from bybit_mock.engine.exchange import Exchange
from bybit_mock.rest.app import StateCall
from bybit_mock.rest.routes import Engine, MarketQuery, build_routes
from bybit_mock.ws.trade import ORDER_OPS

SRC = Path(__file__).resolve().parents[2] / "src" / "bybit_mock"
WORKER_CODE = [*(SRC / "rest").glob("*.py"), *(SRC / "ws").glob("*.py"), SRC / "worker.py"]


def engine_ops() -> frozenset[str]:
    return Exchange(MockExchangeConfig.default()).ops


def commands_named_in(path: Path) -> set[str]:
    """Literal command names passed to ``state.submit(...)``, ``state.call(...)`` or ``StateCall(...)``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        first = node.args[0]
        if name in ("submit", "call", "StateCall") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
    return found


def test_every_rest_route_names_an_engine_command() -> None:
    ops = engine_ops()
    for path, route in build_routes(MockExchangeConfig.default()).items():
        handler = route.handler
        if isinstance(handler, Engine):
            assert handler.op in ops, path
        elif isinstance(handler, MarketQuery):
            result = handler.__call__  # answered by the engine's market models
            assert "market_query" in ops, (path, result)


def test_every_trade_op_names_an_engine_command() -> None:
    assert set(ORDER_OPS.values()) <= engine_ops()


def test_every_command_a_worker_sends_exists() -> None:
    named = set().union(*(commands_named_in(path) for path in WORKER_CODE))
    assert {"secret", "secrets", "watch", "market_models", "instance", "market_query"} <= named  # the scan works
    assert named <= engine_ops(), named - engine_ops()


def test_an_unknown_command_answers_10016_and_names_it() -> None:
    ex = Exchange(MockExchangeConfig.default())
    ((code, msg),) = ex.apply_batch([("no_such_op", ())])
    assert code == 10016 and "no_such_op" in msg
    assert StateCall("x", ()).op == "x"
