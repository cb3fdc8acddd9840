"""Bybit's per-UID REST rate limits, end to end: headers, 10006, per account, off, and how
pybit (its auto-retry) and ccxt (RateLimitExceeded) take them."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import ccxt
import orjson
import pytest
from pybit.unified_trading import HTTP

from bybit_mock import AccountConfig, MockExchange, MockExchangeConfig
from bybit_mock.bybit import auth

from .conftest import RawHttp, envelope, get_request, now_ms, serving_cli, signed_get
from .test_rest_ccxt import ccxt_bybit

BOB = AccountConfig("bob", "bob-secret", {"USDT": 100_000})
LIMIT_HEADERS = ("x-bapi-limit", "x-bapi-limit-status", "x-bapi-limit-reset-timestamp")


@pytest.fixture(scope="module")
def limited() -> Iterator[MockExchange]:
    """Bybit's limits (the default), two accounts and two REST workers: the count is per UID
    in the state service, so it holds whichever worker a connection lands on."""
    config = MockExchangeConfig.default().with_account(BOB).copy(rest_workers=2)
    with MockExchange(config) as ex:
        ex.state.freeze_market()
        yield ex


@pytest.fixture
def ex(limited: MockExchange) -> MockExchange:
    limited.state.reset()  # fresh windows (reset clears them) and no orders
    limited.state.freeze_market()
    return limited


@pytest.fixture(scope="module")
def unlimited() -> Iterator[MockExchange]:
    with MockExchange(MockExchangeConfig.default().copy(rate_limits="off")) as mock:
        yield mock


def order_body(i: int, category: str = "linear") -> str:
    order = {"category": category, "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001"}
    return orjson.dumps(order | {"price": "30000", "orderLinkId": f"rl-{i}"}).decode()


def signed_post(path: str, body: str, key: str, secret: str) -> bytes:
    headers = auth.rest_headers(key, secret, body, now_ms())
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def creates(mock: MockExchange, n: int, key: str | None = None, secret: str | None = None, first: int = 0) -> Any:
    """``n`` creates pipelined on one connection (they arrive within a few ms), and the answers
    with the client's clock when each was read."""
    key, secret = key or mock.api_key, secret or mock.api_secret
    conn = RawHttp(mock)
    try:
        started = now_ms()
        conn.send(b"".join(signed_post("/v5/order/create", order_body(first + i), key, secret) for i in range(n)))
        answers = []
        for _ in range(n):
            status, headers, body = conn.read_response()
            answers.append((status, headers, envelope(body), now_ms()))
    finally:
        conn.close()
    assert answers[-1][3] - started < 1000, "the pipelined creates took a second: the window rolled"
    return answers


def test_signed_answers_carry_the_headers_and_public_ones_do_not(ex: MockExchange) -> None:
    conn = RawHttp(ex)
    try:
        for path, query, code in (
            ("/v5/account/wallet-balance", "accountType=UNIFIED", 0),  # the engine answers
            ("/v5/account/fee-rate", "category=linear", 0),  # the worker answers, the engine counts
            ("/v5/order/realtime", "category=linear", 10001),  # no symbol: refused, still counted
            ("/v5/order/realtime", "category=linear&symbol=BTCUSDT", 0),
        ):
            before = now_ms()
            conn.send(signed_get(ex, path, query))
            status, headers, body = conn.read_response()
            assert status == 200 and envelope(body)["retCode"] == code, body
            limit = int(headers["x-bapi-limit"])
            used = 2 if query.endswith("BTCUSDT") else 1
            assert int(headers["x-bapi-limit-status"]) == limit - used, (path, headers)
            assert before <= int(headers["x-bapi-limit-reset-timestamp"]) <= now_ms()  # "now": not exceeded
        assert int(headers["x-bapi-limit"]) == 50
        for path in (
            "/v5/market/time",
            "/v5/market/instruments-info?category=linear",
            "/v5/market/tickers?category=linear",
        ):
            conn.send(get_request(path))
            status, headers, _ = conn.read_response()
            assert status == 200 and not set(LIMIT_HEADERS) & set(headers), (path, headers)
    finally:
        conn.close()


def test_the_eleventh_linear_create_in_a_second_is_10006_and_creates_nothing(ex: MockExchange) -> None:
    answers = creates(ex, 11)
    for i, (status, headers, data, _) in enumerate(answers[:10]):
        assert status == 200 and data["retCode"] == 0, data
        assert headers["x-bapi-limit"] == "10" and headers["x-bapi-limit-status"] == str(9 - i)
    status, headers, data, read_at = answers[10]
    assert status == 200
    assert data["retCode"] == 10006 and data["retMsg"] == "Too many visits!", data
    assert data["result"] == {} and data["retExtInfo"] == {}
    assert headers["x-bapi-limit"] == "10" and headers["x-bapi-limit-status"] == "0"
    assert int(headers["x-bapi-limit-reset-timestamp"]) > read_at  # in the future when the client reads it
    assert sorted(o.order_link_id for o in ex.state.open_orders(ex.api_key)) == sorted(f"rl-{i}" for i in range(10))


def test_spot_has_its_own_window_of_twenty(ex: MockExchange) -> None:
    creates(ex, 10)  # the linear window is full
    conn = RawHttp(ex)
    try:
        conn.send(signed_post("/v5/order/create", order_body(100, "spot"), ex.api_key, ex.api_secret))
        _, headers, body = conn.read_response()
    finally:
        conn.close()
    assert envelope(body)["retCode"] == 0 and headers["x-bapi-limit"] == "20"
    assert headers["x-bapi-limit-status"] == "19"


def test_one_accounts_limit_does_not_touch_another(ex: MockExchange) -> None:
    assert creates(ex, 11)[-1][2]["retCode"] == 10006
    bob = creates(ex, 1, BOB.api_key, BOB.api_secret)
    _, headers, data, _ = bob[0]
    assert data["retCode"] == 0 and headers["x-bapi-limit-status"] == "9"
    assert len(ex.state.open_orders(BOB.api_key)) == 1 and len(ex.state.open_orders(ex.api_key)) == 10


def test_the_limit_holds_across_rest_workers(ex: MockExchange) -> None:
    """A connection per create: the two workers share them, the count is one."""
    codes = []
    started = now_ms()
    for i in range(11):
        conn = RawHttp(ex)
        try:
            conn.send(signed_post("/v5/order/create", order_body(i), ex.api_key, ex.api_secret))
            codes.append(envelope(conn.read_response()[2])["retCode"])
        finally:
            conn.close()
    assert now_ms() - started < 1000, "eleven connections took a second: the window rolled"
    assert codes == [0] * 10 + [10006]


def test_off_sends_no_headers_and_never_10006(unlimited: MockExchange) -> None:
    unlimited.state.reset()
    answers = creates(unlimited, 15)
    assert [a[2]["retCode"] for a in answers] == [0] * 15
    assert not any(set(LIMIT_HEADERS) & set(a[1]) for a in answers)
    conn = RawHttp(unlimited)
    try:
        for _ in range(7):  # fee-rate, 5/s on Bybit, answered by the worker
            conn.send(signed_get(unlimited, "/v5/account/fee-rate", "category=linear"))
            _, headers, body = conn.read_response()
            assert envelope(body)["retCode"] == 0 and not set(LIMIT_HEADERS) & set(headers)
    finally:
        conn.close()
    assert len(unlimited.state.open_orders(unlimited.api_key)) == 15


def test_pybit_sleeps_until_the_reset_header_then_succeeds(ex: MockExchange, caplog: pytest.LogCaptureFixture) -> None:
    session = HTTP(api_key=ex.api_key, api_secret=ex.api_secret)  # default retry_codes: 10006 retried
    session.endpoint = ex.rest_url
    creates(ex, 10)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="pybit._http_manager"):
        answer = session.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001", price="30000"
        )  # a reset timestamp in the past would raise ValueError from time.sleep here
    assert answer["retCode"] == 0
    assert any("rate limit" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert time.monotonic() - started > 0.05  # it slept for the window
    assert len(ex.state.open_orders(ex.api_key)) == 11


def test_ccxt_raises_rate_limit_exceeded(ex: MockExchange) -> None:
    client = ccxt_bybit(ex)
    client.enableRateLimit = False  # ccxt's own throttle would keep it under Bybit's limits
    client.load_markets()
    with pytest.raises(ccxt.RateLimitExceeded):
        for _ in range(40):  # eleven within a second, however slow the machine
            client.create_order("BTC/USDT:USDT", "limit", "buy", 0.001, 30000)
    assert 10 <= len(ex.state.open_orders(ex.api_key)) < 40


def test_cli_flag_and_banner() -> None:
    with serving_cli("--rate-limits", "off") as (proc, ready):
        assert proc.stderr is not None
        banner: list[str] = []
        while not banner or "Ctrl-C" not in banner[-1]:  # the banner's last line
            banner.append(proc.stderr.readline())
            assert banner[-1], banner  # not EOF
        assert any("rate limits: off" in line for line in banner), banner
        host, port = ready["rest_url"].removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            ts = now_ms()
            headers = auth.rest_headers(ready["api_key"], ready["api_secret"], "accountType=UNIFIED", ts)
            sock.sendall(
                get_request("/v5/account/wallet-balance?accountType=UNIFIED", headers | {"Connection": "close"})
            )
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert b"X-Bapi-Limit" not in response and b'"retCode":0' in response
        proc.terminate()
        assert proc.wait(15) == 0
