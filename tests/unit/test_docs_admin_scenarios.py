"""``docs/scenarios.md`` and ``docs/admin.md`` stay true to the code they describe."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import orjson

from bybit_mock import MockExchangeConfig
from bybit_mock.rest.admin import AdminApi
from bybit_mock.rest.faults import RestFaults
from bybit_mock.scenarios.fields import ACTIONS, TRIGGERS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_DOC = ROOT / "docs" / "scenarios.md"
ADMIN_DOC = ROOT / "docs" / "admin.md"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scenario_docs", ROOT / "scripts" / "scenario_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_field_tables_are_up_to_date() -> None:
    text = SCENARIOS_DOC.read_text()
    assert script().updated(text) == text, "docs/scenarios.md is stale: run .venv/bin/python scripts/scenario_docs.py"


def test_the_tables_say_what_the_checks_refuse() -> None:
    tables = script().render()
    assert "| `delay` | `ms` | yes | a number of milliseconds >= 0 |  |" in tables
    assert "| `fail` | `ret_code` |  | an integer | `10016` |" in tables
    assert '|  | `ret_msg` |  | a string | `"Internal System Error."` |' in tables
    assert "| `partial_fill_then_cancel` | `quantity` | yes | a decimal > 0 |  |" in tables
    assert "| `reset` | (none) | | | |" in tables


def test_every_trigger_and_action_is_explained_in_words() -> None:
    text = SCENARIOS_DOC.read_text()
    prose = text.split(script().BEGIN)[0] + text.split(script().END)[1]
    missing = [kind for kind in [*TRIGGERS, *ACTIONS] if f"`{kind}`" not in prose]
    assert missing == []


def test_every_admin_endpoint_is_documented() -> None:
    admin = AdminApi(MockExchangeConfig(), None, RestFaults(None, lambda *a: None))  # type: ignore[arg-type]
    text = ADMIN_DOC.read_text()
    for pattern, handlers in admin.routes.items():
        path = "/__admin/" + "/".join(r"\{\w+\}" if part == "{}" else re.escape(part) for part in pattern)
        for method in handlers:
            assert re.search(rf"`{method} {path}[`?]", text), f"{method} {path} is not in docs/admin.md"


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_the_documented_scenarios_are_valid(tmp_path: Path) -> None:
    from bybit_mock.scenarios import Scenario  # noqa: PLC0415

    Scenario.from_json(orjson.loads(blocks(SCENARIOS_DOC.read_text(), "json")[0]))
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    tomls = [b for b in blocks(SCENARIOS_DOC.read_text() + configuration, "toml") if "scenarios]" in b]
    assert len(tomls) == 4
    for i, block in enumerate(tomls):
        path = tmp_path / f"{i}.toml"
        path.write_text(block)
        assert MockExchangeConfig.from_toml(path).scenarios
