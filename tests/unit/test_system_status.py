"""Maintenance windows (``engine/system_status.py``) follow the engine's clock."""

from __future__ import annotations

import pytest

from bybit_mock.bybit.errors import BybitError
from bybit_mock.engine.system_status import SystemStatus


def test_a_window_is_scheduled_then_ongoing_then_completed() -> None:
    now = [1_000]
    status = SystemStatus(lambda: now[0])
    window = status.add("upgrade", 2_000, 3_000)
    states = []
    for t in (1_999, 2_000, 2_999, 3_000):
        now[0] = t
        (item,) = status.query(None, {})["list"]
        states.append(item["state"])
    assert states == ["scheduled", "ongoing", "ongoing", "completed"]
    assert item["id"] == window and item["begin"] == "2000" and item["end"] == "3000"
    assert status.query(None, {"state": "ongoing"})["list"] == []
    assert status.query(None, {"id": "other"})["list"] == []


def test_bad_windows_and_filters_are_refused() -> None:
    status = SystemStatus(lambda: 0)
    with pytest.raises(ValueError, match="end_ms"):
        status.add("backwards", 2, 1)
    with pytest.raises(BybitError):
        status.query(None, {"state": "paused"})
