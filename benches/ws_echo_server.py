"""The reconnect storm's reference: a bare picows server that echoes every text frame (run as a subprocess).

It does what any WebSocket server must for a client that connects (accept, the HTTP upgrade,
one frame read and one written) and nothing else: the same picows, uvloop and listen backlog
(4096) as the mock's WS worker. Prints its port, serves until SIGTERM or ``--seconds``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from canned_server import serve_until_stopped


class Echo(WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            transport.send(WSMsgType.TEXT, frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def serve(seconds: float) -> None:
    await serve_until_stopped(await ws_create_server(lambda _: Echo(), "127.0.0.1", 0, backlog=4096), seconds)


@contextmanager
def running(seconds: float = 300) -> Iterator[tuple[int, int]]:
    """Start the echo server in its own process; yield its port and pid; stop it."""
    server = subprocess.Popen([sys.executable, __file__, "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline()), server.pid
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    uvloop.run(serve(parser.parse_args().seconds))
