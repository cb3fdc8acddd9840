"""The engine's event log: readers that take everything, and readers that skip the bulk events."""

from __future__ import annotations

import threading
import time

from bybit_mock.engine.events import EventLog


def test_a_reader_that_skips_bulk_events_gets_the_others_in_order_and_its_cursor_moves_on() -> None:
    log = EventLog()
    start = log.cursor
    log.append("private", ("k1", []))
    log.append("scenarios", {"armed": 1})
    log.append("private_raw", ("k1", b"{}"))
    log.append("ban", ("1.2.3.4", 99))
    cursor, events = log.wait(start, 0, bulk=False)
    assert events == [("scenarios", {"armed": 1}), ("ban", ("1.2.3.4", 99))]
    assert cursor == start + 4
    # and one that takes everything still sees all four
    assert [kind for kind, _ in log.wait(start, 0)[1]] == ["private", "scenarios", "private_raw", "ban"]
    # nothing newer: an empty answer, the cursor where it was
    assert log.wait(cursor, 0, bulk=False) == (cursor, [])


def test_bulk_events_do_not_wake_a_reader_that_skips_them() -> None:
    log = EventLog()
    cursor = log.cursor
    answers: list[tuple[int, list[tuple[str, object]]]] = []
    reader = threading.Thread(target=lambda: answers.append(log.wait(cursor, 0.5, "rest", bulk=False)))
    reader.start()
    time.sleep(0.05)
    for _ in range(5):
        log.append("private", ("k1", []))
    time.sleep(0.1)
    assert not answers, "woken by a private push"
    log.append("scenarios", "summary")
    reader.join(2)
    assert answers == [(cursor + 6, [("scenarios", "summary")])]


def test_a_skipping_reader_hears_of_a_gap_only_when_an_event_it_wants_was_lost() -> None:
    log = EventLog(capacity=50)
    cursor = log.cursor
    for _ in range(200):  # the whole log turns over, but only with bulk events
        log.append("private", ("k1", []))
    assert log.wait(cursor, 0, bulk=False) == (cursor + 200, [])
    assert log.wait(cursor, 0)[1][0] == ("gap", None)  # a reader of everything did miss some
    # more non-bulk events than their short log keeps: the oldest are lost, and the reader is told
    log = EventLog()
    cursor = log.cursor
    for i in range(EventLog.CONTROL_CAPACITY + 3):
        log.append("market_reload", i)
    _, events = log.wait(cursor, 0, bulk=False)
    assert events[0] == ("gap", None)
    assert [data for _, data in events[1:]] == list(range(3, EventLog.CONTROL_CAPACITY + 3))


def test_wait_taken_counts_a_reader_that_skips_bulk_events() -> None:
    log = EventLog()
    cursor = log.cursor
    log.wait(cursor, 0, "rest", bulk=False)  # the reader is known, at the start
    log.append("private", ("k1", []))
    seq = log.append("scenarios", "armed")
    assert not log.wait_taken(seq, 0.05)  # it has not polled since
    log.wait(cursor, 0, "rest", bulk=False)  # it takes the scenario event...
    log.wait(seq + 1, 0, "rest", bulk=False)  # ...and asks for what follows it
    assert log.wait_taken(seq, 0.05)
