"""``bybit-mock load`` against a real mock: closed and open loops, REST mix and WebSocket
clients together, read back from the JSON result file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bybit_mock import MockExchange
from bybit_mock.load.command import main
from bybit_mock.pytest_plugin import MockExchangeFactory

pytestmark = pytest.mark.e2e

MIX = "wallet=3,realtime=2,create_cancel=2,amend=1"
REST_OPS = ("rest.wallet", "rest.realtime", "rest.create", "rest.cancel", "rest.amend")


@pytest.fixture
def unlimited(bybit_mock_factory: MockExchangeFactory) -> MockExchange:
    return bybit_mock_factory(rate_limits="off")


def _load(ex: MockExchange, out: Path, *loop: str) -> dict[str, Any]:
    argv = ["--rest-url", ex.rest_url, "--ws-url", ex.ws_url, "--key", ex.api_key, "--secret", ex.api_secret]
    argv += ["--duration", "2", "--processes", "2", "--mix", MIX, "--quiet", "--out", str(out), *loop]
    argv += ["--ws-public", "2", "--ws-private", "2", "--ws-trade-rate", "20"]
    assert main(argv) == 0
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


def _check(result: dict[str, Any]) -> None:
    ops = result["operations"]
    for name in (*REST_OPS, "ws_trade.create", "ws_trade.cancel", "ws_private.auth", "ws_public.subscribe"):
        op = ops[name]
        assert op["count"] > 0, name
        assert op["ret_codes"] == {"0": op["count"]}, name  # limits off, funded: every answer is OK
        lat = op["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], name
    assert result["totals"]["transport_errors"] == {}
    assert result["errors"] == {"ret_code": {}, "http": {}, "ws_refused": {}, "transport": {}}
    assert result["totals"]["ret_codes"] == {"0": result["totals"]["answered"]}
    # each order cycle cancels what it created: every create answered OK has its cancel
    assert ops["rest.cancel"]["count"] == ops["rest.create"]["count"]
    assert ops["ws_private.subscribe"]["count"] == 2 and ops["ws_public.subscribe"]["count"] == 2
    assert result["counters"]["ws_public.messages"] > 0
    assert result["counters"]["ws_private.messages"] > 0  # the orders' own pushes, authenticated


def test_closed_loop(unlimited: MockExchange, tmp_path: Path) -> None:
    result = _load(unlimited, tmp_path / "closed.json", "--connections", "8")
    assert result["run"]["mode"] == "closed" and result["run"]["connections"] == 8
    _check(result)
    assert unlimited.state.open_orders(unlimited.api_key) == []  # every order was cancelled


def test_open_loop(unlimited: MockExchange, tmp_path: Path) -> None:
    result = _load(unlimited, tmp_path / "open.json", "--rate", "200", "--open-connections", "8")
    assert result["run"]["mode"] == "open" and result["run"]["rate"] == 200
    _check(result)
    # 200 operations/s for 2 s were scheduled and every one ran (an order cycle is 2-3 requests)
    ops = result["operations"]
    operations = sum(ops[n]["count"] for n in ("rest.wallet", "rest.realtime", "rest.create"))
    assert operations == 400
    # /v5/trade: 20 cycles/s over 2 s, all answered
    assert ops["ws_trade.create"]["count"] == 40


def test_cli_serve_runs_by_itself(tmp_path: Path) -> None:
    out = tmp_path / "served.json"
    argv = ["-m", "bybit_mock.cli", "load", "--serve", "--duration", "2", "--connections", "4", "--processes", "1"]
    argv += ["--out", str(out)]
    done = subprocess.run([sys.executable, *argv], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = orjson.loads(out.read_bytes())
    assert result == orjson.loads(done.stdout)  # the same document on stdout
    assert result["run"]["mode"] == "closed" and result["totals"]["answered"] > 0
    assert result["operations"]["rest.wallet"]["ret_codes"] == {"0": result["operations"]["rest.wallet"]["count"]}


def test_rate_limited_answers_are_counted_by_ret_code(bybit_mock: MockExchange, tmp_path: Path) -> None:
    """Bybit's limits on (the session mock): 50 wallet-balance calls/s per UID, far fewer than
    the generator sends, so 10006 answers show up, counted apart from the successes."""
    out = tmp_path / "limited.json"
    argv = ["--rest-url", bybit_mock.rest_url, "--ws-url", bybit_mock.ws_url, "--key", bybit_mock.api_key]
    argv += ["--secret", bybit_mock.api_secret, "--duration", "1", "--processes", "1", "--connections", "4"]
    assert main([*argv, "--mix", "wallet=1", "--quiet", "--out", str(out)]) == 0
    result = orjson.loads(out.read_bytes())
    wallet = result["operations"]["rest.wallet"]
    assert set(wallet["ret_codes"]) == {"0", "10006"}
    assert result["errors"]["ret_code"] == {"10006": wallet["ret_codes"]["10006"]}
    assert 0 < wallet["ok"] <= 100  # a 1 s window's worth, with some slack for the boundary
    assert wallet["ret_codes"]["10006"] == wallet["count"] - wallet["ok"]
