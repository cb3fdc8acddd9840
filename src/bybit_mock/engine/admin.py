"""The admin API's engine half: one ``admin`` command over a whitelist of state-API calls.

``/__admin/`` (``rest/admin.py``) checks every field in the REST worker, then sends
``("admin", (name, args))``; ``name`` picks one of :data:`CALLS`, each a thin wrapper over the
state API tests use from Python (``state.py``), so HTTP and Python change the exchange the
same way. The reply is ``(http_status, json_body, summary)``:

* the body is encoded here, next to the values (Decimals as plain decimal strings, the view
  dataclasses as objects), so what crosses back to the worker is one bytes value;
* ``summary`` is the armed scenarios' new summary when the call changed them (None otherwise):
  the worker that answers adopts it before it answers, so a scenario armed over HTTP applies
  to that worker's very next request (the other workers learn it from the event log, as for
  every change).

Errors are answers, not exceptions: a ``ValueError`` (a ``ScenarioError`` names its field) is
400 and an unknown account, order or scenario is 404. An exception would reach
``Exchange._run``, which logs it as an engine bug and answers 10016.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from ..bybit.errors import BybitError
from ..scenarios.model import Scenario, ScenarioError
from .views import PositionView

if TYPE_CHECKING:
    from .exchange import Exchange

#: ``(http_status, json_body, armed-scenarios summary or None)``
AdminReply = tuple[int, bytes, "dict[str, Any] | None"]


class AdminError(Exception):
    """An admin request refused: its HTTP status, what is wrong and, if known, which field.

    ``index`` is the position of the offending scenario when a list of them was posted."""

    def __init__(self, status: int, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.index = index

    def body(self) -> bytes:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.index is not None:
            out["index"] = self.index
        return orjson.dumps(out)


def not_found(what: str) -> AdminError:
    return AdminError(404, what)


def encode(value: Any) -> bytes:
    """JSON for an admin answer: Decimals as decimal strings (never ``1E+2``), dataclasses
    (the engine's views) as objects."""
    return orjson.dumps(value, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    raise TypeError(f"not JSON: {type(value).__name__}")


#: a message that starts with a field path (``items[3].close: ...``, as canned items' checks say)
_FIELD_PREFIX = re.compile(r"([A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*): ")


def field_of(message: str) -> str | None:
    """The field a ``ValueError``'s message names first, if it names one."""
    found = _FIELD_PREFIX.match(message)
    return found.group(1) if found else None


def parse_scenarios(raws: Sequence[Any], many: bool) -> list[Scenario]:
    """Every scenario of a request, checked before any is armed (all or nothing); the first
    bad one is a 400 naming its field (and its ``index`` in a posted list)."""
    parsed = []
    for i, raw in enumerate(raws):
        try:
            parsed.append(Scenario.from_json(raw))
        except ScenarioError as exc:
            raise AdminError(400, str(exc), exc.field, i if many else None) from None
    return parsed


# -- the calls ---------------------------------------------------------------------------------
# Each takes the engine and the worker's (already checked) arguments and returns JSON-ready
# data; the engine lock is held (``apply_batch``), and the state API's own locking re-enters it.


def _account(ex: Exchange, api_key: str) -> None:
    if api_key not in ex.accounts:
        raise not_found(f"no account {api_key!r}")


def health(ex: Exchange, worker: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's own facts (version, pid, uptime) and the engine's: it answered, so it is up."""
    armed = len(ex.scenarios.registry.armed)
    return {"status": "ok", **worker, "engine": ex.instance_id, "accounts": len(ex.accounts), "scenarios": armed}


def scenarios_push(ex: Exchange, raws: list[Any], many: bool) -> dict[str, Any]:
    ids = [ex.scenario_push(s) for s in parse_scenarios(raws, many)]
    return {"ids": ids} if many else {"id": ids[0]}


def scenarios_list(ex: Exchange) -> dict[str, Any]:
    return {"scenarios": ex.scenario_list()}


def scenario_get(ex: Exchange, ident: str) -> dict[str, Any]:
    found = ex.scenario_get(ident)
    if found is None:
        raise not_found(f"no armed scenario {ident!r}")
    return found


def scenario_remove(ex: Exchange, ident: str) -> dict[str, Any]:
    if not ex.scenario_remove(ident):
        raise not_found(f"no armed scenario {ident!r}")
    return {"removed": 1}


def scenarios_clear(ex: Exchange) -> dict[str, Any]:
    return {"removed": ex.scenario_clear()}


def journal(ex: Exchange, scenario: str | None, since_seq: int) -> dict[str, Any]:
    return {"journal": ex.scenario_journal(scenario, since_seq)}


def journal_clear(ex: Exchange) -> dict[str, Any]:
    ex.scenario_journal_clear()
    return {"ok": True}


def reset(ex: Exchange) -> dict[str, Any]:
    ex.reset()
    return {"ok": True}


def accounts(ex: Exchange) -> dict[str, Any]:
    return {"accounts": ex.account_keys()}


def account(ex: Exchange, api_key: str) -> dict[str, Any]:
    _account(ex, api_key)
    return {
        "api_key": api_key,
        "balances": ex.balances(api_key),
        "funding": ex.funding_balances(api_key),
        "coins": ex.coin_views(api_key),
        "positions": ex.positions(api_key),
        "open_orders": ex.open_orders(api_key),
    }


def order(ex: Exchange, api_key: str, ident: str) -> Any:
    """One order of any status, by ``orderId`` or, failing that, by ``orderLinkId`` (a test
    often knows only the id it chose)."""
    _account(ex, api_key)
    found = ex.order(api_key, ident) or ex.order(api_key, None, ident)
    if found is None:
        raise not_found(f"account {api_key!r} has no order {ident!r} (by orderId or orderLinkId)")
    return found


def set_balance(ex: Exchange, api_key: str, coin: str, amount: str, push: bool) -> dict[str, Any]:
    _account(ex, api_key)
    ex.set_balance(api_key, coin, amount, push)
    return {"api_key": api_key, "coin": coin.upper(), "balance": ex.balances(api_key)[coin.upper()]}


def set_position(ex: Exchange, api_key: str, edit: Mapping[str, Any]) -> dict[str, Any]:
    """``edit``: symbol, side, size, entry_price, leverage (None: kept), category, position_idx, push."""
    _account(ex, api_key)
    category, symbol, idx = edit["category"], edit["symbol"], edit["position_idx"]
    side, size, price, leverage = edit["side"], edit["size"], edit["entry_price"], edit["leverage"]
    ex.set_position(api_key, symbol, side, size, price, leverage, category, idx, edit["push"])
    return {"api_key": api_key, "position": _position_of(ex.positions(api_key), category, symbol, idx)}


def _position_of(positions: list[PositionView], category: str, symbol: str, idx: int) -> PositionView | None:
    return next((p for p in positions if (p.category, p.symbol, p.position_idx) == (category, symbol, idx)), None)


def deposit(ex: Exchange, api_key: str, coin: str, amount: str, chain: str | None) -> dict[str, Any]:
    _account(ex, api_key)
    tx_id = ex.deposit(api_key, coin, amount, chain)
    return {"api_key": api_key, "tx_id": tx_id, "funding": ex.funding_balances(api_key)}


def set_price(ex: Exchange, symbol: str, price: str, category: str) -> dict[str, Any]:
    ex.set_mark_price(symbol, price, category)
    return {"category": category, "symbol": symbol, "price": price}


def freeze(ex: Exchange, symbol: str | None, category: str | None, frozen: bool) -> dict[str, Any]:
    markets = ex.markets.select(category, symbol)  # ValueError (400) if none fits
    ex.freeze_market(symbol, category, frozen)
    return {"frozen": frozen, "markets": [{"category": c, "symbol": s} for c, s in markets]}


def market_append(ex: Exchange, kind: str | None, items: list[Any]) -> dict[str, Any]:
    """Canned items added to their symbols' streams (all checked first); each symbol's status."""
    return {"markets": ex.market_append(kind, items)}


def market_step(ex: Exchange, category: str, symbol: str, n: int) -> dict[str, Any]:
    """A step-mode canned market's next ``n`` items released (0: only its status)."""
    return ex.market_step(category, symbol, n)


#: name -> call (and the HTTP status of its success); nothing else is reachable through ``admin``
CALLS: dict[str, tuple[Callable[..., Any], int]] = {
    "health": (health, 200),
    "scenarios_push": (scenarios_push, 201),
    "scenarios_list": (scenarios_list, 200),
    "scenario_get": (scenario_get, 200),
    "scenario_remove": (scenario_remove, 200),
    "scenarios_clear": (scenarios_clear, 200),
    "journal": (journal, 200),
    "journal_clear": (journal_clear, 200),
    "reset": (reset, 200),
    "accounts": (accounts, 200),
    "account": (account, 200),
    "order": (order, 200),
    "set_balance": (set_balance, 200),
    "set_position": (set_position, 200),
    "deposit": (deposit, 200),
    "set_price": (set_price, 200),
    "freeze": (freeze, 200),
    "market_append": (market_append, 200),
    "market_step": (market_step, 200),
}


def admin_call(ex: Exchange, name: str, args: Sequence[Any]) -> AdminReply:
    """The ``admin`` engine command: run ``CALLS[name](ex, *args)`` and answer it as HTTP."""
    entry = CALLS.get(name)
    if entry is None:
        return 404, AdminError(404, f"no admin call {name!r}").body(), None
    fn, status = entry
    registry = ex.scenarios.registry
    version = registry.version
    try:
        body = encode(fn(ex, *args))
    except AdminError as exc:
        return exc.status, exc.body(), None
    except ScenarioError as exc:
        return 400, AdminError(400, str(exc), exc.field).body(), None
    except ValueError as exc:  # the state API's own checks (ConfigError is one too)
        return 400, AdminError(400, str(exc), field_of(str(exc))).body(), None
    except BybitError as exc:
        return 400, AdminError(400, exc.msg).body(), None
    return status, body, registry.summary() if registry.version != version else None
