"""picows listeners: one object per connection, non-async callbacks on the data path.

Frames are handled strictly in arrival order per connection: the official sample sends
``auth`` then ``subscribe`` without waiting for the ack, so a private subscribe that arrives
while the auth check is still pending is queued behind it, not refused.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from ..bybit import auth
from . import messages
from .fanout import Outbox
from .topics import PRIVATE_TOPICS

if TYPE_CHECKING:
    from .app import WsApp

log = logging.getLogger(__name__)

_conn_counter = itertools.count(1)
_CONN_PREFIX = secrets.token_hex(10)


def new_conn_id() -> str:
    """Unique per worker and connection, in Bybit's ``<20 chars>-<n>`` style."""
    return f"{_CONN_PREFIX}-{os.getpid():x}{next(_conn_counter)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BaseListener(WSListener):
    #: where a request carries its id (``/v5/trade`` says ``reqId``)
    REQ_ID_KEY = "req_id"

    def __init__(self, app: WsApp) -> None:
        self.app = app
        self.conn_id = new_conn_id()
        self.transport: WSTransport | None = None
        self.outbox: Outbox | None = None
        self.topics: set[str] = set()
        #: while paused (an auth check in flight, a subscribe being held back), frames queue
        #: here and run in arrival order afterwards
        self._paused = False
        self._backlog: deque[tuple[str, dict[str, Any], Any]] = deque()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.outbox = Outbox(transport.underlying_transport, f"{type(self).__name__} {self.conn_id}", self.drop)
        self.app.connections += 1

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.transport = None
        self.app.connections -= 1
        if self.outbox is not None:
            self.outbox.detach()

    def send(self, payload: bytes) -> None:
        """Everything this connection is sent goes through the fan-out, in order."""
        if self.outbox is not None:
            self.app.fanout.send(self.outbox, payload)

    def drop(self, reason: str) -> None:
        """Cut the connection at once (slow consumer, scripted drop)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            try:
                msg = orjson.loads(frame.get_payload_as_memoryview())
            except orjson.JSONDecodeError:
                self.on_bad_message("", None, "error:request not json")
                return
            if not isinstance(msg, dict):
                self.on_bad_message("", None, "error:request not json object")
                return
            op = msg.get("op")
            req_id = msg.get(self.REQ_ID_KEY)
            if not isinstance(op, str):
                self.on_bad_message("", req_id, "error:op is required")
                return
            if self._paused:
                self._backlog.append((op, msg, req_id))
            else:
                self.on_op(op, msg, req_id)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        self._paused = True

    def resume(self, then: Callable[[], None]) -> None:
        """Run ``then`` (unless the connection is gone), then the frames that queued meanwhile."""
        self._paused = False
        if self.transport is None:
            return
        then()
        while self._backlog and not self._paused:
            self.on_op(*self._backlog.popleft())

    def after_ack_delay(self, then: Callable[[], None]) -> None:
        """Run ``then`` (a subscribe) after ``ack_delay_ms``, holding later frames behind it.

        pybit sends a subscribe and only then records its ``req_id``; an ack that beats the
        record raises KeyError in pybit's thread and closes its socket.
        """
        delay = self.app.config.ack_delay_ms / 1000
        if delay <= 0:
            then()
            return
        self.pause()
        self.app.loop.call_later(delay, self.resume, then)

    def on_bad_message(self, op: str, req_id: Any, ret_msg: str) -> None:
        raise NotImplementedError


def topic_args(msg: dict[str, Any]) -> list[str] | None:
    args = msg.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        return None
    return args


class PublicListener(BaseListener):
    """``/v5/public/{category}``: subscribe, unsubscribe, ping."""

    def __init__(self, app: WsApp, category: str) -> None:
        super().__init__(app)
        self.category = category

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        self.app.hub_unsubscribe(self)

    def ack(self, op: str, req_id: Any, ok: bool, ret_msg: str, topics: list[str]) -> None:
        self.send(messages.public_ack(self.category, op, self.conn_id, req_id, ok, ret_msg, topics))

    def on_bad_message(self, op: str, req_id: Any, ret_msg: str) -> None:
        self.ack(op, req_id, False, ret_msg, [])

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        if op == "ping":
            self.send(messages.public_pong(self.category, self.conn_id, req_id, now_ms()))
        elif op in ("subscribe", "unsubscribe"):
            topics = topic_args(msg)
            if topics is None:
                self.ack(op, req_id, False, "error:args must be a non-empty list of topic strings", [])
            elif op == "subscribe":
                self.after_ack_delay(lambda: self.subscribe(req_id, topics))
            else:
                self.topics.difference_update(topics)
                self.app.hub_unsubscribe(self, topics)
                self.ack(op, req_id, True, "", topics)
        else:
            self.ack(op, req_id, False, f"error:unsupported op: {op}", [])

    def subscribe(self, req_id: Any, topics: list[str]) -> None:
        bad = [t for t in topics if not self.app.public_topics.is_valid(self.category, t)]
        if bad:
            self.ack("subscribe", req_id, False, f"error:handler not found,topic:{','.join(bad)}", bad)
            return
        dup = [t for t in topics if t in self.topics]
        if dup:
            self.ack("subscribe", req_id, False, f"error:already subscribed,topic:{','.join(dup)}", dup)
            return
        self.topics.update(topics)
        self.ack("subscribe", req_id, True, "", topics)
        self.app.hub_subscribe(self, topics)


class PrivateListener(BaseListener):
    """``/v5/private``: auth, then subscribe to the account's topics; ping."""

    def __init__(self, app: WsApp) -> None:
        super().__init__(app)
        self.api_key: str | None = None

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        self.app.private_disconnected(self)

    def on_bad_message(self, op: str, req_id: Any, ret_msg: str) -> None:
        self.send(messages.private_ack(op, self.conn_id, req_id, False, ret_msg))

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        if op == "ping":
            self.send(messages.private_pong(self.conn_id, req_id, now_ms()))
        elif op == "auth":
            self.authenticate(msg, req_id)
        elif op == "subscribe":
            self.after_ack_delay(lambda: self.subscribe(msg, req_id))
        elif op == "unsubscribe":
            topics = topic_args(msg) or []
            self.topics.difference_update(topics)
            self.send(messages.private_ack(op, self.conn_id, req_id, True, ""))
        else:
            self.on_bad_message(op, req_id, f"error:unsupported op: {op}")

    def authenticate(self, msg: dict[str, Any], req_id: Any) -> None:
        if self.api_key is not None:
            self.auth_reply(req_id, False, repeat=True)
            return
        args = msg.get("args")
        key = args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None

        def decide() -> None:
            api_key = auth.verify_ws_auth(args, self.app.secrets, now_ms())
            if api_key is None:
                self.auth_reply(req_id, False)
            else:
                # The ack waits until the engine builds this account's pushes, so nothing the
                # account does after the ack can be missed; frames behind it wait too.
                self.api_key = api_key
                self.pause()
                self.authenticated(lambda: self.resume(lambda: self.auth_reply(req_id, True)))

        if key is not None and key not in self.app.secrets:
            # Possibly an account added at run time: look again before refusing.
            self.pause()
            self.app.look_up_key(key, lambda: self.resume(decide))
        else:
            decide()

    def auth_reply(self, req_id: Any, ok: bool, repeat: bool = False) -> None:
        ret_msg = "" if ok else "Repeat auth" if repeat else "Params Error"
        self.send(messages.private_ack("auth", self.conn_id, req_id, ok, ret_msg))

    def authenticated(self, then: Callable[[], None]) -> None:
        """The account's pushes reach this connection from now on; ``then`` sends the ack."""
        self.app.private_authenticated(self, then)

    def subscribe(self, msg: dict[str, Any], req_id: Any) -> None:
        topics = topic_args(msg)
        if topics is None:
            self.on_bad_message("subscribe", req_id, "error:args must be a non-empty list of topic strings")
            return
        if self.api_key is None:
            self.on_bad_message("subscribe", req_id, f"error:topic:{topics[0]} needs auth first")
            return
        bad = [t for t in topics if t not in PRIVATE_TOPICS]
        if bad:
            self.on_bad_message("subscribe", req_id, f"error:handler not found,topic:{','.join(bad)}")
            return
        self.topics.update(topics)
        self.send(messages.private_ack("subscribe", self.conn_id, req_id, True, ""))
