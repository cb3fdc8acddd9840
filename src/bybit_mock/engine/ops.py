"""The engine's command table: every command a worker may send, by name.

The REST routes, ``/v5/trade`` and the workers' own housekeeping each name a command; this
table maps the name to the part of the engine that answers it (a test checks that every name
they use is here). Built again at every reset, since the parts are new then.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from .admin import admin_call

if TYPE_CHECKING:
    from .exchange import Exchange


def op_table(ex: Exchange) -> dict[str, Callable[..., Any]]:
    """Every command a worker may send, by name (the REST routes, ``/v5/trade`` and the
    workers' own housekeeping; a test checks that each one they name is here)."""
    t, q, f, p = ex.trading, ex.queries, ex.funds, ex.position_settings
    return {
        "instance": ex.instance,
        "secrets": ex.secrets,
        "secret": ex.secret,
        "wallet_balance": q.wallet_balance,
        "position_list": q.position_list,
        "market_models": ex.market_models,
        "market_query": ex.market_query,
        "market_start": ex.canned.start,
        "scenario_rest": ex.scenarios.rest,
        "scenario_resume": ex.scenarios.resume,
        "scenario_take": ex.scenarios.take,
        "scenario_note": ex.scenarios.registry.note,
        "scenario_summary": ex.scenarios.registry.summary,
        "scenario_state": ex.scenarios.state,
        "scenario_broadcast": ex.scenarios.broadcast,
        "admin": partial(admin_call, ex),  # the /__admin/ API (``admin.py``)
        "watch": ex.pushes.watch,
        "order_create": _encoded(t.order_create),
        "order_amend": _encoded(t.order_amend),
        "order_cancel": _encoded(t.order_cancel),
        "order_cancel_all": _encoded(t.order_cancel_all),
        "order_create_batch": partial(t.order_batch, "create"),
        "order_amend_batch": partial(t.order_batch, "amend"),
        "order_cancel_batch": partial(t.order_batch, "cancel"),
        "order_realtime": _encoded(q.order_realtime),
        "order_history": _encoded(q.order_history),
        "execution_list": _encoded(q.execution_list),
        "trading_stop": _encoded(ex.stops.trading_stop),
        "set_leverage": _encoded(p.set_leverage),
        "switch_mode": _encoded(p.switch_mode),
        "account_info": _encoded(f.account_info),
        "set_margin_mode": _encoded(f.set_margin_mode),
        "transfer": _encoded(f.transfer),
        "transfer_list": _encoded(f.transfer_list),
        "funding_balance": _encoded(f.funding_balance),
        "deposit_records": _encoded(f.deposit_records),
        "transaction_log": _encoded(f.transaction_log),
        "withdraw_records": _encoded(f.withdraw_records),
        "system_status": _encoded(ex.system_status.query),
        "delivery_record": _encoded(ex.delivery.delivery_record),
    }


def _encoded(fn: Callable[..., Any]) -> Callable[..., bytes]:
    """A command whose result a REST worker wraps in the envelope as it is."""

    def run(*args: Any) -> bytes:
        return orjson.dumps(fn(*args))

    return run
