"""The scenario JSON form's fields: what each trigger and action type takes, and how each field
is checked.

Every field is ``(check, required, default)``. A check returns the normalised JSON value or
raises :class:`ScenarioError` naming the field by its path (``action.steps[0].quantity``), so
Python, HTTP and TOML all refuse a bad scenario the same way, before anything is armed.
Times are milliseconds (a :class:`~datetime.timedelta` is accepted from Python); amounts are
decimal strings, as on Bybit's wire.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any


class ScenarioError(ValueError):
    """A scenario field is missing or invalid; ``field`` names it (``action.ms``)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


Check = Callable[[Any, str], Any]


# -- field checks: each returns the normalised JSON value or raises ScenarioError ------------


def ms(value: Any, where: str) -> float | int:
    if isinstance(value, timedelta):
        value = value.total_seconds() * 1000
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400_000 * 365:
        raise ScenarioError(where, "must be a number of milliseconds >= 0")
    return value


def count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScenarioError(where, "must be an integer >= 1")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31:
        raise ScenarioError(where, "must be an integer")
    return value


def nonempty_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise ScenarioError(where, "must be a non-empty string")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise ScenarioError(where, "must be a string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(where, "must be true or false")
    return value


def _number(value: Any, where: str, problem: str) -> Decimal:
    """``value`` (a string or a JSON number, not a bool) as a Decimal, or ``problem``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ScenarioError(where, problem)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ScenarioError(where, problem) from None


def _decimal(value: Any, where: str, positive: bool = True) -> str:
    number = _number(value, where, 'must be a decimal (a string such as "0.01", or a number)')
    if not number.is_finite() or (positive and number <= 0) or (not positive and number < 0):
        raise ScenarioError(where, "must be a decimal > 0" if positive else "must be a decimal >= 0")
    return str(number)


def _amount(value: Any, where: str) -> str:
    return _decimal(value, where, positive=False)


def _http_status(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ScenarioError(where, "must be an HTTP status from 100 to 599")
    return value


def _ws_code(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (1000 <= value <= 1014 or 3000 <= value <= 4999):
        raise ScenarioError(where, "must be a WebSocket close code (1000-1014 or 3000-4999)")
    return value


def _percent(value: Any, where: str) -> str:
    """A signed decimal percentage (``-5`` is a 5 % fall), above -100."""
    number = _number(value, where, "must be a decimal percentage")
    if not number.is_finite() or number <= -100:
        raise ScenarioError(where, "must be a decimal percentage above -100")
    return str(number)


def _position_idx(value: Any, where: str) -> int:
    if value not in (0, 1, 2) or isinstance(value, bool):
        raise ScenarioError(where, "must be 0 (one-way), 1 (hedge long) or 2 (hedge short)")
    return int(value)


def _json(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ScenarioError(where, "must be a JSON object")
    return value


def _one_of(*choices: str) -> Check:
    def check(value: Any, where: str) -> str:
        if value not in choices:
            raise ScenarioError(where, f"must be one of {', '.join(repr(c) for c in choices)}")
        return str(value)

    return check


def _price_rule(value: Any, where: str) -> str:
    if value in ("order", "market"):
        return str(value)
    try:
        return _decimal(value, where)
    except ScenarioError:
        raise ScenarioError(where, 'must be "order", "market" or a price > 0') from None


def _steps(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > 1000:
        raise ScenarioError(where, "must be a non-empty list of steps")
    return [check_fields(STEP_FIELDS, step, f"{where}[{i}]") for i, step in enumerate(value)]


CHANNELS = ("public", "private", "trade")
ORDER_EVENTS = ("created", "partially_filled", "filled", "cancelled", "triggered", "rejected")

#: a field: (check, required, default); optional fields without a default are left out
Spec = dict[str, tuple[Check, bool, Any]]

STEP_FIELDS: Spec = {
    "after_ms": (ms, False, 0),
    "quantity": (_decimal, True, None),
    "price": (_decimal, False, None),
}

_CHANNEL: Spec = {"channel": (_one_of(*CHANNELS), False, None)}
_TARGET: Spec = {**_CHANNEL, "api_key": (nonempty_str, False, None)}
_STREAM: Spec = {
    "api_key": (nonempty_str, False, None),
    "topic": (nonempty_str, False, None),
    "count": (count, False, None),
    "for_ms": (ms, False, None),
}
_MARKET: Spec = {
    "symbol": (nonempty_str, False, None),
    "category": (_one_of("linear", "inverse", "spot", "option"), False, None),
}

#: trigger type -> fields
TRIGGERS: dict[str, Spec] = {
    "rest": {"path": (nonempty_str, True, None), "method": (_one_of("GET", "POST"), False, None)},
    "order_create": {},
    "order_amend": {},
    "order_cancel": {},
    "private_disconnect": {},
    "public_stream": {"nth": (count, False, 1)},
    "ws_connect": dict(_CHANNEL),
    "ws_auth": dict(_CHANNEL),
    "ws_subscribe": dict(_CHANNEL),
    "message": {"channel": (_one_of("public", "private"), True, None), "nth": (count, False, 1)},
    "order_event": {"event": (_one_of(*ORDER_EVENTS), True, None)},
    "timer": {"after_ms": (ms, False, 0), "every_ms": (ms, False, None), "jitter_ms": (ms, False, None)},
}

#: action type -> fields
ACTIONS: dict[str, Spec] = {
    # the crate's four, and its later auto-fill
    "delay": {"ms": (ms, True, None)},
    "fail": {
        "ret_code": (_int, False, 10016),
        "ret_msg": (_text, False, "Internal System Error."),
        "http_status": (_http_status, False, 200),
    },
    "inject_private_event": {"event": (_json, True, None), "api_key": (nonempty_str, False, None)},
    "fill_plan": {"steps": (_steps, True, None)},
    "auto_fill": {"after_ms": (ms, False, 0), "price": (_price_rule, False, "order")},
    # REST transport
    "http_error": {"status": (_http_status, True, None)},
    "reset": {},
    "hang": {},
    "slow": {"ms": (ms, True, None)},
    "rate_limit": {},
    "ip_ban": {"for_ms": (ms, False, 600_000)},
    # orders
    "reject": {"reason": (nonempty_str, False, "EC_NoImmediateQtyToFill")},
    "partial_fill_then_cancel": {
        "quantity": (_decimal, True, None),
        "price": (_decimal, False, None),
        "after_ms": (ms, False, 0),
    },
    "ghost": {"mode": (_one_of("reset", "timeout"), False, "reset")},
    # the private stream
    "private_drop": dict(_STREAM),
    "private_duplicate": dict(_STREAM),
    "private_reorder": dict(_STREAM),
    "private_delay": {**_STREAM, "ms": (ms, True, None)},
    # WebSocket connections
    "ws_close": {**_TARGET, "code": (_ws_code, False, 1001), "reason": (_text, False, "scripted close")},
    "ws_reset": dict(_TARGET),
    "ws_stall": {**_TARGET, "ms": (ms, True, None)},
    "ws_refuse": {**_TARGET, "ms": (ms, True, None), "what": (_one_of("connect", "auth"), False, "connect")},
    # market data
    "book_gap": {**_MARKET, "depth": (count, False, None)},
    "book_reset": {**_MARKET, "depth": (count, False, None)},
    "stale": {**_MARKET, "topic": (nonempty_str, False, None), "ms": (ms, True, None)},
    "price_jump": {**_MARKET, "price": (_decimal, False, None), "percent": (_percent, False, None)},
    "duplicate_trades": {**_MARKET, "count": (count, False, 1)},
    "reorder_trades": {**_MARKET, "count": (count, False, 2)},
    # state behind the client's back
    "edit_balance": {
        "api_key": (nonempty_str, False, None),
        "coin": (nonempty_str, True, None),
        "amount": (_amount, True, None),
        "push": (_bool, False, False),
    },
    "edit_position": {
        "api_key": (nonempty_str, False, None),
        "symbol": (nonempty_str, True, None),
        "side": (_one_of("Buy", "Sell"), True, None),
        "size": (_amount, True, None),
        "entry_price": (_decimal, True, None),
        "category": (_one_of("linear", "inverse"), False, "linear"),
        "position_idx": (_position_idx, False, 0),
        "push": (_bool, False, False),
    },
}

#: actions that act on the REST request before the engine sees it (the rest act after)
REST_BEFORE = frozenset({"delay", "fail", "http_error", "reset", "hang", "rate_limit", "ip_ban"})
#: actions the REST worker carries out on the answer of an applied request
REST_AFTER = frozenset({"slow", "ghost"})
#: actions on the order a request or an order event names
ORDER_ACTIONS = frozenset({"fill_plan", "auto_fill", "reject", "partial_fill_then_cancel"})

MATCH_FIELDS: Spec = {
    "api_key": (nonempty_str, False, None),
    "category": (_one_of("linear", "inverse", "spot", "option"), False, None),
    "symbol": (nonempty_str, False, None),
    "side": (_one_of("Buy", "Sell"), False, None),
    "order_link_id": (nonempty_str, False, None),
    "topic": (nonempty_str, False, None),
}

WINDOW_FIELDS: Spec = {
    "after_ms": (ms, False, None),
    "for_ms": (ms, False, None),
    "from_ms": (_int, False, None),
    "until_ms": (_int, False, None),
}


def check_fields(spec: Spec, raw: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ScenarioError(where, "must be a JSON object")
    extra = sorted(set(raw) - set(spec) - set(skip))
    if extra:
        known = ", ".join(sorted(spec)) or "none"
        raise ScenarioError(f"{where}.{extra[0]}", f"unknown field (known: {known})")
    out: dict[str, Any] = {}
    for name, (check, required, default) in spec.items():
        value = raw.get(name)
        if value is None:
            if required:
                raise ScenarioError(f"{where}.{name}", "is required")
            if default is not None:
                out[name] = default
            continue
        out[name] = check(value, f"{where}.{name}")
    return out


def typed(table: dict[str, Spec], raw: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise ScenarioError(where, 'must be a JSON object with a "type"')
    kind = raw.get("type")
    if kind not in table:
        raise ScenarioError(f"{where}.type", f"must be one of {', '.join(sorted(table))}")
    return str(kind), check_fields(table[kind], raw, where, skip=("type",))
