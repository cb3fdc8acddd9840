"""REST scenarios over real sockets: every REST action, seen by pybit, ccxt and raw HTTP clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pybit.exceptions
import pytest
import requests

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.scenarios import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger

from .conftest import pybit_http

LIMIT: dict[str, Any] = {
    "category": "linear",
    "symbol": "BTCUSDT",
    "side": "Buy",
    "orderType": "Limit",
    "qty": "0.001",
    "price": "60000",
}


def arm(ex: MockExchange, name: str, trigger: ScenarioTrigger, action: ScenarioAction, **kw: Any) -> str:
    return ex.scenarios.push(Scenario(name, trigger, action, **kw))


def done(ex: MockExchange, name: str) -> list[str]:
    """What the journal says was done for scenario ``name`` (every firing)."""
    return [d for e in ex.scenarios.journal(name) for d in e["done"]]


def ccxt_bybit(ex: MockExchange) -> ccxt.bybit:
    client = ccxt.bybit({"apiKey": ex.api_key, "secret": ex.api_secret, "enableRateLimit": False})
    client.urls["api"] = dict.fromkeys(client.urls["api"], ex.rest_url)
    return client


def test_fail_bybit_way_then_with_an_http_status(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    arm(bybit_mock, "busy", ScenarioTrigger.rest("/v5/order/realtime"), ScenarioAction.fail(10016, "System busy"))
    with pytest.raises(pybit.exceptions.InvalidRequestError) as err:
        session.get_open_orders(category="linear", symbol="BTCUSDT")
    assert err.value.status_code == 10016 and "System busy" in err.value.message
    assert session.get_open_orders(category="linear", symbol="BTCUSDT")["retCode"] == 0  # once only
    bybit_mock.scenarios.push(Scenario.fail("down", ScenarioTrigger.ORDER_CREATE, 500, "maintenance"))
    with pytest.raises(pybit.exceptions.FailedRequestError):
        session.place_order(**LIMIT)
    assert bybit_mock.state.open_orders(bybit_mock.api_key) == []  # a refused create placed nothing
    (entry,) = bybit_mock.scenarios.journal("down")
    assert entry["matched"]["path"] == "/v5/order/create" and entry["matched"]["symbol"] == "BTCUSDT"
    assert entry["done"] == ["answered HTTP 500 retCode 10016"]


def test_a_delay_holds_its_request_not_the_worker(bybit_mock: MockExchange) -> None:
    arm(bybit_mock, "hold", ScenarioTrigger.rest("/v5/order/realtime"), ScenarioAction.delay(500))
    finished: list[str] = []

    def slow_call() -> None:
        pybit_http(bybit_mock).get_open_orders(category="linear", symbol="BTCUSDT")
        finished.append("delayed")

    thread = threading.Thread(target=slow_call)
    thread.start()
    while not bybit_mock.scenarios.journal("hold"):  # the delayed request is in the worker now
        time.sleep(0.005)
    for _ in range(5):  # the same (only) REST worker answers others meanwhile
        assert requests.get(f"{bybit_mock.rest_url}/v5/market/time", timeout=5).status_code == 200
    finished.append("others")
    thread.join(5)
    assert finished == ["others", "delayed"]
    assert done(bybit_mock, "hold") == ["held 500 ms"]


@pytest.mark.parametrize(
    ("status", "ccxt_error"),
    [(502, ccxt.ExchangeNotAvailable), (503, ccxt.ExchangeNotAvailable), (504, ccxt.RequestTimeout),
     (403, ccxt.RateLimitExceeded)],  # ccxt's bybit reads a 403 as its edge's IP rate limit
)  # fmt: skip
def test_edge_errors_are_html_pages(bybit_mock: MockExchange, status: int, ccxt_error: type[Exception]) -> None:
    arm(bybit_mock, "edge", ScenarioTrigger.rest("/v5/market/tickers"), ScenarioAction.http_error(status), times=2)
    answer = requests.get(f"{bybit_mock.rest_url}/v5/market/tickers?category=linear", timeout=5)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "text/html"
    assert f"<title>{status} " in answer.text
    with pytest.raises(ccxt.BaseError) as err:
        ccxt_bybit(bybit_mock).public_get_v5_market_tickers({"category": "linear"})
    assert type(err.value) is ccxt_error, repr(err.value)


def test_reset_and_hang_leave_no_order(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock, timeout=1)
    arm(bybit_mock, "rst", ScenarioTrigger.ORDER_CREATE, ScenarioAction.reset())
    with pytest.raises(requests.ConnectionError):
        session.place_order(**LIMIT)
    arm(bybit_mock, "hang", ScenarioTrigger.ORDER_CREATE, ScenarioAction.hang())
    with pytest.raises(requests.Timeout):
        pybit_http(bybit_mock, timeout=0.5).place_order(**LIMIT)
    assert bybit_mock.state.open_orders(bybit_mock.api_key) == []
    assert pybit_http(bybit_mock).place_order(**LIMIT)["retCode"] == 0  # both were once only
    assert done(bybit_mock, "rst") == ["connection reset"] and done(bybit_mock, "hang") == ["no answer"]


def test_slow_answers_after_the_engine_has_handled_it(bybit_mock: MockExchange) -> None:
    arm(bybit_mock, "slow", ScenarioTrigger.ORDER_CREATE, ScenarioAction.slow(600))
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(pybit_http(bybit_mock).place_order(**LIMIT)))
    thread.start()
    while not bybit_mock.state.open_orders(bybit_mock.api_key):
        time.sleep(0.005)
    assert answers == []  # the order exists, its answer is still on its way
    thread.join(5)
    (order,) = bybit_mock.state.open_orders(bybit_mock.api_key)
    assert answers[0]["result"]["orderId"] == order.order_id


def test_forced_rate_limit_pybit_waits_ccxt_raises(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    session.retry_codes = {10006}  # pybit's own retry: sleep until the reset header, try again
    arm(bybit_mock, "10006", ScenarioTrigger.rest("/v5/account/wallet-balance"), ScenarioAction.rate_limit())
    assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
    assert done(bybit_mock, "10006") == ["answered 10006"]
    arm(bybit_mock, "ccxt", ScenarioTrigger.rest("/v5/market/time"), ScenarioAction.rate_limit())
    with pytest.raises(ccxt.RateLimitExceeded):
        ccxt_bybit(bybit_mock).fetch_time()


def test_ip_ban_covers_every_route_then_lifts(bybit_mock: MockExchange) -> None:
    arm(bybit_mock, "ban", ScenarioTrigger.rest("/v5/market/time"), ScenarioAction.ip_ban(400))
    url = bybit_mock.rest_url
    assert requests.get(f"{url}/v5/market/time", timeout=5).status_code == 403
    answer = requests.get(f"{url}/v5/market/instruments-info?category=linear", timeout=5)
    assert (answer.status_code, answer.text) == (403, "access too frequent")
    with pytest.raises(pybit.exceptions.FailedRequestError):
        pybit_http(bybit_mock).get_wallet_balance(accountType="UNIFIED")
    deadline = time.monotonic() + 5
    while requests.get(f"{url}/v5/market/time", timeout=5).status_code == 403:
        assert time.monotonic() < deadline, "the ban never lifted"
        time.sleep(0.05)
    arm(bybit_mock, "ban", ScenarioTrigger.rest("/v5/market/time"), ScenarioAction.ip_ban())  # ten minutes
    assert requests.get(f"{url}/v5/market/time", timeout=5).status_code == 403
    bybit_mock.state.reset()  # a reset lifts it: the next test must not inherit it
    assert requests.get(f"{url}/v5/market/time", timeout=5).status_code == 200


@pytest.mark.parametrize("mode", ["reset", "timeout"])
def test_ghost_order_is_placed_but_its_answer_is_lost(bybit_mock: MockExchange, mode: str) -> None:
    arm(bybit_mock, "ghost", ScenarioTrigger.ORDER_CREATE, ScenarioAction.ghost(mode))
    with pytest.raises((requests.ConnectionError, requests.Timeout)):
        pybit_http(bybit_mock, timeout=1).place_order(**LIMIT, orderLinkId="ghost-1")
    # the bot reconciles: the order it thinks failed is there
    found = pybit_http(bybit_mock).get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="ghost-1")
    (order,) = found["result"]["list"]
    assert order["orderStatus"] == "New"


def test_match_on_symbol_side_and_link_id_pattern(bybit_mock: MockExchange) -> None:
    match = Match(symbol="BTCUSDT", side="Sell", order_link_id="bot-*")
    arm(bybit_mock, "picky", ScenarioTrigger.ORDER_CREATE, ScenarioAction.fail(10001, "picky"), match=match, times=None)
    session = pybit_http(bybit_mock)
    assert session.place_order(**LIMIT, orderLinkId="bot-1")["retCode"] == 0  # a Buy
    sell = {**LIMIT, "side": "Sell", "price": "90000"}
    assert session.place_order(**sell, orderLinkId="manual-1")["retCode"] == 0
    with pytest.raises(pybit.exceptions.InvalidRequestError):
        session.place_order(**sell, orderLinkId="bot-2")
    assert [e["matched"]["order_link_id"] for e in bybit_mock.scenarios.journal("picky")] == ["bot-2"]


def test_the_crates_round_trip_with_two_fill_plans(market: MockExchange) -> None:
    """tesser's live_run_executes_round_trip: two OrderCreate fill plans, two fills, flat, exact USDT."""
    ex = market
    for name, price in (("entry-fill", "60000"), ("exit-fill", "70000")):
        plan = ScenarioAction.fill_plan([OrderFillStep(after=25, quantity="0.01", price=price)])
        ex.scenarios.push(Scenario(name, ScenarioTrigger.ORDER_CREATE, plan))
    session = pybit_http(ex)
    start = ex.state.balance(ex.api_key, "USDT")
    session.place_order(**{**LIMIT, "qty": "0.01"})
    session.place_order(**{**LIMIT, "qty": "0.01", "side": "Sell", "price": "70000"})
    deadline = time.monotonic() + 5
    while len(ex.state.executions(ex.api_key)) < 2:
        assert time.monotonic() < deadline, ex.state.open_orders(ex.api_key)
        time.sleep(0.01)
    assert ex.state.positions(ex.api_key) == []
    fees = sum((f.fee for f in ex.state.executions(ex.api_key)), Decimal(0))
    assert ex.state.balance(ex.api_key, "USDT") == start + Decimal(100) - fees  # 0.01 x 10 000
    assert [e["scenario"] for e in ex.scenarios.journal()] == ["entry-fill", "exit-fill"]


@pytest.fixture(scope="module")
def two_rest_workers() -> Iterator[MockExchange]:
    armed = {"name": "from-config", "trigger": {"type": "rest", "path": "/v5/market/time"},
             "action": {"type": "fail", "ret_code": 10016, "ret_msg": "config says no"}, "times": 1}  # fmt: skip
    config = MockExchangeConfig.default().copy(rest_workers=2, scenarios=[armed])
    with MockExchange(config) as ex:
        yield ex


def test_once_only_fires_once_across_two_rest_workers(two_rest_workers: MockExchange) -> None:
    ex = two_rest_workers
    codes = []
    for _ in range(40):  # a fresh connection each time: the kernel spreads them over both workers
        with requests.Session() as s:
            codes.append(s.get(f"{ex.rest_url}/v5/market/time", timeout=5).json()["retCode"])
    assert codes.count(10016) == 1, codes  # armed from the config, at start
    ex.state.reset()  # re-armed by reset, and still once only
    codes = [requests.get(f"{ex.rest_url}/v5/market/time", timeout=5).json()["retCode"] for _ in range(40)]
    assert codes.count(10016) == 1, codes
