"""The scenario types and their one JSON form.

A scenario is a trigger, an optional match, an action, how many times it fires, an optional
probability and time window, and a name. The same JSON object arms it from Python, from
``POST /__admin/scenarios`` and from ``[[scenarios]]`` in the config file::

    {"name": "entry-fill",
     "trigger": {"type": "order_create"},
     "match": {"symbol": "BTCUSDT", "side": "Buy"},
     "action": {"type": "fill_plan", "steps": [{"after_ms": 25, "quantity": "1", "price": "1001"}]},
     "times": 1}

Every type lists its fields in :mod:`.fields` (``TRIGGERS``, ``ACTIONS``) with how each is checked,
so a bad field is refused with its name (``action.steps[0].quantity: must be a decimal > 0``)
before anything is armed. Times are milliseconds in JSON; the Python constructors also take a
:class:`~datetime.timedelta`. Amounts are decimal strings, as on Bybit's wire.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

from .fields import (
    ACTIONS,
    MATCH_FIELDS,
    ORDER_ACTIONS,
    REST_AFTER,
    REST_BEFORE,
    TRIGGERS,
    WINDOW_FIELDS,
    ScenarioError,
    check_fields,
    count,
    nonempty_str,
    typed,
)
from .fields import ms as _ms

__all__ = [
    "ORDER_ACTIONS",
    "REST_AFTER",
    "REST_BEFORE",
    "Match",
    "OrderFillStep",
    "Scenario",
    "ScenarioAction",
    "ScenarioError",
    "ScenarioTrigger",
]


# -- the types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioTrigger:
    """When a scenario fires. The crate's four are constants; the rest are constructors."""

    type: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    ORDER_CREATE: ClassVar[ScenarioTrigger]
    ORDER_CANCEL: ClassVar[ScenarioTrigger]
    ORDER_AMEND: ClassVar[ScenarioTrigger]
    PRIVATE_DISCONNECT: ClassVar[ScenarioTrigger]
    PUBLIC_STREAM: ClassVar[ScenarioTrigger]
    #: fires as soon as it is armed (a timer at 0)
    NOW: ClassVar[ScenarioTrigger]

    def __post_init__(self) -> None:
        _, params = typed(TRIGGERS, {"type": self.type, **self.params}, "trigger")
        jitter = params.get("jitter_ms")
        if jitter is not None:  # each period is ``every_ms`` +- jitter, so it needs a period
            every = params.get("every_ms")
            if every is None:
                raise ScenarioError("trigger.jitter_ms", "needs every_ms (it jitters each period)")
            if jitter > every:
                raise ScenarioError("trigger.jitter_ms", "must be <= every_ms")
        object.__setattr__(self, "params", params)

    @classmethod
    def rest(cls, path: str, method: str | None = None) -> ScenarioTrigger:
        """Any REST route (``/v5/order/realtime``), optionally one method."""
        return cls("rest", _some(path=path, method=method))

    @classmethod
    def ws_connect(cls, channel: str | None = None) -> ScenarioTrigger:
        """A WebSocket connection opens (``public``, ``private``, ``trade``, or any)."""
        return cls("ws_connect", _some(channel=channel))

    @classmethod
    def ws_auth(cls, channel: str | None = None) -> ScenarioTrigger:
        return cls("ws_auth", _some(channel=channel))

    @classmethod
    def ws_subscribe(cls, channel: str | None = None) -> ScenarioTrigger:
        return cls("ws_subscribe", _some(channel=channel))

    @classmethod
    def message(cls, channel: str, nth: int = 1) -> ScenarioTrigger:
        """The ``nth`` message (then every ``nth``) on a ``public`` or ``private`` topic;
        name the topic with ``Match(topic=...)``."""
        return cls("message", {"channel": channel, "nth": nth})

    @classmethod
    def order_event(cls, event: str) -> ScenarioTrigger:
        """An order is ``created``, ``partially_filled``, ``filled``, ``cancelled``,
        ``triggered`` or ``rejected``."""
        return cls("order_event", {"event": event})

    @classmethod
    def timer(
        cls,
        after: float | timedelta = 0,
        every: float | timedelta | None = None,
        jitter: float | timedelta | None = None,
    ) -> ScenarioTrigger:
        """``after`` ms from arming (then every ``every`` ms, if given, each period moved by
        up to ``jitter`` ms either way, drawn from the seeded RNG)."""
        return cls("timer", _some(after_ms=_ms(after, "trigger.after_ms"), every_ms=every, jitter_ms=jitter))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}

    @classmethod
    def from_json(cls, raw: Any, where: str = "trigger") -> ScenarioTrigger:
        kind, params = typed(TRIGGERS, raw, where)
        return cls(kind, params)


ScenarioTrigger.ORDER_CREATE = ScenarioTrigger("order_create")
ScenarioTrigger.ORDER_CANCEL = ScenarioTrigger("order_cancel")
ScenarioTrigger.ORDER_AMEND = ScenarioTrigger("order_amend")
ScenarioTrigger.PRIVATE_DISCONNECT = ScenarioTrigger("private_disconnect")
ScenarioTrigger.PUBLIC_STREAM = ScenarioTrigger("public_stream")
ScenarioTrigger.NOW = ScenarioTrigger("timer", {"after_ms": 0})


@dataclass(frozen=True)
class OrderFillStep:
    """One step of a fill plan: ``after`` (ms or a timedelta) the previous one, fill
    ``quantity`` at ``price`` (the order's own price, or the market's, if None)."""

    after: float | timedelta
    quantity: Decimal | int | str | float
    price: Decimal | int | str | float | None = None

    def to_json(self) -> dict[str, Any]:
        return _some(after_ms=_ms(self.after, "after"), quantity=str(self.quantity), price=_opt_str(self.price))


@dataclass(frozen=True)
class ScenarioAction:
    """What a scenario does; build one with the constructors (``ScenarioAction.delay(200)``)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _, params = typed(ACTIONS, {"type": self.type, **self.params}, "action")
        object.__setattr__(self, "params", params)

    # the crate's
    @classmethod
    def delay(cls, ms: float | timedelta) -> ScenarioAction:
        """Hold the request ``ms`` before it is handled (never blocking the worker)."""
        return cls("delay", {"ms": _ms(ms, "action.ms")})

    @classmethod
    def fail(
        cls, ret_code: int = 10016, ret_msg: str = "Internal System Error.", http_status: int = 200
    ) -> ScenarioAction:
        """Refuse the request, Bybit's way by default (HTTP 200, this retCode and retMsg)."""
        return cls("fail", {"ret_code": ret_code, "ret_msg": ret_msg, "http_status": http_status})

    @classmethod
    def inject_private_event(cls, event: dict[str, Any], api_key: str | None = None) -> ScenarioAction:
        """Send ``event`` (any JSON object) to the account's private sockets as it is."""
        return cls("inject_private_event", _some(event=event, api_key=api_key))

    @classmethod
    def fill_plan(cls, steps: list[OrderFillStep]) -> ScenarioAction:
        """Fill the order step by step (each ``after`` the previous); a cancelled or filled
        order is not filled further."""
        return cls("fill_plan", {"steps": [s.to_json() for s in steps]})

    @classmethod
    def auto_fill(cls, after: float | timedelta = 0, price: str | Decimal | int = "order") -> ScenarioAction:
        """Fill the whole order ``after`` ms, at its own price (``"order"``), the market's
        (``"market"``) or a fixed price."""
        return cls("auto_fill", {"after_ms": _ms(after, "action.after_ms"), "price": str(price)})

    # REST transport
    @classmethod
    def http_error(cls, status: int) -> ScenarioAction:
        """Answer with this HTTP status and the body Bybit's edge sends (502, 503, 504, 403 ...)."""
        return cls("http_error", {"status": status})

    @classmethod
    def reset(cls) -> ScenarioAction:
        """Reset the connection (TCP RST) instead of answering; the request is not handled."""
        return cls("reset")

    @classmethod
    def hang(cls) -> ScenarioAction:
        """Never answer (until the client gives up); the request is not handled."""
        return cls("hang")

    @classmethod
    def slow(cls, ms: float | timedelta) -> ScenarioAction:
        """Handle the request at once but answer ``ms`` later."""
        return cls("slow", {"ms": _ms(ms, "action.ms")})

    @classmethod
    def rate_limit(cls) -> ScenarioAction:
        """Answer 10006 "Too many visits!" with the rate-limit headers."""
        return cls("rate_limit")

    @classmethod
    def ip_ban(cls, for_ms: float | timedelta = 600_000) -> ScenarioAction:
        """HTTP 403 to every REST request from the client's IP for ``for_ms``."""
        return cls("ip_ban", {"for_ms": _ms(for_ms, "action.for_ms")})

    # orders
    @classmethod
    def reject(cls, reason: str = "EC_NoImmediateQtyToFill") -> ScenarioAction:
        """Accept the order, then reject it: a ``Rejected`` push with ``rejectReason``."""
        return cls("reject", {"reason": reason})

    @classmethod
    def partial_fill_then_cancel(
        cls, quantity: Decimal | int | str, price: Decimal | int | str | None = None, after: float | timedelta = 0
    ) -> ScenarioAction:
        return cls(
            "partial_fill_then_cancel",
            _some(quantity=str(quantity), price=_opt_str(price), after_ms=_ms(after, "action.after_ms")),
        )

    @classmethod
    def ghost(cls, mode: str = "reset") -> ScenarioAction:
        """Place the order, then lose the answer (``reset`` the connection or ``timeout``)."""
        return cls("ghost", {"mode": mode})

    # the private stream
    @classmethod
    def private_stream(
        cls,
        fault: str,
        *,
        api_key: str | None = None,
        topic: str | None = None,
        count: int | None = None,
        for_ms: float | timedelta | None = None,
        ms: float | timedelta | None = None,
    ) -> ScenarioAction:
        """``drop``, ``duplicate``, ``reorder`` or ``delay`` (by ``ms``) the account's private
        messages on ``topic`` (all by default), for ``count`` messages or ``for_ms``."""
        return cls(f"private_{fault}", _some(api_key=api_key, topic=topic, count=count, for_ms=for_ms, ms=ms))

    # WebSocket connections
    @classmethod
    def ws_close(
        cls, code: int = 1001, reason: str = "scripted close", channel: str | None = None, api_key: str | None = None
    ) -> ScenarioAction:
        return cls("ws_close", _some(code=code, reason=reason, channel=channel, api_key=api_key))

    @classmethod
    def ws_reset(cls, channel: str | None = None, api_key: str | None = None) -> ScenarioAction:
        return cls("ws_reset", _some(channel=channel, api_key=api_key))

    @classmethod
    def ws_stall(cls, ms: float | timedelta, channel: str | None = None, api_key: str | None = None) -> ScenarioAction:
        return cls("ws_stall", _some(ms=ms, channel=channel, api_key=api_key))

    @classmethod
    def ws_refuse(
        cls, ms: float | timedelta, what: str = "connect", channel: str | None = None, api_key: str | None = None
    ) -> ScenarioAction:
        return cls("ws_refuse", _some(ms=ms, what=what, channel=channel, api_key=api_key))

    # market data
    @classmethod
    def market(
        cls, fault: str, symbol: str | None = None, category: str | None = None, **fields: Any
    ) -> ScenarioAction:
        """``book_gap``, ``book_reset``, ``stale``, ``price_jump``, ``duplicate_trades`` or
        ``reorder_trades`` on a symbol's streams."""
        return cls(fault, _some(symbol=symbol, category=category, **fields))

    # state
    @classmethod
    def edit_balance(
        cls, coin: str, amount: Decimal | int | str, api_key: str | None = None, push: bool = False
    ) -> ScenarioAction:
        """Set a wallet balance behind the client's back; ``push`` sends a wallet message."""
        return cls("edit_balance", _some(coin=coin, amount=str(amount), api_key=api_key, push=push))

    @classmethod
    def edit_position(
        cls,
        symbol: str,
        side: str,
        size: Decimal | int | str,
        entry_price: Decimal | int | str,
        api_key: str | None = None,
        category: str = "linear",
        push: bool = False,
    ) -> ScenarioAction:
        return cls(
            "edit_position",
            _some(
                symbol=symbol,
                side=side,
                size=str(size),
                entry_price=str(entry_price),
                api_key=api_key,
                category=category,
                push=push,
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}

    @classmethod
    def from_json(cls, raw: Any, where: str = "action") -> ScenarioAction:
        kind, params = typed(ACTIONS, raw, where)
        return cls(kind, params)


@dataclass(frozen=True)
class Match:
    """Which requests, connections or messages a trigger applies to (every field optional).

    ``order_link_id`` and ``topic`` are shell-style patterns (``bot-*``)."""

    api_key: str | None = None
    category: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_link_id: str | None = None
    topic: str | None = None

    def __post_init__(self) -> None:
        check_fields(MATCH_FIELDS, self.to_json(), "match")

    def to_json(self) -> dict[str, Any]:
        return _some(
            api_key=self.api_key,
            category=self.category,
            symbol=self.symbol,
            side=self.side,
            order_link_id=self.order_link_id,
            topic=self.topic,
        )

    @classmethod
    def from_json(cls, raw: Any, where: str = "match") -> Match:
        return cls(**check_fields(MATCH_FIELDS, raw, where))

    def matches(self, ctx: Mapping[str, Any]) -> bool:
        """Whether a context (``api_key``, ``category``, ``symbol``, ``side``, ``order_link_id``,
        ``topic``; a missing key never matches a set field) is one this match names."""
        for name in ("api_key", "category", "symbol", "side"):
            want = getattr(self, name)
            if want is not None and ctx.get(name) != want:
                return False
        for name in ("order_link_id", "topic"):
            pattern = getattr(self, name)
            if pattern is not None:
                value = ctx.get(name)
                if not isinstance(value, str) or not fnmatch.fnmatchcase(value, pattern):
                    return False
        return True


@dataclass(frozen=True)
class Scenario:
    """A named trigger -> action, firing ``times`` times (None: no limit), each time with
    ``probability`` (drawn from the seeded RNG), within ``window`` (``after_ms`` / ``for_ms``
    from arming, or absolute ``from_ms`` / ``until_ms``)."""

    name: str
    trigger: ScenarioTrigger
    action: ScenarioAction
    match: Match = field(default_factory=Match)
    times: int | None = 1
    probability: float | None = None
    window: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        nonempty_str(self.name, "name")
        if self.times is not None:
            count(self.times, "times")
        p = self.probability
        if p is not None and (isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1):
            raise ScenarioError("probability", "must be a number in (0, 1]")
        if self.window is not None:
            object.__setattr__(self, "window", check_fields(WINDOW_FIELDS, self.window, "window"))

    @classmethod
    def fail(cls, name: str, trigger: ScenarioTrigger, status: int, reason: str) -> Scenario:
        """The crate's ``Scenario::fail``: HTTP ``status`` (200: Bybit's way, retCode 10001)."""
        code = 10001 if status < 500 else 10016
        return cls(name, trigger, ScenarioAction.fail(ret_code=code, ret_msg=reason, http_status=status))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "trigger": self.trigger.to_json(), "action": self.action.to_json()}
        match = self.match.to_json()
        if match:
            out["match"] = match
        out["times"] = self.times
        if self.probability is not None:
            out["probability"] = self.probability
        if self.window:
            out["window"] = dict(self.window)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Scenario:
        """The JSON form (from HTTP or the config file), checked field by field."""
        if not isinstance(raw, Mapping):
            raise ScenarioError("scenario", "must be a JSON object")
        known = {"name", "trigger", "action", "match", "times", "probability", "window", "id"}
        extra = sorted(set(raw) - known)
        if extra:
            raise ScenarioError(extra[0], f"unknown field (known: {', '.join(sorted(known - {'id'}))})")
        if "trigger" not in raw:
            raise ScenarioError("trigger", "is required")
        if "action" not in raw:
            raise ScenarioError("action", "is required")
        times = raw.get("times", 1)
        if "times" in raw and raw["times"] in (None, "unlimited"):  # TOML has no null: it says "unlimited"
            times = None
        return cls(
            name=raw.get("name", "") or _default_name(raw),
            trigger=ScenarioTrigger.from_json(raw["trigger"]),
            action=ScenarioAction.from_json(raw["action"]),
            match=Match.from_json(raw.get("match") or {}),
            times=times,
            probability=raw.get("probability"),
            window=raw.get("window"),
        )


def _default_name(raw: Mapping[str, Any]) -> str:
    trigger, action = raw.get("trigger"), raw.get("action")
    t = trigger.get("type") if isinstance(trigger, Mapping) else None
    a = action.get("type") if isinstance(action, Mapping) else None
    return f"{t}->{a}" if isinstance(t, str) and isinstance(a, str) else "scenario"


def _some(**values: Any) -> dict[str, Any]:
    """The given values that are not None (the JSON form leaves unset fields out)."""
    return {k: v for k, v in values.items() if v is not None}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
