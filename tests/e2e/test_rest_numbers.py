"""Numbers as Bybit reads them, end to end: what Python's grammar would take is a 10001 (or,
in the auth headers, a 10002), and nothing reaches the book."""

from __future__ import annotations

import pytest
from pybit.exceptions import InvalidRequestError

from bybit_mock import MockExchange
from bybit_mock.bybit import auth

from .conftest import RawHttp, envelope, get_request, now_ms, pybit_http

NOT_BYBIT_NUMBERS = ["1e30", "0_0.001", " 0.001 ", "+0.001", "1e-3"]


def test_a_qty_bybit_would_not_read_is_10001_and_places_nothing(bybit_mock: MockExchange) -> None:
    http = pybit_http(bybit_mock)
    order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "price": "50000"}
    for qty in NOT_BYBIT_NUMBERS:
        with pytest.raises(InvalidRequestError) as exc:
            http.place_order(**order, qty=qty)
        assert (exc.value.status_code, exc.value.message) == (10001, "params error: qty invalid"), qty
    assert bybit_mock.state.open_orders(bybit_mock.api_key) == []
    assert http.get_order_history(category="linear")["result"]["list"] == []
    # The same order with a plain qty is placed: the refusals above were the qty's.
    assert http.place_order(**order, qty="0.001")["retCode"] == 0
    assert len(bybit_mock.state.open_orders(bybit_mock.api_key)) == 1


@pytest.mark.parametrize("form", ["+{}", "{}_0", "0{}"])
def test_a_timestamp_header_bybit_would_not_read_is_10002(raw: RawHttp, bybit_mock: MockExchange, form: str) -> None:
    """Signed exactly as sent; ``"0{}"`` (a leading zero, still plain digits) is the control."""
    ts = form.format(now_ms() // 10 if "_" in form else now_ms())  # "_0": int() reads the ms back
    query = "accountType=UNIFIED"
    headers = {
        "X-BAPI-API-KEY": bybit_mock.api_key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": auth.rest_signature(bybit_mock.api_secret, ts, bybit_mock.api_key, "5000", query),
    }
    raw.send(get_request(f"/v5/account/wallet-balance?{query}", headers))
    status, _, body = raw.read_response()
    assert status == 200
    assert envelope(body)["retCode"] == (0 if form == "0{}" else 10002)
