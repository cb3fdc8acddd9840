"""The ceiling: one uvloop + httptools process answering every request with canned bytes.

It does what any HTTP server must (parse each request with httptools, keep the connection
alive, write a response) and nothing else, so the mock's figures divided by this one say how
much of a core the mock's own work costs. Prints its port, then serves until SIGTERM or
``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httptools
import uvloop

# Same size as the mock's /v5/market/time answer, so both write the same bytes.
BODY = (
    b'{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1700000000","timeNano":"1700000000000000000"},'
    b'"retExtInfo":{},"time":1700000000000}'
)
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


class Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(RESPONSE)


async def serve(seconds: float) -> None:
    loop = asyncio.get_running_loop()
    await serve_until_stopped(await loop.create_server(Canned, "127.0.0.1", 0, backlog=1024), seconds)


async def serve_until_stopped(server: Any, seconds: float) -> None:
    """Print the server's port (the parent reads it), serve until SIGTERM or ``seconds``, close."""
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
    server.close()


@contextmanager
def running(seconds: float = 600) -> Iterator[int]:
    """Start the ceiling server in its own process; yield its port; stop it."""
    server = subprocess.Popen([sys.executable, __file__, "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    uvloop.run(serve(parser.parse_args().seconds))
