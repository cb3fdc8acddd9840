"""What importing the package costs, and which module may import which.

The pytest plugin is loaded into every pytest run where bybit-mock is installed (the
``pytest11`` entry point), so loading it must not import the servers' stack. Each check runs
in a fresh interpreter: this test process has long since imported everything.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import bybit_mock

HEAVY = ("picows", "uvloop", "httptools", "multiprocessing.managers", "bybit_mock.mock", "bybit_mock.engine")
SRC = Path(bybit_mock.__file__).resolve().parent


def fresh(code: str) -> object:
    """Run ``code`` in a new interpreter; return what it printed, as JSON."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    loaded = fresh(
        "import json, sys\n"
        "import bybit_mock.pytest_plugin\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))\n"
    )
    assert loaded == []


def test_the_public_names_still_import_and_are_the_real_ones() -> None:
    names = fresh(
        "import json\n"
        "from bybit_mock import (AccountConfig, CoinView, ConfigError, InstrumentConfig, MockExchange,\n"
        "    MockExchangeConfig, MockExchangeState, PositionConfig, PositionView, StartError)\n"
        "from bybit_mock.mock import MockExchange as Real\n"
        "from bybit_mock.config import InstrumentConfig as FromConfig\n"
        "from bybit_mock.instruments import InstrumentConfig as Defined\n"
        "assert MockExchange is Real and InstrumentConfig is FromConfig is Defined\n"
        "print(json.dumps([MockExchange.__module__, MockExchangeState.__module__, StartError.__module__,\n"
        "    CoinView.__module__, PositionView.__module__]))\n"
    )
    assert names == [
        "bybit_mock.mock",
        "bybit_mock.state",
        "bybit_mock.supervisor",
        "bybit_mock.engine.views",
        "bybit_mock.engine.views",
    ]


def test_every_public_name_is_listed_and_unknown_ones_still_fail() -> None:
    for name in bybit_mock.__all__:
        assert getattr(bybit_mock, name) is not None
        assert name in dir(bybit_mock)
    try:
        bybit_mock.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown attribute was found")


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the bybit_mock modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("bybit_mock")}


def test_instruments_sit_below_config_and_market() -> None:
    """config imports instruments and market.config; the market package imports instruments,
    never config: no cycle between them."""
    assert _imported_modules(SRC / "instruments.py") == set()
    for path in sorted((SRC / "market").glob("*.py")):
        imported = _imported_modules(path)
        assert "bybit_mock.config" not in imported, path.name


def _package_of(module: str) -> str:
    """``bybit_mock.engine.book`` -> ``engine``; a top-level module is its own package."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def test_no_package_imports_a_package_that_imports_it() -> None:
    """The packages layer: market and bybit below engine, ws and rest above; no cycles
    (type-only imports, under ``TYPE_CHECKING``, count too: they are design dependencies)."""
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        module = "bybit_mock." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        source = _package_of(module.removesuffix(".__init__"))
        for target in _imported_modules(path):
            if target != "bybit_mock" and _package_of(target) != source:
                edges.setdefault(source, set()).add(_package_of(target))
    cycles = {(a, b) for a, targets in edges.items() for b in targets if a in edges.get(b, set()) and a < b}
    assert cycles == set(), cycles
    assert "ws" not in edges.get("market", set()) and "engine" not in edges.get("bybit", set())
