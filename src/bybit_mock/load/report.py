"""What a load run measured: HDR histograms per operation, answers by retCode, transport
errors, counters; merged across processes; the JSON result file and the progress line.

Latencies are recorded in microseconds (1 µs to 1 h, 3 significant digits). Each worker
process keeps a :class:`Recorder`; at the end it ships :meth:`Recorder.export` (histograms
in HdrHistogram's compressed encoding, so the merge is exact, not an average of
percentiles) and the parent folds them together with :meth:`Recorder.merge`.

``hdrh`` is imported here only, so ``import bybit_mock`` never needs it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # a run lasts at most an hour; so does any latency in it
SIGNIFICANT_DIGITS = 3
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def new_histogram() -> Any:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _histogram(table: dict[str, Any], name: str) -> Any:
    hist = table.get(name)
    if hist is None:
        hist = table[name] = new_histogram()
    return hist


def _clamped_us(ns: int) -> int:
    return int(min(max(ns // 1000, LOWEST_US), HIGHEST_US))


class Recorder:
    """One process's (or, after merging, the whole run's) measurements."""

    def __init__(self) -> None:
        self.histograms: dict[str, Any] = {}
        #: answers per operation by retCode (``"0"`` included; ``"http503"`` for a non-Bybit page)
        self.ret_codes: dict[str, Counter[str]] = {}
        #: failures below Bybit's envelope per operation: reset, refused, timeout, bad frame ...
        self.transport: dict[str, Counter[str]] = {}
        #: plain counts, e.g. ``ws_public.messages``
        self.counters: Counter[str] = Counter()
        #: delivery lag of pushes per channel (``ws_public.delivery_lag`` ...): histograms only,
        #: kept apart from the operations, which are answers with a retCode
        self.lags: dict[str, Any] = {}

    def record(self, op: str, latency_ns: int, ret_code: str) -> None:
        _histogram(self.histograms, op).record_value(_clamped_us(latency_ns))
        self.ret_codes.setdefault(op, Counter())[ret_code] += 1

    def record_lag(self, name: str, lag_ns: int) -> None:
        """A push's delivery lag; one below 1 µs (clock truncation) is recorded as 1 µs."""
        _histogram(self.lags, name).record_value(_clamped_us(lag_ns))

    def transport_error(self, op: str, kind: str) -> None:
        self.transport.setdefault(op, Counter())[kind] += 1

    # -- progress ------------------------------------------------------------------------------
    def answered(self) -> int:
        return sum(sum(c.values()) for c in self.ret_codes.values())

    def failed(self) -> int:
        """Answers with a retCode other than 0, plus transport errors."""
        bad = sum(n for c in self.ret_codes.values() for code, n in c.items() if code != "0")
        return bad + sum(sum(c.values()) for c in self.transport.values())

    # -- across processes -----------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        """A picklable summary of this recorder, for :meth:`merge` in another process."""
        return {
            "histograms": {op: h.encode() for op, h in self.histograms.items()},
            "ret_codes": {op: dict(c) for op, c in self.ret_codes.items()},
            "transport": {op: dict(c) for op, c in self.transport.items()},
            "counters": dict(self.counters),
            "lags": {name: h.encode() for name, h in self.lags.items()},
        }

    def merge(self, exported: dict[str, Any]) -> None:
        for op, encoded in exported["histograms"].items():
            _histogram(self.histograms, op).add(HdrHistogram.decode(encoded))
        for op, codes in exported["ret_codes"].items():
            self.ret_codes.setdefault(op, Counter()).update(codes)
        for op, kinds in exported["transport"].items():
            self.transport.setdefault(op, Counter()).update(kinds)
        self.counters.update(exported["counters"])
        for name, encoded in exported["lags"].items():
            _histogram(self.lags, name).add(HdrHistogram.decode(encoded))


def latency_summary(hist: Any) -> dict[str, float]:
    """Milliseconds: p50, p90, p99, p99.9, max and mean."""
    out = {name: hist.get_value_at_percentile(p) / 1000 for name, p in PERCENTILES}
    out["max"] = hist.get_max_value() / 1000
    out["mean"] = round(hist.get_mean_value() / 1000, 3)
    return out


def result_document(recorder: Recorder, run: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    """The JSON result file's content (its fields are listed in docs/load.md)."""
    operations: dict[str, Any] = {}
    for op in sorted(set(recorder.ret_codes) | set(recorder.transport)):
        codes = recorder.ret_codes.get(op, Counter())
        count = sum(codes.values())
        hist = recorder.histograms.get(op)
        operations[op] = {
            "count": count,
            "ok": codes.get("0", 0),
            "per_second": round(count / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "latency_ms": latency_summary(hist) if hist is not None and count else None,
            "ret_codes": dict(sorted(codes.items())),
            "transport_errors": dict(sorted(recorder.transport.get(op, Counter()).items())),
        }
    ret_totals: Counter[str] = Counter()
    for codes in recorder.ret_codes.values():
        ret_totals.update(codes)
    transport_totals: Counter[str] = Counter()
    for kinds in recorder.transport.values():
        transport_totals.update(kinds)
    answered = sum(ret_totals.values())
    return {
        "run": run,
        "elapsed_s": round(elapsed_s, 3),
        "errors": error_groups(ret_totals, transport_totals),
        "totals": {
            "answered": answered,
            "per_second": round(answered / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "ret_codes": dict(sorted(ret_totals.items())),
            "transport_errors": dict(sorted(transport_totals.items())),
        },
        "operations": operations,
        "counters": dict(sorted(recorder.counters.items())),
        "delivery_lag": {
            name: {"count": hist.get_total_count(), "lag_ms": latency_summary(hist)}
            for name, hist in sorted(recorder.lags.items())
        },
    }


def error_groups(ret_codes: Counter[str], transport: Counter[str]) -> dict[str, dict[str, int]]:
    """Every failed answer, grouped: Bybit retCodes other than 0, HTTP statuses of pages that
    are not Bybit's envelope, refused WebSocket acks, and transport errors by kind."""
    groups: dict[str, dict[str, int]] = {"ret_code": {}, "http": {}, "ws_refused": {}, "transport": {}}
    for code, n in sorted(ret_codes.items()):
        if code.startswith("http"):
            groups["http"][code[4:]] = n
        elif code.startswith("refused:"):
            groups["ws_refused"][code[8:]] = n
        elif code != "0":
            groups["ret_code"][code] = n
    groups["transport"] = dict(sorted(transport.items()))
    return groups


def progress_line(elapsed_s: float, duration_s: float, answered: int, failed: int, last_rate: float) -> str:
    return f"[{elapsed_s:6.1f}/{duration_s:.0f} s] {answered:>10,} answers  {last_rate:>9,.0f}/s  {failed:,} errors"
