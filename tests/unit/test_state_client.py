"""The batching state client: commands queued during a round trip share the next one."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from bybit_mock.service.client import StateClient


class SlowBackend:
    """Stands in for the Manager proxy: each round trip takes a while, like a real one."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def apply_batch(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[int, Any]]:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        self.batches.append(len(commands))
        return [(0, (op, args)) for op, args in commands]


async def test_concurrent_commands_share_round_trips() -> None:
    backend = SlowBackend()
    client = StateClient(lambda: backend, asyncio.get_running_loop())
    client.start()
    try:
        replies = await asyncio.gather(*(client.call("echo", i) for i in range(200)))
    finally:
        client.close()
    assert replies == [(0, ("echo", (i,))) for i in range(200)]  # every reply to its caller, in order
    assert client.commands == 200
    assert client.round_trips == len(backend.batches) < 20  # far fewer trips than commands
    assert client.max_batch > 10
    assert backend.threads == {"state-client"}  # never the event-loop thread


async def test_idle_command_goes_out_alone_and_at_once() -> None:
    backend = SlowBackend(delay=0)
    client = StateClient(lambda: backend, asyncio.get_running_loop())
    client.start()
    try:
        assert await client.call("one") == (0, ("one", ()))
        assert await client.call("two") == (0, ("two", ()))
    finally:
        client.close()
    assert backend.batches == [1, 1]


async def test_loop_is_not_blocked_during_a_round_trip() -> None:
    backend = SlowBackend(delay=0.2)
    client = StateClient(lambda: backend, asyncio.get_running_loop())
    client.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await client.call("slow")
    finally:
        task.cancel()
        client.close()
    assert ticks >= 5  # the loop kept running while the client thread waited


class Broken:
    calls = 0

    def apply_batch(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[int, Any]]:
        Broken.calls += 1
        raise ConnectionError("state service gone")


async def test_unreachable_service_answers_10016_and_reconnects() -> None:
    connects = 0

    def connect() -> Broken:
        nonlocal connects
        connects += 1
        return Broken()

    client = StateClient(connect, asyncio.get_running_loop())
    client.start()
    try:
        first = await client.call("x")
        second = await client.call("y")
    finally:
        client.close()
    assert first[0] == second[0] == 10016
    assert connects == 2  # a failed connection is dropped and re-made
