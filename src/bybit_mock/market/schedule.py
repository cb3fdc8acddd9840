"""When each stream's next message is due: exact rates from integer nanosecond times.

Message ``k`` (from 1) of a stream at ``rate`` messages/s is due at ``epoch + k * 1e9 / rate``. Times
are computed from ``k``, never accumulated, so a stream never drifts: whatever the timer
jitter, the number of messages due by time ``t`` is ``floor((t - epoch) * rate / 1e9)``,
which is what makes the delivered rate exact over any window longer than a tick.

Several streams are merged in time order (ties by stream index), so every process that
advances the same model through the same schedule applies the same events in the same order.
"""

from __future__ import annotations

import heapq


class Schedule:
    __slots__ = ("_heap", "epoch_ns", "index", "periods")

    def __init__(self, epoch_ns: int, rates: list[float]) -> None:
        self.epoch_ns = epoch_ns
        self.periods = [1e9 / r if r > 0 else 0.0 for r in rates]
        # Message 0 is the state at the epoch itself (the configured start), so the first
        # message that changes anything is number 1, one period later.
        self.index = [1] * len(rates)  # next message number per stream
        self._heap: list[tuple[int, int]] = [(self.due_time(s, 1), s) for s, r in enumerate(rates) if r > 0]
        heapq.heapify(self._heap)

    def due_time(self, stream: int, k: int) -> int:
        return self.epoch_ns + int(k * self.periods[stream])

    def pop_due(self, now_ns: int) -> tuple[int, int, int] | None:
        """The next due ``(time_ns, stream, k)`` at or before ``now_ns``, or None."""
        heap = self._heap
        if not heap or heap[0][0] > now_ns:
            return None
        t, stream = heap[0]
        k = self.index[stream]
        self.index[stream] = k + 1
        heapq.heapreplace(heap, (self.due_time(stream, k + 1), stream))
        return t, stream, k

    def next_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def count(self, stream: int) -> int:
        """Messages of ``stream`` already popped (the next one's ``k``)."""
        return self.index[stream]

    def skip_to(self, now_ns: int) -> None:
        """Drop every message due by ``now_ns`` unprocessed (a frozen market), in O(streams)."""
        heap = []
        for stream, period in enumerate(self.periods):
            if period <= 0:
                continue
            k = max(self.index[stream], int((now_ns - self.epoch_ns) // period) + 1)
            while self.due_time(stream, k) <= now_ns:  # float rounding at the boundary
                k += 1
            self.index[stream] = k
            heap.append((self.due_time(stream, k), stream))
        heapq.heapify(heap)
        self._heap = heap
