"""``exchange.scenarios``: arm, list, remove and clear scenarios, and read the journal, from a test.

    from bybit_mock import Scenario, ScenarioTrigger, ScenarioAction, OrderFillStep

    ex.scenarios.push(Scenario("entry-fill", ScenarioTrigger.ORDER_CREATE,
                               ScenarioAction.fill_plan([OrderFillStep(25, "1", "1001")])))
    ...
    print(ex.scenarios.journal())   # what the mock did to the bot, and when

Each call is one round trip to the state service, which holds the scenarios (so they fire the
same however many workers there are). The JSON form travels, the same one ``/__admin/`` takes.
"""

from __future__ import annotations

from typing import Any

from .model import Scenario

#: scenarios or journal entries in their JSON form
Entries = list[dict[str, Any]]


class Scenarios:
    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def push(self, scenario: Scenario | dict[str, Any]) -> str:
        """Arm a scenario (a :class:`Scenario` or its JSON form); returns its id (``s1`` ...).

        A bad JSON form raises :class:`~.model.ScenarioError` naming the field, and arms nothing."""
        raw = scenario.to_json() if isinstance(scenario, Scenario) else Scenario.from_json(scenario).to_json()
        ident: str = self._proxy.scenario_push(raw)
        return ident

    def list(self) -> Entries:
        """The armed scenarios in their JSON form, with ``id``, ``remaining`` and ``fired``."""
        armed: Entries = self._proxy.scenario_list()
        return armed

    def get(self, ident: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._proxy.scenario_get(ident)
        return found

    def remove(self, ident: str) -> bool:
        """Disarm one scenario; False if there was none with that id (spent, or never armed)."""
        removed: bool = self._proxy.scenario_remove(ident)
        return removed

    def clear(self) -> int:
        """Disarm every scenario (the journal stays); how many there were."""
        count: int = self._proxy.scenario_clear()
        return count

    def journal(self, scenario: str | None = None, since_seq: int = 0) -> Entries:
        """Every firing kept, oldest first: ``seq``, ``time_ms``, ``scenario`` (name) and
        ``scenario_id``, ``trigger``, ``matched`` (method, path, api_key, order ids, topic ...),
        ``action`` and ``done`` (what was carried out). ``scenario`` filters by name or id."""
        entries: Entries = self._proxy.scenario_journal(scenario, since_seq)
        return entries

    def clear_journal(self) -> None:
        self._proxy.scenario_journal_clear()
