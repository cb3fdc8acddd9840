"""What one worker's subscribers of ``orderbook.{depth}.{S}`` have been sent.

A delta is the difference between the book's top ``depth`` levels now and what was last
sent, so by construction it never deletes a level the subscriber was not sent, and a level
that drops out of the window is deleted. A subscriber who joins later is sent the *last
sent* state as its snapshot (with that message's ``u``), so the next delta applies to it
exactly as to everyone else.
"""

from __future__ import annotations

from .book import Book


class DepthView:
    __slots__ = ("asks", "bids", "cts", "depth", "live", "seq", "ts", "u")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.u = 0
        self.seq = 0
        self.ts = 0
        self.cts = 0
        self.live = False

    def reset(self, book: Book, u: int, seq: int, ts: int, cts: int) -> None:
        self.bids = dict(book.bids.top(self.depth))
        self.asks = dict(book.asks.top(self.depth))
        self.u, self.seq, self.ts, self.cts = u, seq, ts, cts
        self.live = True

    def advance(
        self, book: Book, u: int, seq: int, ts: int, cts: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Move to the book's current state; return the (bids, asks) changes, deletions as size 0."""
        bids, self.bids = _diff(self.bids, dict(book.bids.top(self.depth)))
        asks, self.asks = _diff(self.asks, dict(book.asks.top(self.depth)))
        self.u, self.seq, self.ts, self.cts = u, seq, ts, cts
        bids.sort(reverse=True)
        asks.sort()
        return bids, asks

    def snapshot_levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        return bids, asks


def _diff(sent: dict[int, int], now: dict[int, int]) -> tuple[list[tuple[int, int]], dict[int, int]]:
    changes = [(t, q) for t, q in now.items() if sent.get(t) != q]
    changes.extend((t, 0) for t in sent if t not in now)
    return changes, now
