"""Request dispatch: route lookup, parameter parsing, HMAC auth, local or state-backed handlers.

A handler returns either the encoded ``result`` (answered at once, on the loop) or a
:class:`StateCall` (answered when the state service replies, through the batching client).
Auth runs in the worker against a local copy of the key -> secret table. A key missing from
it is looked up in the engine (one batched command) before it is refused, so accounts added
at run time work at once, and a known key never costs a round trip.

With ``rate_limits = "bybit"`` every signed request that passed auth is counted by the engine
(``engine/ratelimits.py``: per UID, across every worker) as a ``rate_limited`` command, even one
the worker answers itself, and its answer carries the ``X-Bapi-Limit*`` headers. A request
refused here before that (no key, a bad signature, an unparsable body, or bad parameters of
an endpoint the worker answers itself) is not counted and has no headers. With ``"off"``
nothing of this runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import unquote

from .. import metrics
from ..bybit import auth, envelope, errors
from ..bybit.errors import BybitError
from ..bybit.payload import loads_object
from ..config import MockExchangeConfig
from ..engine import ratelimits
from ..service.client import Reply, StateClient
from .admin import PREFIX as ADMIN_PREFIX
from .admin import TOKEN_REQUIRED, Access, AdminApi
from .faults import RestFaults
from .protocol import Request, Respond

log = logging.getLogger(__name__)


class StateCall(NamedTuple):
    op: str
    args: tuple[Any, ...]


HandlerResult = bytes | StateCall


class Call(NamedTuple):
    """What a handler sees: parsed params, the authenticated key (if signed), the time."""

    params: dict[str, Any]
    api_key: str
    now_ms: int
    now_ns: int


Handler = Callable[[Call], HandlerResult]


class Route(NamedTuple):
    method: str
    handler: Handler
    signed: bool


def parse_query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part:  # (unquote is pure Python; most queries have nothing to decode)
            key, value = unquote(key), unquote(value)
        params[key] = value
    return params


def parse_body(body: bytes) -> dict[str, Any]:
    """The body's JSON object, or 10001 here in the worker if it is not of request shape: a value
    nested too deep cannot be pickled, and must never reach the state channel other clients share."""
    if not body.strip():
        return {}
    return loads_object(body)


class RestApp:
    def __init__(self, config: MockExchangeConfig, state: StateClient, routes: dict[str, Route]) -> None:
        self.max_body_bytes = config.max_body_bytes
        self.max_header_bytes = config.max_header_bytes
        self.request_timeout = config.request_timeout
        self.state = state
        self.routes = routes
        self.secrets: dict[str, str] = {}
        #: signed requests go through the engine's ``rate_limited`` command (Bybit's limits)
        self.rate_limited = config.rate_limits == "bybit"
        #: scripted faults on armed routes (nothing to do for the others)
        self.faults = RestFaults(state, _answer)
        #: ``/__admin/`` (``admin.py``); None when ``admin = "off"``: then it is an unknown route
        self.admin = AdminApi(config, state, self.faults) if config.admin == "on" else None
        #: ``/metrics`` and the request meter (``metrics.py``); None when metrics are off
        self.metrics = metrics.current() if config.metrics else None
        self.metrics_access = Access(config.admin_token)

    def dispatch(self, request: Request, respond: Respond, key_looked_up: bool = False) -> None:
        if self.metrics is not None and request.path == metrics.PATH:
            self._scrape(request, respond)
            return
        if self.admin is not None and request.path.startswith(ADMIN_PREFIX):
            self.admin.dispatch(request, respond)  # before bans and faults: never locked out by one
            return
        if self.metrics is not None and not key_looked_up:  # (dispatched again after a key lookup)
            respond = self.metrics.meter(request, respond, self.routes)
        now_ns = time.time_ns()
        now_ms = now_ns // 1_000_000
        if self.faults.bans and self.faults.banned(request, respond, now_ms):
            return  # a scenario banned this client's IP (HTTP 403, as Bybit's edge does)
        route = self.routes.get(request.path)
        # HEAD is GET without the body (RFC 9110 9.3.2; the protocol leaves the body out)
        method = "GET" if request.method == "HEAD" else request.method
        if route is None or route.method != method:
            what = "Route not found" if route is None else f"method {request.method} not allowed"
            body = envelope.error(errors.ROUTE_NOT_FOUND, f"{what}: {request.method} {request.path}", now_ms)
            respond(404, body)
            return
        try:
            if method == "GET":
                payload = request.query
                params: dict[str, Any] = parse_query(request.query)
            else:
                payload = request.body.decode("utf-8", "replace")
                params = {}
            api_key = ""
            if route.signed:
                api_key = auth.api_key_of(request.headers) or ""
                if not api_key:
                    raise BybitError(errors.INVALID_API_KEY, errors.INVALID_API_KEY_MSG, http_status=401)
                if api_key not in self.secrets and not key_looked_up:
                    self._look_up_key(api_key, request, respond)
                    return
                auth.verify_rest(request.headers, payload, self.secrets, now_ms)
            if method != "GET":
                params = parse_body(request.body)
            result = route.handler(Call(params, api_key, now_ms, now_ns))
        except BybitError as exc:
            respond(exc.http_status, envelope.error(exc.code, exc.msg, now_ms))
            return
        command: tuple[str, tuple[Any, ...]] | None = None
        local: bytes | None = None
        if isinstance(result, StateCall):
            if route.signed and self.rate_limited:
                command = (ratelimits.RATE_LIMITED, (api_key, request.path, result.op, result.args))
            else:
                command = (result.op, result.args)
        else:
            local = result
            if route.signed and self.rate_limited:  # answered here, but counted by the engine
                command = (ratelimits.RATE_LIMITED, (api_key, request.path, "", (api_key, params)))
        if self.faults.armed and self.faults.may_fire(request.path, method, api_key, params):
            self.faults.run(request, respond, method, api_key, params, command, local)
        elif command is not None:
            self.state.submit(*command, lambda reply: _answer(reply, respond, local))
        else:
            respond(200, envelope.ok(local or b"", now_ms))

    def _scrape(self, request: Request, respond: Respond) -> None:
        """``GET /metrics``: read-only, so open like an admin API without a token, and behind
        the admin token when one is configured."""
        assert self.metrics is not None
        if not self.metrics_access.allows(request.headers):
            respond(401, TOKEN_REQUIRED)
        elif request.method not in ("GET", "HEAD"):
            respond(405, b'{"error":"method not allowed"}')
        else:
            body, content_type = self.metrics.render()
            respond(200, body, content_type=content_type)

    def _look_up_key(self, api_key: str, request: Request, respond: Respond) -> None:
        """A key we have not seen (maybe an account added at run time): ask, then decide."""

        def done(reply: Reply) -> None:
            code, secret = reply
            if code == 0 and secret is not None:
                self.secrets[api_key] = secret
            self.dispatch(request, respond, key_looked_up=True)

        self.state.submit("secret", (api_key,), done)


def _answer(reply: tuple[Any, ...], respond: Respond, local: bytes | None = None) -> None:
    """Answer a state reply: ``(code, value)``, or ``(code, value, LimitInfo)`` from a
    ``rate_limited`` command, whose headers go with the answer (an outage's plain pair has
    none). ``local`` is a result the worker computed itself, sent if the limiter let it through."""
    code, value = reply[0], reply[1]
    extra = ratelimits.header_lines(reply[2]) if len(reply) > 2 else b""
    now_ms = time.time_ns() // 1_000_000
    if code != 0:
        respond(200, envelope.error(code, value, now_ms), extra)
    elif local is not None:
        respond(200, envelope.ok(local, now_ms), extra)
    elif isinstance(value, tuple):  # (result, retExtInfo): the batch endpoints
        respond(200, envelope.ok(value[0], now_ms, value[1]), extra)
    else:
        respond(200, envelope.ok(value, now_ms), extra)
