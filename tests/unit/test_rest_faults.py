"""The REST worker's side of scenarios: unarmed routes cost nothing, armed ones ask the engine."""

from __future__ import annotations

from typing import Any

from bybit_mock import MockExchangeConfig
from bybit_mock.rest.app import RestApp
from bybit_mock.rest.protocol import Request
from bybit_mock.rest.routes import build_routes


class RecordingState:
    """Stands in for the batching state client: records each command, never answers."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def submit(self, op: str, args: tuple[Any, ...], callback: Any) -> None:
        self.sent.append(op)


def app_and_state() -> tuple[RestApp, RecordingState]:
    config = MockExchangeConfig.default()
    state = RecordingState()
    return RestApp(config, state, build_routes(config)), state  # type: ignore[arg-type]


def tickers(app: RestApp) -> None:
    app.dispatch(Request("GET", "/v5/market/tickers", "category=linear", {}, b""), lambda *a, **k: None)


def test_nothing_armed_sends_the_plain_command() -> None:
    app, state = app_and_state()
    tickers(app)
    assert state.sent == ["market_query"]


def test_an_armed_route_asks_the_engine_and_only_that_route() -> None:
    app, state = app_and_state()
    app.faults.learn({"version": 5, "rest": {"/v5/market/tickers": ["GET"]}})
    tickers(app)
    app.dispatch(Request("GET", "/v5/market/orderbook", "category=linear&symbol=BTCUSDT", {}, b""), lambda *a: None)
    assert state.sent == ["scenario_rest", "market_query"]
    app.faults.learn({"version": 4, "rest": {}})  # an older summary (a late event) changes nothing
    tickers(app)
    assert state.sent[-1] == "scenario_rest"
    app.faults.learn({"version": 6, "rest": {"/v5/market/tickers": ["POST"]}})  # another method
    tickers(app)
    assert state.sent[-1] == "market_query"
    app.faults.on_events([("scenarios", {"version": 7, "rest": {"/v5/market/tickers": ["*"]}})])
    tickers(app)
    assert state.sent[-1] == "scenario_rest"


def ticker(app: RestApp, symbol: str) -> None:
    query = f"category=linear&symbol={symbol}"
    app.dispatch(Request("GET", "/v5/market/tickers", query, {}, b""), lambda *a, **k: None)


def test_a_request_no_armed_match_fits_is_not_asked_about() -> None:
    app, state = app_and_state()
    eth = [["GET", {"symbol": "ETHUSDT"}]]
    app.faults.learn({"version": 5, "rest": {"/v5/market/tickers": ["GET"]}, "rest_when": {"/v5/market/tickers": eth}})
    ticker(app, "BTCUSDT")
    assert state.sent == ["market_query"]  # the match names another symbol: as if nothing were armed
    ticker(app, "ETHUSDT")
    assert state.sent[-1] == "scenario_rest"
    both = [*eth, ["*", {}]]  # a scenario with no match fits every request: always asked
    app.faults.learn(
        {"version": 6, "rest": {"/v5/market/tickers": ["GET", "*"]}, "rest_when": {"/v5/market/tickers": both}}
    )
    ticker(app, "BTCUSDT")
    assert state.sent[-1] == "scenario_rest"
    post_only = [["POST", {"symbol": "BTCUSDT"}]]  # the match fits, the method does not
    app.faults.learn(
        {"version": 7, "rest": {"/v5/market/tickers": ["POST"]}, "rest_when": {"/v5/market/tickers": post_only}}
    )
    ticker(app, "BTCUSDT")
    assert state.sent[-1] == "market_query"
    app.faults.learn({"version": 8, "rest": {"/v5/market/tickers": ["GET"]}})  # no rest_when: always asked
    ticker(app, "BTCUSDT")
    assert state.sent[-1] == "scenario_rest"


def test_the_engine_summary_carries_each_rest_scenarios_method_and_match() -> None:
    from bybit_mock import Match, Scenario, ScenarioAction, ScenarioTrigger  # noqa: PLC0415
    from bybit_mock.scenarios.registry import Registry  # noqa: PLC0415

    reg = Registry(seed=1)
    fail = ScenarioAction.fail()
    reg.arm(Scenario("a", ScenarioTrigger.rest("/v5/market/tickers", "GET"), fail, match=Match(symbol="ETHUSDT")), 0)
    reg.arm(Scenario("b", ScenarioTrigger.ORDER_CREATE, fail, match=Match(api_key="nobody")), 0)
    when = reg.summary()["rest_when"]
    assert when == {
        "/v5/market/tickers": [["GET", {"symbol": "ETHUSDT"}]],
        "/v5/order/create": [["POST", {"api_key": "nobody"}]],
    }
    app, state = app_and_state()
    app.faults.learn(reg.summary())
    ticker(app, "BTCUSDT")
    ticker(app, "ETHUSDT")
    assert state.sent == ["market_query", "scenario_rest"]
