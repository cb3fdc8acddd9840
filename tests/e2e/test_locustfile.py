"""``examples/locustfile.py`` under Locust itself, headless, against a mock with no rate limits:
in one process, then spread over worker processes (Locust's distributed mode).

Locust is only ever run in a subprocess: importing it monkey-patches the standard library for
gevent, which this test process must not have."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from bybit_mock import MockExchangeConfig
from bybit_mock.bybit.auth import rest_headers
from bybit_mock.config import AccountConfig
from bybit_mock.pytest_plugin import MockExchangeFactory

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "examples" / "locustfile.py"
ROUTES = {
    ("GET", "/v5/market/tickers"),
    ("GET", "/v5/account/wallet-balance"),
    ("GET", "/v5/order/realtime"),
    ("POST", "/v5/order/create"),
    ("POST", "/v5/order/cancel"),
}
USERS = 4
ACCOUNTS = [AccountConfig(f"load-{n}", f"secret-{n}", {"USDT": 100_000}) for n in range(3)]


Rows = dict[tuple[str, str], dict[str, str]]


def run_locust(rest_url: str, tmp_path: Path, *options: str, seconds: int = 3) -> tuple[Rows, str]:
    """Run Locust on the example for ``seconds``; return its stats CSV's rows by (method, route),
    and its log."""
    env = os.environ | {
        "BYBIT_MOCK_KEY": ",".join(a.api_key for a in ACCOUNTS),
        "BYBIT_MOCK_SECRET": ",".join(a.api_secret for a in ACCOUNTS),
    }
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(USERS), "-r", str(USERS),
               "-t", f"{seconds}s", "--host", rest_url, "--csv", str(tmp_path / "run"), "--only-summary",
               "--stop-timeout", "10", *options]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr  # Locust exits 1 when any request failed
    with open(tmp_path / "run_stats.csv", newline="") as stats:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}, done.stderr


def signed_get(rest_url: str, account: AccountConfig, path: str, query: str) -> list[dict[str, Any]]:
    headers = rest_headers(account.api_key, account.api_secret, query, int(time.time() * 1000))
    with urllib.request.urlopen(urllib.request.Request(f"{rest_url}{path}?{query}", headers=headers), timeout=5) as r:
        answer = orjson.loads(r.read())
    assert answer["retCode"] == 0, answer
    return list(answer["result"]["list"])


def assert_clean_run(rows: Rows) -> None:
    assert set(rows) == ROUTES | {("", "Aggregated")}, sorted(rows)  # named by route, nothing else
    for route, row in rows.items():
        assert int(row["Request Count"]) > 0 and int(row["Failure Count"]) == 0, (route, row)
    # Every order placed is cancelled in the same task (--stop-timeout lets a user finish it), but
    # the CSV may be written before the last cancels are counted: one per user at most.
    creates = int(rows["POST", "/v5/order/create"]["Request Count"])
    assert 0 <= creates - int(rows["POST", "/v5/order/cancel"]["Request Count"]) <= USERS


@pytest.fixture
def config() -> MockExchangeConfig:
    return MockExchangeConfig(accounts=ACCOUNTS, rate_limits="off")


def test_locustfile_loads_the_mock_with_signed_requests(
    bybit_mock_factory: MockExchangeFactory, config: MockExchangeConfig, tmp_path: Path
) -> None:
    ex = bybit_mock_factory(config)
    rows, _ = run_locust(ex.rest_url, tmp_path)
    assert_clean_run(rows)
    for account in ACCOUNTS:  # 4 users on 3 keys in turn: every account traded, and cancelled all it placed
        history = signed_get(ex.rest_url, account, "/v5/order/history", "category=linear&symbol=BTCUSDT&limit=50")
        assert history and {o["orderStatus"] for o in history} == {"Cancelled"}, account.api_key
        assert ex.state.open_orders(account.api_key) == [] and ex.state.executions(account.api_key) == []
        assert ex.state.balance(account.api_key, "USDT") == 100_000


def test_locustfile_runs_distributed_over_worker_processes(
    bybit_mock_factory: MockExchangeFactory, config: MockExchangeConfig, tmp_path: Path
) -> None:
    ex = bybit_mock_factory(config)
    rows, log = run_locust(ex.rest_url, tmp_path, "--processes", "2")  # a master and two forked workers
    assert "2 workers connected" in log and "to 2 ready workers" in log, log
    assert_clean_run(rows)  # the master's CSV adds up what the workers counted
