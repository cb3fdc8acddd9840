"""The plugin under pytest-xdist: each worker starts its own mock, and they never collide.

A nested ``pytest -n 2`` runs four tests that trade and change balances through
``bybit_mock``; each records its xdist worker, its mock's state-service pid and ports. Every
test also checks that it starts from the configured balance with no open orders, so one
that ran after another on the same worker shows that the reset between them worked.
"""

from __future__ import annotations

import json
from pathlib import Path

from .test_plugin_fixtures import run_pytest
from .test_supervisor import wait_gone

INNER = """
    import json, os, pathlib
    from decimal import Decimal

    import pytest
    from pybit.unified_trading import HTTP

    OUT = pathlib.Path(os.environ["BYBIT_MOCK_TEST_OUT"])


    @pytest.fixture
    def ex(request, bybit_mock):
        state = bybit_mock.state
        assert state.balance(bybit_mock.api_key, "USDT") == Decimal(100000)  # reset since the last test
        assert state.open_orders(bybit_mock.api_key) == []
        state.freeze_market()
        state.set_mark_price("BTCUSDT", 65000)
        yield bybit_mock
        record = {
            "worker": os.environ["PYTEST_XDIST_WORKER"],
            "state": bybit_mock.pids()["state"],
            "pids": sorted(bybit_mock.pids().values()),
            "rest_port": bybit_mock.rest_port,
            "ws_port": bybit_mock.ws_port,
        }
        (OUT / f"{request.node.name}.json").write_text(json.dumps(record))


    def http(ex):
        session = HTTP(api_key=ex.api_key, api_secret=ex.api_secret, retry_codes={0})
        session.endpoint = ex.rest_url
        return session


    def usdt(ex):
        reply = http(ex).get_wallet_balance(accountType="UNIFIED", coin="USDT")
        assert reply["retCode"] == 0
        return Decimal(reply["result"]["list"][0]["coin"][0]["walletBalance"])


    @pytest.mark.parametrize("n", range(2))
    def test_resting_order(ex, n):
        reply = http(ex).place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01", price=str(60000 + n)
        )
        assert reply["retCode"] == 0
        assert [o.order_id for o in ex.state.open_orders(ex.api_key)] == [reply["result"]["orderId"]]


    @pytest.mark.parametrize("n", range(2))
    def test_balance(ex, n):
        assert usdt(ex) == 100000
        ex.state.set_balance(ex.api_key, "USDT", 5 + n)
        assert usdt(ex) == 5 + n
"""


def test_each_xdist_worker_gets_its_own_mock(tmp_path: Path) -> None:
    done, out = run_pytest(tmp_path, INNER, "-n", "2", timeout=90)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "4 passed" in report, report
    records = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert len(records) == 4, report
    by_worker: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_worker.setdefault(str(record["worker"]), []).append(record)
    assert sorted(by_worker) == ["gw0", "gw1"], records
    mocks = {}
    for worker, ran in by_worker.items():
        # one mock per worker: every test on it saw the same processes and ports
        assert len({json.dumps({k: v for k, v in r.items() if k != "worker"}) for r in ran}) == 1, ran
        mocks[worker] = ran[0]
    gw0, gw1 = mocks["gw0"], mocks["gw1"]
    assert gw0["state"] != gw1["state"]
    assert set(gw0["pids"]).isdisjoint(gw1["pids"])
    assert len({gw0["rest_port"], gw0["ws_port"], gw1["rest_port"], gw1["ws_port"]}) == 4
    assert wait_gone([*gw0["pids"], *gw1["pids"]]) == []  # each worker closed its mock on the way out
