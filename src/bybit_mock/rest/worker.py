"""REST worker process: httptools protocol on uvloop, one ``SO_REUSEPORT`` socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

from ..service.client import Reply, StateClient
from ..service.events import EventPoller
from ..service.manager import connect, discard
from ..worker import WorkerSpec, fetch_secrets, reuseport_socket, run_worker
from .app import RestApp
from .faults import RestFaults
from .protocol import HttpProtocol
from .routes import build_routes


async def serve(spec: WorkerSpec, state: StateClient) -> Callable[[], Awaitable[None]]:
    loop = asyncio.get_running_loop()
    app = RestApp(spec.config, state, build_routes(spec.config))
    app.secrets = await fetch_secrets(state)
    poller = await follow_scenarios(spec, state, app.faults)
    sock = reuseport_socket(spec.config.host, spec.port)
    server = await loop.create_server(lambda: HttpProtocol(app), sock=sock, backlog=4096)

    async def shutdown() -> None:
        poller.stop()
        server.close()

    return shutdown


async def follow_scenarios(spec: WorkerSpec, state: StateClient, faults: RestFaults) -> EventPoller[Any]:
    """Learn which routes are armed (and IP bans) from the engine's events, from a thread of
    their own; a new engine (the state service restarted) is followed from its own cursor."""
    loop = asyncio.get_running_loop()
    code, value = await state.call("scenario_state")
    if code != 0:
        raise RuntimeError(f"could not read the armed scenarios from the state service: {value}")
    instance, cursor, summary = value
    faults.learn(summary)
    poller = EventPoller(
        lambda: connect(spec.state_address, spec.authkey),
        loop,
        faults.on_events,
        cursor,
        instance,
        discard,
        bulk=False,  # the private stream's events are the WS workers' business
    )

    def on_new_engine(new_instance: str) -> None:
        def resynced(reply: Reply) -> None:
            if reply[0] == 0 and reply[1][0] == new_instance:
                _, new_cursor, new_summary = reply[1]
                faults.version = -1  # a new engine's versions start again
                faults.bans.clear()
                faults.learn(new_summary)
                poller.resync(new_instance, new_cursor)
            else:
                loop.call_later(0.2, on_new_engine, new_instance)

        state.submit("scenario_state", (), resynced)

    state.on_new_engine = on_new_engine
    if state.instance is not None and state.instance != instance:  # restarted while we started
        on_new_engine(state.instance)
    poller.start()
    return poller


def main(spec: WorkerSpec, ready: Connection) -> None:
    run_worker(spec, ready, serve)
