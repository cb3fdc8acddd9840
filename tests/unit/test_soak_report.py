"""The soak's sampler, figures and plot, without a soak: what each computes from known inputs."""

from __future__ import annotations

import os
from pathlib import Path

from bybit_mock.soak.plot import plot
from bybit_mock.soak.report import growth, lag_figures, process_figures, split_errors
from bybit_mock.soak.runner import load_errors
from bybit_mock.soak.sampler import sample_process


def test_sample_process_reads_proc_and_tolerates_a_gone_pid(tmp_path: Path) -> None:
    me = sample_process(os.getpid())
    assert me.rss_bytes is not None and me.rss_bytes > 10 * 2**20
    assert me.fds is not None and me.fds >= 3
    gone = sample_process(2**31 - 1)
    assert (gone.rss_bytes, gone.fds) == (None, None)
    fake = tmp_path / "42"
    (fake / "fd").mkdir(parents=True)
    (fake / "status").write_text("Name:\tx\nVmRSS:\t    2048 kB\n")
    for n in range(5):
        (fake / "fd" / str(n)).touch()
    assert sample_process(42, proc=tmp_path).rss_bytes == 2048 * 1024
    assert sample_process(42, proc=tmp_path).fds == 5


def series(rss_mb: list[float], fds: list[int], lag_ms: list[float]) -> list[dict[str, object]]:
    return [
        {"t": float(t), "processes": {"state": {"rss_bytes": int(m * 2**20), "fds": f}}, "lag_s": {"rest": lag / 1000}}
        for t, (m, f, lag) in enumerate(zip(rss_mb, fds, lag_ms, strict=True))
    ]


def test_growth_is_measured_after_warm_up_against_the_tail() -> None:
    points = [(0.0, 50.0), (1.0, 100.0), (2.0, 101.0), (3.0, 102.0), (4.0, 104.0)]
    figures = growth(points, warmup_s=1.0)
    assert figures == {"at_warmup": 100.0, "end": 104.0, "growth_pct": 4.0}
    assert growth(points, warmup_s=10.0) is None  # nothing after the warm-up


def test_process_and_lag_figures() -> None:
    run = series([40, 100, 100, 103, 103], [10, 20, 20, 20, 21], [1, 2, 3, 4, 50])
    (state,) = process_figures(run, warmup_s=1.0).values()
    assert round(state["rss_mb_max"]) == 103 and round(state["rss_growth"]["growth_pct"]) == 3
    assert state["fds_max"] == 21 and state["fds_growth"]["growth_pct"] == 5.0
    lag = lag_figures(run)["rest"]
    assert lag["p50"] == 0.003 and lag["max"] == 0.05


def test_errors_the_schedule_explains_are_counted_apart() -> None:
    journal = [
        {"scenario": "create-10016", "action": {"type": "fail", "ret_code": 10016, "http_status": 200}},
        {"scenario": "create-10016", "action": {"type": "fail", "ret_code": 10016, "http_status": 200}},
        {"scenario": "drop-private", "action": {"type": "ws_reset", "channel": "private"}},
    ]
    errors = load_errors(
        {"errors": {"ret_code": {"10016": 7, "110007": 1}, "transport": {"reset": 2}, "http": {"503": 1}}}
    )
    assert errors == {"10016": 7, "110007": 1, "reset": 2, "http 503": 1}
    split = split_errors(errors, journal)
    assert split["scheduled_firings"] == {"create-10016": 2, "drop-private": 1}
    assert split["explained"] == {"10016": 7, "reset": 2}
    assert split["unexplained"] == {"110007": 1, "http 503": 1}
    assert split_errors({"reset": 1}, [])["unexplained"] == {"reset": 1}  # nothing scheduled: a real error


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "soak.png"
    plot(series([40, 100, 101], [10, 11, 11], [1, 2, 1]), path, "test", warmup_s=1.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
