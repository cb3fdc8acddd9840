"""WebSocket worker process: picows on uvloop, one ``SO_REUSEPORT`` port shared by all WS workers.

Besides the batching state client it runs the event poller (its own Manager connection, in a
thread); both reconnect by themselves if the state service goes, and a new engine behind
them is handled by :meth:`WsApp.on_new_engine`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from picows import ws_create_server

from ..service.client import StateClient
from ..service.events import EventPoller
from ..service.manager import connect, discard
from ..worker import WorkerSpec, fetch_secrets, reuseport_socket, run_worker
from .app import WsApp


async def serve(spec: WorkerSpec, state: StateClient) -> Callable[[], Awaitable[None]]:
    loop = asyncio.get_running_loop()
    app = WsApp(spec.config, state, loop, spec.name)
    app.secrets = await fetch_secrets(state)
    await state.call("watch", spec.name, [])  # a restarted worker starts with no private connections
    code, value = await state.call("market_models")
    if code != 0:
        raise RuntimeError(f"could not load the market models from the state service: {value}")
    app.engine, cursor, models = value
    app.load_markets(models)
    # What is armed, as of now; the events from ``cursor`` on bring every later change (the
    # newest version wins, whichever way it came).
    code, value = await state.call("scenario_state")
    if code != 0:
        raise RuntimeError(f"could not read the armed scenarios from the state service: {value}")
    if value[0] == app.engine:
        app.scenarios.learn(value[2])
    poller = EventPoller(
        lambda: connect(spec.state_address, spec.authkey), loop, app.on_events, cursor, app.engine, discard
    )
    app.poller = poller
    state.on_new_engine = app.on_new_engine
    if state.instance is not None and state.instance != app.engine:  # restarted while we loaded
        app.on_new_engine(state.instance)
    poller.start()
    sock = reuseport_socket(spec.config.host, spec.port)
    server = await ws_create_server(
        app.listener_factory,
        sock=sock,
        max_frame_size=spec.config.max_ws_frame_bytes,
        websocket_handshake_timeout=5,
        # RFC 6455 pings (pybit's websocket-client sends one every 20 s) are answered by the
        # listeners, so that a scripted stall can leave them unanswered
        enable_auto_pong=False,
        backlog=4096,
        read_buffer_init_size=1024,  # clients send little; keeps an idle connection's memory small
    )

    async def shutdown() -> None:
        poller.stop()
        app.publisher.close()
        server.close()

    return shutdown


def main(spec: WorkerSpec, ready: Connection) -> None:
    run_worker(spec, ready, serve)
