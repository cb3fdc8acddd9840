"""The Manager's wire protocol, spoken from the event loop.

A Manager proxy call is ``send((ident, method, args, kwargs))`` then ``recv()`` on a socket
that the server's ``serve_client`` loop reads one request at a time, answering each with
``("#RETURN", value)`` or ``("#ERROR", exception)``. Frames are pickles behind a 4-byte
big-endian length (an 8-byte one after ``-1`` for frames over 2 GiB), as in
``multiprocessing.connection``.

The blocking parts (the HMAC challenge, the two setup requests and asking the engine for its
``instance`` id) run once per connection in the default executor, through
``multiprocessing.connection.Client``; after that the socket belongs to the event loop, so a
round trip costs no thread, no GIL handoff and no loop wakeup beyond the socket becoming readable.

A request is pickled whole before a byte of it is written: one that cannot be pickled (a
``RecursionError`` on a deeply nested value, say) raises :class:`NotSent` and leaves the
connection exactly as it was, so the caller can drop that request and go on using it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import struct
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from typing import Any, cast

_SIZE = struct.Struct("!i")
_BIG_SIZE = struct.Struct("!Q")
_MAX_SMALL = 0x7FFFFFFF

#: ``(kind, value)``: kind is ``"#RETURN"`` for a result, anything else for a failure.
WireReply = tuple[str, Any]


class NotSent(ValueError):
    """A request could not be encoded; nothing was written and the connection is intact."""


def encode_call(ident: str, method: str, args: tuple[Any, ...]) -> bytes:
    """One call's frame (length header and pickle); raises :class:`NotSent` if it cannot be pickled."""
    try:
        frame = pickle.dumps((ident, method, args, {}), pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # RecursionError, PicklingError, TypeError ...: whatever pickle raises
        raise NotSent(f"{type(exc).__name__}: {exc}") from exc
    size = len(frame)
    header = _SIZE.pack(size) if size <= _MAX_SMALL else _SIZE.pack(-1) + _BIG_SIZE.pack(size)
    return header + frame


def _request(conn: Connection, method: str, args: tuple[Any, ...], ident: str | None = None) -> Any:
    """A blocking request: server-level (what ``multiprocessing.managers.dispatch`` sends), or
    a call of the shared object ``ident``."""
    conn.send((ident, method, args, {}))
    kind, value = conn.recv()
    if kind != "#RETURN":
        raise ConnectionError(f"state service refused {method!r}: {value}")
    return value


def _open_socket(address: Any, authkey: bytes, typeid: str, name: str) -> tuple[str, str, socket.socket]:
    """Blocking: authenticate, look up the shared object's id, switch a connection to calls,
    and ask the engine which instance it is (see :attr:`ManagerChannel.instance`)."""
    setup = Client(address, authkey=authkey)
    try:
        ident, _exposed = _request(setup, "create", (typeid,))
    finally:
        setup.close()
    conn = Client(address, authkey=authkey)
    try:
        _request(conn, "accept_connection", (name,))
        instance = _request(conn, "instance", (), ident)
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    finally:
        conn.close()
    sock.setblocking(False)
    return ident, str(instance), sock


class ManagerChannel(asyncio.Protocol):
    """One connection to a Manager server, calling methods of one shared object.

    Calls may be pipelined: the server answers them in order, and ``on_reply`` receives each
    answer in that order. ``on_lost`` runs once when the connection ends, for any reason.
    ``instance`` is the engine's instance id as of the connection: a restarted state service
    has a new one, which is how a client tells a new engine from a reconnect to the same one.
    """

    def __init__(
        self, ident: str, instance: str, on_reply: Callable[[WireReply], None], on_lost: Callable[[str], None]
    ) -> None:
        self.ident = ident
        self.instance = instance
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def open(
        cls,
        address: Any,
        authkey: bytes,
        typeid: str,
        on_reply: Callable[[WireReply], None],
        on_lost: Callable[[str], None],
    ) -> ManagerChannel:
        loop = asyncio.get_running_loop()
        name = f"pid-{os.getpid()}"
        ident, instance, sock = await loop.run_in_executor(None, _open_socket, address, authkey, typeid, name)
        try:
            _, channel = await loop.connect_accepted_socket(lambda: cls(ident, instance, on_reply, on_lost), sock)
        except BaseException:
            sock.close()
            raise
        return channel

    def call(self, method: str, args: tuple[Any, ...]) -> None:
        """Send one call; :class:`NotSent` if it cannot be encoded (the connection is unharmed),
        ``ConnectionError`` if the connection is closed."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("state service connection is closed")
        self._transport.write(encode_call(self.ident, method, args))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's stream transports do not subclass asyncio.Transport; they quack like one
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        end = len(buffer)
        while end - start >= 4:
            (size,) = _SIZE.unpack_from(buffer, start)
            head = 4
            if size == -1:
                if end - start < 12:
                    break
                (size,) = _BIG_SIZE.unpack_from(buffer, start + 4)
                head = 12
            if end - start < head + size:
                break
            with memoryview(buffer) as view:  # released before the buffer is resized below
                reply = pickle.loads(view[start + head : start + head + size])
            start += head + size
            self._on_reply(reply)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._on_lost(str(exc) if exc else "connection closed")
