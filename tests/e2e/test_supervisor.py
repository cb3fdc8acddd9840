"""Process topology: readiness, N workers on one port, restart on death, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from bybit_mock import MockExchange, MockExchangeConfig, StartError

from .conftest import ROOT, serving_cli


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def market_time(url: str) -> int:
    with urllib.request.urlopen(f"{url}/v5/market/time", timeout=5) as resp:
        code: int = orjson.loads(resp.read())["retCode"]
        return code


def test_multiple_workers_share_ports_and_all_stop() -> None:
    cfg = MockExchangeConfig.default()
    cfg.rest_workers, cfg.ws_workers = 2, 2
    ex = MockExchange(cfg).start()
    try:
        pids = ex.pids()
        assert set(pids) == {"state", "rest-0", "rest-1", "ws-0", "ws-1"}
        assert len(set(pids.values())) == 5
        # many short connections land on both REST workers; all are answered
        for _ in range(40):
            assert market_time(ex.rest_url) == 0
    finally:
        ex.close()
    assert wait_gone(list(pids.values())) == []
    assert not ex.running


def test_killed_worker_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    with MockExchange() as ex:
        old = ex.pids()
        os.kill(old["rest-0"], signal.SIGKILL)
        deadline = time.time() + 15
        while time.time() < deadline and ex.pids().get("rest-0") == old["rest-0"]:
            time.sleep(0.05)
        new = ex.pids()
        assert new["rest-0"] != old["rest-0"] and alive(new["rest-0"])
        while time.time() < deadline and not ex.restarts:
            time.sleep(0.05)
        (restart,) = ex.restarts
        assert (restart.name, restart.old_pid, restart.exitcode) == ("rest-0", old["rest-0"], -signal.SIGKILL)
        assert market_time(ex.rest_url) == 0  # same port, served by the new worker
        assert new["state"] == old["state"] and new["ws-0"] == old["ws-0"]
        assert any("restarting" in r.getMessage() for r in caplog.records)
        # the state survived the worker's death
        ex.state.set_balance(ex.api_key, "USDT", 42)
        assert ex.state.balance(ex.api_key, "USDT") == 42
        os.kill(new["ws-0"], signal.SIGKILL)
        while time.time() < deadline and ex.pids().get("ws-0") == new["ws-0"]:
            time.sleep(0.05)
        assert ex.pids()["ws-0"] != new["ws-0"]
    assert wait_gone(list(new.values())) == []


async def test_async_start_and_close() -> None:
    async with MockExchange() as ex:
        pids = list(ex.pids().values())
        assert ex.rest_url.startswith("http://127.0.0.1:") and ex.ws_url.startswith("ws://127.0.0.1:")
        assert ex.ws_public_url("spot").endswith("/v5/public/spot")
    assert wait_gone(pids) == []


def test_busy_port_is_a_clear_start_error() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        cfg = MockExchangeConfig.default()
        cfg.rest_port = blocker.getsockname()[1]
        with pytest.raises(StartError, match="cannot bind"):
            MockExchange(cfg).start()
    finally:
        blocker.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serve_prints_ready_json_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    with serving_cli("--rest-workers", "1", "--ws-workers", "1") as (proc, ready):
        assert ready["event"] == "ready"
        assert ready["api_key"] == "bybit-mock-demo-key" and ready["api_secret"]
        assert market_time(ready["rest_url"]) == 0
        assert ready["ws_url"].startswith("ws://127.0.0.1:")
        children = list(ready["pids"].values())
        proc.send_signal(stop_signal)
        assert proc.wait(15) == 0
        assert proc.stderr is not None and proc.stdout is not None
        assert "bybit-mock" in proc.stderr.read() and proc.stdout.read() == ""  # one JSON line only
        assert wait_gone(children) == []


def test_cli_fixed_ports_and_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "mock.toml"
    cfg.write_text('[[accounts]]\napi_key = "k"\napi_secret = "s"\nbalances = { USDT = 5 }\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with serving_cli("--config", str(cfg), "--rest-port", str(port)) as (proc, ready):
        assert ready["rest_url"] == f"http://127.0.0.1:{port}" and ready["api_key"] == "k"
        proc.terminate()
        assert proc.wait(15) == 0


@pytest.mark.parametrize(
    ("args", "text"),
    [(["--config", "/nonexistent.toml"], "config file not found"), (["--rest-workers", "0"], "rest_workers")],
)
def test_cli_bad_config_exits_2_with_one_line(args: list[str], text: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bybit_mock.cli", "serve", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and lines[0].startswith("bybit-mock: config error:")
    assert proc.stdout == ""


def test_cli_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bybit_mock.cli", "serve", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0
    for flag in ("--config", "--host", "--rest-port", "--ws-port", "--rest-workers", "--ws-workers"):
        assert flag in proc.stdout


UNGUARDED = """
import urllib.request
from bybit_mock import MockExchange
with MockExchange() as ex:
    print(urllib.request.urlopen(ex.rest_url + "/v5/market/time").status)
"""


@pytest.mark.parametrize("via", ["script", "stdin"])
def test_script_without_main_guard_works(tmp_path: Path, via: str) -> None:
    # spawn would normally re-run the caller's main module in every child
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    cmd = [sys.executable, str(script)] if via == "script" else [sys.executable, "-"]
    proc = subprocess.run(
        cmd,
        input=None if via == "script" else UNGUARDED,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "200"
