"""Scenario faults on REST: what the REST worker does for a request on an armed route.

The worker knows which routes are armed from the engine's ``("scenarios", summary)`` events
(:meth:`RestFaults.on_events`), so a request on any other route goes its usual way with one
dict lookup. The summary also carries each armed scenario's method and match, so a request on
an armed route that no match can fit (a scenario for another account, symbol or side) goes its
usual way too, after the worker builds its context and tests the matches: the engine would
neither fire, nor draw, nor journal anything for it. Any other request on an armed route is
sent as ``scenario_rest`` instead: the engine matches (with the time window), draws and
consumes in one step and answers with what to do.

* **Before** the request is handled: ``delay`` (a timer on the loop, never a blocked worker;
  the request then goes on with ``scenario_resume``), ``fail`` (Bybit's envelope, HTTP 200 by
  default), ``http_error`` (the HTML page Bybit's edge sends), ``reset`` (TCP RST), ``hang``
  (no answer until the client gives up), ``rate_limit`` (10006 with the headers) and
  ``ip_ban`` (HTTP 403 to every request from the client's IP, on every REST worker, for a
  time). After a delay, a refusal still applies: "slow, then 503".
* **After** it was handled: ``slow`` (the answer waits) and ``ghost`` (the engine applied the
  request, the answer is lost: reset or timeout).

Every fault carried out here is added to the firing's journal entry (``scenario_note``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..bybit import envelope, errors
from ..engine import ratelimits
from ..scenarios.model import Match
from ..scenarios.registry import rest_context
from ..service.client import Reply, StateClient
from .protocol import Request, Respond

log = logging.getLogger(__name__)

#: ``answer(reply, respond, local)``: how the app answers an engine reply (``app._answer``)
Answer = Callable[[Any, Respond, "bytes | None"], None]

_HTML = b"text/html"


def _filters(when: dict[str, list[list[Any]]]) -> dict[str, list[tuple[str, Match]]]:
    """The summary's ``rest_when`` as matches to test, for the paths worth testing: a path with
    a scenario whose match is empty (it fits every request) or unreadable is always asked about."""
    out: dict[str, list[tuple[str, Match]]] = {}
    for path, entries in when.items():
        try:
            tests = [(str(method), Match.from_json(match)) for method, match in entries]
        except Exception:  # a summary from a newer engine, say: never skip a request on a guess
            continue
        if tests and all(match.to_json() for _, match in tests):
            out[path] = tests
    return out


def edge_page(status: int, title: str) -> bytes:
    """The bare HTML page Bybit's edge (its CDN and load balancers) answers with."""
    return (
        b"<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n"
        b"</body>\r\n</html>\r\n" % (status, title.encode(), status, title.encode())
    )


#: what the edge sends for each status a scenario may ask for (other statuses get a page too)
EDGE_TITLES = {
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
#: the body of an IP-banned request (Bybit: "access too frequent", HTTP 403)
BANNED_BODY = b"access too frequent"


class RestFaults:
    def __init__(self, state: StateClient, answer: Answer) -> None:
        self.state = state
        self.answer = answer
        #: armed path -> methods ("*": any); empty when nothing is armed
        self.armed: dict[str, list[str]] = {}
        #: armed path -> (method, match) per scenario, for the paths where every scenario's match
        #: names something (a request none fits is not asked about); a path not here: always ask
        self.when: dict[str, list[tuple[str, Match]]] = {}
        self.version = -1
        #: client IP -> ban end (ms)
        self.bans: dict[str, int] = {}

    # -- what is armed ----------------------------------------------------------------------------

    def learn(self, summary: dict[str, Any]) -> None:
        """Adopt the engine's summary of armed scenarios, unless an older one than we have."""
        version = summary.get("version", 0)
        if version >= self.version:
            self.version = version
            self.armed = summary.get("rest", {})
            self.when = _filters(summary.get("rest_when", {}))

    def on_events(self, events: list[tuple[str, Any]]) -> None:
        for kind, data in events:
            if kind == "scenarios":
                self.learn(data)
            elif kind == "ban":
                ip, until = data
                self.bans[ip] = max(until, self.bans.get(ip, 0))
            elif kind == "reset":  # the engine went back to its start: no ban outlives it
                self.bans.clear()

    def is_armed(self, path: str, method: str) -> bool:
        methods = self.armed.get(path)
        return methods is not None and ("*" in methods or method in methods)

    def may_fire(self, path: str, method: str, api_key: str, params: dict[str, Any]) -> bool:
        """Whether a scenario armed on this route and method may fire for this request: False
        if none is, or if no armed scenario's match fits it; the request then goes its usual
        way, as if nothing were armed (the engine would neither fire, nor draw, nor journal)."""
        if not self.is_armed(path, method):
            return False
        when = self.when.get(path)
        if when is None:
            return True
        ctx = rest_context(method, path, api_key, params)
        return any(m in ("*", method) and match.matches(ctx) for m, match in when)

    def banned(self, request: Request, respond: Respond, now_ms: int) -> bool:
        """Answer 403 if the client's IP is banned now (the caller checks ``bans`` first)."""
        ip = request.peer
        until = self.bans.get(ip)
        if until is None:
            return False
        if until <= now_ms:
            del self.bans[ip]
            return False
        respond(403, BANNED_BODY, content_type=b"text/plain")
        return True

    # -- one request --------------------------------------------------------------------------

    def run(
        self,
        request: Request,
        respond: Respond,
        method: str,
        api_key: str,
        params: dict[str, Any],
        command: tuple[str, tuple[Any, ...]] | None,
        local: bytes | None,
    ) -> None:
        """``command`` is what the request would have sent (None: answered here with ``local``);
        the caller has checked that an armed scenario may fire for it (:meth:`may_fire`)."""
        op, args = command if command is not None else (None, ())

        def answered(reply: Reply) -> None:
            code, value = reply[0], reply[1]
            if code != 0:  # the state service is away: answered as any request would be
                self.answer(reply, respond, None)
                return
            before, after = value.get("before", []), value.get("after", [])
            if before:
                self._before(request, respond, before, after, value.get("token"), api_key, op, args, local)
            else:
                self._after(request, respond, after, value["reply"], local)

        self.state.submit("scenario_rest", (method, request.path, api_key, params, op, args), answered)

    def _before(
        self,
        request: Request,
        respond: Respond,
        before: list[dict[str, Any]],
        after: list[dict[str, Any]],
        token: int | None,
        api_key: str,
        op: str | None,
        args: tuple[Any, ...],
        local: bytes | None,
    ) -> None:
        delay_ms = sum(float(b["action"]["ms"]) for b in before if b["action"]["type"] == "delay")
        refusal = next((b for b in before if b["action"]["type"] != "delay"), None)
        for item in before:
            if item["action"]["type"] == "delay":
                self._note(item, f"held {item['action']['ms']} ms")

        def go_on() -> None:
            if refusal is not None:
                self._refuse(request, respond, refusal)
                return

            def resumed(reply: Reply) -> None:
                if reply[0] != 0:
                    self.answer(reply, respond, None)
                else:
                    self._after(request, respond, after, reply[1]["reply"], local)

            self.state.submit("scenario_resume", (token, api_key, op, args), resumed)

        if delay_ms > 0:
            asyncio.get_running_loop().call_later(delay_ms / 1000, go_on)
        else:
            go_on()

    def _refuse(self, request: Request, respond: Respond, item: dict[str, Any]) -> None:
        action = item["action"]
        kind = action["type"]
        now_ms = time.time_ns() // 1_000_000
        conn = request.conn
        if kind == "fail":
            respond(action["http_status"], envelope.error(action["ret_code"], action["ret_msg"], now_ms))
            self._note(item, f"answered HTTP {action['http_status']} retCode {action['ret_code']}")
        elif kind == "http_error":
            status = action["status"]
            respond(status, edge_page(status, EDGE_TITLES.get(status, "Error")), content_type=_HTML)
            self._note(item, f"answered HTTP {status} (edge page)")
        elif kind == "rate_limit":
            info = ratelimits.LimitInfo(0, 0, now_ms + 1000)  # a reset in the future: pybit sleeps until it
            body = envelope.error(errors.TOO_MANY_VISITS, errors.TOO_MANY_VISITS_MSG, now_ms)
            respond(200, body, ratelimits.header_lines(info))
            self._note(item, "answered 10006")
        elif kind == "ip_ban":
            until = now_ms + int(action["for_ms"])
            ip = request.peer
            self.bans[ip] = until

            def announced(reply: Reply) -> None:
                # answered once the engine has logged the ban for every REST worker: a reset the
                # client asks for next comes after it in the log, and lifts it everywhere
                respond(403, BANNED_BODY, content_type=b"text/plain")

            self.state.submit("scenario_broadcast", ("ban", (ip, until)), announced)
            self._note(item, f"banned {ip} until {until}")
        elif kind == "reset":
            if conn is not None:
                conn.reset()
            self._note(item, "connection reset")
        elif kind == "hang":
            self._note(item, "no answer")  # the slot stays unanswered until the client leaves
        else:  # pragma: no cover - the engine sends only the kinds above
            log.error("unknown REST fault %r", kind)

    def _after(
        self, request: Request, respond: Respond, after: list[dict[str, Any]], reply: Any, local: bytes | None
    ) -> None:
        ghost = next((a for a in after if a["action"]["type"] == "ghost"), None)
        if ghost is not None:
            if ghost["action"]["mode"] == "reset" and request.conn is not None:
                request.conn.reset()
                self._note(ghost, "handled, then the connection was reset")
            else:
                self._note(ghost, "handled, then never answered")
            return
        slow_ms = sum(float(a["action"]["ms"]) for a in after if a["action"]["type"] == "slow")

        def send() -> None:
            if reply is None:  # a route the worker answers itself, uncounted
                self.answer((0, local), respond, None)
            else:
                self.answer(reply, respond, local)

        for item in after:
            if item["action"]["type"] == "slow":
                self._note(item, f"answered {item['action']['ms']} ms late")
        if slow_ms > 0:
            asyncio.get_running_loop().call_later(slow_ms / 1000, send)
        else:
            send()

    def _note(self, item: dict[str, Any], what: str) -> None:
        self.state.submit("scenario_note", (item["seq"], what), lambda reply: None)
