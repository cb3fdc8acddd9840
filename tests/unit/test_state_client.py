"""The batching state client, over a real Manager server's wire protocol.

The server runs in a thread of the test process (``BaseManager.get_server``) and serves a
stand-in engine whose ``apply_batch`` records every batch it receives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from multiprocessing.managers import BaseManager
from typing import Any

import pytest

from bybit_mock.service.client import StateClient, manager_opener


class Recorder:
    """Stands in for the engine: each batch takes ``delay``, like a real round trip."""

    def __init__(self) -> None:
        self.delay = 0.005
        self.batches: list[list[tuple[str, tuple[Any, ...]]]] = []
        self.fail = False
        self.drop = False

    def apply_batch(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[int, Any]]:
        if self.fail:
            raise RuntimeError("engine bug")
        if self.drop:  # ends the server's connection thread: the socket closes mid-call
            self.drop = False
            raise SystemExit
        time.sleep(self.delay)
        self.batches.append(commands)
        return [(0, (op, args)) for op, args in commands]


RECORDER = Recorder()


class _Manager(BaseManager):
    pass


_Manager.register("exchange", callable=lambda: RECORDER, exposed=("apply_batch",))


class Server:
    """A Manager server on an ephemeral port, in daemon threads of this process."""

    def __init__(self) -> None:
        self.server = _Manager(address=("127.0.0.1", 0), authkey=b"test-key").get_server()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.server.serve_forever()
        except SystemExit:  # how serve_forever ends
            pass

    @property
    def address(self) -> Any:
        return self.server.address

    def stop(self) -> None:
        # The accept thread stays blocked on the (open) listener: closing it would make
        # multiprocessing's accepter spin. It is a daemon and holds no CPU.
        self.server.stop_event.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[StateClient]:
    c = StateClient(manager_opener(server.address, b"test-key"), asyncio.get_running_loop())
    c.start()
    assert await c.call("connected") == (0, ("connected", ()))
    RECORDER.__init__()  # type: ignore[misc]
    c.round_trips = c.commands = c.max_batch = 0
    yield c
    c.close()


async def test_concurrent_commands_share_round_trips(client: StateClient) -> None:
    replies = await asyncio.gather(*(client.call("echo", i) for i in range(200)))
    assert replies == [(0, ("echo", (i,))) for i in range(200)]  # every reply to its caller
    assert client.commands == 200
    assert client.round_trips == len(RECORDER.batches) < 20  # far fewer trips than commands
    assert client.max_batch > 10


async def test_commands_queued_during_a_trip_ride_the_next_one(client: StateClient) -> None:
    RECORDER.delay = 0.05
    first = client.call("first")
    await asyncio.sleep(0.01)  # the first batch is in flight now
    later = [client.call("later", i) for i in range(30)]
    assert await first == (0, ("first", ()))
    assert await asyncio.gather(*later) == [(0, ("later", (i,))) for i in range(30)]
    assert [len(b) for b in RECORDER.batches] == [1, 30]


async def test_identical_reads_in_a_batch_go_out_once(client: StateClient) -> None:
    query = {"accountType": "UNIFIED", "coin": "USDT"}
    reordered = {"coin": "USDT", "accountType": "UNIFIED"}
    calls = [client.call("wallet_balance", "key", q) for q in [query, reordered] * 10]
    calls += [client.call("wallet_balance", "other-key", query), client.call("set_balance", "key", 1)]
    calls += [client.call("set_balance", "key", 1)]  # writes are never merged
    replies = await asyncio.gather(*calls)
    assert [r[0] for r in replies] == [0] * 23
    assert replies[0] == replies[19] == (0, ("wallet_balance", ("key", query)))
    sent = [cmd for batch in RECORDER.batches for cmd in batch]
    assert [op for op, _ in sent] == ["wallet_balance", "wallet_balance", "set_balance", "set_balance"]
    assert client.commands == 23


async def test_idle_command_goes_out_alone_and_at_once(client: StateClient) -> None:
    RECORDER.delay = 0
    assert await client.call("one") == (0, ("one", ()))
    assert await client.call("two") == (0, ("two", ()))
    assert [len(b) for b in RECORDER.batches] == [1, 1]


async def test_loop_is_not_blocked_during_a_round_trip(client: StateClient) -> None:
    RECORDER.delay = 0.2
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
    assert ticks >= 5  # the loop kept running while the server worked


async def test_a_failing_batch_answers_10016_and_the_next_one_works(client: StateClient) -> None:
    RECORDER.fail = True
    assert (await client.call("x"))[0] == 10016
    RECORDER.fail = False
    assert await client.call("y") == (0, ("y", ()))


async def test_unreachable_service_answers_10016() -> None:
    client = StateClient(manager_opener(("127.0.0.1", 1), b"test-key"), asyncio.get_running_loop())
    try:
        assert (await client.call("x"))[0] == 10016  # nothing listens on port 1
    finally:
        client.close()


async def test_a_dropped_connection_answers_10016_and_the_next_command_reconnects(client: StateClient) -> None:
    assert await client.call("before") == (0, ("before", ()))
    RECORDER.drop = True
    assert (await asyncio.wait_for(client.call("dropped"), 5))[0] == 10016
    assert await asyncio.wait_for(client.call("after"), 5) == (0, ("after", ()))


async def test_closed_client_answers_10016(client: StateClient) -> None:
    client.close()
    assert (await client.call("x"))[0] == 10016
