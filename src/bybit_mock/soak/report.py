"""A soak's series and what they say: memory growth after warm-up, descriptors, lag, errors.

A series is a list of samples, each ``{"t": seconds since start, "processes": {name: {"rss_bytes",
"fds"}}, "lag_s": {probe: seconds}}``. Growth is measured from the first sample at or after the
warm-up to the mean of the last tenth of the run (one late sample is noise, a trend is not).
Errors are split in two: those the fault schedule explains (a retCode a scheduled ``fail`` or
``rate_limit`` answers with, an HTTP status of a scheduled ``http_error``, transport errors when
resets, hangs or WebSocket drops were scheduled) and the rest, which a clean soak has none of.
"""

from __future__ import annotations

import statistics
from typing import Any

Sample = dict[str, Any]

#: scheduled actions whose effect a client sees as a transport error (a reset, a timeout, a drop)
_TRANSPORT_FAULTS = frozenset({"reset", "hang", "ghost", "ws_close", "ws_reset", "ws_stall", "ws_refuse", "ip_ban"})


def growth(values: list[tuple[float, float]], warmup_s: float) -> dict[str, float] | None:
    """``{"at_warmup", "end", "growth_pct"}`` of a ``(t, value)`` series, or None if too short."""
    after = [(t, v) for t, v in values if t >= warmup_s]
    if len(after) < 2:
        return None
    start = after[0][1]
    tail = after[-max(1, len(after) // 10) :]
    end = statistics.fmean(v for _, v in tail)
    return {"at_warmup": start, "end": end, "growth_pct": (end - start) / start * 100 if start else 0.0}


def process_figures(series: list[Sample], warmup_s: float) -> dict[str, Any]:
    """Per process: RSS and descriptor figures over the run."""
    names = sorted({name for s in series for name in s["processes"]})
    out: dict[str, Any] = {}
    for name in names:
        rss = [(s["t"], float(p["rss_bytes"])) for s in series if (p := s["processes"].get(name)) and p["rss_bytes"]]
        fds = [(s["t"], float(p["fds"])) for s in series if (p := s["processes"].get(name)) and p["fds"] is not None]
        out[name] = {
            "rss_mb_max": max((v for _, v in rss), default=0.0) / 2**20,
            "rss_growth": _in_mb(growth(rss, warmup_s)),
            "fds_max": int(max((v for _, v in fds), default=0)),
            "fds_growth": growth(fds, warmup_s),
        }
    return out


def _in_mb(figures: dict[str, float] | None) -> dict[str, float] | None:
    if figures is None:
        return None
    return {**figures, "at_warmup": figures["at_warmup"] / 2**20, "end": figures["end"] / 2**20}


def lag_figures(series: list[Sample]) -> dict[str, dict[str, float]]:
    """Per probe: median, p99 and max of the sampled lag (seconds)."""
    probes = sorted({name for s in series for name in s.get("lag_s", {})})
    out = {}
    for probe in probes:
        values = sorted(s["lag_s"][probe] for s in series if probe in s.get("lag_s", {}))
        out[probe] = {
            "p50": values[len(values) // 2],
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
            "max": values[-1],
        }
    return out


def explained_errors(journal: list[dict[str, Any]]) -> tuple[set[str], bool, dict[str, int]]:
    """From the journal: the retCodes/statuses scheduled faults answer with, whether transport
    errors were scheduled, and the number of firings per scenario."""
    codes: set[str] = set()
    transport = False
    firings: dict[str, int] = {}
    for entry in journal:
        firings[entry["scenario"]] = firings.get(entry["scenario"], 0) + 1
        action = entry["action"]
        kind = action["type"]
        if kind == "fail":
            codes.add(str(action["ret_code"]))
            if action.get("http_status", 200) != 200:
                codes.add(f"http {action['http_status']}")
        elif kind == "rate_limit":
            codes.add("10006")
        elif kind == "http_error":
            codes.add(f"http {action['status']}")
        if kind in _TRANSPORT_FAULTS:
            transport = True
    return codes, transport, firings


def split_errors(errors: dict[str, int], journal: list[dict[str, Any]]) -> dict[str, Any]:
    """``errors`` (retCode, ``"http NNN"`` or a transport error's name -> count) split into
    what the schedule explains and the rest."""
    codes, transport, firings = explained_errors(journal)
    explained: dict[str, int] = {}
    unexplained: dict[str, int] = {}
    for key, count in errors.items():
        is_code = key.isdigit() or key.startswith("http ")
        fits = key in codes if is_code else transport
        (explained if fits else unexplained)[key] = count
    return {"scheduled_firings": firings, "explained": explained, "unexplained": unexplained}
