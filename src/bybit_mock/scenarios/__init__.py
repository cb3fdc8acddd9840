"""Scenarios: scripted faults and events, one JSON form for Python, HTTP and the config file.

* :mod:`.model`: the types (:class:`Scenario`, :class:`ScenarioTrigger`, :class:`ScenarioAction`,
  :class:`Match`, :class:`OrderFillStep`) and their JSON form, validated field by field;
* :mod:`.registry`: the armed scenarios, matched and consumed atomically in the state service,
  with the seeded RNG and the journal;
* :mod:`.control`: ``exchange.scenarios``, the handle tests use (:class:`~.control.Scenarios`).

The faults themselves run where the bytes are: REST ones in the REST worker
(:mod:`bybit_mock.rest.faults`), WebSocket ones in the WS worker, account ones in the engine.
"""

from .model import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioError, ScenarioTrigger

__all__ = ["Match", "OrderFillStep", "Scenario", "ScenarioAction", "ScenarioError", "ScenarioTrigger"]
