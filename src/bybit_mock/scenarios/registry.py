"""The armed scenarios: matched, drawn and consumed in one place, under the engine lock.

The state service holds the only registry, so a scenario armed to fire once fires once
however many REST and WS workers see its trigger: a worker asks (:meth:`Registry.take`) and
the registry answers each occurrence with the scenarios that fire for it, already consumed
and journaled. Workers ask only about what is armed: :meth:`Registry.summary` is what the
engine broadcasts each time the armed set changes, so a request on an unarmed route costs
nothing.

Rules, in the order they apply to one occurrence of a trigger:

1. scenarios are considered in the order they were armed;
2. a scenario is a candidate if its trigger type and fields fit the occurrence, its match
   fits the context and ``now`` is within its window;
3. a ``message`` or ``public_stream`` candidate counts the message; it goes on only on the
   ``nth`` one (and every ``nth`` after);
4. at most one scenario per action type fires for one occurrence (two fill plans armed on
   ``order_create`` fill two orders, one each, as the crate's FIFO did), and a candidate
   with a probability fires only if the seeded draw says so (a miss consumes nothing);
5. each firing uses one of its ``times``; a scenario with none left is removed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from .. import metrics
from .firelog import FireLog
from .model import Scenario

#: the REST route each order trigger stands for (the same ops on ``/v5/trade`` fire them too)
ORDER_ROUTES = {
    "order_create": "/v5/order/create",
    "order_amend": "/v5/order/amend",
    "order_cancel": "/v5/order/cancel",
}
#: context keys a journal entry keeps (what a failing test wants to see)
JOURNAL_KEYS = (
    "method",
    "path",
    "channel",
    "api_key",
    "category",
    "symbol",
    "side",
    "order_id",
    "order_link_id",
    "topic",
    "event",
    "conn_id",
)


def rest_context(method: str, path: str, api_key: str, params: Any) -> dict[str, Any]:
    """What a REST request can be matched on: its route, account and order fields (the engine
    matches on it, and a REST worker tests it first to skip asking when no match can fit)."""
    ctx: dict[str, Any] = {"method": method, "path": path}
    if api_key:
        ctx["api_key"] = api_key
    entries = params.get("request") if isinstance(params, dict) else None
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        params = {**entries[0], "category": params.get("category")}  # a batch: its first entry
    if isinstance(params, dict):
        for key, name in (
            ("category", "category"),
            ("symbol", "symbol"),
            ("side", "side"),
            ("orderLinkId", "order_link_id"),
            ("orderId", "order_id"),
        ):
            value = params.get(key)
            if isinstance(value, str):
                ctx[name] = value
    return ctx


@dataclass
class Armed:
    id: str
    scenario: Scenario
    armed_ms: int
    remaining: int | None
    start_ms: int | None
    end_ms: int | None
    fired: int = 0
    seen: int = 0  # messages counted, for ``nth``
    next_ms: int | None = None  # a timer's next due time

    def to_json(self) -> dict[str, Any]:
        out = self.scenario.to_json()
        out.update(id=self.id, remaining=self.remaining, fired=self.fired, armed_ms=self.armed_ms)
        return out


@dataclass(frozen=True)
class Firing:
    """One scenario firing for one occurrence: the action to carry out, with its context."""

    scenario_id: str
    name: str
    action: dict[str, Any]  # the action's JSON form
    ctx: dict[str, Any]
    seq: int  # journal sequence
    #: the account the scenario's match names (whom a timer's or a socket action is for)
    target: str | None = None


class Registry:
    def __init__(self, seed: int, journal_limit: int = 10_000) -> None:
        self._seed = seed
        self._journal_limit = journal_limit
        self.clear()

    def clear(self) -> None:
        """No scenario armed, an empty journal, the RNG back at its seed."""
        self.armed: list[Armed] = []
        self._rng = random.Random(self._seed)
        # Timer jitter draws from a stream of its own (seeded from the same seed), so arming a
        # jittered clock does not change which order creates a ``probability`` scenario fails.
        self._jitter_rng = random.Random(f"{self._seed}/jitter")
        self.fire_log = FireLog()
        self._ids = 0
        self._journal: deque[dict[str, Any]] = deque(maxlen=self._journal_limit)
        self._journal_seq = 0
        #: moves whenever the armed set does, never back (a reset too): a worker keeps the
        #: newest summary it has seen, whichever way it came
        self.version = getattr(self, "version", 0) + 1

    # -- arming -----------------------------------------------------------------------------

    def arm(self, scenario: Scenario, now_ms: int) -> str:
        self._ids += 1
        ident = f"s{self._ids}"
        window = scenario.window or {}
        start = window.get("from_ms")
        end = window.get("until_ms")
        if "after_ms" in window:
            start = now_ms + int(window["after_ms"])
        if "for_ms" in window:
            end = (start if start is not None else now_ms) + int(window["for_ms"])
        armed = Armed(ident, scenario, now_ms, scenario.times, start, end)
        if scenario.trigger.type == "timer":
            armed.next_ms = now_ms + int(scenario.trigger.params.get("after_ms", 0))
        self.armed.append(armed)
        self.version += 1
        return ident

    def remove(self, ident: str) -> bool:
        for i, armed in enumerate(self.armed):
            if armed.id == ident:
                del self.armed[i]
                self.version += 1
                return True
        return False

    def remove_all(self) -> int:
        count = len(self.armed)
        self.armed.clear()
        self.version += 1
        return count

    def listing(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.armed]

    def get(self, ident: str) -> dict[str, Any] | None:
        for armed in self.armed:
            if armed.id == ident:
                return armed.to_json()
        return None

    # -- what workers need to know ------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What is armed, in the terms workers test cheaply: REST routes (path -> methods, an
        "*" meaning any), WS trigger types per channel, public message topics. ``rest_when``
        adds, per REST route, each scenario's ``[method, match]``: a worker tests a request's
        :func:`rest_context` against them and asks the engine only when one may fit (a scenario
        armed for one account costs the others nothing)."""
        rest: dict[str, list[str]] = {}  # path -> methods ("*": any)
        rest_when: dict[str, list[list[Any]]] = {}  # path -> [method, match JSON] per scenario
        ws: dict[str, list[str]] = {}
        public: list[str] = []
        for armed in self.armed:
            trigger = armed.scenario.trigger
            kind, params = trigger.type, trigger.params
            path = params.get("path") if kind == "rest" else ORDER_ROUTES.get(kind)
            if path is not None:
                method = params.get("method") if kind == "rest" else "POST"
                rest.setdefault(path, []).append(method or "*")
                rest_when.setdefault(path, []).append([method or "*", armed.scenario.match.to_json()])
            if kind in ORDER_ROUTES:
                ws.setdefault("trade_op", []).append(kind)
            elif kind in ("ws_connect", "ws_auth", "ws_subscribe"):
                ws.setdefault(kind, []).append(params.get("channel") or "*")
            elif kind == "private_disconnect":
                ws.setdefault(kind, []).append("private")
            elif kind == "public_stream" or (kind == "message" and params.get("channel") == "public"):
                public.append(armed.scenario.match.topic or "*")
        return {
            "version": self.version,
            "rest": rest,
            "rest_when": rest_when,
            "ws": ws,
            "public": sorted(set(public)),
        }

    # -- firing -------------------------------------------------------------------------------

    def take(self, kind: str, ctx: dict[str, Any], now_ms: int) -> list[Firing]:
        """The scenarios that fire for one occurrence of trigger ``kind`` (consumed, journaled)."""
        fired: list[Firing] = []
        types: set[str] = set()
        for armed in list(self.armed):
            scenario = armed.scenario
            if scenario.trigger.type != kind or not self._fits(armed, ctx, now_ms):
                continue
            if kind in ("message", "public_stream"):
                armed.seen += 1
                if armed.seen % int(scenario.trigger.params.get("nth", 1)):
                    continue
            action = scenario.action
            if action.type in types:
                continue
            if scenario.probability is not None and self._rng.random() >= scenario.probability:
                continue
            types.add(action.type)
            fired.append(self._fire(armed, ctx, now_ms))
        return fired

    def due_timers(self, now_ms: int) -> list[Firing]:
        """Timers whose time has come, each once per call, then rescheduled or spent. A timer's
        match names whom its action is for, not a context, so only its window is checked."""
        fired = []
        for armed in list(self.armed):
            due = armed.next_ms
            if due is None or due > now_ms:
                continue
            armed.next_ms = self._next_due(armed, due)
            if armed.end_ms is not None and now_ms > armed.end_ms:
                armed.next_ms = None  # its window has closed: it will never fire again
            elif armed.start_ms is None or now_ms >= armed.start_ms:
                prob = armed.scenario.probability
                if prob is None or self._rng.random() < prob:
                    fired.append(self._fire(armed, {}, now_ms))
            if armed.next_ms is None and armed in self.armed:
                self.armed.remove(armed)
                self.version += 1
        return fired

    def _next_due(self, armed: Armed, due: int) -> int | None:
        """A periodic timer's next due time: ``every_ms`` on from this one, +- its jitter."""
        params = armed.scenario.trigger.params
        every: float | None = params.get("every_ms")
        if every is None:
            return None
        jitter: float = params.get("jitter_ms") or 0
        period = every + self._jitter_rng.uniform(-jitter, jitter) if jitter else every
        return due + max(round(period), 1)

    def next_timer(self) -> int | None:
        times = [a.next_ms for a in self.armed if a.next_ms is not None]
        return min(times) if times else None

    def _fits(self, armed: Armed, ctx: dict[str, Any], now_ms: int) -> bool:
        if armed.start_ms is not None and now_ms < armed.start_ms:
            return False
        if armed.end_ms is not None and now_ms > armed.end_ms:
            return False
        params = armed.scenario.trigger.params
        for key in ("path", "method", "channel", "event"):
            want = params.get(key)
            if want is not None and ctx.get(key) != want:
                return False
        return armed.scenario.match.matches(ctx)

    def _fire(self, armed: Armed, ctx: dict[str, Any], now_ms: int) -> Firing:
        armed.fired += 1
        if armed.remaining is not None:
            armed.remaining -= 1
            if armed.remaining <= 0 and armed in self.armed:
                self.armed.remove(armed)
                self.version += 1
        self._journal_seq += 1
        scenario = armed.scenario
        action = scenario.action.to_json()
        metrics.fired(scenario.name, scenario.action.type)  # no-op unless metrics are on
        matched = {k: ctx[k] for k in JOURNAL_KEYS if ctx.get(k) not in (None, "")}
        self._journal.append(
            {
                "seq": self._journal_seq,
                "time_ms": now_ms,
                "scenario_id": armed.id,
                "scenario": scenario.name,
                "trigger": scenario.trigger.type,
                "matched": matched,
                "action": action,
                "done": [],
            }
        )
        self.fire_log.fired(now_ms, armed.id, scenario.name, scenario.trigger.type, action, matched)
        return Firing(armed.id, scenario.name, action, ctx, self._journal_seq, scenario.match.api_key)

    # -- the journal --------------------------------------------------------------------------

    def note(self, seq: int, what: str) -> None:
        """Add what was done for firing ``seq`` (once its effect is known)."""
        for entry in reversed(self._journal):
            if entry["seq"] == seq:
                entry["done"].append(what)
                return
            if entry["seq"] < seq:
                return

    def journal(self, scenario: str | None = None, since_seq: int = 0) -> list[dict[str, Any]]:
        """Every firing still kept, oldest first (optionally one scenario's, by name or id)."""
        return [
            {**e, "matched": dict(e["matched"]), "done": list(e["done"])}
            for e in self._journal
            if e["seq"] > since_seq and scenario in (None, e["scenario"], e["scenario_id"])
        ]

    def clear_journal(self) -> None:
        self._journal.clear()
