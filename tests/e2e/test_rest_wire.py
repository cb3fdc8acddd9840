"""HTTP-level behaviour with exact bytes: 404, keep-alive, pipelining, limits, bad input."""

from __future__ import annotations

import orjson
import pytest

from bybit_mock import MockExchange

from .conftest import RawHttp, envelope, get_request, now_ms, signed_get


def test_unknown_path_is_bybit_shaped_404(raw: RawHttp) -> None:
    raw.send(get_request("/v5/no/such/thing"))
    status, headers, body = raw.read_response()
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    data = envelope(body)
    assert data["retCode"] == 10017 and data["result"] == {} and data["retExtInfo"] == {}
    assert "/v5/no/such/thing" in data["retMsg"]


def test_wrong_method_is_404(raw: RawHttp) -> None:
    raw.send(b"POST /v5/market/time HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    status, _, body = raw.read_response()
    assert status == 404 and envelope(body)["retCode"] == 10017


def test_keep_alive_serves_many_requests_on_one_connection(raw: RawHttp, bybit_mock: MockExchange) -> None:
    for _ in range(50):
        raw.send(signed_get(bybit_mock, "/v5/account/wallet-balance", "accountType=UNIFIED"))
        status, headers, body = raw.read_response()
        assert status == 200 and "connection" not in headers
        assert envelope(body)["retCode"] == 0


def test_pipelined_responses_keep_request_order(raw: RawHttp, bybit_mock: MockExchange) -> None:
    # state-backed requests (slow path) interleaved with local ones (fast path)
    batch = b"".join(
        signed_get(bybit_mock, "/v5/position/list", f"category=linear&symbol={sym}")
        + get_request(f"/v5/market/instruments-info?category=linear&symbol={sym}")
        for sym in ("BTCUSDT", "ETHUSDT") * 10
    )
    raw.send(batch)
    seen = []
    for _ in range(40):
        status, _, body = raw.read_response()
        assert status == 200
        result = envelope(body)["result"]
        seen.append(result["list"][0]["symbol"] + ("/pos" if "avgPrice" in result["list"][0] else "/inst"))
    assert seen == [f"{s}/{k}" for s in ("BTCUSDT", "ETHUSDT") * 10 for k in ("pos", "inst")]


def test_http10_closes_after_response(bybit_mock: MockExchange) -> None:
    conn = RawHttp(bybit_mock)
    try:
        conn.send(b"GET /v5/market/time HTTP/1.0\r\n\r\n")
        status, headers, _ = conn.read_response()
        assert status == 200 and headers.get("connection") == "close"
        assert conn.is_closed()
    finally:
        conn.close()


def test_oversized_body_is_refused_with_413(bybit_mock: MockExchange) -> None:
    conn = RawHttp(bybit_mock)
    try:
        size = bybit_mock.config.max_body_bytes + 1
        conn.send(f"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        conn.expect_refusal(413, "too large")
    finally:
        conn.close()


def test_oversized_chunked_body_is_refused(bybit_mock: MockExchange) -> None:
    conn = RawHttp(bybit_mock)
    try:
        conn.send(b"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(bybit_mock.config.max_body_bytes // len(chunk) + 2):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close while we are still sending
        status, _, body = conn.read_response()
        assert status == 413 and envelope(body)["retCode"] == 10001
    finally:
        conn.close()


@pytest.mark.parametrize(
    "garbage",
    [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n", b"\x00\x01\x02\r\n\r\n"],
)
def test_malformed_http_gets_400_and_worker_survives(bybit_mock: MockExchange, garbage: bytes) -> None:
    conn = RawHttp(bybit_mock)
    try:
        conn.send(garbage)
        status, _, body = conn.read_response()
        assert status == 400 and envelope(body)["retCode"] == 10001
    finally:
        conn.close()
    ok = RawHttp(bybit_mock)
    try:
        ok.send(get_request("/v5/market/time"))
        assert ok.read_response()[0] == 200
    finally:
        ok.close()


def test_missing_api_key_is_401(raw: RawHttp) -> None:
    raw.send(get_request("/v5/account/wallet-balance?accountType=UNIFIED"))
    status, _, body = raw.read_response()
    assert status == 401 and envelope(body)["retCode"] == 10003


def test_sign_type_header_is_ignored(raw: RawHttp, bybit_mock: MockExchange) -> None:
    req = signed_get(bybit_mock, "/v5/account/wallet-balance", "accountType=UNIFIED")
    raw.send(req.replace(b"\r\n\r\n", b"\r\nX-BAPI-SIGN-TYPE: 2\r\n\r\n"))
    assert envelope(raw.read_response()[2])["retCode"] == 0


def test_future_timestamp_edge(raw: RawHttp, bybit_mock: MockExchange) -> None:
    raw.send(signed_get(bybit_mock, "/v5/account/wallet-balance", "accountType=UNIFIED", ts=now_ms() + 5000))
    assert envelope(raw.read_response()[2])["retCode"] == 10002


def test_instruments_info_filters_and_prelaunch(raw: RawHttp) -> None:
    def get(q: str) -> dict:  # type: ignore[type-arg]
        raw.send(get_request(f"/v5/market/instruments-info?{q}"))
        return envelope(raw.read_response()[2])  # type: ignore[no-any-return]

    spot = get("category=spot")["result"]
    assert [i["symbol"] for i in spot["list"]] == ["BTCUSDT", "ETHUSDT"] and "nextPageCursor" not in spot
    linear = get("category=linear&limit=1")["result"]
    assert len(linear["list"]) == 1 and linear["nextPageCursor"]
    assert get("category=linear&status=PreLaunch")["result"]["list"] == []
    assert len(get("category=option&baseCoin=BTC")["result"]["list"]) == 12  # the default chain
    assert get("category=option&baseCoin=ETH")["result"]["list"] == []
    assert get("category=futures")["retCode"] == 10001
    assert get("")["retCode"] == 10001
    btc = get("category=linear&symbol=BTCUSDT")["result"]["list"][0]
    assert btc["priceFilter"]["tickSize"] == "0.10" and btc["lotSizeFilter"]["qtyStep"] == "0.001"
    assert orjson.dumps(btc)  # JSON-clean
