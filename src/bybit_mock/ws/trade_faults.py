"""Scenario faults on ``/v5/trade`` order ops: the REST faults' WebSocket form.

An ``order.create``, ``order.amend`` or ``order.cancel`` whose order trigger is armed goes to
the engine as ``scenario_rest`` for the REST route it stands for, so a scenario fires the
same way whichever door the order came in by (a fill plan armed on ``ORDER_CREATE`` fills an
order placed over WebSocket too). The answer is carried out on the connection:

* before the op: ``delay`` holds it (a timer, then ``scenario_resume``), ``fail`` and
  ``rate_limit`` answer with their retCode in the trade shape, ``reset`` drops the connection,
  ``hang`` never answers; ``http_error`` and ``ip_ban`` have no WebSocket form and answer
  10016 naming the HTTP status;
* after it was applied: ``slow`` answers late, ``ghost`` loses the answer (``reset``: the
  connection is dropped; ``timeout``: no answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bybit import errors
from ..scenarios.registry import ORDER_ROUTES
from ..service.client import Reply, StateClient

if TYPE_CHECKING:
    from .trade import TradeListener

Item = dict[str, Any]
Note = Callable[[int | None, str], None]


class TradeFaults:
    def __init__(self, state: StateClient, loop: asyncio.AbstractEventLoop, note: Note) -> None:
        self.state = state
        self.loop = loop
        self.note = note

    def run(self, listener: TradeListener, op: str, kind: str, req_id: Any, params: dict[str, Any]) -> None:
        """``kind`` (``order_create`` ...) is the engine command the op would have sent."""
        api_key = listener.api_key
        args = (api_key, params)

        def answered(reply: Reply) -> None:
            code, value = reply
            if code != 0:  # the state service is away: answered as the plain op would be
                listener.answer(op, req_id, reply)
                return
            before, after = value.get("before", []), value.get("after", [])
            if before:
                self._before(listener, op, req_id, before, after, value.get("token"), kind, args)
            else:
                self._after(listener, op, req_id, after, value["reply"])

        self.state.submit("scenario_rest", ("POST", ORDER_ROUTES[kind], api_key, params, kind, args), answered)

    def _before(
        self,
        listener: TradeListener,
        op: str,
        req_id: Any,
        before: list[Item],
        after: list[Item],
        token: int | None,
        kind: str,
        args: tuple[Any, ...],
    ) -> None:
        delay_ms = sum(float(b["action"]["ms"]) for b in before if b["action"]["type"] == "delay")
        refusal = next((b for b in before if b["action"]["type"] != "delay"), None)
        for item in before:
            if item["action"]["type"] == "delay":
                self.note(item["seq"], f"held {item['action']['ms']} ms")

        def go_on() -> None:
            if listener.transport is None:
                return  # the client left during the delay; the op was never applied
            if refusal is not None:
                self._refuse(listener, op, req_id, refusal)
                return

            def resumed(reply: Reply) -> None:
                if reply[0] != 0:
                    listener.answer(op, req_id, reply)
                else:
                    self._after(listener, op, req_id, after, reply[1]["reply"])

            self.state.submit("scenario_resume", (token, args[0], kind, args), resumed)

        if delay_ms > 0:
            self.loop.call_later(delay_ms / 1000, go_on)
        else:
            go_on()

    def _refuse(self, listener: TradeListener, op: str, req_id: Any, item: Item) -> None:
        action = item["action"]
        kind = action["type"]
        if kind == "fail":
            listener.order_reply(op, action["ret_code"], action["ret_msg"], req_id, {})
            self.note(item["seq"], f"answered retCode {action['ret_code']} on /v5/trade")
        elif kind == "rate_limit":
            listener.order_reply(op, errors.TOO_MANY_VISITS, errors.TOO_MANY_VISITS_MSG, req_id, {})
            self.note(item["seq"], "answered 10006 on /v5/trade")
        elif kind == "reset":
            listener.drop("scripted reset")
            self.note(item["seq"], f"trade connection {listener.conn_id} reset")
        elif kind == "hang":
            self.note(item["seq"], "no answer on /v5/trade")
        else:  # http_error, ip_ban: HTTP has them, a WebSocket frame does not
            status = action.get("status", 403)
            listener.order_reply(op, errors.SERVER_ERROR, f"Server error: HTTP {status}", req_id, {})
            self.note(item["seq"], f"{kind} has no WS form: answered 10016 on /v5/trade")

    def _after(self, listener: TradeListener, op: str, req_id: Any, after: list[Item], reply: Any) -> None:
        ghost = next((a for a in after if a["action"]["type"] == "ghost"), None)
        if ghost is not None:
            if ghost["action"]["mode"] == "reset":
                listener.drop("scripted ghost")
                self.note(ghost["seq"], "applied, then the trade connection was reset")
            else:
                self.note(ghost["seq"], "applied, then never answered")
            return
        slow_ms = sum(float(a["action"]["ms"]) for a in after if a["action"]["type"] == "slow")
        for item in after:
            if item["action"]["type"] == "slow":
                self.note(item["seq"], f"answered {item['action']['ms']} ms late")
        if slow_ms > 0:
            self.loop.call_later(slow_ms / 1000, listener.answer, op, req_id, reply)
        else:
            listener.answer(op, req_id, reply)
