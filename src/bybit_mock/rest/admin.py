"""The HTTP admin API under ``/__admin/`` on the REST port (``docs/admin.md``).

What ``ex.scenarios`` and ``ex.state`` do from Python, for a bot's tests in any language
(WireMock's ``/__admin`` is the model): arm and disarm scenarios in their one JSON form, read
the journal, reset, read and edit accounts, move and freeze markets, append canned market
data. Answers are plain JSON, not Bybit's envelope: ``{"scenarios": [...]}``, ``{"id": "s3"}``,
and ``{"error": "...", "field": "action.ms"}`` for a refusal.

Rules this module keeps, and why:

* **First in line.** ``RestApp.dispatch`` hands ``/__admin/*`` here before IP bans, Bybit's
  routing, rate limits and scenario faults: a scripted fault can never lock a test out of the
  API that disarms it, and admin calls never count against a Bybit limit.
* **Access** (:class:`Access`): a configured token is required on every request
  (``Authorization: Bearer <token>`` or ``X-Admin-Token``, compared in constant time), else
  401; without a token the API is open, which the config allows on a loopback ``host`` only.
  ``admin = "off"`` builds none of this: ``/__admin/*`` is then an unknown Bybit route.
* **Checked here, then by the engine.** Every field is checked in the worker (type, presence,
  range, unknown names; instruments too, which never change at run time), and a bad one is a
  400 naming it before the engine is asked, so bad input arms and changes nothing. A list of
  scenarios is checked whole before any is armed. The engine (``engine/admin.py``) checks
  again and knows what only it can (accounts, orders, scenario ids: 404).
* **Bounded.** Bodies are bounded by ``max_body_bytes`` (the protocol's 413) and their
  nesting by :data:`MAX_DEPTH` (a value nested a thousand deep would not cross to the state
  service); one JSON parse per request.
"""

from __future__ import annotations

import hmac
import os
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

import orjson

from .. import __version__
from ..bybit.errors import PARAMS_ERROR
from ..bybit.payload import shape_error
from ..config import MockExchangeConfig
from ..engine.admin import AdminError, field_of, parse_scenarios
from ..instruments import CATEGORIES
from ..market.canned_items import KINDS, items_from_dicts
from ..service.client import UNAVAILABLE, Reply, StateClient
from .faults import RestFaults
from .protocol import Request, Respond

PREFIX = "/__admin/"
#: deepest a value may sit in an admin body: a list of scenarios whose injected private event
#: holds a list of objects is 7 levels; a canned book's price levels are 6
MAX_DEPTH = 16
#: a :meth:`Fields.choice` default that makes the field required
REQUIRED: Any = object()
TOKEN_REQUIRED = b'{"error":"admin token required"}'
_CHALLENGE = b'WWW-Authenticate: Bearer realm="bybit-mock admin"\r\n'


class Engine(NamedTuple):
    """What a handler asks of the engine: ``CALLS[name](*args)`` in ``engine/admin.py``."""

    name: str
    args: tuple[Any, ...]


class Call(NamedTuple):
    """What a handler sees: the path's variable parts (``{key}``, ``{id}``), query and body."""

    args: tuple[str, ...]
    query: str
    body: bytes


Handler = Callable[[Call], Engine]


def bad(field: str, problem: str) -> AdminError:
    return AdminError(400, f"{field}: {problem}", field)


class Access:
    """Who may use the admin API: anyone who reaches it, or whoever shows the token."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode() if token is not None else None

    def allows(self, headers: Mapping[bytes, bytes]) -> bool:
        if self.token is None:
            return True
        shown = [headers.get(b"x-admin-token", b"")]
        scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer":
            shown.append(credentials.strip())
        matched = False
        for value in shown:  # constant time: no short cut on the first byte that differs
            matched |= hmac.compare_digest(value, self.token)
        return matched


# -- checking input --------------------------------------------------------------------------------


def json_body(body: bytes, empty: Any = None) -> Any:
    """The body's JSON value (``empty`` for an empty body, if allowed), bounded in depth."""
    if not body.strip():
        if empty is None:
            raise bad("body", "a JSON body is required")
        return empty
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad("body", f"not valid JSON ({exc})") from None
    problem = shape_error(value, MAX_DEPTH, sys.maxsize)  # the size is bounded by max_body_bytes
    if problem is not None:
        raise bad("body", problem)
    return value


class Fields:
    """A JSON object's fields, each taken with its check; :meth:`done` refuses any other.

    A field that is absent or ``null`` takes its default (or is refused if required)."""

    def __init__(self, raw: Any, where: str = "body") -> None:
        if not isinstance(raw, dict):
            raise bad(where, "must be a JSON object")
        self._raw: dict[str, Any] = raw
        self._known: list[str] = []

    def _take(self, name: str, required: bool) -> Any:
        self._known.append(name)
        value = self._raw.get(name)
        if value is None and required:
            raise bad(name, "is required")
        return value

    def text(self, name: str, required: bool = True) -> str | None:
        value = self._take(name, required)
        if value is not None and (not isinstance(value, str) or not value or len(value) > 1000):
            raise bad(name, "must be a non-empty string")
        return value

    def choice(self, name: str, choices: tuple[Any, ...], default: Any = REQUIRED) -> Any:
        """One of ``choices``, of their type too (``1.0`` is not the position index ``1``)."""
        value = self._take(name, default is REQUIRED)
        if value is None:
            return default
        if not any(type(value) is type(c) and value == c for c in choices):
            raise bad(name, f"must be one of {', '.join(map(repr, choices))}")
        return value

    def items(self, name: str) -> list[Any]:
        value = self._take(name, True)
        if not isinstance(value, list) or not value:
            raise bad(name, "must be a non-empty list")
        return value

    def decimal(self, name: str, positive: bool, required: bool = True) -> str | None:
        """A decimal (a string such as ``"0.01"`` or a number), > 0 or >= 0; as a plain string."""
        value = self._take(name, required)
        if value is None:
            return None
        number: Decimal | None = None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                pass
        if number is None or not number.is_finite():
            raise bad(name, 'must be a decimal (a string such as "0.01", or a number)')
        if number < 0 or (positive and number == 0):
            raise bad(name, "must be a decimal > 0" if positive else "must be a decimal >= 0")
        return f"{number:f}"

    def flag(self, name: str) -> bool:
        value = self._take(name, False)
        if value is not None and not isinstance(value, bool):
            raise bad(name, "must be true or false")
        return bool(value)

    def integer(self, name: str, default: int) -> int:
        """An integer >= 0 (a query string's digits, or a JSON integer)."""
        value = self._take(name, False)
        if value is None:
            return default
        if isinstance(value, str) and value.isdigit() and len(value) < 19:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise bad(name, "must be an integer >= 0")
        return value

    def done(self) -> None:
        unknown = sorted(set(self._raw) - set(self._known))
        if unknown:
            raise bad(unknown[0], f"unknown field (known: {', '.join(self._known) or 'none'})")


def query_fields(query: str) -> Fields:
    """A query string as :class:`Fields` (``?scenario=&since=``: an empty value is absent)."""
    return Fields({k: v for k, v in parse_qsl(query, keep_blank_values=True) if v}, "query")


# -- the API ---------------------------------------------------------------------------------------


class AdminApi:
    def __init__(self, config: MockExchangeConfig, state: StateClient, faults: RestFaults) -> None:
        self.state = state
        self.faults = faults
        self.access = Access(config.admin_token)
        #: symbol -> categories it is an instrument in (fixed for the life of the mock)
        self.instruments: dict[str, set[str]] = {}
        for inst in config.instruments:
            self.instruments.setdefault(inst.symbol, set()).add(inst.category)
        self.started = time.monotonic()
        #: path pattern ("{}" matches one segment) -> method -> handler
        self.routes: dict[tuple[str, ...], dict[str, Handler]] = {
            ("health",): {"GET": self.health},
            ("scenarios",): {"GET": _fixed("scenarios_list"), "POST": arm, "DELETE": _fixed("scenarios_clear")},
            ("scenarios", "{}"): {"GET": _with_args("scenario_get"), "DELETE": _with_args("scenario_remove")},
            ("journal",): {"GET": journal, "DELETE": _fixed("journal_clear")},
            ("reset",): {"POST": _fixed("reset")},
            ("accounts",): {"GET": _fixed("accounts")},
            ("accounts", "{}"): {"GET": _with_args("account")},
            ("accounts", "{}", "orders", "{}"): {"GET": _with_args("order")},
            ("accounts", "{}", "balance"): {"POST": set_balance},
            ("accounts", "{}", "position"): {"POST": self.set_position},
            ("accounts", "{}", "deposit"): {"POST": deposit},
            ("market", "price"): {"POST": self.set_price},
            ("market", "freeze"): {"POST": partial(self.freeze, True)},
            ("market", "thaw"): {"POST": partial(self.freeze, False)},
            ("market", "append"): {"POST": market_append},
            ("market", "step"): {"POST": self.market_step},
            ("market", "status"): {"GET": self.market_status},
        }

    def dispatch(self, request: Request, respond: Respond) -> None:
        if not self.access.allows(request.headers):
            respond(401, TOKEN_REQUIRED, _CHALLENGE)
            return
        method = "GET" if request.method == "HEAD" else request.method  # the protocol drops a HEAD's body
        found = self._route(request.path)
        if found is None:
            respond(404, orjson.dumps({"error": f"no admin endpoint {request.path}"}))
            return
        handlers, args = found
        handler = handlers.get(method)
        if handler is None:
            allowed = sorted(handlers) + (["HEAD"] if "GET" in handlers else [])
            body = orjson.dumps({"error": f"{request.method} is not allowed on {request.path}", "allowed": allowed})
            respond(405, body, b"Allow: %s\r\n" % ", ".join(allowed).encode())
            return
        try:
            call = handler(Call(args, request.query, request.body))
        except AdminError as exc:
            respond(exc.status, exc.body())
            return
        self.state.submit("admin", (call.name, call.args), lambda reply: self._answer(reply, respond))

    def _route(self, path: str) -> tuple[dict[str, Handler], tuple[str, ...]] | None:
        parts = path[len(PREFIX) :].rstrip("/").split("/")
        for pattern, handlers in self.routes.items():
            if len(pattern) == len(parts) and all(p in ("{}", s) for p, s in zip(pattern, parts, strict=True)):
                args = tuple(unquote(s) for p, s in zip(pattern, parts, strict=True) if p == "{}")
                if all(args):
                    return handlers, args
        return None

    def _answer(self, reply: Reply, respond: Respond) -> None:
        code, value = reply[0], reply[1]
        if code != 0:
            # the state service away (503), a command that would not cross to it (400), or a bug (500)
            status = 503 if tuple(reply) == UNAVAILABLE else 400 if code == PARAMS_ERROR else 500
            respond(status, orjson.dumps({"status": "unavailable" if status == 503 else "error", "error": value}))
            return
        status, body, summary = value
        if summary is not None:
            self.faults.learn(summary)  # this worker applies what was armed from its next request
        respond(status, body)

    # -- handlers that need the config or the worker -----------------------------------------------

    def health(self, call: Call) -> Engine:
        uptime = round(time.monotonic() - self.started, 3)
        return Engine("health", ({"version": __version__, "pid": os.getpid(), "uptime_s": uptime},))

    def _symbol(self, fields: Fields, category: str | None, required: bool = True) -> str | None:
        """A configured instrument's symbol (in ``category``, if one is given)."""
        symbol = fields.text("symbol", required)
        categories = self.instruments.get(symbol or "", set())
        if symbol is not None and not (category in categories if category else categories):
            where = f" in {category}" if category else ""
            raise bad("symbol", f"no instrument {symbol!r}{where}")
        return symbol

    def set_position(self, call: Call) -> Engine:
        f = Fields(json_body(call.body))
        category = f.choice("category", ("linear", "inverse"), "linear")
        edit = {
            "category": category,
            "symbol": self._symbol(f, category),
            "side": f.choice("side", ("Buy", "Sell")),
            "size": f.decimal("size", positive=False),
            "entry_price": f.decimal("entry_price", positive=True),
            "leverage": f.decimal("leverage", positive=True, required=False),
            "position_idx": f.choice("position_idx", (0, 1, 2), 0),
            "push": f.flag("push"),
        }
        f.done()
        return Engine("set_position", (call.args[0], edit))

    def set_price(self, call: Call) -> Engine:
        f = Fields(json_body(call.body))
        category = f.choice("category", CATEGORIES, "linear")
        symbol = self._symbol(f, category)
        price = f.decimal("price", positive=True)
        f.done()
        return Engine("set_price", (symbol, price, category))

    def freeze(self, frozen: bool, call: Call) -> Engine:
        """``/market/freeze`` and ``/market/thaw``: one symbol, one category, both, or every market."""
        f = Fields(json_body(call.body, empty={}))
        category = f.choice("category", CATEGORIES, None)
        symbol = self._symbol(f, category, required=False)
        f.done()
        return Engine("freeze", (symbol, category, frozen))

    def market_step(self, call: Call) -> Engine:
        f = Fields(json_body(call.body))
        category = f.choice("category", CATEGORIES, "linear")
        symbol = self._symbol(f, category)
        n = f.integer("n", 1)
        f.done()
        return Engine("market_step", (category, symbol, n))

    def market_status(self, call: Call) -> Engine:
        f = query_fields(call.query)
        category = f.choice("category", CATEGORIES, "linear")
        symbol = self._symbol(f, category)
        f.done()
        return Engine("market_step", (category, symbol, 0))  # 0 steps: the status alone


# -- handlers that need nothing but the request ---------------------------------------------------


def _fixed(name: str) -> Handler:
    """An engine call with no arguments (a list, a clear, a reset); any body is ignored."""
    return lambda call: Engine(name, ())


def _with_args(name: str) -> Handler:
    """An engine call with the path's variable parts as its arguments (an id, a key)."""
    return lambda call: Engine(name, call.args)


def arm(call: Call) -> Engine:
    """One scenario (a JSON object) or several (a JSON array), all checked before any is armed."""
    raw = json_body(call.body)
    many = isinstance(raw, list)
    scenarios = parse_scenarios(raw if many else [raw], many)
    return Engine("scenarios_push", ([s.to_json() for s in scenarios], many))


def journal(call: Call) -> Engine:
    f = query_fields(call.query)
    scenario = f.text("scenario", required=False)  # a name or an id
    since = f.integer("since", 0)
    f.done()
    return Engine("journal", (scenario, since))


def set_balance(call: Call) -> Engine:
    f = Fields(json_body(call.body))
    coin, amount, push = f.text("coin"), f.decimal("amount", positive=False), f.flag("push")
    f.done()
    return Engine("set_balance", (call.args[0], coin, amount, push))


def deposit(call: Call) -> Engine:
    f = Fields(json_body(call.body))
    coin, amount, chain = f.text("coin"), f.decimal("amount", positive=True), f.text("chain", required=False)
    f.done()
    return Engine("deposit", (call.args[0], coin, amount, chain))


def market_append(call: Call) -> Engine:
    """``{"items": [...], "kind"?: "candle" | "tick" | "book"}``: canned items in their dict form
    (``market/canned_items.py``); their shapes are checked here, the tick grid by the engine."""
    f = Fields(json_body(call.body))
    kind, items = f.choice("kind", KINDS, None), f.items("items")
    f.done()
    try:
        items_from_dicts(kind, items)
    except ValueError as exc:
        raise AdminError(400, str(exc), field_of(str(exc))) from None
    return Engine("market_append", (kind, items))
