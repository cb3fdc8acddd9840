"""Scenario faults on WebSocket: what a WS worker asks about, and what it does to its connections.

**Nothing armed costs nothing.** The worker knows what is armed from the engine's summary
(``scenario_state`` at start and after a new engine, then every ``("scenarios", summary)``
event, the newest version kept), and asks the engine (``scenario_take``) only about an
occurrence whose trigger is armed for its channel: a connect, an auth, a subscribe, an
authenticated private connection going away (``private_disconnect``), an order op on
``/v5/trade`` (``scenario_rest``, see :mod:`.trade_faults`), or a message on a public topic an
armed pattern names (``message`` and ``public_stream``: every such message is one question,
since the engine counts toward ``nth`` and decides atomically across workers). Anything else
goes its usual way after one dict or set lookup.

**While the engine decides, the connection waits.** A connect, auth or subscribe on an armed
channel pauses the connection (its later frames queue, in order) until the answer is carried
out: ``delay`` holds the request, then it goes on; ``fail`` refuses it with the channel's own
error ack; ``ws_close`` (a close frame with the code and reason), ``ws_reset`` (no close
frame) and ``ws_stall`` act on that connection; ``ws_refuse`` refuses new connections (HTTP
503 on the upgrade) or auths on this worker for ``ms``; market actions go to
:mod:`.market_faults`. A message trigger acts on the topic's subscribers on this worker.

**Actions fired by anything else** (a timer, a REST request, an order event) arrive as
``("fault", action)`` events at every WS worker, each acting on its own connections that the
action selects (``channel``, ``api_key``; none: all). ``("private_raw", (api_key, event))``
sends an injected event as it is to the account's authenticated private connections (every
account's if None).

Every action carried out here is added to its firing's journal entry (``scenario_note``).
Delays and stalls are timers on the loop: a worker never blocks.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..service.client import Reply
from .market_faults import MARKET_ACTIONS, MarketFaults
from .trade_faults import TradeFaults

if TYPE_CHECKING:
    from .app import WsApp
    from .listeners import BaseListener

log = logging.getLogger(__name__)

#: one firing the engine left to this worker: ``{"action": {...}, "seq": int, "ctx": {...}}``
Item = dict[str, Any]
Then = Callable[[], None]
#: the request a trigger stood for, carried on: it calls its argument once it has been handled
Proceed = Callable[[Then], None]
#: the request refused with a ``fail`` action's code and message
Refuse = Callable[[int, str], None]

CONNECTION_ACTIONS = frozenset({"ws_close", "ws_reset", "ws_stall"})
#: seconds between attempts to read a new engine's summary
RESYNC_RETRY = 0.2
#: subscriber ids a public message's journal entry names at most
MAX_CONN_IDS = 3


def _nothing() -> None:
    pass


@dataclass
class Refusal:
    what: str  # "connect" or "auth"
    until_ms: float
    channel: str | None
    api_key: str | None

    def applies(self, what: str, channel: str, api_key: str | None, now: float) -> bool:
        return (
            self.what == what
            and now < self.until_ms
            and self.channel in (None, channel)
            and (self.api_key is None or self.api_key == api_key)
        )


class WsScenarios:
    def __init__(self, app: WsApp, market: MarketFaults) -> None:
        self.app = app
        self.market = market
        self.trade = TradeFaults(app.state, app.loop, self.note)
        self.version = -1
        #: trigger kind -> channels it is armed for ("*": any); ``trade_op`` -> order trigger kinds
        self.ws: dict[str, list[str]] = {}
        #: topic patterns a public message trigger is armed for
        self.public: list[str] = []
        self._public_hits: dict[str, bool] = {}
        self.refusals: list[Refusal] = []
        #: questions asked of the engine (``scenario_take``), for tests and benchmarks
        self.asked = 0

    # -- what is armed ----------------------------------------------------------------------------

    def learn(self, summary: dict[str, Any]) -> None:
        """Adopt the engine's summary of armed scenarios, unless it is older than ours."""
        version = summary.get("version", 0)
        if version >= self.version:
            self.version = version
            self.ws = summary.get("ws", {})
            self.public = summary.get("public", [])
            self._public_hits = {}

    def resync(self, instance: str) -> None:
        """A new engine: its versions start again, so read its summary afresh."""
        self.version = -1

        def done(reply: Reply) -> None:
            if self.app.engine != instance:
                return  # a newer engine took over
            if reply[0] == 0 and reply[1][0] == instance:
                self.learn(reply[1][2])
            else:
                self.app.loop.call_later(RESYNC_RETRY, self.resync, instance)

        self.app.state.submit("scenario_state", (), done)

    def armed(self, kind: str, channel: str) -> bool:
        channels = self.ws.get(kind)
        return channels is not None and ("*" in channels or channel in channels)

    def trade_armed(self, kind: str) -> bool:
        return kind in self.ws.get("trade_op", ())

    def public_armed(self, topic: str) -> bool:
        hit = self._public_hits.get(topic)
        if hit is None:
            hit = self._public_hits[topic] = any(p == "*" or fnmatch.fnmatchcase(topic, p) for p in self.public)
        return hit

    # -- asking the engine ------------------------------------------------------------------------

    def take(self, kind: str, ctx: dict[str, Any], then: Callable[[list[Item]], None]) -> None:
        """What fires for one occurrence; ``then(items)`` gets this worker's share ([] if the
        engine is away: a fault must not take the exchange down with it)."""
        self.asked += 1

        def done(reply: Reply) -> None:
            then(reply[1] if reply[0] == 0 else [])

        self.app.state.submit("scenario_take", (kind, ctx), done)

    def note(self, seq: int | None, what: str) -> None:
        """Add what was done to the firing's journal entry (fire and forget)."""
        if seq is not None:
            self.app.state.submit("scenario_note", (seq, what), lambda reply: None)

    # -- connect, auth, subscribe, disconnect -------------------------------------------------------

    def gate(
        self,
        listener: BaseListener,
        kind: str,
        ctx: dict[str, Any],
        proceed: Proceed,
        refuse: Refuse | None = None,
    ) -> None:
        """Run a request that may trigger ``kind``: at once if nothing is armed for the
        listener's channel, else once the engine has answered and its actions are carried out."""
        if not self.armed(kind, listener.CHANNEL):
            proceed(_nothing)
            return
        full = listener.scenario_ctx() | ctx
        listener.pause()
        self.take(kind, full, lambda items: self._carry(listener, items, full, proceed, refuse))

    def _carry(
        self,
        listener: BaseListener,
        items: list[Item],
        ctx: dict[str, Any],
        proceed: Proceed,
        refuse: Refuse | None,
    ) -> None:
        delay_ms = 0.0
        fail: Item | None = None
        market: list[Item] = []
        going_on = True
        for item in items:
            action, seq = item["action"], item["seq"]
            kind = action["type"]
            if kind == "delay":
                delay_ms += float(action["ms"])
                self.note(seq, f"held {action['ms']} ms")
            elif kind == "fail" and refuse is not None and fail is None:
                fail = item
            elif kind in CONNECTION_ACTIONS:
                going_on = self.act(listener, item) and going_on
            elif kind in MARKET_ACTIONS:
                market.append(item)  # after the request: a subscribe's topic is then in place
            elif not self._refusal(item):
                self.note(seq, f"not done: {kind} has no form for a WS {ctx.get('channel')} request")
        if not going_on:
            return  # closed or reset: the queued frames go with the connection

        def installed() -> None:
            for m in market:
                self.note(m["seq"], self.market.install(m["action"], ctx))

        def go() -> None:
            if fail is not None and refuse is not None:
                action = fail["action"]
                refuse(action["ret_code"], action["ret_msg"])
                self.note(fail["seq"], f"refused with {action['ret_code']} {action['ret_msg']!r}")
                installed()
            else:
                proceed(installed)

        if delay_ms > 0:
            self.app.loop.call_later(delay_ms / 1000, listener.resume, go)
        else:
            listener.resume(go)

    def disconnected(self, listener: BaseListener) -> None:
        """An authenticated ``/v5/private`` connection went away (``private_disconnect``)."""
        if not self.armed("private_disconnect", "private"):
            return
        ctx = listener.scenario_ctx()
        self.take("private_disconnect", ctx, lambda items: self.carry_elsewhere(items, ctx, None))

    def carry_elsewhere(self, items: list[Item], ctx: dict[str, Any], subscribers: set[BaseListener] | None) -> None:
        """Actions of a trigger with no live connection of its own: a disconnect (none) or a
        public message (the topic's ``subscribers`` on this worker)."""
        for item in items:
            kind = item["action"]["type"]
            if kind in CONNECTION_ACTIONS:
                targets = [s for s in subscribers or () if s.transport is not None]
                if targets:
                    for listener in targets:
                        self.act(listener, item)
                else:
                    self.note(item["seq"], f"not done: no connection to {kind} (it is gone)")
            elif kind in MARKET_ACTIONS:
                self.note(item["seq"], self.market.install(item["action"], ctx))
            elif not self._refusal(item):
                self.note(item["seq"], f"not done: {kind} has no form here")

    def _refusal(self, item: Item) -> bool:
        """Install ``item`` if it is a ``ws_refuse`` (it acts on this worker's next connects or
        auths, not on a connection); False if it is not one."""
        action = item["action"]
        if action["type"] != "ws_refuse":
            return False
        self.note(item["seq"], self.add_refusal(action))
        return True

    # -- public messages ----------------------------------------------------------------------------

    def count_public(self, category: str, batches: dict[str, list[bytes]]) -> None:
        """Ask about each message about to go out on an armed public topic (none when unarmed)."""
        if not self.public:
            return
        for topic, payloads in batches.items():
            if not payloads or not self.public_armed(topic):
                continue
            subscribers = self.app.subscribers.get((category, topic))
            if not subscribers:
                continue
            ids = sorted(s.conn_id for s in subscribers)
            more = f"+{len(ids) - MAX_CONN_IDS}" if len(ids) > MAX_CONN_IDS else ""
            ctx = {
                "channel": "public",
                "category": category,
                "topic": topic,
                "symbol": topic.rsplit(".", 1)[-1],
                "conn_id": ",".join(ids[:MAX_CONN_IDS]) + more,  # a connection of ours: the actions come back
            }
            then = self._public_fired(category, topic, ctx)
            for _ in payloads:
                self.take("message", ctx, then)
                self.take("public_stream", ctx, then)

    def _public_fired(self, category: str, topic: str, ctx: dict[str, Any]) -> Callable[[list[Item]], None]:
        def fired(items: list[Item]) -> None:
            if items:
                self.carry_elsewhere(items, ctx, set(self.app.subscribers.get((category, topic), ())))

        return fired

    # -- acting on connections ------------------------------------------------------------------------

    def act(self, listener: BaseListener, item: Item) -> bool:
        """Close, reset or stall one connection; whether it goes on (only a stall lets it)."""
        action = item["action"]
        kind = action["type"]
        if listener.transport is None:
            self.note(item["seq"], f"not done: {listener.conn_id} is gone")
            return False
        if kind == "ws_close":
            code, reason = int(action["code"]), str(action["reason"])
            listener.close(code, reason)
            self.note(item["seq"], f"closed {listener.CHANNEL} {listener.conn_id} with {code} {reason!r}")
            return False
        if kind == "ws_reset":
            listener.drop("scripted reset")
            self.note(item["seq"], f"reset {listener.CHANNEL} {listener.conn_id} (no close frame)")
            return False
        listener.stall(float(action["ms"]))
        self.note(item["seq"], f"stalled {listener.CHANNEL} {listener.conn_id} for {action['ms']} ms")
        return True

    def add_refusal(self, action: dict[str, Any]) -> str:
        what, ms = action.get("what", "connect"), float(action["ms"])
        channel, api_key = action.get("channel"), action.get("api_key")
        now = self.app.loop.time() * 1000
        self.refusals = [r for r in self.refusals if r.until_ms > now]
        self.refusals.append(Refusal(what, now + ms, channel, api_key))
        whom = " ".join(x for x in (channel, api_key) if x) or "every channel"
        return f"refusing {what} ({whom}) for {ms:g} ms on {self.app.name}"

    def refusing(self, what: str, channel: str, api_key: str | None = None) -> bool:
        """Whether a ``ws_refuse`` in force turns this connect or auth away (callers check
        ``refusals`` first: an empty list costs nothing)."""
        now = self.app.loop.time() * 1000
        return any(r.applies(what, channel, api_key, now) for r in self.refusals)

    def selected(self, action: dict[str, Any]) -> list[BaseListener]:
        channel, api_key = action.get("channel"), action.get("api_key")
        return [
            listener
            for listener in self.app.listeners
            if (channel is None or channel == listener.CHANNEL)
            and (api_key is None or getattr(listener, "api_key", None) == api_key)
        ]

    # -- engine events --------------------------------------------------------------------------------

    def on_event(self, kind: str, data: Any) -> None:
        if kind == "scenarios":
            self.learn(data)
        elif kind == "fault":
            self.apply_fault(data)
        elif kind == "private_raw":
            api_key, event = data
            self.inject(api_key, event)

    def apply_fault(self, action: dict[str, Any]) -> None:
        """An action fired away from any connection, for every WS worker to apply to its own."""
        kind = action.get("type")
        item: Item = {"action": action, "seq": action.get("seq")}  # a seq, if the engine sends one
        if kind in CONNECTION_ACTIONS:
            targets = self.selected(action)
            for listener in targets:
                self.act(listener, item)
            if not targets:
                log.info("%s: no connection selected on this worker", kind)
        elif kind in MARKET_ACTIONS:
            self.note(item["seq"], f"{self.app.name}: {self.market.install(action, {})}")
        elif kind == "ws_refuse":
            self.note(item["seq"], self.add_refusal(action))
        else:
            log.warning("unknown WS fault %r", kind)

    def inject(self, api_key: str | None, event: Any) -> None:
        """An injected private event, as it is, to the account's authenticated private sockets."""
        private = self.app.private
        conns = private.get(api_key, set()) if api_key is not None else {c for s in private.values() for c in s}
        if conns:
            payload = orjson.dumps(event)
            for conn in conns:
                conn.send(payload)
