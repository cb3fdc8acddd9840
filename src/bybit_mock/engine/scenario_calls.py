"""The engine's scenario commands: what workers and tests call, under the engine lock.

* A REST worker sends ``scenario_rest`` instead of the plain command for a request on an armed
  route. The answer says what to do before the request is handled (a delay, a refusal, a
  transport fault), or carries the reply and what to do with the answer (slow it, lose it).
  After a delay the worker sends ``scenario_resume`` with the token it was given: the order
  actions that fired with the delay (a fill plan) apply to the order the request then makes.
* A WS worker sends ``scenario_take`` for a connect, auth, subscribe, disconnect or counted
  message on an armed channel; it gets the actions that are its to carry out.
* Every change of the armed set is broadcast as a ``("scenarios", summary)`` event, which is
  how workers know what to ask about (nothing is asked for what is not armed).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from ..scenarios.model import ORDER_ACTIONS, REST_AFTER, REST_BEFORE, Scenario
from ..scenarios.registry import ORDER_ROUTES, Firing, Registry, rest_context
from .orders import Order
from .scenarios import ScenarioEffects

if TYPE_CHECKING:
    from .exchange import Exchange

#: REST path -> the order trigger it also fires
ROUTE_TRIGGERS = {path: kind for kind, path in ORDER_ROUTES.items()}
#: delayed requests whose order actions wait for ``scenario_resume`` (bounded: a client that
#: went away during its delay never resumes)
MAX_PENDING = 10_000
#: events a worker may ask the engine to send every worker
BROADCASTS = frozenset({"ban"})


class ScenarioCalls:
    def __init__(self, exchange: Exchange, seed: int, journal_limit: int) -> None:
        self.ex = exchange
        self.registry = Registry(seed, journal_limit)
        self.effects = ScenarioEffects(exchange, self.registry)
        self._pending: OrderedDict[int, list[Firing]] = OrderedDict()
        self._tokens = 0
        self._broadcast = -1

    def reset(self) -> None:
        self.registry.clear()
        self.effects = ScenarioEffects(self.ex, self.registry)
        self.effects.armed_changed()
        self._pending.clear()
        self.sync()

    def sync(self) -> None:
        """Tell the workers (and the push hooks) if the armed set changed since last time."""
        if self.registry.version != self._broadcast:
            self._broadcast = self.registry.version
            self.effects.armed_changed()
            self.ex.events.append("scenarios", self.registry.summary())

    @property
    def busy(self) -> bool:
        """Whether anything may come due with time (the engine's clock looks only then)."""
        return bool(self.registry.armed) or self.effects.has_jobs

    # -- arming (the state API) -----------------------------------------------------------------

    def push(self, scenario: Scenario | dict[str, Any]) -> str:
        if not isinstance(scenario, Scenario):
            scenario = Scenario.from_json(scenario)
        ident = self.registry.arm(scenario, self.ex.now_ms())
        self.sync()
        if scenario.trigger.type == "timer":
            self.ex.run_due()  # a timer at 0 fires now, not on the next clock tick
        return ident

    # -- REST -----------------------------------------------------------------------------------

    def rest(
        self, method: str, path: str, api_key: str, params: Any, op: str | None, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        """A request on an armed route: ``op(*args)`` is the command it would have sent."""
        now = self.ex.now_ms()
        ctx = rest_context(method, path, api_key, params)
        firings = self.registry.take("rest", ctx, now)
        kind = ROUTE_TRIGGERS.get(path)
        if kind is not None:
            firings += self.registry.take(kind, ctx, now)
        order_firings = [f for f in firings if f.action["type"] in ORDER_ACTIONS]
        mine = self.effects.run([f for f in firings if f.action["type"] not in ORDER_ACTIONS])
        before = [m for m in mine if m["action"]["type"] in REST_BEFORE]
        after = [m for m in mine if m["action"]["type"] in REST_AFTER]
        for item in mine:
            if item not in before and item not in after:
                self.registry.note(item["seq"], "not done: not a REST request's action")
        if before:
            if all(b["action"]["type"] == "delay" for b in before):
                token = self._hold(order_firings)
                return {"before": before, "after": after, "token": token}
            for f in order_firings:
                self.registry.note(f.seq, "not done: the request was refused")
            return {"before": before, "after": after}
        return self._apply(op, args, order_firings, after, api_key)

    def resume(self, token: int | None, api_key: str, op: str | None, args: tuple[Any, ...]) -> dict[str, Any]:
        """A delayed request, handled now (``after`` is already with the worker)."""
        order_firings = self._pending.pop(token, []) if token is not None else []
        return self._apply(op, args, order_firings, [], api_key)

    def _hold(self, firings: list[Firing]) -> int | None:
        if not firings:
            return None
        self._tokens += 1
        self._pending[self._tokens] = firings
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        return self._tokens

    def _apply(
        self,
        op: str | None,
        args: tuple[Any, ...],
        order_firings: list[Firing],
        after: list[dict[str, Any]],
        api_key: str,
    ) -> dict[str, Any]:
        reply = self.ex.apply_one(op, args) if op is not None else None
        if order_firings:
            order = self._order_of(reply, api_key)
            if order is None:
                for f in order_firings:
                    self.registry.note(f.seq, "not done: the request placed no order")
            else:
                self.effects.run(order_firings, order)
        return {"reply": reply, "after": after}

    def _order_of(self, reply: Any, api_key: str) -> Order | None:
        """The order a successful create, amend or cancel answered with (its ``orderId``)."""
        if reply is None or reply[0] != 0 or not isinstance(reply[1], bytes):
            return None
        try:
            order_id = orjson.loads(reply[1])["orderId"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        order = self.ex.book.orders.get(order_id)
        return order if order is not None and order.api_key == api_key else None

    def broadcast(self, kind: str, data: Any) -> None:
        """A worker's fault every worker must apply (an IP ban on every REST worker)."""
        if kind not in BROADCASTS:
            raise ValueError(f"not a broadcast: {kind!r}")
        self.ex.events.append(kind, data)

    def state(self) -> tuple[str, int, dict[str, Any]]:
        """How a worker starts following scenarios: the engine, its event cursor, the summary."""
        return self.ex.instance_id, self.ex.events.cursor, self.registry.summary()

    # -- WebSocket --------------------------------------------------------------------------------

    def take(self, kind: str, ctx: dict[str, Any], order_id: str | None = None) -> list[dict[str, Any]]:
        """The worker's share of what fires for a WS occurrence (the engine's is done here)."""
        firings = self.registry.take(kind, ctx, self.ex.now_ms())
        if not firings:
            return []
        order = self.ex.book.orders.get(order_id) if order_id else None
        return self.effects.run(firings, order)
