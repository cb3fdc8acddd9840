"""pybit's HTTP client, unmodified but for its endpoint, against the running mock."""

from __future__ import annotations

import time
from decimal import Decimal

import pybit._helpers
import pytest
from pybit.exceptions import InvalidRequestError

from bybit_mock import AccountConfig, MockExchange
from tests.fixtures import recorded_response

from .conftest import pybit_http


def test_server_time(bybit_mock: MockExchange) -> None:
    before = time.time()
    reply = pybit_http(bybit_mock).get_server_time()
    after = time.time()
    assert reply["retCode"] == 0 and reply["retMsg"] == "OK"
    assert before - 1 <= int(reply["result"]["timeSecond"]) <= after + 1
    assert int(reply["result"]["timeNano"]) // 1_000_000_000 == int(reply["result"]["timeSecond"])
    assert abs(reply["time"] - int(reply["result"]["timeNano"]) // 1_000_000) < 1000


def test_wallet_balance_and_state_changes(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    reply = session.get_wallet_balance(accountType="UNIFIED")
    (account,) = reply["result"]["list"]
    assert account["accountType"] == "UNIFIED"
    assert account["totalWalletBalance"] == "100000"
    assert set(recorded_response("fetchBalance")["result"]["list"][0]) <= set(account)
    # change the state behind the client's back; the next call sees it
    bybit_mock.state.set_balance(bybit_mock.api_key, "USDT", "1234.5")
    bybit_mock.state.set_balance(bybit_mock.api_key, "BTC", "0.5")
    bybit_mock.state.freeze_market()
    bybit_mock.state.set_mark_price("BTCUSDT", 65000, category="spot")
    coins = {c["coin"]: c for c in session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["coin"]}
    assert coins["USDT"]["walletBalance"] == "1234.5"
    assert coins["BTC"]["walletBalance"] == "0.5"
    assert coins["BTC"]["usdValue"] == "32500"  # 0.5 BTC at the price just set
    assert bybit_mock.state.balances(bybit_mock.api_key) == {"USDT": Decimal("1234.5"), "BTC": Decimal("0.5")}


def test_reset_between_tests(bybit_mock: MockExchange) -> None:
    # the previous test changed balances; the function fixture reset them
    assert bybit_mock.state.balance(bybit_mock.api_key, "USDT") == Decimal("100000")
    assert bybit_mock.state.balance(bybit_mock.api_key, "BTC") == 0


def test_positions(bybit_mock: MockExchange) -> None:
    session = pybit_http(bybit_mock)
    assert session.get_positions(category="linear", settleCoin="USDT")["result"]["list"] == []
    bybit_mock.state.set_position(bybit_mock.api_key, "BTCUSDT", "Buy", "0.2", "60000", leverage=10)
    bybit_mock.state.freeze_market("BTCUSDT")  # a trade after the jump would move the mark price
    bybit_mock.state.set_mark_price("BTCUSDT", "61000")
    (pos,) = session.get_positions(category="linear", settleCoin="USDT")["result"]["list"]
    assert (pos["symbol"], pos["side"], pos["size"], pos["avgPrice"]) == ("BTCUSDT", "Buy", "0.2", "60000")
    assert pos["markPrice"] == "61000.00" and pos["unrealisedPnl"] == "200"
    assert pos["positionIM"] == "1200" and pos["leverage"] == "10"
    assert set(recorded_response("fetchPositions")["result"]["list"][0]) - {"nextPageCursor"} <= set(pos)
    view = bybit_mock.state.position(bybit_mock.api_key, "BTCUSDT")
    assert view is not None and view.unrealised_pnl == Decimal("200")


def test_param_error_is_invalid_request(bybit_mock: MockExchange) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        pybit_http(bybit_mock).get_positions(category="linear")
    assert exc.value.status_code == 10001


def test_unknown_key_10003(bybit_mock: MockExchange) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        pybit_http(bybit_mock, api_key="nobody", api_secret="x").get_wallet_balance(accountType="UNIFIED")
    assert exc.value.status_code == 10003
    assert "API key is invalid." in exc.value.message


def test_bad_signature_10004(bybit_mock: MockExchange) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        pybit_http(bybit_mock, api_secret="wrong-secret").get_wallet_balance(accountType="UNIFIED")
    assert exc.value.status_code == 10004
    assert exc.value.message.startswith("error sign! origin_string[")
    assert "accountType=UNIFIED" in exc.value.message


def test_stale_timestamp_10002(bybit_mock: MockExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pybit._helpers.generate_timestamp
    monkeypatch.setattr(pybit._helpers, "generate_timestamp", lambda: real() - 60_000)
    with pytest.raises(InvalidRequestError) as exc:
        pybit_http(bybit_mock).get_wallet_balance(accountType="UNIFIED")
    assert exc.value.status_code == 10002
    assert "req_timestamp[" in exc.value.message and "recv_window[5000]" in exc.value.message


def test_account_added_at_run_time_authenticates(bybit_mock: MockExchange) -> None:
    bybit_mock.state.add_account(AccountConfig("late-key", "late-secret", {"USDC": 7}))
    session = pybit_http(bybit_mock, api_key="late-key", api_secret="late-secret")
    (coin,) = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["coin"]
    assert (coin["coin"], coin["walletBalance"]) == ("USDC", "7")
