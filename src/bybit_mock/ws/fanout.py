"""Fan-out: every frame is built once and written once per connection per loop tick.

Why not ``WSTransport.send`` per message and subscriber? A send is a syscall; one per frame
caps a worker near 0.1 M frames/s, while joining the frames a connection is owed and writing
them in one call reaches well over 1 M frames/s on the same core (``DESIGN.md``, section 1).
Server-to-client frames are unmasked, so one pre-built frame is valid for every subscriber.

Rules:

* **One path for everything a connection is sent.** Acks, pongs, snapshots and stream data
  all go through :meth:`FanOut.send`, so a snapshot can never overtake the ack that
  announced it. (picows itself only writes RFC 6455 control frames: pongs and close.)
* **Whole frames only** are written to the socket, so control frames picows writes in
  between cannot split a data frame.
* **Bounded memory.** Before a write, a connection whose socket write buffer already holds
  more than ``max_buffer`` bytes is a consumer that fell behind. It is owed nothing more:
  what it was about to be sent is discarded, no later frame is queued for it, and its close
  callback gets a reason (the listener then sends a close frame, 1013, after the whole frames
  already buffered, and hangs up once the peer answers or a grace period ends). Its memory
  stays at the limit plus one tick's worth.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger(__name__)

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, size) + payload


class RawTransport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class Outbox:
    """What one connection is owed this tick."""

    __slots__ = ("close", "count", "dropped", "frames", "name", "raw")

    def __init__(self, raw: RawTransport, name: str, close: Callable[[str], None]) -> None:
        self.raw: RawTransport | None = raw
        self.frames: list[bytes] = []  # whole frames, or several frames joined
        self.count = 0  # messages in ``frames``
        self.name = name
        self.close = close  # called with a reason when the consumer is dropped as too slow
        self.dropped = False

    def detach(self) -> None:
        self.raw = None
        self.frames.clear()
        self.count = 0


class FanOut:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_buffer: int) -> None:
        self._loop = loop
        self._max_buffer = max_buffer
        self._dirty: list[Outbox] = []
        self._scheduled = False
        self.frames_delivered = 0
        self.writes = 0
        self.slow_consumers_dropped = 0

    def send(self, box: Outbox, payload: bytes) -> None:
        """Queue one message for one connection."""
        self.send_frame(box, text_frame(payload))

    def send_frame(self, box: Outbox, frame: bytes) -> None:
        self.publish_frames((box,), frame, 1)

    def publish(self, boxes: Iterable[Outbox], payload: bytes) -> None:
        """Queue one message for many connections: encoded and framed once."""
        self.publish_frames(boxes, text_frame(payload), 1)

    def publish_batch(self, boxes: Iterable[Outbox], payloads: list[bytes]) -> None:
        """Queue a tick's worth of one topic's messages: framed and joined once for everyone.

        This is the stream publisher's path: per subscriber it costs one list append per
        topic per tick, whatever the number of messages, which is what lets fan-out approach
        the raw cost of writing pre-framed bytes.
        """
        if payloads:
            self.publish_frames(boxes, b"".join([text_frame(p) for p in payloads]), len(payloads))

    def publish_frames(self, boxes: Iterable[Outbox], frames: bytes, count: int) -> None:
        """Queue ``count`` already-framed messages (one bytes object) for many connections."""
        dirty = self._dirty
        mark_dirty = dirty.append
        for box in boxes:
            pending = box.frames
            if not pending:
                if box.raw is None:
                    continue
                mark_dirty(box)
            pending.append(frames)
            box.count += count
        if dirty and not self._scheduled:  # (a box owed anything is in ``dirty`` until flushed)
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        self._write(dirty)

    def write_now(self, box: Outbox) -> None:
        """Write what ``box`` is owed at once; a listener calls this before its close frame."""
        self._write((box,))

    def _write(self, boxes: Iterable[Outbox]) -> None:
        # One loop, no call per connection but the transport's own: at 500 subscribers this
        # loop is most of the fan-out's Python time (``docs/benchmarks.md``, WS fan-out).
        limit = self._max_buffer
        delivered = writes = 0
        for box in boxes:
            raw = box.raw
            frames = box.frames
            if raw is None or not frames:
                continue
            if raw.is_closing():
                box.detach()
                continue
            buffered = raw.get_write_buffer_size()
            if buffered > limit:
                self.drop_slow(box, buffered)
                continue
            raw.write(frames[0] if len(frames) == 1 else b"".join(frames))
            frames.clear()
            delivered += box.count
            box.count = 0
            writes += 1
        self.frames_delivered += delivered
        self.writes += writes

    def drop_slow(self, box: Outbox, buffered: int) -> None:
        """Owe ``box`` nothing more and have its listener close it.

        Only what it is owed this tick is discarded; the socket buffer holds whole frames, so
        the close frame the listener sends lands on a frame boundary.
        """
        self.slow_consumers_dropped += 1
        reason = f"slow consumer: {buffered} bytes unsent"
        log.warning("closing %s: %s (limit %d), %d messages discarded", box.name, reason, self._max_buffer, box.count)
        box.dropped = True
        box.detach()
        box.close(reason)


class HeldWrites:
    """A stalled connection's socket as the fan-out sees it: what is written is kept, not sent.

    The fan-out's slow-consumer rule counts what is held, so a stall is bounded like a slow
    reader: past ``ws_max_buffer_bytes`` the connection is closed with 1013."""

    __slots__ = ("chunks", "raw", "size")

    def __init__(self, raw: RawTransport) -> None:
        self.raw = raw
        self.chunks: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)

    def get_write_buffer_size(self) -> int:
        return self.size + self.raw.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self.raw.is_closing()
