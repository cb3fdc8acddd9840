"""REST worker process: httptools protocol on uvloop, one ``SO_REUSEPORT`` socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from ..service.client import StateClient
from ..worker import WorkerSpec, fetch_secrets, reuseport_socket, run_worker
from .app import RestApp
from .protocol import HttpProtocol
from .routes import build_routes


async def serve(spec: WorkerSpec, state: StateClient) -> Callable[[], Awaitable[None]]:
    loop = asyncio.get_running_loop()
    app = RestApp(spec.config, state, build_routes(spec.config))
    app.secrets = await fetch_secrets(state)
    sock = reuseport_socket(spec.config.host, spec.port)
    server = await loop.create_server(lambda: HttpProtocol(app), sock=sock, backlog=4096)

    async def shutdown() -> None:
        server.close()

    return shutdown


def main(spec: WorkerSpec, ready: Connection) -> None:
    run_worker(spec, ready, serve)
