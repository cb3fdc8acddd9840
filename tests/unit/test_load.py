"""The load generator's parts that need no server: the mix, the open-loop schedule and its
coordinated-omission-correct latencies (on a fake clock), histogram merging, the result
document and the loopback guard."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import Counter

import pytest

from bybit_mock.load.command import TargetError, check_target, main
from bybit_mock.load.mix import OPERATIONS, MixError, parse_mix
from bybit_mock.load.report import Recorder, result_document
from bybit_mock.load.rest import RestSession, RestTarget, ret_code_of
from bybit_mock.load.runner import Plan, count_subscribers, split
from bybit_mock.load.schedule import OpenLoopSchedule, closed_loop, drive_open_loop, serve_queue
from bybit_mock.load.ws import TIME_FIELDS, WsClient, push_time_ms
from bybit_mock.market.messages import ticker_message
from bybit_mock.ws.messages import private_push

MS = 1_000_000


# -- the mix ---------------------------------------------------------------------------------


def test_parse_mix_weights_and_picks() -> None:
    mix = parse_mix("wallet=5, realtime=3,create_cancel=2,amend=0")
    assert mix.names == ("wallet", "realtime", "create_cancel")  # a zero weight drops the name
    assert mix.spec() == "wallet=5,realtime=3,create_cancel=2"
    rng = random.Random(7)
    picks = Counter(mix.pick(rng) for _ in range(10_000))
    assert set(picks) == {"wallet", "realtime", "create_cancel"}
    assert picks["wallet"] / 10_000 == pytest.approx(0.5, abs=0.03)
    assert picks["create_cancel"] / 10_000 == pytest.approx(0.2, abs=0.03)
    assert parse_mix("").names == ()
    assert parse_mix("time").weights == (1,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("wallet=5,bogus=1", "unknown operation 'bogus'"),
        ("wallet=x", "must be an integer"),
        ("wallet=-1", "must not be negative"),
        ("wallet=1,wallet=2", "appears twice"),
    ],
)
def test_parse_mix_refuses(spec: str, message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(spec)


def test_every_mix_operation_is_implemented() -> None:
    session = RestSession(RestTarget("127.0.0.1", 1, "k", "s"), Recorder())
    assert set(session.ops) == set(OPERATIONS)


def test_ret_code_of_answers() -> None:
    assert ret_code_of(200, b'{"retCode":0,"retMsg":"OK"}') == "0"
    assert ret_code_of(200, b'{"retCode":10006,"retMsg":"Too many visits!"}') == "10006"
    assert ret_code_of(503, b"<html>busy</html>") == "http503"


# -- open and closed loops on a fake clock --------------------------------------------------------


class FakeClock:
    """Discrete-event time: ``sleep`` parks the caller until the clock reaches its wake time;
    :meth:`run` advances the clock to the earliest sleeper once everyone else is parked."""

    def __init__(self) -> None:
        self.now = 0
        self.sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self.seq = itertools.count()

    def ns(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self.sleepers, (self.now + round(seconds * 1e9), next(self.seq), fut))
        await fut

    async def run(self, until_ns: int) -> None:
        while True:
            for _ in range(20):  # let every runnable task reach its next sleep or wait
                await asyncio.sleep(0)
            if not self.sleepers or self.sleepers[0][0] > until_ns:
                return
            wake, _, fut = heapq.heappop(self.sleepers)
            self.now = max(self.now, wake)
            fut.set_result(None)


def test_open_loop_schedule_hands_out_intended_times_once() -> None:
    schedule = OpenLoopSchedule(rate=100, start_ns=1_000 * MS)
    assert schedule.due(999 * MS) == []
    assert schedule.due(1_000 * MS) == [1_000 * MS]
    assert schedule.due(1_025 * MS) == [1_010 * MS, 1_020 * MS]
    assert schedule.due(1_025 * MS) == []  # nothing twice
    assert schedule.next_ns() == 1_030 * MS


async def _open_loop_latencies(stall_at: int) -> list[int]:
    """100 operations/s for 1 s on one connection; each takes 1 ms, except operation
    ``stall_at``, which takes 500 ms. The latency of each, as the open loop records it."""
    clock = FakeClock()
    latencies: list[int] = []
    done = itertools.count()

    async def op(intended: int) -> None:
        await clock.sleep(0.5 if next(done) == stall_at else 0.001)
        latencies.append(clock.ns() - intended)

    queue: asyncio.Queue[int] = asyncio.Queue()
    schedule = OpenLoopSchedule(100, 0)
    server = asyncio.create_task(serve_queue(queue, op))
    driver = asyncio.create_task(drive_open_loop(schedule, queue, clock.ns, clock.sleep, 1_000 * MS))
    await clock.run(until_ns=5_000 * MS)
    assert driver.done() and driver.result() == 0
    server.cancel()
    return latencies


async def test_open_loop_latency_counts_from_the_intended_time() -> None:
    calm = await _open_loop_latencies(stall_at=-1)
    assert len(calm) == 100 and set(calm) == {1 * MS}

    stalled = await _open_loop_latencies(stall_at=10)
    assert len(stalled) == 100  # every operation still ran: none was silently skipped
    # The stall starts at 100 ms and ends at 600 ms. The 50 operations due meanwhile waited
    # for it, so each shows its wait: 500 ms for the stalled one, then 491, 482 ... ms.
    assert stalled[10] == 500 * MS
    assert stalled[11] == 491 * MS and stalled[12] == 482 * MS
    slow = [lat for lat in stalled if lat > 10 * MS]
    assert len(slow) >= 50
    assert stalled[-1] == 1 * MS  # caught up by the end


async def test_closed_loop_measures_from_the_send_and_stops_at_the_end() -> None:
    clock = FakeClock()
    starts: list[int] = []

    async def op(start: int) -> None:
        starts.append(start)
        await clock.sleep(0.1)

    task = asyncio.create_task(closed_loop(op, clock.ns, 1_000 * MS))
    await clock.run(until_ns=5_000 * MS)
    assert task.done()
    assert starts == [i * 100 * MS for i in range(10)]  # back to back, none after the end


# -- histograms, merge, the result document ------------------------------------------------------


def _recorder(latencies_ms: list[int], codes: list[str]) -> Recorder:
    rec = Recorder()
    for lat, code in zip(latencies_ms, codes, strict=True):
        rec.record("rest.wallet", lat * MS, code)
    return rec


def test_histograms_merge_across_processes_exactly() -> None:
    a = _recorder(list(range(1, 101)), ["0"] * 100)
    b = _recorder([1000] * 10, ["10006"] * 10)
    b.transport_error("rest.create", "ConnectionResetError")
    b.counters["ws_public.messages"] += 7
    merged = Recorder()
    merged.merge(a.export())
    merged.merge(b.export())
    hist = merged.histograms["rest.wallet"]
    assert hist.get_total_count() == 110
    assert hist.get_max_value() == pytest.approx(1_000_000, rel=1e-3)  # µs
    assert merged.ret_codes["rest.wallet"] == {"0": 100, "10006": 10}
    assert merged.transport["rest.create"] == {"ConnectionResetError": 1}
    assert merged.counters["ws_public.messages"] == 7
    assert merged.answered() == 110 and merged.failed() == 11


def test_result_document_shape() -> None:
    rec = _recorder(list(range(1, 1001)), ["0"] * 990 + ["10001"] * 10)
    rec.transport_error("ws_trade", "disconnected")
    doc = result_document(rec, {"mode": "closed"}, elapsed_s=2.0)
    assert list(doc) == ["run", "elapsed_s", "errors", "totals", "operations", "counters", "delivery_lag"]
    assert doc["delivery_lag"] == {}  # no subscriber measured anything
    assert doc["run"] == {"mode": "closed"} and doc["elapsed_s"] == 2.0
    assert doc["totals"] == {
        "answered": 1000,
        "per_second": 500.0,
        "ret_codes": {"0": 990, "10001": 10},
        "transport_errors": {"disconnected": 1},
    }
    wallet = doc["operations"]["rest.wallet"]
    assert wallet["count"] == 1000 and wallet["ok"] == 990 and wallet["per_second"] == 500.0
    lat = wallet["latency_ms"]
    assert list(lat) == ["p50", "p90", "p99", "p99.9", "max", "mean"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert lat["p50"] == pytest.approx(500, rel=0.01) and lat["max"] == pytest.approx(1000, rel=0.01)
    assert doc["operations"]["ws_trade"] == {
        "count": 0,
        "ok": 0,
        "per_second": 0.0,
        "latency_ms": None,
        "ret_codes": {},
        "transport_errors": {"disconnected": 1},
    }


def test_result_errors_are_grouped_by_kind() -> None:
    rec = _recorder([1, 2, 3], ["0", "10001", "10006"])
    rec.record("rest.time", 5 * MS, "http503")
    rec.record("ws_public.subscribe", 5 * MS, "refused:bad topic")
    rec.transport_error("rest.create", "ConnectionResetError")
    assert result_document(rec, {}, 1.0)["errors"] == {
        "ret_code": {"10001": 1, "10006": 1},  # retCode 0 is not an error
        "http": {"503": 1},
        "ws_refused": {"bad topic": 1},
        "transport": {"ConnectionResetError": 1},
    }


# -- the guard ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.3.4.5:1", "http://localhost:9", "http://[::1]:5"])
def test_loopback_targets_are_accepted(url: str) -> None:
    assert check_target(url, ("http",), [])[1] > 0


@pytest.mark.parametrize("url", ["http://10.0.0.1:80", "http://api.bybit.com:443", "http://0.0.0.0:80"])
def test_other_hosts_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(TargetError, match="--allow-host"):
        check_target(url, ("http",), [])
    host = url.split("//")[1].rsplit(":", 1)[0]
    assert check_target(url, ("http",), [host])[0] == host


def test_malformed_targets_are_refused() -> None:
    with pytest.raises(TargetError, match="expected http://HOST:PORT"):
        check_target("ws://127.0.0.1:1", ("http",), [])
    with pytest.raises(TargetError):
        check_target("http://127.0.0.1", ("http",), [])


def test_command_refuses_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--rest-url", "http://10.1.2.3:80", "--ws-url", "ws://127.0.0.1:1", "--key", "k", "--secret", "s"]
    assert main([*base, "--duration", "1"]) == 2
    assert "'10.1.2.3' is not a loopback address" in capsys.readouterr().err
    assert main([*base, "--duration", "0"]) == 2
    assert main([*base, "--duration", "3601"]) == 2
    assert "--duration must be" in capsys.readouterr().err
    assert main([*base, "--duration", "1", "--mix", "nope=1"]) == 2
    assert "unknown operation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--rest-url", "http://127.0.0.1:1"])  # --duration is required: no unbounded run


# -- subscribers: delivery lag, silent subscribers, topics spread --------------------------------


def test_push_time_is_read_from_the_top_level_field() -> None:
    # a linear ticker puts ``ts`` after ``data``; nothing inside ``data`` may be taken for it
    ticker = ticker_message(
        "tickers.ETHUSDT", "delta", {"symbol": "ETHUSDT", "lastPrice": "2000"}, 7, 1700000000123, False
    )
    assert push_time_ms(ticker, TIME_FIELDS["ws_public"]) == 1700000000123
    book = b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1700000000456,"data":{"s":"BTCUSDT"},"cts":1}'
    assert push_time_ms(book, TIME_FIELDS["ws_public"]) == 1700000000456
    push = private_push("order", b"[]", "id-1", 1700000000789)
    assert push_time_ms(push, TIME_FIELDS["ws_private"]) == 1700000000789
    assert push_time_ms(b'{"topic":"x","data":[]}', TIME_FIELDS["ws_public"]) is None
    assert push_time_ms(b'{"topic":"x","ts":null}', TIME_FIELDS["ws_public"]) is None


def test_delivery_lag_is_recorded_per_channel_while_measuring() -> None:
    rec = Recorder()
    public, private = WsClient("ws_public", rec), WsClient("ws_private", rec)
    now_ms = time.time_ns() // MS
    public.on_text(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":%d,"data":[]}' % (now_ms - 50))
    assert public.received == 0 and not rec.lags  # before the window: counted as a message only
    public.measuring = private.measuring = True
    for _ in range(3):
        public.on_text(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":%d,"data":[]}' % (now_ms - 50))
    private.on_text(private_push("wallet", b"[]", "w1", now_ms - 200))
    public.on_text(b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"","op":"subscribe"}')  # an ack
    assert public.received == 3 and private.received == 1
    assert rec.counters["ws_public.messages"] == 4 and rec.counters["ws_private.messages"] == 1
    merged = Recorder()  # lags merge across processes like the latencies
    merged.merge(rec.export())
    merged.merge(Recorder().export())
    lag = result_document(merged, {}, elapsed_s=1.0)["delivery_lag"]
    assert list(lag) == ["ws_private.delivery_lag", "ws_public.delivery_lag"]
    assert lag["ws_public.delivery_lag"]["count"] == 3 and lag["ws_private.delivery_lag"]["count"] == 1
    # received after the push's time: at least the 50 (200) ms it was stamped in the past
    assert 50 <= lag["ws_public.delivery_lag"]["lag_ms"]["p50"] < 50 + 60_000
    assert 200 <= lag["ws_private.delivery_lag"]["lag_ms"]["max"] < 200 + 60_000
    assert list(lag["ws_public.delivery_lag"]["lag_ms"]) == ["p50", "p90", "p99", "p99.9", "max", "mean"]


def test_silent_subscribers_are_counted() -> None:
    rec = Recorder()
    clients = [WsClient("ws_public", rec) for _ in range(3)] + [WsClient("ws_private", rec)]
    clients[0].received = 5
    clients[3].received = 1
    count_subscribers(clients, rec)
    assert rec.counters == {
        "ws_public.subscribers": 3,
        "ws_public.silent_subscribers": 2,
        "ws_private.subscribers": 1,
        "ws_private.silent_subscribers": 0,  # present at 0: "none silent" is a reported figure
    }


def test_spread_topics_round_robin_continues_across_processes() -> None:
    plan = Plan(RestTarget("127.0.0.1", 1, "k", "s"), "ws://x", parse_mix(""), 1.0, ws_public=7, spread_topics=True)
    parts = split(plan, 3)
    assert [(p.ws_public, p.public_offset) for p in parts] == [(3, 0), (2, 3), (2, 5)]
