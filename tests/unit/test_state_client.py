"""The batching state client, over a real Manager server's wire protocol, and its connection
rules (bad commands, lost channels, outages, a new engine) against a fake channel; and the
WS workers' event poller across a change of engine.

The server runs in a thread of the test process (``BaseManager.get_server``) and serves a
stand-in engine whose ``apply_batch`` records every batch it receives.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from multiprocessing.managers import BaseManager
from typing import Any

import pytest

from bybit_mock.service.client import UNPROCESSABLE, StateClient, manager_opener
from bybit_mock.service.events import EventPoller
from bybit_mock.service.wire import WireReply, encode_call


class Recorder:
    """Stands in for the engine: each batch takes ``delay``, like a real round trip."""

    def __init__(self) -> None:
        self.delay = 0.005
        self.batches: list[list[tuple[str, tuple[Any, ...]]]] = []
        self.fail = False
        self.drop = False

    def instance(self) -> str:
        return "recorder"

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


_Manager.register("exchange", callable=lambda: RECORDER, exposed=("apply_batch", "instance"))


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


async def test_an_unpicklable_command_over_the_real_wire_fails_alone(client: StateClient) -> None:
    RECORDER.delay = 0
    good = client.call("order_create", "k", {"qty": "1"})
    bad = client.call("order_create", "k", {"qty": nested(1000)})
    assert await asyncio.wait_for(bad, 5) == UNPROCESSABLE
    assert await asyncio.wait_for(good, 5) == (0, ("order_create", ("k", {"qty": "1"})))
    assert RECORDER.batches == [[("order_create", ("k", {"qty": "1"}))]]
    assert await asyncio.wait_for(client.call("after"), 5) == (0, ("after", ()))


# -- the client's connection rules, against a fake channel ------------------------------------
#
# The fake frames every call exactly as the real channel does (``wire.encode_call``), so a
# command that does not pickle fails the same way; the test decides when replies and losses
# arrive, and from which channel.


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


class FakeChannel:
    def __init__(
        self,
        instance: str,
        on_reply: Callable[[WireReply], None],
        on_lost: Callable[[str], None],
        auto: bool,
    ) -> None:
        self.instance = instance
        self.on_reply = on_reply
        self.on_lost = on_lost
        self.auto = auto  # answer every batch on the next loop iteration
        self.sent: list[list[tuple[str, tuple[Any, ...]]]] = []
        self.unanswered: list[list[tuple[str, tuple[Any, ...]]]] = []
        self.closed = False
        self.broken = False  # the socket is gone: a write raises

    def call(self, method: str, args: tuple[Any, ...]) -> None:
        if self.closed or self.broken:
            raise ConnectionError("state service connection is closed")
        encode_call("fake", method, args)
        (batch,) = args
        self.sent.append(batch)
        self.unanswered.append(batch)
        if self.auto:
            asyncio.get_running_loop().call_soon(self.answer)

    def answer(self) -> None:
        if self.unanswered:
            batch = self.unanswered.pop(0)
            self.on_reply(("#RETURN", [(0, (op, args)) for op, args in batch]))

    def close(self) -> None:
        self.closed = True


class FakeOpener:
    def __init__(self, auto: bool = True) -> None:
        self.auto = auto
        self.instance = "engine-1"
        self.down = False
        self.attempts = 0
        self.channels: list[FakeChannel] = []

    async def __call__(self, on_reply: Callable[[WireReply], None], on_lost: Callable[[str], None]) -> FakeChannel:
        self.attempts += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionRefusedError("nothing listens there")
        channel = FakeChannel(self.instance, on_reply, on_lost, self.auto)
        self.channels.append(channel)
        return channel


async def eventually(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[StateClient, FakeOpener]]:
    opener = FakeOpener()
    client = StateClient(opener, asyncio.get_running_loop())
    client.start()
    await eventually(lambda: client.connected)
    yield client, opener
    client.close()


async def test_a_batch_that_does_not_pickle_answers_only_its_bad_commands(
    fake: tuple[StateClient, FakeOpener],
) -> None:
    client, opener = fake
    good = [client.call("order_create", "k", {"qty": str(i)}) for i in range(3)]
    bad = [client.call("order_create", "k", {"qty": nested(1000)}) for _ in range(2)]
    later = client.call("order_create", "k", {"qty": "9"})
    assert await asyncio.gather(*bad) == [UNPROCESSABLE, UNPROCESSABLE]
    assert [r[0] for r in await asyncio.gather(*good, later)] == [0, 0, 0, 0]
    (channel,) = opener.channels  # the same channel all along, never given up
    assert not channel.closed
    assert channel.sent == [[("order_create", ("k", {"qty": q})) for q in ("0", "1", "2", "9")]]
    assert await client.call("after") == (0, ("after", ()))


async def test_one_client_repeating_a_bad_command_never_fails_the_others(
    fake: tuple[StateClient, FakeOpener],
) -> None:
    client, opener = fake
    for round_ in range(20):
        bad = client.call("order_create", "evil", {"qty": nested(1000)})
        others = [client.call("wallet_balance", f"k{i}", {"round": round_}) for i in range(5)]
        assert await bad == UNPROCESSABLE
        assert [r[0] for r in await asyncio.gather(*others)] == [0] * 5
    assert len(opener.channels) == 1 and not opener.channels[0].closed


async def test_a_channel_given_up_is_closed_and_its_late_reply_and_loss_are_ignored() -> None:
    opener = FakeOpener(auto=False)
    client = StateClient(opener, asyncio.get_running_loop())
    try:
        client.start()
        await eventually(lambda: client.connected)
        first = client.call("first")
        await eventually(lambda: bool(opener.channels[0].sent))
        old = opener.channels[0]
        old.broken = True  # the next write fails: the client gives this channel up
        second = client.call("second")
        assert (await first)[0] == (await second)[0] == 10016
        assert old.closed  # never abandoned open (that leaked a descriptor per loss)
        await eventually(lambda: len(opener.channels) == 2 and client.connected)
        new = opener.channels[1]
        third = client.call("third")
        await eventually(lambda: bool(new.sent))
        old.answer()  # the old channel's late reply: nothing waits for it there any more
        old.on_reply(("#RETURN", [(0, "stray")]))
        old.on_lost("connection closed")  # and its late loss notice
        assert not third.done()  # not answered with the old channel's reply
        assert client.connected and not new.closed  # the current channel survived
        new.answer()
        assert await third == (0, ("third", ()))
    finally:
        client.close()


async def test_a_reply_with_nothing_in_flight_is_ignored(fake: tuple[StateClient, FakeOpener]) -> None:
    client, opener = fake
    opener.channels[0].on_reply(("#RETURN", [(0, "stray")]))  # used to raise IndexError
    assert await client.call("after") == (0, ("after", ()))


async def test_an_outage_answers_10016_at_once_logs_once_and_ends_by_itself(
    fake: tuple[StateClient, FakeOpener], caplog: pytest.LogCaptureFixture
) -> None:
    client, opener = fake
    caplog.set_level(logging.WARNING, logger="bybit_mock.service.client")
    opener.down = True
    opener.channels[0].on_lost("state service killed")
    assert opener.channels[0].closed
    replies = []
    for i in range(40):
        replies.append(await asyncio.wait_for(client.call("during", i), 2))
        await asyncio.sleep(0.01)
    assert {code for code, _ in replies} == {10016}
    assert opener.attempts < 20  # a retry schedule, not one connect attempt per command
    opener.down = False
    await eventually(lambda: client.connected)  # reconnected without any command asking
    assert await client.call("after") == (0, ("after", ()))
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unavailable" in m]) == 1, messages
    assert len([m for m in messages if "reachable again" in m]) == 1, messages


async def test_a_new_engine_is_reported_once_before_any_command_reaches_it(
    fake: tuple[StateClient, FakeOpener],
) -> None:
    client, opener = fake
    seen: list[tuple[str, int]] = []
    client.on_new_engine = lambda instance: seen.append((instance, len(opener.channels[-1].sent)))
    assert client.instance == "engine-1"
    opener.channels[0].on_lost("a hiccup")  # same engine again: nothing to report
    await eventually(lambda: client.connected)
    assert await client.call("same") == (0, ("same", ()))
    assert seen == []
    opener.instance = "engine-2"
    waiting = client.call("queued")
    opener.channels[1].on_lost("restarted")
    assert (await waiting)[0] == 10016
    await eventually(lambda: client.connected)
    assert await client.call("new") == (0, ("new", ()))
    assert seen == [("engine-2", 0)] and client.instance == "engine-2"


# -- the event poller --------------------------------------------------------------------------


class FakeSource:
    """An engine's event log: every poll returns one event naming the engine and the cursor."""

    def __init__(self, engine: str, polls: list[tuple[str, int]]) -> None:
        self.engine = engine
        self.polls = polls
        self.dead = False

    def instance(self) -> str:
        if self.dead:
            raise EOFError
        return self.engine

    def wait_events(
        self, cursor: int, timeout: float, reader: str = "", bulk: bool = True
    ) -> tuple[int, list[tuple[str, Any]]]:
        if self.dead:
            raise EOFError
        self.polls.append((self.engine, cursor))
        time.sleep(0.01)
        return cursor + 1, [("event", (self.engine, cursor))]


async def test_the_poller_never_polls_a_new_engine_with_the_old_cursor() -> None:
    loop = asyncio.get_running_loop()
    polls: list[tuple[str, int]] = []
    handled: list[tuple[str, int]] = []
    engines = {"current": FakeSource("A", polls)}
    discarded: list[FakeSource] = []
    poller = EventPoller(
        lambda: engines["current"],
        loop,
        lambda events: handled.extend(data for _, data in events),
        500,
        "A",
        discarded.append,
    )
    poller.start()
    try:
        await eventually(lambda: len(handled) >= 3)
        assert handled[:3] == [("A", 500), ("A", 501), ("A", 502)]
        old = engines["current"]
        engines["current"] = FakeSource("B", polls)
        old.dead = True  # the state service died; a new one (engine B) serves the address
        await asyncio.sleep(0.3)
        assert [p for p in polls if p[0] == "B"] == []  # B's log knows nothing of cursor 50x
        assert discarded == [old]
        assert poller.instance == "A"
        poller.resync("B", 7)  # what the worker does once it has B's models and cursor
        await eventually(lambda: ("B", 8) in handled)
        assert [p for p in polls if p[0] == "B"][:2] == [("B", 7), ("B", 8)]
        assert all(engine == "B" for engine, _ in handled[handled.index(("B", 7)) :])
    finally:
        poller.stop()
