"""Hostile REST clients against the real worker: huge heads, slowloris, payloads that cannot
cross to the state service, and WebSocket upgrades on the REST port. Each must cost that
client its answer (or its connection) and nobody else anything."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.bybit import auth

from .conftest import RawHttp, envelope, get_request, now_ms, signed_get

REQUEST_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def impatient_mock() -> Iterator[MockExchange]:
    """A mock that gives a request half a second from its first byte to its last."""
    cfg = MockExchangeConfig.default()
    cfg.request_timeout = REQUEST_TIMEOUT
    with MockExchange(cfg) as ex:
        yield ex


def signed_post(ex: MockExchange, path: str, body: str) -> bytes:
    headers = auth.rest_headers(ex.api_key, ex.api_secret, body, now_ms())
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(body.encode())}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def assert_market_time_answers(ex: MockExchange) -> None:
    conn = RawHttp(ex)
    try:
        conn.send(get_request("/v5/market/time"))
        status, _, body = conn.read_response()
        assert status == 200 and envelope(body)["retCode"] == 0
    finally:
        conn.close()


def test_huge_header_is_431_and_closed_while_others_are_served(bybit_mock: MockExchange) -> None:
    limit = bybit_mock.config.max_header_bytes
    attacker = RawHttp(bybit_mock)
    bystander = RawHttp(bybit_mock)
    try:
        attacker.send(b"GET /v5/market/time HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        chunk = b"a" * (64 << 10)
        for _ in range((1 << 20) // len(chunk)):  # a 1 MiB header, a slice at a time
            try:
                attacker.send(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break  # refused while we were still sending: the point
            bystander.send(get_request("/v5/market/time"))
            status, _, body = bystander.read_response()
            assert status == 200 and envelope(body)["retCode"] == 0
        attacker.expect_refusal(431, str(limit))
    finally:
        attacker.close()
        bystander.close()
    assert_market_time_answers(bybit_mock)


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /v5/market/time HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        b'POST /v5/order/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"cat',
    ],
    ids=["head", "body"],
)
def test_stalled_request_is_408_and_closed(impatient_mock: MockExchange, partial: bytes) -> None:
    conn = RawHttp(impatient_mock)
    try:
        started = time.monotonic()
        conn.send(partial)
        conn.expect_refusal(408, "request_timeout")  # the socket's own timeout (5 s) bounds the wait
        assert time.monotonic() - started >= REQUEST_TIMEOUT * 0.9
    finally:
        conn.close()
    assert_market_time_answers(impatient_mock)


def test_idle_keep_alive_outlives_the_request_timeout(impatient_mock: MockExchange) -> None:
    conn = RawHttp(impatient_mock)
    try:
        conn.send(get_request("/v5/market/time"))
        assert conn.read_response()[0] == 200
        time.sleep(REQUEST_TIMEOUT * 3)  # idle between requests: not a slow request
        conn.send(get_request("/v5/market/time"))
        status, headers, _ = conn.read_response()
        assert status == 200 and "connection" not in headers
    finally:
        conn.close()


def test_deeply_nested_order_never_reaches_the_state_service(bybit_mock: MockExchange) -> None:
    key = bybit_mock.api_key
    balances = bybit_mock.state.balances(key)
    nested = "[" * 1000 + '"0.001"' + "]" * 1000
    body = '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","price":"10000","qty":%s}'
    attacker = RawHttp(bybit_mock)
    honest = RawHttp(bybit_mock)
    try:
        for _ in range(10):
            # twenty pipelined at a time, so they would share state-service batches with the
            # honest client's request if they got that far
            attacker.send(b"".join(signed_post(bybit_mock, "/v5/order/create", body % nested) for _ in range(20)))
            honest.send(signed_get(bybit_mock, "/v5/account/wallet-balance", "accountType=UNIFIED"))
            status, _, answer = honest.read_response()
            assert status == 200 and envelope(answer)["retCode"] == 0
            for _ in range(20):
                status, _, answer = attacker.read_response()
                data = envelope(answer)
                assert status == 200 and data["retCode"] == 10001, data
                assert "nested too deep" in data["retMsg"]
        assert bybit_mock.state.open_orders(key) == []
        assert bybit_mock.state.executions(key) == []
        assert bybit_mock.state.balances(key) == balances
        # the same request with a plain qty still goes through, on the same connection
        attacker.send(signed_post(bybit_mock, "/v5/order/create", body % '"0.001"'))
        status, _, answer = attacker.read_response()
        assert status == 200 and envelope(answer)["retCode"] == 0
        assert len(bybit_mock.state.open_orders(key)) == 1
    finally:
        attacker.close()
        honest.close()


def test_websocket_upgrade_on_the_rest_port_gets_exactly_one_response(bybit_mock: MockExchange) -> None:
    conn = RawHttp(bybit_mock)
    try:
        upgrade = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        }
        conn.send(get_request("/v5/market/time", upgrade) + get_request("/v5/market/time"))
        status, headers, body = conn.read_response()
        assert status == 200 and headers["connection"] == "close"
        assert envelope(body)["retCode"] == 0
        assert conn.buf == b""
        assert conn.is_closed()  # closed, and not a byte more: no second response
    finally:
        conn.close()
    assert_market_time_answers(bybit_mock)
