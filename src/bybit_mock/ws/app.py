"""The WS worker's shared state and its listener factory (the factory is the router).

Paths: ``/v5/public/{linear,spot,inverse,option}``, ``/v5/private`` and ``/v5/trade``; anything else is
refused with 404 before the upgrade. Query strings (e.g. ``?max_active_time=1m``) are
accepted and ignored.

Authentication on ``/v5/private`` and ``/v5/trade`` is acknowledged only after the state
service has answered for it (the ``watch`` that routes the account's pushes here, or the
engine's ``instance``): without the service there is nothing to trade against, so auth fails.

When the state service is restarted (a new engine: :meth:`WsApp.on_new_engine`), everything an
authenticated connection was promised belongs to the old engine: its orders, positions and
push stream are gone. Every authenticated private and trade connection is closed with 1012
(Service Restart) so its client reconnects and resyncs, and the worker reloads the market
models, re-sends its ``watch`` and hands the event poller the new engine's cursor.

Scripted faults (scenarios) on this worker's connections and streams are
:mod:`.scenarios`' and :mod:`.market_faults`'; with nothing armed they cost a lookup.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import uuid
from collections.abc import Callable
from typing import Any

from picows import WSCloseCode, WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener

from .. import metrics
from ..config import MockExchangeConfig
from ..instruments import CATEGORIES
from ..service.client import Reply, StateClient
from ..service.events import EventPoller
from . import messages
from .fanout import FanOut, Outbox
from .listeners import BaseListener, PrivateListener, PublicListener, now_ms
from .market_faults import MarketFaults
from .publisher import MarketPublisher
from .scenarios import WsScenarios
from .topics import PublicTopics
from .trade import TradeListener

log = logging.getLogger(__name__)

#: Seconds between attempts to resynchronise with a new engine that did not answer.
RESYNC_RETRY = 0.2
SERVICE_RESTART_REASON = "state service restarted: reconnect and resync"
#: the body of an upgrade a ``ws_refuse`` turns away (with HTTP 503, as Bybit's edge would)
REFUSED_BODY = b"503 Service Temporarily Unavailable"


def new_push_id() -> str:
    return str(uuid.uuid4())


PUBLIC_PATHS = {f"/v5/public/{c}": c for c in CATEGORIES}


class WsApp:
    def __init__(
        self, config: MockExchangeConfig, state: StateClient, loop: asyncio.AbstractEventLoop, name: str = "ws"
    ) -> None:
        self.config = config
        self.name = name  # this worker's name in the engine's watch table
        self.state = state
        self.loop = loop
        self.fanout = FanOut(loop, config.ws_max_buffer_bytes)
        self.connections = 0
        self.public_topics = PublicTopics(config)
        self.secrets: dict[str, str] = {}
        #: topic -> listeners subscribed to it on this worker (the fan-out index)
        self.subscribers: dict[tuple[str, str], set[BaseListener]] = {}
        #: api key -> authenticated private connections on this worker
        self.private: dict[str, set[PrivateListener]] = {}
        #: authenticated ``/v5/trade`` connections (closed, like private ones, on a new engine)
        self.trade: set[PrivateListener] = set()
        #: the engine instance this worker's models, cursor and watch belong to
        self.engine = ""
        self.poller: EventPoller[Any] | None = None
        self.publisher = MarketPublisher(
            loop, self.fanout, self.boxes_of, self._aux_rates, config.market.tesser_compat, self._start_market
        )
        #: every open connection on this worker (what a broadcast WS fault selects from)
        self.listeners: set[BaseListener] = set()
        #: ``metrics.py``'s instruments (None when metrics are off): connections, messages out
        self.metrics = metrics.current() if config.metrics else None
        if self.metrics is not None:
            self.listeners = metrics.CountedListeners(self.metrics)
            self._symbols = {inst.symbol for inst in config.instruments}
        self.market_faults = MarketFaults(self.publisher, loop, self.subscribers.keys)
        self.scenarios = WsScenarios(self, self.market_faults)
        self.publisher.on_batches = self._on_batches

    def _aux_rates(self, category: str, symbol: str) -> tuple[float, float]:
        cfg = self.config.market.for_symbol(category, symbol)
        return cfg.effective_ticker_rate, cfg.kline_rate

    def _start_market(self, category: str, symbol: str) -> None:
        """Start a paced canned market's clock (its first subscriber is here); the engine's
        ``market_reload`` brings the started model to every worker."""
        self.state.submit("market_start", (category, symbol), lambda reply: None)

    def boxes_of(self, category: str, topic: str) -> list[Outbox]:
        subs = self.subscribers.get((category, topic))
        if not subs:
            return []
        return [box for listener in subs if (box := listener.outbox) is not None]

    def _on_batches(self, category: str, batches: dict[str, list[bytes]]) -> None:
        """A tick's public messages (topic -> payloads), before they go out: scripted market
        faults, then the public message triggers (each a no-op while nothing is armed)."""
        self.market_faults.filter(category, batches)
        self.scenarios.count_public(category, batches)
        if self.metrics is not None:
            subscribers = self.subscribers
            self.metrics.ws_public_batches(
                category, batches, lambda topic: len(subscribers.get((category, topic), ())), self._symbols
            )

    def listener_factory(self, request: WSUpgradeRequest) -> Any:
        path = request.path.decode("latin-1").split("?", 1)[0]
        category = PUBLIC_PATHS.get(path)
        listener: BaseListener
        if category is not None:
            listener = PublicListener(self, category)
        elif path == "/v5/private":
            listener = PrivateListener(self)
        elif path == "/v5/trade":
            listener = TradeListener(self)
        else:
            return None  # picows answers 404
        if self.scenarios.refusals and self.scenarios.refusing("connect", listener.CHANNEL):
            response = WSUpgradeResponse.create_error_response(503, REFUSED_BODY)
            return WSUpgradeResponseWithListener(response, None)
        return listener

    # -- subscriptions ----------------------------------------------------------------------

    def hub_subscribe(self, listener: PublicListener, topics: list[str]) -> None:
        for topic in topics:
            self.subscribers.setdefault((listener.category, topic), set()).add(listener)
            if listener.outbox is not None:
                self.publisher.on_subscribe(listener.category, topic, listener.outbox)

    def on_events(self, events: list[tuple[str, Any]]) -> None:
        """Engine events (see ``engine/events.py``): market reloads, private account events, and
        scenarios' (summaries of what is armed, faults to apply, injected private events)."""
        if any(kind in ("market_reload", "gap") for kind, _ in events):
            self.reload_markets()
        for kind, data in events:
            if kind == "private":
                self.push_private(*data)
            elif kind in ("scenarios", "fault", "private_raw"):
                self.scenarios.on_event(kind, data)

    def push_private(self, api_key: str, pushes: list[tuple[str, str, bytes]]) -> None:
        """Send one change's messages to every connection of the account that subscribed.

        A connection subscribed to ``order`` gets every category's orders; one subscribed to
        ``order.linear`` gets linear ones, under that topic name, as Bybit sends them.
        """
        conns = self.private.get(api_key)
        if not conns:
            return
        now = now_ms()
        for topic, category, data in pushes:  # data: the engine's JSON of the items
            variants = (topic, f"{topic}.{category}") if category else (topic,)
            encoded: dict[str, bytes] = {}
            for conn in conns:
                for name in variants:
                    if name in conn.topics:
                        payload = encoded.get(name)
                        if payload is None:
                            payload = encoded[name] = messages.private_push(name, data, new_push_id(), now)
                        conn.send(payload)
                        if self.metrics is not None:
                            self.metrics.ws_sent("private", name, 1)

    def load_markets(self, models: bytes) -> None:
        """Publish from the engine's models (``market_models`` sends them pickled)."""
        self.publisher.load(pickle.loads(models))

    def reload_markets(self) -> None:
        def done(reply: Reply) -> None:
            code, value = reply
            if code == 0:
                self.load_markets(value[2])
            else:
                log.warning("could not reload market models: %s", value)

        self.state.submit("market_models", (), done)

    def hub_unsubscribe(self, listener: PublicListener, topics: list[str] | None = None) -> None:
        for topic in topics if topics is not None else list(listener.topics):
            subs = self.subscribers.get((listener.category, topic))
            if subs is not None:
                subs.discard(listener)
                if not subs:
                    del self.subscribers[(listener.category, topic)]
                    self.market_faults.forget(listener.category, topic)

    def private_authenticated(self, listener: PrivateListener, then: Callable[[bool], None]) -> None:
        """Route the account's pushes to ``listener``; ``then(ok)`` once the engine has answered.

        The listener is registered before the ``watch`` goes out, so a push the engine builds
        right after it is not missed; if the engine does not answer (the state service is
        down) it is unregistered again and ``then(False)``. The whole set goes every time:
        the commands apply in order, so the engine ends up with the latest one.
        """
        key = listener.api_key
        assert key is not None
        self.private.setdefault(key, set()).add(listener)
        engine = self.engine

        def done(reply: Reply) -> None:
            if reply[0] == 0 and self.engine == engine and listener in self.private.get(key, ()):
                then(True)
            else:
                self._unregister(listener)
                then(False)

        self.state.submit("watch", (self.name, sorted(self.private)), done)

    def trade_authenticated(self, listener: PrivateListener, then: Callable[[bool], None]) -> None:
        """``then(ok)``: ok once the engine this worker follows has answered (no pushes to route)."""
        engine = self.engine

        def done(reply: Reply) -> None:
            code, instance = reply
            ok = code == 0 and instance == engine == self.engine and listener.transport is not None
            if ok:
                self.trade.add(listener)
            then(ok)

        self.state.submit("instance", (), done)

    def private_disconnected(self, listener: PrivateListener) -> None:
        self.trade.discard(listener)
        self._unregister(listener)

    def _unregister(self, listener: PrivateListener) -> None:
        if listener.api_key is not None:
            conns = self.private.get(listener.api_key)
            if conns is not None and listener in conns:
                conns.discard(listener)
                if not conns:
                    del self.private[listener.api_key]
                    self.state.submit("watch", (self.name, sorted(self.private)), lambda reply: None)

    # -- a restarted state service -----------------------------------------------------------

    def on_new_engine(self, instance: str) -> None:
        """The state client reached a new engine (the state service was restarted)."""
        self.engine = instance
        closing = [conn for conns in self.private.values() for conn in conns] + list(self.trade)
        self.private.clear()
        self.trade.clear()
        if closing:
            log.warning("new engine: closing %d authenticated connection(s) with 1012", len(closing))
        for conn in closing:
            conn.close(WSCloseCode.SERVICE_RESTART, SERVICE_RESTART_REASON)
        self._resync(instance)
        self.scenarios.resync(instance)

    def _resync(self, instance: str) -> None:
        """Models and their cursor from ``instance`` (the reply names its engine), and the watch."""
        if self.engine != instance:
            return  # a newer engine took over; its own resync is under way

        def on_models(reply: Reply) -> None:
            if self.engine != instance:
                return
            code, value = reply
            if code == 0 and value[0] == instance:
                _, cursor, models = value
                self.load_markets(models)
                if self.poller is not None:
                    self.poller.resync(instance, cursor)
                log.info("resynchronised with the new engine %s", instance)
            else:
                self.loop.call_later(RESYNC_RETRY, self._resync, instance)

        self.state.submit("market_models", (), on_models)
        self.state.submit("watch", (self.name, sorted(self.private)), lambda reply: None)

    # -- secrets ----------------------------------------------------------------------------

    def look_up_key(self, api_key: str, then: Callable[[], None]) -> None:
        """Ask the engine for a key this worker has not seen, then run ``then``."""

        def done(reply: Reply) -> None:
            code, secret = reply
            if code == 0 and secret is not None:
                self.secrets[api_key] = secret
            then()

        self.state.submit("secret", (api_key,), done)
