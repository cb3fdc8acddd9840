"""A short soak end to end: the mock with a fault schedule, ``bybit-mock load`` against it, and
the report (series of every process, scheduled faults counted apart from other errors, a PNG)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

SCHEDULE = """
[server]
rate_limits = "off"

[[accounts]]
api_key = "soak"
api_secret = "soak-secret"
balances = { USDT = 1000000 }

[[scenarios]]
name = "drop-private"
trigger = { type = "timer", after_ms = 500, every_ms = 700 }
action = { type = "ws_reset", channel = "private" }
times = "unlimited"

[[scenarios]]
name = "create-10016"
trigger = { type = "order_create" }
action = { type = "fail", ret_code = 10016, ret_msg = "scheduled" }
probability = 0.2
times = "unlimited"
"""


def test_a_short_soak_reports_every_process_and_counts_scheduled_faults_apart(tmp_path: Path) -> None:
    config = tmp_path / "soak.toml"
    config.write_text(SCHEDULE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bybit_mock.cli", "soak", "--config", str(config), "--duration", "4",
               "--interval", "0.5", "--warmup", "1", "--out", str(out),
               "--", "--connections", "4", "--mix", "wallet=3,create_cancel=1", "--ws-private", "2"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    report = json.loads((out / "soak.json").read_text())
    assert len(report["series"]) >= 6
    assert {"supervisor", "state", "rest-0", "ws-0"} <= set(report["processes"])
    for name, figures in report["processes"].items():
        assert figures["rss_mb_max"] > 5 and figures["fds_max"] > 3, (name, figures)
        assert figures["rss_growth"] is not None, name
    assert report["lag"]["rest"]["max"] < 5  # the REST loop answered every probe
    firings = report["errors"]["scheduled_firings"]
    assert firings["drop-private"] >= 3 and firings["create-10016"] >= 1, firings
    assert report["errors"]["explained"].get("10016", 0) >= 1, report["errors"]
    assert report["errors"]["unexplained"] == {} == summary["unexplained_errors"]
    assert report["load"]["totals"]["ret_codes"]["0"] > 100, report["load"]["totals"]
    assert report["load_exit_code"] == 0 and report["restarts"] == []
    assert (out / "soak.png").read_bytes()[:4] == b"\x89PNG"
