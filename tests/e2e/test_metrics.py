"""``/metrics`` over real sockets: a cluster with two REST workers, scraped with urllib; every
count is checked against what the test itself sent (``docs/metrics.md``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pybit.exceptions
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.scenarios import Scenario, ScenarioAction, ScenarioTrigger

from .conftest import pybit_http
from .streams import collect, subscribed

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metered() -> Iterator[MockExchange]:
    config = MockExchangeConfig.default().copy(metrics=True, rest_workers=2, ws_workers=1, rate_limits="off")
    with MockExchange(config) as ex:
        yield ex


def scrape(ex: MockExchange) -> Samples:
    with urllib.request.urlopen(ex.metrics_url, timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def settled(ex: MockExchange, ready: Callable[[Samples], bool]) -> Samples:
    """A scrape once ``ready`` holds: workers write what they counted every 0.25 s."""
    deadline = time.monotonic() + 5
    while not ready(samples := scrape(ex)):
        assert time.monotonic() < deadline, "the expected samples never arrived"
        time.sleep(0.05)
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # a new connection each: any worker
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_rest_requests_are_counted_per_route_and_ret_code_across_workers(metered: MockExchange) -> None:
    before = scrape(metered)
    for _ in range(20):
        assert get(metered.rest_url + "/v5/market/time")[1]["retCode"] == 0
    for i in range(5):
        status, body = get(f"{metered.rest_url}/no/such/route/{i}")
        assert status == 404
    session = pybit_http(metered)
    assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
    with pytest.raises(pybit.exceptions.InvalidRequestError) as err:  # an error retCode
        session.place_order(category="linear", symbol="NOPEUSDT", side="Buy", orderType="Market", qty="1")
    code = str(err.value.status_code)
    requests = "bybit_mock_rest_requests_total"
    after = settled(metered, lambda s: total(s, requests) - total(before, requests) >= 27)

    def added(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert added(requests) == 27  # and nothing else
    assert added(requests, route="/v5/market/time", method="GET", ret_code="0") == 20
    assert added(requests, route="unknown", ret_code=str(body["retCode"])) == 5
    assert added(requests, route="/v5/account/wallet-balance", ret_code="0") == 1
    assert added(requests, route="/v5/order/create", method="POST", ret_code=code) == 1
    assert not any("/no/such" in str(labels) for _, labels in after)  # raw paths never become labels
    seconds = "bybit_mock_rest_request_seconds_count"
    assert added(seconds, route="/v5/market/time") == 20
    assert added(seconds, route="unknown") == 5
    # the state-backed calls went through the batching client
    assert added("bybit_mock_state_batch_size_count") >= 2
    assert added("bybit_mock_state_round_trip_seconds_count") >= 2


def test_every_worker_reports_its_event_loop_lag(metered: MockExchange) -> None:
    lag = "bybit_mock_event_loop_lag_seconds_count"
    deadline = time.monotonic() + 5
    while not all(total(scrape(metered), lag, process=name) > 0 for name in ("rest-0", "rest-1", "ws-0")):
        assert time.monotonic() < deadline, "a worker's lag timer never reported"
        time.sleep(0.1)


def test_a_scenario_firing_is_counted(metered: MockExchange) -> None:
    before = scrape(metered)
    metered.scenarios.push(
        Scenario("busy", ScenarioTrigger.rest("/v5/order/realtime"), ScenarioAction.fail(10016, "System busy"))
    )
    session = pybit_http(metered)
    with pytest.raises(pybit.exceptions.InvalidRequestError):
        session.get_open_orders(category="linear", symbol="BTCUSDT")
    requests = "bybit_mock_rest_requests_total"
    route = "/v5/order/realtime"
    after = settled(metered, lambda s: total(s, requests, route=route) > total(before, requests, route=route))
    firings = "bybit_mock_scenario_firings_total"
    assert total(after, firings, scenario="busy", action="fail") - total(before, firings, scenario="busy") == 1
    assert total(after, requests, route=route, ret_code="10016") - total(before, requests, route=route) == 1


def test_ws_connections_and_messages_out(metered: MockExchange) -> None:
    url = metered.ws_public_url("linear")
    topic = "publicTrade.BTCUSDT"

    async def two_subscribers() -> tuple[int, Samples]:
        async with subscribed(url, topic) as a, subscribed(url, topic) as b:
            got = await asyncio.gather(collect(a, 1.5), collect(b, 1.5))
            during = await asyncio.to_thread(scrape, metered)
        return sum(len(g) for g in got), during

    before = scrape(metered)
    received, during = asyncio.run(two_subscribers())
    assert received > 0
    assert total(during, "bybit_mock_ws_connections", channel="public") == 2
    out = "bybit_mock_ws_messages_out_total"
    after = settled(
        metered,
        lambda s: (
            total(s, "bybit_mock_ws_connections", channel="public") == 0
            and total(s, out, topic="publicTrade") - total(before, out, topic="publicTrade") >= received
        ),
    )
    sent = total(after, out, channel="linear", topic="publicTrade") - total(before, out, topic="publicTrade")
    assert sent >= received  # queued for both subscribers; the last tick may not have been read
    assert not any("BTCUSDT" in str(labels) for name, labels in after if name == out)


def test_a_dead_workers_connections_leave_the_gauge(metered: MockExchange) -> None:
    """A killed WS worker cannot decrement its gauge: the supervisor forgets its live samples."""
    gauge = "bybit_mock_ws_connections"

    def wait_for(check: Any, what: str) -> None:
        deadline = time.monotonic() + 8
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    async def connect_then_kill() -> None:
        async with subscribed(metered.ws_public_url("linear"), "publicTrade.BTCUSDT"):
            await asyncio.to_thread(wait_for, lambda: total(scrape(metered), gauge) == 1, "connection not counted")
            old = metered.pids()["ws-0"]
            os.kill(old, signal.SIGKILL)
            await asyncio.to_thread(wait_for, lambda: metered.pids().get("ws-0") not in (None, old), "no restart")

    with contextlib.suppress(ConnectionClosed):
        asyncio.run(connect_then_kill())
    wait_for(lambda: total(scrape(metered), gauge) == 0, "the dead worker's connection is still counted")


def test_metrics_off_is_a_bybit_404(bybit_mock: MockExchange) -> None:
    status, body = get(bybit_mock.metrics_url)
    assert status == 404 and body["retCode"] != 0 and "Route not found" in body["retMsg"]


def test_with_an_admin_token_metrics_need_it() -> None:
    config = MockExchangeConfig.default().copy(metrics=True, admin_token="s3cret")
    with MockExchange(config) as ex:
        assert get(ex.metrics_url)[0] == 401
        request = urllib.request.Request(ex.metrics_url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 200 and b"bybit_mock_event_loop_lag_seconds" in reply.read()
        post = urllib.request.Request(ex.metrics_url, data=b"", headers={"X-Admin-Token": "s3cret"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=5)
        assert refused.value.code == 405
