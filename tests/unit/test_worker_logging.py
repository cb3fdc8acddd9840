"""The workers' log filter: picows' flow-control chatter is dropped, its real warnings kept."""

from __future__ import annotations

import logging

from bybit_mock.worker import _quiet_flow_control


def record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_pause_and_resume_warnings_are_dropped_others_kept() -> None:
    assert not _quiet_flow_control(record("picows.server.21", "Protocol writing pause requested, crossed ..."))
    assert not _quiet_flow_control(record("picows.server.3", "Protocol writing resume requested, crossed ..."))
    assert _quiet_flow_control(record("picows.server.3", "Initiate disconnect because of exception from ..."))
    assert _quiet_flow_control(record("bybit_mock.ws.app", "Protocol writing pause requested"))
