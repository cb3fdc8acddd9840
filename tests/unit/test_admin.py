"""The admin API's rules without processes: access, field checks, routing, and the engine half."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from bybit_mock import AccountConfig, ConfigError, MockExchangeConfig
from bybit_mock.config_checks import is_loopback
from bybit_mock.engine.admin import admin_call, field_of
from bybit_mock.engine.exchange import Exchange
from bybit_mock.rest.admin import Access, AdminApi, Fields, json_body
from bybit_mock.rest.faults import RestFaults
from bybit_mock.rest.protocol import Request
from bybit_mock.service.client import UNAVAILABLE

KEY = "alice"
DELAY = {"trigger": {"type": "order_create"}, "action": {"type": "delay", "ms": 5}}


# -- access -----------------------------------------------------------------------------------------


def test_without_a_token_every_request_is_let_in() -> None:
    assert Access(None).allows({}) and Access(None).allows({b"authorization": b"Bearer anything"})


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, False),
        ({b"authorization": b"Bearer tok-1"}, True),
        ({b"authorization": b"bearer tok-1"}, True),  # the scheme is case-insensitive (RFC 9110 11.1)
        ({b"authorization": b"Bearer  tok-1 "}, True),
        ({b"x-admin-token": b"tok-1"}, True),
        ({b"x-admin-token": b"wrong", b"authorization": b"Bearer tok-1"}, True),
        ({b"authorization": b"Basic tok-1"}, False),
        ({b"authorization": b"tok-1"}, False),
        ({b"authorization": b"Bearer tok-12"}, False),
        ({b"x-admin-token": b"tok-"}, False),
        ({b"x-admin-token": b""}, False),
    ],
)
def test_a_configured_token_must_be_shown(headers: dict[bytes, bytes], allowed: bool) -> None:
    assert Access("tok-1").allows(headers) is allowed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_open_admin_api_is_refused_on_a_reachable_host() -> None:
    with pytest.raises(ConfigError, match=r"host '0\.0\.0\.0' is not a loopback address.*admin_token"):
        MockExchangeConfig(host="0.0.0.0")
    MockExchangeConfig(host="0.0.0.0", admin_token="t")  # a token: allowed
    MockExchangeConfig(host="0.0.0.0", admin="off")  # no API: allowed
    MockExchangeConfig(host="127.0.0.1", admin_token="t")  # a token on loopback: required all the same
    with pytest.raises(ConfigError, match="admin must be one of on, off"):
        MockExchangeConfig(admin="yes")  # type: ignore[arg-type]
    for token in ("", " t", "t ", "tö", "t\n"):
        with pytest.raises(ConfigError, match="admin_token must be"):
            MockExchangeConfig(admin_token=token)
    assert "sekrit" not in repr(MockExchangeConfig(admin_token="sekrit"))  # never in a log line


# -- field checks -------------------------------------------------------------------------------------


def refused(fn: Any, *args: Any) -> tuple[str | None, str]:
    try:
        fn(*args)
    except Exception as exc:
        return getattr(exc, "field", None), str(exc)
    raise AssertionError("accepted")


def test_fields_are_checked_by_type_range_and_name() -> None:
    f = Fields({"amount": 1.5, "price": "0.10", "zero": 0, "push": True, "side": "Buy", "idx": 2, "n": "7"})
    assert f.decimal("amount", positive=True) == "1.5"
    assert f.decimal("price", positive=True) == "0.10"
    assert f.decimal("zero", positive=False) == "0"
    assert f.decimal("missing", positive=True, required=False) is None
    assert f.flag("push") is True and f.flag("absent") is False
    assert f.choice("side", ("Buy", "Sell")) == "Buy" and f.choice("idx", (0, 1, 2), 0) == 2
    assert f.integer("n", 1) == 7
    f.done()
    assert refused(Fields({"amount": 0}).decimal, "amount", True) == ("amount", "amount: must be a decimal > 0")
    assert refused(Fields({"amount": -1}).decimal, "amount", False)[0] == "amount"
    for value in (True, "1e", "Infinity", "NaN", [], {}):
        assert refused(Fields({"a": value}).decimal, "a", False)[1].startswith("a: must be a decimal (a string")
    assert refused(Fields({"idx": 1.0}).choice, "idx", (0, 1, 2))[0] == "idx"  # 1.0 is not the index 1
    assert refused(Fields({"idx": True}).choice, "idx", (0, 1, 2))[0] == "idx"
    assert refused(Fields({}).text, "coin") == ("coin", "coin: is required")
    assert refused(Fields({"coin": None}).text, "coin")[0] == "coin"  # null is absent
    assert refused(Fields({"n": "-1"}).integer, "n", 0)[0] == "n"
    assert refused(Fields({"n": 1.5}).integer, "n", 0)[0] == "n"
    extra = Fields({"coin": "USDT", "amout": 1})
    extra.text("coin")
    assert refused(extra.done) == ("amout", "amout: unknown field (known: coin)")
    assert refused(Fields, [1, 2]) == ("body", "body: must be a JSON object")


def test_bodies_must_be_json_and_shallow() -> None:
    assert json_body(b"", empty={}) == {} and json_body(b' {"a": 1} ') == {"a": 1}
    assert refused(json_body, b"") == ("body", "body: a JSON body is required")
    assert refused(json_body, b"{nope")[0] == "body"
    assert refused(json_body, b"[" * 40 + b"]" * 40)[1] == "body: nested too deep (limit 16 levels)"


def test_field_of_reads_the_path_a_message_starts_with() -> None:
    assert field_of("items[3].close: not a number") == "items[3].close"
    assert field_of("symbol: no instrument") == "symbol"
    assert field_of("a balance cannot be negative") is None
    assert field_of("unknown instrument linear/FOO") is None


# -- routing in the worker (a fake state client records what would go to the engine) -----------------


class FakeState:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.reply: Any = (0, (200, b"{}", None))

    def submit(self, op: str, args: tuple[Any, ...], callback: Any) -> None:
        self.sent.append((op, args))
        callback(self.reply)


class Answers:
    def __init__(self) -> None:
        self.got: list[tuple[int, Any, bytes]] = []

    def __call__(self, status: int, body: bytes, extra: bytes = b"", content_type: bytes | None = None) -> None:
        self.got.append((status, orjson.loads(body), extra))


def api(**config: Any) -> tuple[AdminApi, FakeState]:
    state = FakeState()
    faults = RestFaults(state, lambda *a: None)  # type: ignore[arg-type]
    return AdminApi(MockExchangeConfig(**config), state, faults), state  # type: ignore[arg-type]


def send(
    admin: AdminApi, method: str, path: str, body: Any = b"", headers: dict[bytes, bytes] | None = None
) -> tuple[int, Any, bytes]:
    path, _, query = path.partition("?")
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    answers = Answers()
    admin.dispatch(Request(method, path, query, headers or {}, raw), answers)
    (answer,) = answers.got
    return answer


@pytest.mark.parametrize(
    ("method", "path", "body", "call"),
    [
        ("GET", "/__admin/scenarios", b"", ("scenarios_list", ())),
        ("GET", "/__admin/scenarios/", b"", ("scenarios_list", ())),  # a trailing slash is the same path
        ("DELETE", "/__admin/scenarios", b"", ("scenarios_clear", ())),
        ("GET", "/__admin/scenarios/s4", b"", ("scenario_get", ("s4",))),
        ("DELETE", "/__admin/scenarios/s4", b"", ("scenario_remove", ("s4",))),
        ("POST", "/__admin/scenarios", DELAY, ("scenarios_push", ([{**DELAY, "name": "order_create->delay",
                                                                     "times": 1}], False))),
        ("GET", "/__admin/journal?scenario=s1&since=3", b"", ("journal", ("s1", 3))),
        ("GET", "/__admin/journal?scenario=&since=", b"", ("journal", (None, 0))),
        ("DELETE", "/__admin/journal", b"", ("journal_clear", ())),
        ("POST", "/__admin/reset", b"", ("reset", ())),
        ("GET", "/__admin/accounts/a%2Fb", b"", ("account", ("a/b",))),
        ("HEAD", "/__admin/accounts/k/orders/o-1", b"", ("order", ("k", "o-1"))),
        ("POST", "/__admin/accounts/k/balance", {"coin": "USDT", "amount": 5},
         ("set_balance", ("k", "USDT", "5", False))),
        ("POST", "/__admin/accounts/k/deposit", {"coin": "BTC", "amount": "0.5"},
         ("deposit", ("k", "BTC", "0.5", None))),
        ("POST", "/__admin/accounts/k/position", {"symbol": "BTCUSDT", "side": "Sell", "size": 1, "entry_price": 5},
         ("set_position", ("k", {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "size": "1",
                                 "entry_price": "5", "leverage": None, "position_idx": 0, "push": False}))),
        ("POST", "/__admin/market/price", {"symbol": "BTCUSDT", "price": 7, "category": "spot"},
         ("set_price", ("BTCUSDT", "7", "spot"))),
        ("POST", "/__admin/market/freeze", b"", ("freeze", (None, None, True))),
        ("POST", "/__admin/market/thaw", {"category": "spot"}, ("freeze", (None, "spot", False))),
        ("POST", "/__admin/market/step", {"symbol": "ETHUSDT", "n": 3}, ("market_step", ("linear", "ETHUSDT", 3))),
        ("GET", "/__admin/market/status?symbol=BTCUSDT", b"", ("market_step", ("linear", "BTCUSDT", 0))),
    ],
)  # fmt: skip
def test_each_endpoint_sends_one_checked_engine_call(method: str, path: str, body: Any, call: Any) -> None:
    admin, state = api()
    assert send(admin, method, path, body)[0] == 200
    assert state.sent == [("admin", call)]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/__admin/scenarios", [DELAY, {**DELAY, "times": 0}], 400, "times"),
        ("POST", "/__admin/accounts/k/balance", {"coin": "USDT", "amount": "x"}, 400, "amount"),
        ("POST", "/__admin/market/price", {"symbol": "SOLUSDT", "price": 1}, 400, "symbol"),
        ("GET", "/__admin/journal?since=1&limit=5", b"", 400, "limit"),
        ("POST", "/__admin/market/append", {"items": [{"kind": "candle", "symbol": "BTCUSDT"}]}, 400, "items[0]"),
        ("GET", "/__admin/accounts/k/orders", b"", 404, None),
        ("GET", "/__admin/accounts//orders/x", b"", 404, None),
        ("GET", "/__admin", b"", 404, None),
        ("PATCH", "/__admin/reset", b"", 405, None),
    ],
)
def test_refusals_never_reach_the_engine(method: str, path: str, body: Any, status: int, field: str | None) -> None:
    admin, state = api()
    got, answer, _ = send(admin, method, path, body)
    assert got == status and answer.get("field") == field and answer["error"]
    assert state.sent == []


def test_a_token_is_checked_before_anything_else() -> None:
    admin, state = api(admin_token="tok")
    challenge = b'WWW-Authenticate: Bearer realm="bybit-mock admin"\r\n'
    assert send(admin, "GET", "/__admin/nope") == (401, {"error": "admin token required"}, challenge)
    assert send(admin, "GET", "/__admin/nope", headers={b"x-admin-token": b"tok"})[0] == 404
    assert state.sent == []


def test_engine_replies_become_http_answers() -> None:
    admin, state = api()
    summary = {"version": 9, "rest": {"/v5/order/realtime": ["*"]}, "ws": {}, "public": []}
    state.reply = (0, (201, b'{"id":"s1"}', summary))
    assert send(admin, "POST", "/__admin/scenarios", DELAY)[:2] == (201, {"id": "s1"})
    assert admin.faults.is_armed("/v5/order/realtime", "GET")  # learned before the answer went out
    state.reply = UNAVAILABLE
    assert send(admin, "GET", "/__admin/health")[:2] == (503, {"status": "unavailable", "error": UNAVAILABLE[1]})
    state.reply = (10016, "Server error: KeyError: 'x'")
    assert send(admin, "GET", "/__admin/scenarios")[0] == 500


# -- the engine half ------------------------------------------------------------------------------------


def engine() -> Exchange:
    return Exchange(MockExchangeConfig(accounts=[AccountConfig(KEY, "secret", {"USDT": 100})]))


def run(ex: Exchange, name: str, *args: Any) -> tuple[int, Any, Any]:
    status, body, summary = admin_call(ex, name, args)
    return status, orjson.loads(body), summary


def test_engine_arms_a_list_whole_or_not_at_all_and_reports_the_new_summary() -> None:
    ex = engine()
    status, body, summary = run(ex, "scenarios_push", [DELAY, {**DELAY, "action": {"type": "nope"}}], True)
    assert (status, body["field"], body["index"], summary) == (400, "action.type", 1, None)
    assert ex.scenario_list() == []
    status, body, summary = run(ex, "scenarios_push", [DELAY, DELAY], True)
    assert (status, body) == (201, {"ids": ["s1", "s2"]})
    assert summary == ex.scenarios.registry.summary() and summary["rest"] == {"/v5/order/create": ["POST", "POST"]}
    assert run(ex, "scenarios_list")[2] is None  # a read changes nothing: no summary


def test_engine_not_found_and_bad_values() -> None:
    ex = engine()
    assert run(ex, "account", "bob")[:2] == (404, {"error": "no account 'bob'"})
    assert run(ex, "order", KEY, "x")[0] == 404
    assert run(ex, "scenario_get", "s1")[0] == 404 and run(ex, "scenario_remove", "s1")[0] == 404
    assert run(ex, "no_such_call")[0] == 404
    assert run(ex, "set_balance", "bob", "USDT", "1", False)[0] == 404
    status, body, _ = run(ex, "freeze", "SOLUSDT", None, True)
    assert status == 400 and "no market" in body["error"]
    status, body, _ = run(ex, "market_step", "linear", "BTCUSDT", 1)
    assert (status, body["field"]) == (400, "symbol")


def test_engine_edits_go_through_the_state_api() -> None:
    ex = engine()
    assert run(ex, "set_balance", KEY, "usdt", "7.50", False)[:2] == (200, {"api_key": KEY, "coin": "USDT",
                                                                             "balance": "7.50"})  # fmt: skip
    assert ex.balances(KEY) == {"USDT": Decimal("7.50")}
    edit = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "size": "2", "entry_price": "100",
            "leverage": None, "position_idx": 0, "push": False}  # fmt: skip
    position = run(ex, "set_position", KEY, edit)[1]["position"]
    assert (position["size"], position["leverage"]) == ("2", "10")
    assert run(ex, "set_position", KEY, {**edit, "position_idx": 1})[0] == 400  # one-way mode: no index 1
    assert run(ex, "deposit", KEY, "BTC", "0.25", None)[1]["funding"] == {"BTC": "0.25"}
    assert run(ex, "reset")[:2] == (200, {"ok": True}) and ex.balances(KEY) == {"USDT": Decimal(100)}
    health = run(ex, "health", {"pid": 1})[1]
    assert health == {"status": "ok", "pid": 1, "engine": ex.instance_id, "accounts": 1, "scenarios": 0}


def test_the_admin_command_is_in_the_op_table() -> None:
    ex = engine()
    assert "admin" in ex.ops
    ((code, (status, body, _)),) = ex.apply_batch([("admin", ("accounts", ()))])
    assert (code, status, orjson.loads(body)) == (0, 200, {"accounts": [KEY]})
