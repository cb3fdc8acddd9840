"""The WS fan-out: frames built once, one write per connection per tick, bounded buffers."""

from __future__ import annotations

import asyncio
import struct

import pytest
from picows import WSMsgType
from picows.picows import _make_test_ws_frame

from bybit_mock.ws.fanout import FanOut, Outbox, text_frame


class FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


def parse_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        assert data[0] == 0x81  # FIN + text, unmasked
        size, offset = data[1], 2
        if size == 126:
            (size,), offset = struct.unpack("!H", data[2:4]), 4
        elif size == 127:
            (size,), offset = struct.unpack("!Q", data[2:10]), 10
        frames.append(data[offset : offset + size])
        data = data[offset + size :]
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_lengths(size: int) -> None:
    payload = b"x" * size
    (decoded,) = parse_frames(text_frame(payload))
    assert decoded == payload
    frame = _make_test_ws_frame(WSMsgType.TEXT, payload, True, False)  # picows agrees on the payload
    assert frame.get_payload_as_bytes() == payload


async def test_frames_coalesce_into_one_write_per_tick_in_order() -> None:
    fan = FanOut(asyncio.get_running_loop(), max_buffer=1 << 20)
    a, b = FakeTransport(), FakeTransport()
    box_a, box_b = Outbox(a, "a", lambda r: None), Outbox(b, "b", lambda r: None)
    fan.send(box_a, b'{"ack":1}')
    for i in range(20):
        fan.publish([box_a, box_b], b'{"n":%d}' % i)
    assert a.writes == [] and b.writes == []  # nothing written until the loop turns
    await asyncio.sleep(0)
    assert len(a.writes) == 1 and len(b.writes) == 1
    assert parse_frames(a.writes[0]) == [b'{"ack":1}'] + [b'{"n":%d}' % i for i in range(20)]
    assert parse_frames(b.writes[0]) == [b'{"n":%d}' % i for i in range(20)]
    assert fan.frames_delivered == 41 and fan.writes == 2


async def test_one_frame_object_is_shared_by_all_subscribers() -> None:
    fan = FanOut(asyncio.get_running_loop(), max_buffer=1 << 20)
    boxes = [Outbox(FakeTransport(), str(i), lambda r: None) for i in range(3)]
    fan.publish(boxes, b"payload")
    assert boxes[0].frames[0] is boxes[1].frames[0] is boxes[2].frames[0]


async def test_slow_consumer_is_dropped_with_a_reason() -> None:
    fan = FanOut(asyncio.get_running_loop(), max_buffer=1000)
    slow, fast = FakeTransport(buffered=5000), FakeTransport()
    reasons: list[str] = []
    box_slow, box_fast = Outbox(slow, "slow", reasons.append), Outbox(fast, "fast", lambda r: None)
    fan.publish([box_slow, box_fast], b"tick")
    await asyncio.sleep(0)
    # the listener turns the reason into a close frame's (tests/unit/test_ws_listeners.py)
    assert slow.writes == [] and box_slow.dropped and reasons == ["slow consumer: 5000 bytes unsent"]
    assert parse_frames(fast.writes[0]) == [b"tick"]
    fan.publish([box_slow], b"more")  # a dropped box takes nothing more
    await asyncio.sleep(0)
    assert slow.writes == [] and box_slow.frames == [] and fan.slow_consumers_dropped == 1


async def test_closing_or_detached_transport_is_skipped() -> None:
    fan = FanOut(asyncio.get_running_loop(), max_buffer=1 << 20)
    closing = FakeTransport()
    closing.closing = True
    box = Outbox(closing, "c", lambda r: None)
    fan.send(box, b"x")
    await asyncio.sleep(0)
    assert closing.writes == [] and box.raw is None


async def test_write_now_sends_what_is_owed_ahead_of_the_tick() -> None:
    fan = FanOut(asyncio.get_running_loop(), max_buffer=1 << 20)
    raw = FakeTransport()
    box = Outbox(raw, "b", lambda r: None)
    fan.send(box, b"first")
    fan.send(box, b"second")
    fan.write_now(box)  # a listener about to send a close frame
    assert [parse_frames(w) for w in raw.writes] == [[b"first", b"second"]]
    await asyncio.sleep(0)
    assert len(raw.writes) == 1 and fan.frames_delivered == 2  # the tick finds nothing left
