"""picows listeners: one object per connection, non-async callbacks on the data path.

Rules:

* **Arrival order.** Frames are handled strictly in arrival order per connection: the official
  sample sends ``auth`` then ``subscribe`` without waiting for the ack, so a private subscribe
  that arrives while the auth check is still pending is queued behind it, not refused. Queued
  frames wait as the bytes they came in (parsed when their turn comes), so even a malformed one
  is answered in its place.
* **A bounded queue.** At most ``ws_max_pending_requests`` frames wait while a connection is
  paused; one more and the client is flooding, not pipelining: it is closed with 1008.
* **Nothing a client sends raises.** A frame is parsed and shape-checked once
  (:mod:`bybit_mock.bybit.payload`); a request id is echoed only if it is a string of at most
  :data:`MAX_REQ_ID_CHARS` characters or an integer, so every answer can be encoded. Anything
  else gets the channel's own error ack, without the id, and the connection carries on.
* **Closing is a handshake, not a cut.** A connection closed on purpose (slow consumer, flood)
  gets a close frame with a code and a reason after the whole frames it was already sent, and
  the socket stays open, read and ignored, until the peer answers with its own close frame.
  Closing a socket with unread input makes the kernel reset it, and a reset can destroy the
  close frame before the peer reads it: the peer would see 1006, the very thing to avoid. A
  peer that has not answered after :data:`CLOSE_GRACE_S` seconds is hung up on, gracefully if
  everything was handed to the kernel, aborted if it still had not taken the bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ..bybit import auth, errors
from ..bybit.payload import shape_error
from . import messages
from .fanout import HeldWrites, Outbox
from .topics import PRIVATE_TOPICS

if TYPE_CHECKING:
    from .app import WsApp

log = logging.getLogger(__name__)

_conn_counter = itertools.count(1)
_CONN_PREFIX = secrets.token_hex(10)

#: Longest string request id echoed back (pybit sends 36-char uuids, ccxt integers).
MAX_REQ_ID_CHARS = 128
#: Seconds a closing connection has to answer our close frame before it is hung up on: a peer
#: that reads nothing must not pin its buffered bytes in the worker for ever.
CLOSE_GRACE_S = 2.0
#: A close frame's payload is at most 125 bytes, two of them the code.
_MAX_CLOSE_REASON_BYTES = 123
_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
#: what a ``ws_refuse`` of auths answers (a retryable server error: the key is fine)
AUTH_REFUSED = "Server error: auth refused for now, retry later"


def _nothing() -> None:
    pass


def new_conn_id() -> str:
    """Unique per worker and connection, in Bybit's ``<20 chars>-<n>`` style."""
    return f"{_CONN_PREFIX}-{os.getpid():x}{next(_conn_counter)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def is_req_id(value: Any) -> bool:
    """Whether ``value`` may be echoed as a request id (a short string or an integer, not a bool)."""
    if isinstance(value, str):
        return len(value) <= MAX_REQ_ID_CHARS
    return isinstance(value, int) and not isinstance(value, bool)


class BaseListener(WSListener):
    #: where a request carries its id (``/v5/trade`` says ``reqId``)
    REQ_ID_KEY = "req_id"
    #: the channel a scenario names (``public``, ``private``, ``trade``)
    CHANNEL = "public"

    def __init__(self, app: WsApp) -> None:
        self.app = app
        self.conn_id = new_conn_id()
        self.transport: WSTransport | None = None
        self.outbox: Outbox | None = None
        self.topics: set[str] = set()
        #: while paused (an auth check in flight, a subscribe being held back), frames queue
        #: here, as received, and run in arrival order afterwards
        self._paused = False
        self._backlog: deque[bytes] = deque()
        #: set once :meth:`close` has sent the close frame: later frames are ignored
        self._closing = False
        self._abort_timer: asyncio.TimerHandle | None = None
        #: the fragments of a message still arriving (RFC 6455 5.4); None between messages
        self._fragments: bytearray | None = None
        #: a scripted stall (``ws_stall``): what the fan-out writes meanwhile, and its end
        self._held: HeldWrites | None = None
        self._stall_timer: asyncio.TimerHandle | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.outbox = Outbox(
            transport.underlying_transport, f"{type(self).__name__} {self.conn_id}", self.on_slow_consumer
        )
        self.app.connections += 1
        self.app.listeners.add(self)
        self.app.scenarios.gate(self, "ws_connect", {}, lambda after: after())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.transport = None
        self.app.connections -= 1
        self.app.listeners.discard(self)
        self._backlog.clear()
        for timer in (self._abort_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self._abort_timer = self._stall_timer = None
        self._held = None
        if self.outbox is not None:
            self.outbox.detach()

    def scenario_ctx(self) -> dict[str, Any]:
        """What a scenario triggered by this connection is matched on (and journaled with)."""
        return {"channel": self.CHANNEL, "conn_id": self.conn_id}

    def send(self, payload: bytes) -> None:
        """Everything this connection is sent goes through the fan-out, in order."""
        if self.outbox is not None:
            self.app.fanout.send(self.outbox, payload)

    def drop(self, reason: str) -> None:
        """Cut the connection at once, with no close frame (a scripted network fault)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def close(self, code: WSCloseCode | int, reason: str) -> None:
        """Send what this connection is owed, then a close frame; the peer's answer hangs up.

        ``code`` may be any close code (a scenario's 4000-4999 too): picows sends the number,
        though its stubs name only the standard ones."""
        transport = self.transport
        if transport is None or self._closing:
            return
        self._closing = True
        self._backlog.clear()
        self.unstall()  # what a stall held back is owed first
        if self.outbox is not None:
            self.app.fanout.write_now(self.outbox)
            self.outbox.detach()  # nothing may follow the close frame
        transport.send_close(cast(WSCloseCode, code), reason.encode()[:_MAX_CLOSE_REASON_BYTES])
        self._abort_timer = self.app.loop.call_later(CLOSE_GRACE_S, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._abort_timer = None
        transport = self.transport
        if transport is not None:
            transport.disconnect(graceful=transport.underlying_transport.get_write_buffer_size() == 0)

    def stall(self, ms: float) -> None:
        """Go silent for ``ms`` (``ws_stall``): the socket stays open, but nothing is written
        (the fan-out's frames are held), pings get no pong and the client's requests wait; then
        everything carries on in order. A second stall can only make it last longer."""
        box = self.outbox
        if self.transport is None or self._closing or box is None or box.raw is None:
            return
        loop = self.app.loop
        if self._held is None:
            self._held = HeldWrites(box.raw)
            box.raw = self._held
        elif self._stall_timer is not None:
            if self._stall_timer.when() >= loop.time() + ms / 1000:
                return
            self._stall_timer.cancel()
        self._stall_timer = loop.call_later(ms / 1000, self.unstall)

    def unstall(self) -> None:
        """End a stall: what was held goes out, then the requests that waited are handled."""
        held, self._held = self._held, None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if held is None:
            return
        box = self.outbox
        if box is not None and box.raw is held:  # not detached meanwhile (closed, gone)
            box.raw = held.raw
            if held.chunks and not held.raw.is_closing():
                held.raw.write(b"".join(held.chunks))
        self._drain()

    @property
    def stalled(self) -> bool:
        return self._held is not None

    def on_slow_consumer(self, reason: str) -> None:
        """The fan-out gave up on this connection (it has already stopped queueing for it)."""
        self.close(WSCloseCode.TRY_AGAIN_LATER, reason)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type in _DATA_FRAMES or msg_type == WSMsgType.CONTINUATION:
            if self._closing:
                return
            if frame.fin and self._fragments is None and msg_type != WSMsgType.CONTINUATION:
                payload: bytes | memoryview = frame.get_payload_as_memoryview()  # a whole message: most frames
            else:
                whole = self._assemble(frame)
                if whole is None:
                    return
                payload = whole
            if not self._paused and self._held is None:
                self.on_request(payload)
            elif len(self._backlog) < self.app.config.ws_max_pending_requests:
                self._backlog.append(bytes(payload))
            else:
                limit = self.app.config.ws_max_pending_requests
                log.warning("closing %s %s: more than %d requests queued", type(self).__name__, self.conn_id, limit)
                self.close(WSCloseCode.POLICY_VIOLATION, f"too many requests queued (limit {limit})")
        elif msg_type == WSMsgType.PING:
            # Answered here, not by picows (the server turns its auto-pong off), so that a
            # stalled connection can leave a ping unanswered, as a frozen peer would.
            if self._held is None:
                transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def _assemble(self, frame: WSFrame) -> bytes | None:
        """A fragmented message's payload once its last fragment is in (None until then).

        Clients may split a message into fragments (RFC 6455 5.4); together they are bounded by
        the frame limit, and a continuation with no message to continue is a protocol error."""
        first = frame.msg_type != WSMsgType.CONTINUATION
        if first == (self._fragments is not None):
            self.close(
                WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame" if not first else "fragments interleaved"
            )
            return None
        message = self._fragments = bytearray() if first else self._fragments
        assert message is not None
        message += frame.get_payload_as_memoryview()  # one growing buffer: its size is known at once
        limit = self.app.config.max_ws_frame_bytes
        if len(message) > limit:
            self.close(WSCloseCode.MESSAGE_TOO_BIG, f"message over {limit} bytes")
            return None
        if not frame.fin:
            return None
        self._fragments = None
        return bytes(message)

    def on_request(self, data: bytes | memoryview) -> None:
        """Handle one client message (a text or binary frame's payload)."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:  # also JSON nested past orjson's own limit
            self.on_bad_message("", None, "error:request not json")
            return
        if not isinstance(msg, dict):
            self.on_bad_message("", None, "error:request not json object")
            return
        op = msg.get("op")
        problem = shape_error(msg)
        if problem is not None:
            self.on_bad_message(op if isinstance(op, str) else "", None, f"error:request {problem}")
            return
        req_id = msg.get(self.REQ_ID_KEY)
        if req_id is not None and not is_req_id(req_id):
            self.on_bad_message(
                op if isinstance(op, str) else "",
                None,
                f"error:{self.REQ_ID_KEY} must be a string of at most {MAX_REQ_ID_CHARS} chars or an integer",
            )
            return
        if not isinstance(op, str):
            self.on_bad_message("", req_id, "error:op is required")
            return
        try:
            self.on_op(op, msg, req_id)
        except Exception:
            # A bug, not the client's fault, but it must not close this connection with 1011 or
            # lose the frames behind it: log it and answer like any other refusal.
            log.exception("%s %s: op %r failed", type(self).__name__, self.conn_id, op)
            self.on_bad_message(op, req_id, "error:internal error")

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        self._paused = True

    def resume(self, then: Callable[[], None]) -> None:
        """Run ``then`` (unless the connection is gone), then the frames that queued meanwhile."""
        self._paused = False
        if self.transport is None or self._closing:
            return
        then()
        self._drain()

    def _drain(self) -> None:
        """Handle the frames that queued while the connection was paused or stalled."""
        backlog = self._backlog
        while backlog and not self._paused and self._held is None and not self._closing:
            self.on_request(backlog.popleft())

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


def topics_ctx(topics: list[str]) -> dict[str, Any]:
    """A subscribe's scenario context: its topic (several joined by commas) and, for one
    public topic, its symbol."""
    if len(topics) == 1:
        return {"topic": topics[0], "symbol": topics[0].rsplit(".", 1)[-1]}
    return {"topic": ",".join(topics)}


class PublicListener(BaseListener):
    """``/v5/public/{category}``: subscribe, unsubscribe, ping."""

    def __init__(self, app: WsApp, category: str) -> None:
        super().__init__(app)
        self.category = category

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        self.app.hub_unsubscribe(self)

    def scenario_ctx(self) -> dict[str, Any]:
        return super().scenario_ctx() | {"category": self.category}

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

                def subscribe(after: Callable[[], None]) -> None:
                    def now() -> None:
                        self.subscribe(req_id, topics)
                        after()

                    self.after_ack_delay(now)

                self.app.scenarios.gate(
                    self,
                    "ws_subscribe",
                    topics_ctx(topics),
                    subscribe,
                    lambda code, ret_msg: self.ack(op, req_id, False, ret_msg, topics),
                )
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

    CHANNEL = "private"

    def __init__(self, app: WsApp) -> None:
        super().__init__(app)
        self.api_key: str | None = None

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        self.app.private_disconnected(self)
        if self.api_key is not None and self.CHANNEL == "private":
            self.app.scenarios.disconnected(self)

    def scenario_ctx(self) -> dict[str, Any]:
        ctx = super().scenario_ctx()
        if self.api_key is not None:
            ctx["api_key"] = self.api_key
        return ctx

    def on_bad_message(self, op: str, req_id: Any, ret_msg: str) -> None:
        self.send(messages.private_ack(op, self.conn_id, req_id, False, ret_msg))

    def on_op(self, op: str, msg: dict[str, Any], req_id: Any) -> None:
        if op == "ping":
            self.send(messages.private_pong(self.conn_id, req_id, now_ms()))
        elif op == "auth":
            self.authenticate(msg, req_id)
        elif op == "subscribe":

            def subscribe(after: Callable[[], None]) -> None:
                def now() -> None:
                    self.subscribe(msg, req_id)
                    after()

                self.after_ack_delay(now)

            topics = topic_args(msg)
            self.app.scenarios.gate(
                self,
                "ws_subscribe",
                topics_ctx(topics) if topics else {},
                subscribe,
                lambda code, ret_msg: self.on_bad_message(op, req_id, ret_msg),
            )
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
        scenarios = self.app.scenarios
        if scenarios.refusals and scenarios.refusing("auth", self.CHANNEL, key):
            self.auth_refused(req_id, errors.SERVER_ERROR, AUTH_REFUSED)
            return

        def go_on(after: Callable[[], None]) -> None:
            after()  # nothing of a scenario waits for the outcome
            self.verify(args, key, req_id)

        scenarios.gate(
            self,
            "ws_auth",
            {"api_key": key} if key else {},
            go_on,
            lambda code, ret_msg: self.auth_refused(req_id, code, ret_msg),
        )

    def verify(self, args: Any, key: str | None, req_id: Any) -> None:
        """Check an auth's signature (after a scenario let it through) and answer it."""

        def decide() -> None:
            api_key = auth.verify_ws_auth(args, self.app.secrets, now_ms())
            if api_key is None:
                self.auth_reply(req_id, False)
            else:
                # The ack waits until the engine builds this account's pushes, so nothing the
                # account does after the ack can be missed; frames behind it wait too. Without
                # an answer from the engine (the state service is down) the auth fails.
                self.api_key = api_key
                self.pause()

                def acked(ok: bool) -> None:
                    if not ok:
                        self.api_key = None
                    self.resume(lambda: self.auth_reply(req_id, ok, unavailable=not ok))

                self.authenticated(acked)

        if key is not None and key not in self.app.secrets:
            # Possibly an account added at run time: look again before refusing.
            self.pause()
            self.app.look_up_key(key, lambda: self.resume(decide))
        else:
            decide()

    def auth_refused(self, req_id: Any, code: int, msg: str) -> None:
        """An auth turned down by a scenario (the private ack carries no code, only the text)."""
        self.send(messages.private_ack("auth", self.conn_id, req_id, False, msg))

    def auth_reply(self, req_id: Any, ok: bool, repeat: bool = False, unavailable: bool = False) -> None:
        if ok:
            ret_msg = ""
        elif repeat:
            ret_msg = "Repeat auth"
        elif unavailable:
            ret_msg = "error:state service unavailable, retry later"
        else:
            ret_msg = "Params Error"
        self.send(messages.private_ack("auth", self.conn_id, req_id, ok, ret_msg))

    def authenticated(self, then: Callable[[bool], None]) -> None:
        """Route the account's pushes here; ``then(ok)`` sends the ack once the engine answered."""
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
