"""``/v5/trade``: order entry over WebSocket (``order.create``, ``order.amend``, ``order.cancel``).

The channel authenticates like ``/v5/private`` but answers in the trade shape
(``retCode``/``retMsg``/``connId``; pybit's ``WebSocketTrading`` accepts nothing else). Each
order op carries a ``reqId`` (echoed; a repeat of one of the connection's last
:data:`REQ_ID_WINDOW` gets 20006), a ``header``
block whose ``X-BAPI-TIMESTAMP`` follows the REST recv-window rule (10002), and ``args``
holding exactly one REST-shaped request. The engine runs it as the REST endpoint would, and
the reply carries Bybit's header block (rate-limit fields, ``Traceid``, ``Timenow``).

Order-op replies, refusals included, wait ``ack_delay_ms`` (20 ms by default): pybit sends before it registers
the callback for a ``reqId``, so an instant reply would be dropped as unregistered.

An op whose order trigger (``order_create`` ...) is armed goes through the scenario engine as
its REST route would (:mod:`.trade_faults`); any other op costs one set lookup more.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..bybit import auth, errors
from ..bybit.errors import BybitError
from ..bybit.payload import check_shape
from ..service.client import Reply
from .listeners import PrivateListener, now_ms

if TYPE_CHECKING:
    from .app import WsApp

#: op -> engine command
ORDER_OPS = {"order.create": "order_create", "order.amend": "order_amend", "order.cancel": "order_cancel"}
MAX_REQ_ID = 36
#: How many of a connection's latest order-op reqIds are remembered for the duplicate check: a
#: soak test's connection sends millions, and only a recent repeat is plausibly a resend.
REQ_ID_WINDOW = 10_000


class RecentIds:
    """The latest ``size`` distinct ids, the oldest forgotten first."""

    __slots__ = ("_order", "_seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._order: deque[str] = deque()
        self._seen: set[str] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, item: str) -> None:
        if item in self._seen:
            return
        self._seen.add(item)
        self._order.append(item)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())


class TradeListener(PrivateListener):
    REQ_ID_KEY = "reqId"
    CHANNEL = "trade"

    def __init__(self, app: WsApp) -> None:
        super().__init__(app)
        self.req_ids = RecentIds(REQ_ID_WINDOW)

    def authenticated(self, then: Callable[[bool], None]) -> None:
        """Order entry only, so no pushes to route; still, no success without the engine."""
        self.app.trade_authenticated(self, then)

    def reply(self, op: str, code: int, msg: str, req_id: Any = None, **fields: Any) -> None:
        body: dict[str, Any] = {}
        if req_id is not None:
            body["reqId"] = req_id
        body.update(retCode=code, retMsg=msg, op=op, **fields)
        body["connId"] = self.conn_id
        self.send(orjson.dumps(body))

    def auth_refused(self, req_id: Any, code: int, msg: str) -> None:
        self.reply("auth", code, msg, req_id)

    def auth_reply(self, req_id: Any, ok: bool, repeat: bool = False, unavailable: bool = False) -> None:
        if ok:
            self.reply("auth", 0, "OK", req_id)
        elif repeat:
            self.reply("auth", 20001, "Repeat auth", req_id)
        elif unavailable:
            self.reply("auth", errors.SERVER_ERROR, "Server error: state service unavailable", req_id)
        else:
            self.reply("auth", errors.SIGN_ERROR, "Invalid sign", req_id)

    def on_bad_message(self, op: str, req_id: Any, ret_msg: str) -> None:
        self.reply(op, errors.PARAMS_ERROR, ret_msg, req_id)

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        if op == "ping":
            self.reply("pong", 0, "OK", req_id, data=[str(now_ms())])
        elif op == "auth":
            self.authenticate(msg, req_id)
        elif op in ORDER_OPS:
            try:
                self.order_op(op, msg, req_id)
            except BybitError as exc:
                self.order_reply(op, exc.code, exc.msg, req_id, {})
        else:
            self.reply(op, 10404, f"op not found: {op}", req_id)

    def order_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        if self.api_key is None:
            raise BybitError(errors.INVALID_API_KEY, "Please authenticate first")
        if req_id is not None:
            if not isinstance(req_id, str) or len(req_id) > MAX_REQ_ID:
                raise errors.params_error(f"reqId must be a string of at most {MAX_REQ_ID} chars")
            if req_id in self.req_ids:
                raise BybitError(20006, "reqId is duplicated")
            self.req_ids.add(req_id)
        header = msg.get("header")
        if not isinstance(header, dict) or header.get("X-BAPI-TIMESTAMP") is None:
            raise errors.params_error("header.X-BAPI-TIMESTAMP is required")
        window = header.get("X-BAPI-RECV-WINDOW") or auth.DEFAULT_RECV_WINDOW
        auth.check_timestamp(str(header["X-BAPI-TIMESTAMP"]), str(window), now_ms())
        args = msg.get("args")
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            raise errors.params_error("args must hold exactly one request object")
        # The frame as a whole was shape-checked; checking the request itself keeps that promise
        # local, since it is pickled to the state service on a channel every client shares.
        check_shape(args[0], "args[0]")

        command = ORDER_OPS[op]
        if self.app.scenarios.trade_armed(command):
            self.app.scenarios.trade.run(self, op, command, req_id, args[0])
            return
        self.app.state.submit(command, (self.api_key, args[0]), lambda reply: self.answer(op, req_id, reply))

    def answer(self, op: str, req_id: Any, reply: Reply) -> None:
        """Answer an order op with the engine's reply to its command."""
        code, value = reply
        if code == 0:
            self.order_reply(op, 0, "OK", req_id, orjson.loads(value))
        else:
            self.order_reply(op, code, value, req_id, {})

    def order_reply(self, op: str, code: int, msg: str, req_id: Any, data: dict[str, Any]) -> None:
        """Every order-op answer, success or refusal, waits ``ack_delay_ms`` (see the module doc)."""

        def send() -> None:
            self.reply(op, code, msg, req_id, data=data, retExtInfo={}, header=self.header())

        self.app.loop.call_later(self.app.config.ack_delay_ms / 1000, send)

    @staticmethod
    def header() -> dict[str, str]:
        now = str(now_ms())
        return {
            "X-Bapi-Limit": "10",
            "X-Bapi-Limit-Status": "9",
            "X-Bapi-Limit-Reset-Timestamp": now,
            "Traceid": secrets.token_hex(16),
            "Timenow": now,
        }
