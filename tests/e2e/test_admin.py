"""The HTTP admin API (``/__admin/``) against the running mock, as a bot in another language uses it:
plain HTTP and JSON, with pybit on the Bybit side to see what it changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from pybit.exceptions import InvalidRequestError

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.bybit import errors
from bybit_mock.pytest_plugin import MockExchangeFactory
from bybit_mock.scenarios import Match, OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger

from .conftest import ROOT, pybit_http, serving_cli

#: what a listing adds to a scenario's JSON form
LISTING_KEYS = {"id", "remaining", "fired", "armed_ms"}


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = body

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)


def call(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> Answer:
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def admin(ex: MockExchange, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
    return call(ex.admin_url + path, method, body, **kwargs)


def ok(ex: MockExchange, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    answer = admin(ex, method, path, body)
    assert answer.status == status, (answer.status, answer.raw)
    return answer.json


def armed(ex: MockExchange) -> list[dict[str, Any]]:
    scenarios: list[dict[str, Any]] = ok(ex, "GET", "/scenarios")["scenarios"]
    return scenarios


FAIL_REALTIME = {
    "name": "realtime-down",
    "trigger": {"type": "rest", "path": "/v5/order/realtime"},
    "action": {"type": "fail", "ret_code": 10001, "ret_msg": "scripted outage"},
}


# -- health, routing, errors ------------------------------------------------------------------


def test_health_names_the_worker_and_the_engine(bybit_mock: MockExchange) -> None:
    health = ok(bybit_mock, "GET", "/health")
    assert health["status"] == "ok" and health["version"] and health["engine"]
    assert health["pid"] == bybit_mock.pids()["rest-0"] and health["uptime_s"] >= 0
    assert admin(bybit_mock, "HEAD", "/health").raw == b""  # HEAD: the head alone


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/nope", 404, None),
        ("GET", "/scenarios/s999", 404, None),
        ("GET", "/accounts/no-such-key", 404, None),
        ("PUT", "/scenarios", 405, "DELETE, GET, POST, HEAD"),
        ("GET", "/reset", 405, "POST"),
        ("DELETE", "/accounts", 405, "GET, HEAD"),
    ],
)
def test_unknown_paths_and_ids_are_404_and_wrong_methods_405(
    bybit_mock: MockExchange, method: str, path: str, status: int, allow: str | None
) -> None:
    answer = admin(bybit_mock, method, path)
    assert answer.status == status and answer.json["error"]
    assert answer.headers.get("allow") == allow
    assert "retCode" not in answer.json  # plain JSON, not Bybit's envelope


# -- scenarios ----------------------------------------------------------------------------------


def test_a_scenario_armed_over_http_fires_for_pybit_and_is_journaled(bybit_mock: MockExchange) -> None:
    ident = ok(bybit_mock, "POST", "/scenarios", FAIL_REALTIME, status=201)["id"]
    session = pybit_http(bybit_mock)
    # no wait: the worker that armed it knows at once (the answer carries the new summary)
    with pytest.raises(InvalidRequestError, match="scripted outage"):
        session.get_open_orders(category="linear", symbol="BTCUSDT")
    assert session.get_open_orders(category="linear", symbol="BTCUSDT")["retCode"] == 0  # times = 1: spent
    assert armed(bybit_mock) == []
    (entry,) = ok(bybit_mock, "GET", f"/journal?scenario={ident}")["journal"]
    assert (entry["scenario_id"], entry["scenario"], entry["trigger"]) == (ident, "realtime-down", "rest")
    assert entry["matched"]["path"] == "/v5/order/realtime" and entry["matched"]["api_key"] == bybit_mock.api_key
    assert entry["matched"]["symbol"] == "BTCUSDT"
    assert entry["done"] == ["answered HTTP 200 retCode 10001"]
    assert ok(bybit_mock, "GET", "/journal?scenario=realtime-down")["journal"] == [entry]  # by name too
    assert ok(bybit_mock, "GET", f"/journal?since={entry['seq']}")["journal"] == []
    assert ok(bybit_mock, "DELETE", "/journal") == {"ok": True}
    assert ok(bybit_mock, "GET", "/journal")["journal"] == []


def test_the_json_form_of_the_python_types_round_trips(bybit_mock: MockExchange) -> None:
    scenarios = [
        Scenario(
            "entry-fill",
            ScenarioTrigger.ORDER_CREATE,
            ScenarioAction.fill_plan([OrderFillStep(25, "0.001", "60000"), OrderFillStep(50, "0.002")]),
            match=Match(symbol="BTCUSDT", side="Buy", order_link_id="bot-*"),
            times=None,
            probability=0.5,
            window={"after_ms": 10, "for_ms": 60_000},
        ),
        Scenario("slow-wallet", ScenarioTrigger.rest("/v5/account/wallet-balance", "GET"), ScenarioAction.slow(5)),
        Scenario.fail("edge", ScenarioTrigger.ORDER_CANCEL, 503, "gateway"),
    ]
    ids = ok(bybit_mock, "POST", "/scenarios", [s.to_json() for s in scenarios], status=201)["ids"]
    listed = armed(bybit_mock)
    assert [item["id"] for item in listed] == ids
    assert [{k: v for k, v in item.items() if k not in LISTING_KEYS} for item in listed] == [
        orjson.loads(orjson.dumps(s.to_json())) for s in scenarios
    ]
    assert all(item["fired"] == 0 for item in listed) and [i["remaining"] for i in listed] == [None, 1, 1]
    # one, by id; and the listing's form arms the same scenario from Python
    assert ok(bybit_mock, "GET", f"/scenarios/{ids[1]}") == listed[1]
    assert Scenario.from_json({k: v for k, v in listed[0].items() if k not in LISTING_KEYS - {"id"}}) == scenarios[0]


def test_a_list_is_armed_whole_or_not_at_all(bybit_mock: MockExchange) -> None:
    good = {"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": 5}}
    bad = {"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": -5}}
    answer = admin(bybit_mock, "POST", "/scenarios", [good, good, bad])
    assert answer.status == 400
    problem = "action.ms: must be a number of milliseconds >= 0"
    assert answer.json == {"error": problem, "field": "action.ms", "index": 2}
    assert armed(bybit_mock) == []
    ids = ok(bybit_mock, "POST", "/scenarios", [good, good], status=201)["ids"]
    assert len(ids) == 2 and [s["id"] for s in armed(bybit_mock)] == ids
    assert ok(bybit_mock, "DELETE", f"/scenarios/{ids[0]}") == {"removed": 1}
    assert admin(bybit_mock, "DELETE", f"/scenarios/{ids[0]}").status == 404
    assert admin(bybit_mock, "GET", f"/scenarios/{ids[0]}").status == 404
    assert ok(bybit_mock, "DELETE", "/scenarios") == {"removed": 1}
    assert armed(bybit_mock) == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/scenarios", {"trigger": {"type": "rest"}, "action": {"type": "hang"}}, "trigger.path"),
        ("/scenarios", {"trigger": {"type": "order_create"}, "action": {"type": "explode"}}, "action.type"),
        ("/scenarios", {"trigger": {"type": "order_create"}, "action": {"type": "hang"}, "tims": 2}, "tims"),
        ("/scenarios", {"action": {"type": "hang"}}, "trigger"),
        ("/scenarios", {**FAIL_REALTIME, "probability": 2}, "probability"),
        ("/scenarios", {**FAIL_REALTIME, "match": {"side": "Long"}}, "match.side"),
        ("/scenarios", "[not json", "body"),
        ("/scenarios", "", "body"),
        ("/scenarios", 7, "scenario"),
        ("/accounts/{key}/balance", {"coin": "USDT"}, "amount"),
        ("/accounts/{key}/balance", {"coin": "USDT", "amount": "-1"}, "amount"),
        ("/accounts/{key}/balance", {"coin": "USDT", "amount": "1", "push": "yes"}, "push"),
        ("/accounts/{key}/balance", {"coin": "USDT", "amount": "1", "pusj": True}, "pusj"),
        ("/accounts/{key}/balance", {"coin": 5, "amount": "1"}, "coin"),
        ("/accounts/{key}/position", {"symbol": "BTCUSDT", "side": "Long", "size": 1, "entry_price": 1}, "side"),
        ("/accounts/{key}/position", {"symbol": "NOPE", "side": "Buy", "size": 1, "entry_price": 1}, "symbol"),
        ("/accounts/{key}/position", {"symbol": "BTCUSDT", "side": "Buy", "size": 1, "entry_price": 0}, "entry_price"),
        ("/accounts/{key}/position",
         {"symbol": "BTCUSDT", "side": "Buy", "size": 1, "entry_price": 1, "position_idx": 1.0}, "position_idx"),
        ("/accounts/{key}/deposit", {"coin": "USDT", "amount": 0}, "amount"),
        ("/market/price", {"symbol": "BTCUSDT", "price": "NaN"}, "price"),
        ("/market/price", {"symbol": "BTCUSDT", "price": 1, "category": "futures"}, "category"),
        ("/market/freeze", {"symbol": "BTCUSDT", "category": "inverse"}, "symbol"),
        ("/market/append", {"items": []}, "items"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    bybit_mock: MockExchange, path: str, body: Any, field: str
) -> None:
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    answer = admin(bybit_mock, "POST", path.format(key=bybit_mock.api_key), raw=raw)
    assert answer.status == 400, answer.raw
    assert answer.json["field"] == field and field in answer.json["error"]
    assert armed(bybit_mock) == []
    account = ok(bybit_mock, "GET", f"/accounts/{bybit_mock.api_key}")
    assert account["balances"] == {"USDT": "100000"} and account["positions"] == [] and account["funding"] == {}


def test_a_scripted_ip_ban_does_not_lock_out_the_admin_api(bybit_mock_factory: MockExchangeFactory) -> None:
    ex = bybit_mock_factory()  # a mock of its own: a reset does not lift a ban (the REST worker holds it)
    ban = {"trigger": {"type": "rest", "path": "/v5/market/time"}, "action": {"type": "ip_ban", "for_ms": 60_000}}
    ok(ex, "POST", "/scenarios", ban, status=201)
    assert call(ex.rest_url + "/v5/market/time").status == 403
    assert call(ex.rest_url + "/v5/market/tickers?category=linear").status == 403  # banned
    assert ok(ex, "GET", "/health")["status"] == "ok"
    (entry,) = ok(ex, "GET", "/journal")["journal"]
    assert entry["action"]["type"] == "ip_ban"


def test_reset_clears_scenarios_and_journal(bybit_mock: MockExchange) -> None:
    ok(bybit_mock, "POST", "/scenarios", [FAIL_REALTIME, FAIL_REALTIME], status=201)
    with pytest.raises(InvalidRequestError):
        pybit_http(bybit_mock).get_open_orders(category="linear", symbol="BTCUSDT")
    ok(bybit_mock, "POST", f"/accounts/{bybit_mock.api_key}/balance", {"coin": "USDT", "amount": 1})
    assert len(armed(bybit_mock)) == 1 and len(ok(bybit_mock, "GET", "/journal")["journal"]) == 1
    assert ok(bybit_mock, "POST", "/reset") == {"ok": True}
    assert armed(bybit_mock) == [] and ok(bybit_mock, "GET", "/journal")["journal"] == []
    assert bybit_mock.state.balance(bybit_mock.api_key, "USDT") == Decimal(100_000)
    assert pybit_http(bybit_mock).get_open_orders(category="linear", symbol="BTCUSDT")["retCode"] == 0


# -- accounts and markets -----------------------------------------------------------------------


def test_a_balance_set_over_http_is_what_pybit_reads(bybit_mock: MockExchange) -> None:
    key = bybit_mock.api_key
    edited = ok(bybit_mock, "POST", f"/accounts/{key}/balance", {"coin": "usdt", "amount": "1234.5", "push": True})
    assert edited == {"api_key": key, "coin": "USDT", "balance": "1234.5"}
    wallet = pybit_http(bybit_mock).get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    (usdt,) = [c for c in wallet["coin"] if c["coin"] == "USDT"]
    assert Decimal(usdt["walletBalance"]) == Decimal("1234.5")
    assert ok(bybit_mock, "GET", f"/accounts/{key}")["balances"] == {"USDT": "1234.5"}


def test_account_view_orders_positions_and_deposits(bybit_mock: MockExchange) -> None:
    key = bybit_mock.api_key
    assert ok(bybit_mock, "GET", "/accounts") == {"accounts": [key]}
    session = pybit_http(bybit_mock)
    placed = session.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                                 price="10000", orderLinkId="admin-1")["result"]  # fmt: skip
    account = ok(bybit_mock, "GET", f"/accounts/{key}")
    (order,) = account["open_orders"]
    assert (order["order_id"], order["order_link_id"], order["price"]) == (placed["orderId"], "admin-1", "10000")
    assert {c["coin"] for c in account["coins"]} == {"USDT"}
    assert ok(bybit_mock, "GET", f"/accounts/{key}/orders/{placed['orderId']}") == order
    assert ok(bybit_mock, "GET", f"/accounts/{key}/orders/admin-1") == order  # by orderLinkId
    assert admin(bybit_mock, "GET", f"/accounts/{key}/orders/nope").status == 404

    position = {"symbol": "BTCUSDT", "side": "Sell", "size": "0.5", "entry_price": 60000, "leverage": 5, "push": True}
    view = ok(bybit_mock, "POST", f"/accounts/{key}/position", position)["position"]
    assert (view["side"], view["size"], view["entry_price"], view["leverage"]) == ("Sell", "0.5", "60000", "5")
    (listed,) = session.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (listed["side"], listed["size"]) == ("Sell", "0.5")
    flat = ok(bybit_mock, "POST", f"/accounts/{key}/position", {**position, "size": 0})
    assert flat["position"] is None and ok(bybit_mock, "GET", f"/accounts/{key}")["positions"] == []

    deposited = ok(bybit_mock, "POST", f"/accounts/{key}/deposit", {"coin": "USDT", "amount": 250, "chain": "TRX"})
    assert deposited["funding"] == {"USDT": "250"} and deposited["tx_id"]
    (record,) = session.get_deposit_records(coin="USDT")["result"]["rows"]
    assert (record["txID"], record["chain"], record["amount"]) == (deposited["tx_id"], "TRX", "250")


def test_price_jump_freeze_and_thaw(bybit_mock_factory: MockExchangeFactory) -> None:
    # a mock of its own: after a freeze and a thaw, reset() leaves the shared mock's order book
    # streams inconsistent for the next test (the Python state API does the same; not the admin API's)
    bybit_mock = bybit_mock_factory()
    frozen = ok(bybit_mock, "POST", "/market/freeze", {"symbol": "BTCUSDT", "category": "linear"})
    assert frozen == {"frozen": True, "markets": [{"category": "linear", "symbol": "BTCUSDT"}]}
    assert ok(bybit_mock, "POST", "/market/price", {"symbol": "BTCUSDT", "price": 70000}) == {
        "category": "linear", "symbol": "BTCUSDT", "price": "70000"}  # fmt: skip
    session = pybit_http(bybit_mock)
    for _ in range(2):  # frozen: it stays where it was put
        (ticker,) = session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert ticker["lastPrice"] == ticker["markPrice"] == "70000.00"
        time.sleep(0.1)
    thawed = ok(bybit_mock, "POST", "/market/thaw")  # no body: every market
    streamed = [i for i in bybit_mock.config.instruments if i.category != "option"]  # options have no model
    assert thawed["frozen"] is False and len(thawed["markets"]) == len(streamed)


@pytest.mark.bybit_mock_config(config=MockExchangeConfig.default().with_canned_market("BTCUSDT", step=True))
def test_canned_market_data_appended_and_stepped_over_http(bybit_mock: MockExchange) -> None:
    candle = {"kind": "candle", "symbol": "BTCUSDT", "open": 1000, "high": 1010, "low": 995, "volume": 1}
    items = [{**candle, "close": 1001}, {**candle, "close": 1002}]
    (status,) = ok(bybit_mock, "POST", "/market/append", {"items": items})["markets"]
    assert (status["symbol"], status["mode"], status["items"], status["released"]) == ("BTCUSDT", "step", 2, 0)
    stepped = ok(bybit_mock, "POST", "/market/step", {"symbol": "BTCUSDT", "n": 1})
    assert (stepped["stepped"], stepped["released"]) == (1, 1)
    assert ok(bybit_mock, "GET", "/market/status?symbol=BTCUSDT")["released"] == 1
    kline = pybit_http(bybit_mock).get_kline(category="linear", symbol="BTCUSDT", interval="1")["result"]["list"]
    assert kline[0][4] == "1001.00"  # the released candle's close
    bad = admin(bybit_mock, "POST", "/market/append", {"items": [{**candle, "close": "x"}]})
    assert bad.status == 400 and bad.json["field"].startswith("items[0]")
    step_other = admin(bybit_mock, "POST", "/market/step", {"symbol": "ETHUSDT"})
    assert step_other.status == 400 and step_other.json["field"] == "symbol"  # not a canned market


# -- access ---------------------------------------------------------------------------------------


def test_admin_off_is_an_unknown_route(bybit_mock_factory: MockExchangeFactory) -> None:
    ex = bybit_mock_factory(admin="off")
    answer = admin(ex, "GET", "/health")
    assert answer.status == 404 and answer.json["retCode"] == errors.ROUTE_NOT_FOUND  # as any unknown path


def test_a_token_is_required_when_configured(bybit_mock_factory: MockExchangeFactory) -> None:
    ex = bybit_mock_factory(admin_token="s3cret-token")
    wrong = ({}, {"Authorization": "Bearer wrong"}, {"X-Admin-Token": "s3cret"}, {"Authorization": "s3cret-token"})
    for headers in wrong:
        refused = admin(ex, "GET", "/scenarios", headers=headers)
        assert refused.status == 401 and refused.json == {"error": "admin token required"}, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
    refused = admin(ex, "POST", "/scenarios", FAIL_REALTIME)
    assert refused.status == 401
    for headers in ({"Authorization": "Bearer s3cret-token"}, {"X-Admin-Token": "s3cret-token"}):
        assert admin(ex, "GET", "/scenarios", headers=headers).json == {"scenarios": []}  # nothing armed by the 401


# -- scenarios from the config file -------------------------------------------------------------------

TOML_SCENARIOS = """
[[scenarios]]
name = "realtime-down"
trigger = { type = "rest", path = "/v5/order/realtime" }
action = { type = "fail", ret_code = 10001, ret_msg = "scripted outage" }
times = 2

[[scenarios]]
name = "slow-create"
trigger = { type = "order_create" }
match = { symbol = "BTCUSDT" }
action = { type = "delay", ms = 1 }
"""


def test_toml_scenarios_are_armed_at_start_and_after_reset(
    tmp_path: Path, bybit_mock_factory: MockExchangeFactory
) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(TOML_SCENARIOS + '\n[[accounts]]\napi_key = "k"\napi_secret = "s"\nbalances = { USDT = 5 }\n')
    ex = bybit_mock_factory(MockExchangeConfig.from_toml(path))
    assert [(s["id"], s["name"], s["remaining"]) for s in armed(ex)] == [("s1", "realtime-down", 2),
                                                                         ("s2", "slow-create", 1)]  # fmt: skip
    with pytest.raises(InvalidRequestError, match="scripted outage"):
        pybit_http(ex).get_open_orders(category="linear", symbol="BTCUSDT")
    assert armed(ex)[0]["remaining"] == 1
    ok(ex, "DELETE", "/scenarios")
    ok(ex, "POST", "/reset")
    assert [s["name"] for s in armed(ex)] == ["realtime-down", "slow-create"]  # the config's, re-armed


def test_cli_serve_with_a_config_file_and_a_token(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(TOML_SCENARIOS)
    env = {**os.environ, "BYBIT_MOCK_ADMIN_TOKEN": "from-env"}
    with serving_cli("--config", str(path), env=env) as (proc, ready):
        assert ready["admin_url"] == ready["rest_url"] + "/__admin"
        assert call(ready["admin_url"] + "/scenarios").status == 401
        listed = call(ready["admin_url"] + "/scenarios", headers={"Authorization": "Bearer from-env"}).json
        assert [s["name"] for s in listed["scenarios"]] == ["realtime-down", "slow-create"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert proc.stderr is not None
        assert "admin       " + ready["admin_url"] + "  (token required)" in proc.stderr.read()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--host", "0.0.0.0"], "needs an admin_token"),
        (["--admin", "maybe"], "invalid choice"),
    ],
)
def test_cli_refuses_an_open_admin_api_on_a_reachable_host(args: list[str], text: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BYBIT_MOCK_ADMIN_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "bybit_mock.cli", "serve", *args],
        check=False, capture_output=True, text=True, timeout=30, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and text in proc.stderr and proc.stdout == ""
