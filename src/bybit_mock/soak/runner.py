"""``bybit-mock soak``: the mock with its fault schedule, a load against it, and what both did.

1. start the mock from the config (its ``[[scenarios]]`` and schedule are armed at start);
2. run ``bybit-mock load`` against it for the duration, in its own processes (the load must
   not share a CPU-bound interpreter with the sampling);
3. every ``interval`` seconds, sample each process's RSS and open descriptors and probe the REST
   loop's lag (``sampler.py``);
4. at the end, read the journal (the scheduled faults that fired) and the load's result file,
   and write ``soak.json`` (the series and the figures) and ``soak.png`` (the series, plotted).

The soak itself only watches: it never changes the mock, so what the report shows is what the
schedule and the load did.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..config import MockExchangeConfig
from ..mock import MockExchange
from .report import lag_figures, process_figures, split_errors
from .sampler import HttpProbe, sample_process

log = logging.getLogger(__name__)

#: longest soak a run may ask for (every run is bounded)
MAX_DURATION_S = 24 * 3600.0
#: seconds the load may overrun its duration before it is stopped
LOAD_GRACE_S = 30.0


def run_soak(
    config: MockExchangeConfig,
    duration_s: float,
    out_dir: Path,
    load_args: list[str],
    interval_s: float = 5.0,
    warmup_s: float | None = None,
) -> dict[str, Any]:
    """Run a soak; return the report (also written to ``out_dir/soak.json``, with ``soak.png``)."""
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration must be in (0, {MAX_DURATION_S:.0f}] seconds")
    if not config.accounts:
        raise ValueError("a soak needs an account for its load (the config has none)")
    warmup = duration_s / 5 if warmup_s is None else warmup_s
    out_dir.mkdir(parents=True, exist_ok=True)
    load_out = out_dir / "load.json"
    series: list[dict[str, Any]] = []
    with MockExchange(config) as ex:
        account = config.accounts[0]
        command = [
            sys.executable, "-m", "bybit_mock.load",
            "--rest-url", ex.rest_url, "--ws-url", ex.ws_url,
            "--key", account.api_key, "--secret", account.api_secret,
            "--duration", f"{duration_s:g}", "--out", str(load_out), "--quiet",
            *load_args,
        ]  # fmt: skip
        probe = HttpProbe("127.0.0.1", ex.rest_port)
        start = time.monotonic()
        load = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            while (elapsed := time.monotonic() - start) < duration_s + LOAD_GRACE_S:
                series.append(_sample(ex, elapsed, probe))
                if load.poll() is not None and elapsed >= duration_s:
                    break
                time.sleep(max(0.0, interval_s - (time.monotonic() - start - elapsed)))
        finally:
            if load.poll() is None:
                load.terminate()
            load.wait(10)
            probe.close()
        journal = ex.scenarios.journal()
        restarts = [r.name for r in ex.restarts]
    load_result = json.loads(load_out.read_text()) if load_out.exists() else {}
    report = {
        "duration_s": duration_s,
        "warmup_s": warmup,
        "interval_s": interval_s,
        "load_exit_code": load.returncode,
        "restarts": restarts,
        "processes": process_figures(series, warmup),
        "lag": lag_figures(series),
        "errors": split_errors(load_errors(load_result), journal),
        "load": load_result,
        "series": series,
    }
    (out_dir / "soak.json").write_text(json.dumps(report, indent=1))
    from .plot import plot  # noqa: PLC0415  # matplotlib only when a soak runs

    plot(series, out_dir / "soak.png", f"bybit-mock soak, {duration_s:g} s", warmup)
    return report


def _sample(ex: MockExchange, t: float, probe: HttpProbe) -> dict[str, Any]:
    pids = {"supervisor": os.getpid(), **ex.pids()}
    processes = {}
    for name, pid in pids.items():
        s = sample_process(pid)
        processes[name] = {"pid": pid, "rss_bytes": s.rss_bytes, "fds": s.fds}
    return {"t": round(t, 3), "processes": processes, "lag_s": {"rest": probe.round_trip()}}


def load_errors(result: dict[str, Any]) -> dict[str, int]:
    """The load result's errors as ``key -> count``: retCodes as they are, HTTP statuses as
    ``"http NNN"``, transport errors by name (whatever nesting the result file uses)."""
    errors = result.get("errors", {})
    out: dict[str, int] = {}
    if not isinstance(errors, dict):
        return out
    for group, counts in errors.items():
        if isinstance(counts, dict):
            for key, count in counts.items():
                name = f"http {key}" if group in ("http", "http_status") else str(key)
                out[name] = out.get(name, 0) + int(count)
        elif isinstance(counts, int):
            out[str(group)] = out.get(str(group), 0) + counts
    return out
