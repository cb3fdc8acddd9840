"""Bybit's per-UID REST rate limits: the table, a rolling-window limiter and the response headers.

Source: Bybit v5 "Rate Limit Rules" (https://bybit-exchange.github.io/docs/v5/rate-limit, the
file ``docs/v5/rate-limit/rate-limit.mdx`` of github.com/bybit-exchange/docs, read 2026-07),
its UTA 2.0 table at the default (non-VIP) level. What the mock takes from it:

* **A rolling window per UID per endpoint** ("it is per second per UID"); a few asset endpoints
  are limited per minute, and keep their own window length. One API key is one account here,
  so the key stands for the UID.
* **Business lines count apart** ("the configuration of business lines is independent of each
  other"): the order-entry endpoints have one window per line. Linear and inverse share one
  column of the table (and the "Futures" column of the VIP table), so they share a window.
* **Batch endpoints count orders**, not requests, for linear, inverse and spot ("Number of
  consumption = number of requests * number of orders included in a single request"); the
  orders of a batch beyond what is left fail one by one with 10006 and the rest go ahead.
* **Headers** on every answer: ``X-Bapi-Limit`` (the limit), ``X-Bapi-Limit-Status`` (what is
  left) and ``X-Bapi-Limit-Reset-Timestamp``: "when your request limit resets if you have
  exceeded your rate_limit. Otherwise, this is just the current timestamp".

Choices where the docs are silent, and why:

* **A refused request does not count.** Only requests let through take a slot; a refusal
  costs nothing, so the reset timestamp of a 10006 is exactly when a slot frees (the oldest
  counted request leaves the window), and a client that sleeps until then (pybit does) gets
  in, however often it was refused meanwhile. A request let through counts even when it then
  fails validation (10001, 110007 ...): the limit is the gateway's, before the business logic.
* **The reset timestamp is never less than :data:`RESET_LEAD_MS` ahead** on a refusal. pybit
  sleeps ``reset - its now``, and ``time.sleep`` of a negative number raises ``ValueError``: a
  slot freeing 1 ms after the engine's clock read would be in the past by the time the client
  reads it. Waiting a little longer than needed is harmless; a crash is not.
* **Endpoints missing from the table** get :data:`DEFAULT` (50/s, the table's common value for
  reads); every signed endpoint the mock serves is in the table.

Pure and clock-injected (the engine passes its own clock), so the unit tests drive time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..bybit import errors

#: How far ahead of now a 10006's reset timestamp is at least (see the module docstring).
RESET_LEAD_MS = 100

SECOND_MS = 1000
MINUTE_MS = 60_000


class Rule(NamedTuple):
    """At most ``limit`` requests (or batch orders) in any rolling ``window_ms``."""

    limit: int
    window_ms: int = SECOND_MS


class LimitInfo(NamedTuple):
    """What the three headers say about one answer."""

    limit: int
    remaining: int
    reset_ms: int


#: A business line's limit, by line: ``futures`` (linear and inverse), ``option``, ``spot``.
ByLine = Mapping[str, Rule]


def _lines(futures: int, option: int, spot: int) -> ByLine:
    return {"futures": Rule(futures), "option": Rule(option), "spot": Rule(spot)}


#: Bybit's table (the UTA 2.0 defaults; source above). A :data:`ByLine` entry keeps one
#: window per business line, a :class:`Rule` one window for the endpoint.
LIMITS: Mapping[str, Rule | ByLine] = {
    # Trade
    "/v5/order/create": _lines(futures=10, option=10, spot=20),
    "/v5/order/amend": _lines(futures=10, option=10, spot=10),
    "/v5/order/cancel": _lines(futures=10, option=10, spot=20),
    "/v5/order/cancel-all": _lines(futures=10, option=1, spot=20),
    "/v5/order/create-batch": _lines(futures=10, option=10, spot=20),
    "/v5/order/amend-batch": _lines(futures=10, option=10, spot=20),
    "/v5/order/cancel-batch": _lines(futures=10, option=10, spot=20),
    "/v5/order/realtime": Rule(50),
    "/v5/order/history": Rule(50),
    "/v5/execution/list": Rule(50),
    # Position
    "/v5/position/list": Rule(50),
    "/v5/position/set-leverage": Rule(10),
    "/v5/position/switch-mode": Rule(10),
    "/v5/position/trading-stop": Rule(10),
    # Account
    "/v5/account/wallet-balance": Rule(50),
    "/v5/account/transaction-log": Rule(25),
    "/v5/account/fee-rate": Rule(5),
    "/v5/account/info": Rule(50),
    "/v5/account/set-margin-mode": Rule(5),
    # Asset
    "/v5/asset/transfer/query-inter-transfer-list": Rule(60, MINUTE_MS),
    "/v5/asset/transfer/query-account-coins-balance": Rule(5),
    "/v5/asset/deposit/query-record": Rule(100, MINUTE_MS),
    "/v5/asset/withdraw/query-record": Rule(300, MINUTE_MS),
    "/v5/asset/delivery-record": Rule(5),
    "/v5/asset/coin/query-info": Rule(5),
    "/v5/asset/transfer/inter-transfer": Rule(60, MINUTE_MS),
    # User
    "/v5/user/query-api": Rule(10),
}

#: An endpoint missing from :data:`LIMITS` (none the mock serves today).
DEFAULT = Rule(50)

#: The batch endpoints: they count the orders of a request (linear, inverse, spot).
BATCH_PATHS = frozenset({"/v5/order/create-batch", "/v5/order/amend-batch", "/v5/order/cancel-batch"})


def line_of(category: object) -> str:
    """The business line a request's ``category`` belongs to; anything else (missing, wrong:
    the request will fail its validation) counts as futures, the default category's line."""
    if category == "spot":
        return "spot"
    if category == "option":
        return "option"
    return "futures"


def rule_of(path: str, category: object) -> tuple[Rule, str]:
    """The rule for a request, and the line its window is kept for ("" for the whole endpoint)."""
    entry = LIMITS.get(path, DEFAULT)
    if isinstance(entry, Rule):
        return entry, ""
    line = line_of(category)
    return entry[line], line


def cost_of(path: str, query: Mapping[str, Any]) -> int:
    """Slots a request takes: its orders for a batch (linear, inverse, spot), else 1.

    A batch without a usable ``request`` list costs 1 (it fails validation as a whole)."""
    if path not in BATCH_PATHS or line_of(query.get("category")) == "option":
        return 1
    entries = query.get("request")
    return len(entries) if isinstance(entries, list) and entries else 1


class RateLimiter:
    """Rolling windows per (API key, endpoint, line): the time of each slot taken, oldest first.

    A window never holds more than its limit, so memory is bounded by keys x endpoints x limit.
    """

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str, str], deque[int]] = {}

    def hit(self, api_key: str, path: str, category: object = None, cost: int = 1) -> tuple[int, LimitInfo]:
        """Take up to ``cost`` slots now; returns how many were taken (0: refused) and the
        header values. Slots not taken are not counted (see the module docstring)."""
        now = self._clock()
        cost = max(cost, 1)
        rule, line = rule_of(path, category)
        key = (api_key, path, line)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque()
        edge = now - rule.window_ms  # a slot taken at t is in the window while t > now - window_ms
        while window and window[0] <= edge:
            window.popleft()
        free = rule.limit - len(window)
        granted = max(0, min(cost, free))
        window.extend([now] * granted)
        # exceeded: a slot frees when the oldest counted request leaves the window
        reset = max(window[0] + rule.window_ms, now + RESET_LEAD_MS) if granted < cost else now
        return granted, LimitInfo(rule.limit, free - granted, reset)

    def clear(self) -> None:
        """Forget every window (``Exchange.reset``)."""
        self._windows.clear()


def header_lines(info: LimitInfo) -> bytes:
    """The three headers as ``Name: value\\r\\n`` lines, for ``rest.http.json_response(extra=...)``."""
    return b"X-Bapi-Limit: %d\r\nX-Bapi-Limit-Status: %d\r\nX-Bapi-Limit-Reset-Timestamp: %d\r\n" % (
        info.limit,
        info.remaining,
        info.reset_ms,
    )


#: the engine command that counts a REST request against Bybit's limits, then runs it
RATE_LIMITED = "rate_limited"
#: how a ``rate_limited`` command runs the command it wraps: ``(code, value)``
Run = Callable[[str, tuple[Any, ...]], tuple[int, Any]]


def rate_limited(
    limiter: RateLimiter, run: Run, api_key: str, path: str, op: str, args: tuple[Any, ...]
) -> tuple[int, Any, LimitInfo]:
    """A signed REST request under Bybit's limits: counted, then ``run(op, args)`` if it fits.

    ``op`` "" is a request the worker answers itself and only needs counted. A batch with
    more orders than slots left runs its first orders only; the others fail with 10006
    in its ``retExtInfo`` (``Trading.order_batch``'s ``allowed``)."""
    if op == RATE_LIMITED:
        raise ValueError("rate_limited cannot wrap itself")
    query = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    cost = cost_of(path, query)
    granted, info = limiter.hit(api_key, path, query.get("category"), cost)
    if not granted:
        return (errors.TOO_MANY_VISITS, errors.TOO_MANY_VISITS_MSG, info)
    if not op:
        return (0, None, info)
    if granted < cost:
        args = (*args, granted)
    code, value = run(op, args)
    return (code, value, info)
