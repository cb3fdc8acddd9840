"""The soak's PNG: memory, descriptors and loop lag over time, one line per process or probe.

matplotlib is imported here only (with the Agg backend: no display), so a soak is the only
thing that needs it (``pip install bybit-mock[load]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(series: list[dict[str, Any]], path: Path, title: str, warmup_s: float) -> None:
    import matplotlib  # noqa: PLC0415  # only a soak needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (rss_ax, fd_ax, lag_ax) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    names = sorted({name for s in series for name in s["processes"]})
    for name in names:
        points = [(s["t"], s["processes"][name]) for s in series if name in s["processes"]]
        rss = [(t, p["rss_bytes"] / 2**20) for t, p in points if p["rss_bytes"]]
        fds = [(t, p["fds"]) for t, p in points if p["fds"] is not None]
        if rss:
            rss_ax.plot(*zip(*rss, strict=True), label=name)
        if fds:
            fd_ax.plot(*zip(*fds, strict=True), label=name)
    for probe in sorted({p for s in series for p in s.get("lag_s", {})}):
        lag = [(s["t"], s["lag_s"][probe] * 1000) for s in series if probe in s.get("lag_s", {})]
        lag_ax.plot(*zip(*lag, strict=True), label=probe)
    for ax, label in ((rss_ax, "RSS (MB)"), (fd_ax, "open descriptors"), (lag_ax, "loop lag (ms)")):
        ax.set_ylabel(label)
        ax.axvline(warmup_s, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small")
    lag_ax.set_xlabel("seconds since start (dotted: end of warm-up)")
    rss_ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
