"""A fan-out server for the WS benchmark, in one of three modes (run as a subprocess).

* ``fanout``: bybit-mock's stream path: ``FanOut.publish_batch`` per topic per tick (frames
  built and joined once), coalesced into one write per connection per loop tick.
* ``fanout-per-message``: the same with one ``FanOut.publish`` call per message, to show what
  batching per tick is worth.
* ``raw``: the ceiling (a): the same frames pre-joined once per tick and written as one
  ``transport.write`` per connection. No per-message work at all.
* ``websockets``: the reference (b): the websockets library's ``broadcast()`` per message.

Every mode publishes ``batch`` distinct pre-encoded messages per tick to every connected
client, and pauses while any client's socket buffer is above a high-water mark, so the
server never outruns its readers and nothing is dropped. It prints its port, serves for
``--seconds`` and exits by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvloop

from bybit_mock.ws.fanout import FanOut, Outbox, text_frame

HIGH_WATER = 256 * 1024


def payloads(batch: int, size: int) -> list[bytes]:
    """Distinct, Bybit-trade-shaped messages of exactly ``size`` bytes."""
    out = []
    for i in range(batch):
        head = b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1700000000000,"data":[{"i":"%08d","p":"' % i
        tail = b'"}]}'
        out.append(head + b"6" * (size - len(head) - len(tail)) + tail)
    return out


async def serve_picows(mode: str, batch: int, size: int, seconds: float, expect: int) -> None:
    from picows import WSListener, WSTransport, ws_create_server  # noqa: PLC0415 - only the mode in use is imported

    loop = asyncio.get_running_loop()
    fan = FanOut(loop, max_buffer=1 << 30)
    boxes: list[Outbox] = []
    raws: list[Any] = []

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: WSTransport) -> None:
            self.raw = transport.underlying_transport
            self.box = Outbox(self.raw, "bench", lambda reason: None)
            raws.append(self.raw)
            boxes.append(self.box)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            raws.remove(self.raw)
            boxes.remove(self.box)
            self.box.detach()

    server = await ws_create_server(lambda _: Listener(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    msgs = payloads(batch, size)
    frames = [text_frame(m) for m in msgs]
    joined = b"".join(frames)
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if len(raws) < expect or max(r.get_write_buffer_size() for r in raws) > HIGH_WATER:
            await asyncio.sleep(0.0005)
            continue
        if mode == "raw":
            for r in raws:
                r.write(joined)
        elif mode == "fanout":
            fan.publish_batch(boxes, msgs)
            fan.flush()
        else:  # fanout-per-message: one publish() call per message
            for m in msgs:
                fan.publish(boxes, m)
            fan.flush()
        await asyncio.sleep(0)
    server.close()


async def serve_websockets(batch: int, size: int, seconds: float, expect: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve  # noqa: PLC0415

    conns: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    loop = asyncio.get_running_loop()
    async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        msgs = [m.decode() for m in payloads(batch, size)]
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            live = list(conns)
            if len(live) < expect or max(c.transport.get_write_buffer_size() for c in live) > HIGH_WATER:
                await asyncio.sleep(0.0005)
                continue
            for m in msgs:
                broadcast(live, m)
            await asyncio.sleep(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["fanout", "fanout-per-message", "raw", "websockets"], required=True)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    # send nothing until this many subscribers are in: a server busy sending answers late
    # handshakes too slowly (websockets then refuses them with 503)
    parser.add_argument("--expect", type=int, default=1)
    args = parser.parse_args()
    if args.mode == "websockets":
        uvloop.run(serve_websockets(args.batch, args.size, args.seconds, args.expect))
    else:
        uvloop.run(serve_picows(args.mode, args.batch, args.size, args.seconds, args.expect))
    sys.exit(0)


if __name__ == "__main__":
    main()
