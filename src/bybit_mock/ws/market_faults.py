"""Scripted market-data faults on one WS worker's public streams.

A scenario's market action (``book_gap``, ``book_reset``, ``stale``, ``duplicate_trades``,
``reorder_trades``) reaches a WS worker either from a WS trigger it asked about or as a
``("fault", action)`` event every WS worker receives. Each worker applies it to *its own*
subscribers: the topics that match the action (``symbol``, ``category``, ``depth``, ``topic``;
a field left out matches any) among those it has subscribers for when it arrives. A topic
nobody subscribes to on this worker is not touched, and when a topic loses its last subscriber
here everything installed for it is forgotten, so nothing lingers for a later client.

What the client sees:

* ``book_gap``: from the next message on, the topic's ``u`` runs one ahead: one update id is
  skipped (the data itself is whole, so a client that does not check ``u`` is not corrupted;
  one that checks sees the jump and should resubscribe).
* ``book_reset``: the next tick's deltas are replaced by a snapshot with ``u = 1`` (what Bybit
  sends after a service restart), and the deltas after it go on from ``u = 2``.
* ``stale``: nothing at all on the topic for ``ms``; then a fresh snapshot (books, tickers,
  the open candle) and the stream resumes (its deltas apply to that snapshot).
* ``duplicate_trades``: each of the next ``count`` ``publicTrade`` messages is sent twice.
* ``reorder_trades``: the next ``count`` ``publicTrade`` messages go out in reverse order (2:
  two consecutive ones swapped); held ones are let go after :data:`HOLD_S` if the stream dries.

``u`` offsets are applied by the publisher where it builds a book message (one dict lookup,
only while any offset is installed), so a snapshot for a new subscriber and every later delta
agree; a recorded (replayed) topic's messages come prebuilt, and are rewritten here instead.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from .publisher import MarketPublisher

Key = tuple[str, str]  # (category, topic)

#: the market actions this module carries out
MARKET_ACTIONS = frozenset({"book_gap", "book_reset", "stale", "duplicate_trades", "reorder_trades"})
BOOK, TRADES = "orderbook.", "publicTrade."
#: which topics each action can act on
_PREFIX = {"book_gap": BOOK, "book_reset": BOOK, "duplicate_trades": TRADES, "reorder_trades": TRADES, "stale": ""}
#: seconds a reorder holds its messages at most (a trade stream can pause for a long time)
HOLD_S = 1.0
#: a book message's update id; it occurs once per message (in ``data``)
_U = re.compile(rb'"u":(\d+)')


def now_ms() -> float:
    return time.monotonic() * 1000


def shift_u(payload: bytes, offset: int) -> bytes:
    """``payload`` with its ``u`` lowered by ``offset``."""
    return _U.sub(lambda m: b'"u":%d' % (int(m.group(1)) - offset), payload, count=1)


def read_u(payload: bytes) -> int | None:
    found = _U.search(payload)
    return int(found.group(1)) if found else None


class TopicFaults:
    """What is installed on one topic of this worker."""

    __slots__ = ("duplicate", "held", "hold_timer", "reorder", "reset", "rewrite", "stale_timer", "stale_until")

    def __init__(self) -> None:
        self.reset = False  # a u=1 snapshot is due with the next tick
        self.rewrite = False  # a recorded topic with a u offset: its prebuilt messages are rewritten
        self.duplicate = 0  # messages still to send twice
        self.reorder = 0  # messages still to hold (then send in reverse)
        self.held: list[bytes] = []
        self.hold_timer: asyncio.TimerHandle | None = None
        self.stale_until = 0.0  # monotonic ms; 0: not stale
        self.stale_timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return not (self.reset or self.rewrite or self.duplicate or self.reorder or self.held or self.stale_until)

    def cancel(self) -> None:
        for timer in (self.hold_timer, self.stale_timer):
            if timer is not None:
                timer.cancel()
        self.hold_timer = self.stale_timer = None


class MarketFaults:
    def __init__(
        self, publisher: MarketPublisher, loop: asyncio.AbstractEventLoop, subscribed: Callable[[], Iterable[Key]]
    ) -> None:
        self.publisher = publisher
        self.loop = loop
        self.subscribed = subscribed  # the (category, topic) pairs with subscribers on this worker
        #: the publisher's own dict: (category, topic) -> how much lower than the model's ``u`` it sends
        self.offsets: dict[Key, int] = publisher.u_offsets
        self.topics: dict[Key, TopicFaults] = {}

    # -- installing ---------------------------------------------------------------------------

    def targets(self, action: dict[str, Any], ctx: dict[str, Any]) -> list[Key]:
        """The subscribed topics ``action`` names; a field it leaves out comes from the
        trigger's context (the symbol of the message or subscription that fired it), or
        matches any."""
        kind = action["type"]
        prefix = _PREFIX[kind]
        category = action.get("category") or ctx.get("category")
        symbol = action.get("symbol") or ctx.get("symbol")
        depth = action.get("depth")
        pattern = action.get("topic")
        found = []
        for key in self.subscribed():
            cat, topic = key
            parts = topic.split(".")
            if not topic.startswith(prefix) or (category and cat != category) or (symbol and parts[-1] != symbol):
                continue
            if depth is not None and (len(parts) != 3 or parts[1] != str(depth)):
                continue
            if pattern is not None and not fnmatch.fnmatchcase(topic, pattern):
                continue
            found.append(key)
        return sorted(found)

    def install(self, action: dict[str, Any], ctx: dict[str, Any]) -> str:
        """Install ``action`` on the matching topics; what was done, for the journal."""
        kind = action["type"]
        keys = self.targets(action, ctx)
        if not keys:
            return f"{kind}: no subscriber to a matching topic on this worker"
        for key in keys:
            faults = self.topics.setdefault(key, TopicFaults())
            if kind == "book_gap":
                self._shift(key, faults, -1)
            elif kind == "book_reset":
                faults.reset = True
            elif kind == "duplicate_trades":
                faults.duplicate += int(action.get("count", 1))
            elif kind == "reorder_trades":
                faults.reorder += int(action.get("count", 2))
            else:  # stale
                self._stale(key, faults, float(action["ms"]))
        names = ", ".join(topic for _, topic in keys)
        what = {
            "book_gap": "u skips one from the next message",
            "book_reset": "a u=1 snapshot with the next tick",
            "duplicate_trades": f"the next {action.get('count', 1)} message(s) sent twice",
            "reorder_trades": f"the next {action.get('count', 2)} message(s) reversed",
            "stale": f"silent for {action.get('ms')} ms",
        }[kind]
        return f"{kind} on {names}: {what}"

    def _shift(self, key: Key, faults: TopicFaults, by: int) -> None:
        self.offsets[key] = self.offsets.get(key, 0) + by
        faults.rewrite = self._recorded(key)

    def _recorded(self, key: Key) -> bool:
        category, topic = key
        feed = self.publisher.feeds.get((category, topic.rsplit(".", 1)[-1]))
        return feed is not None and topic in feed.recorded

    def _stale(self, key: Key, faults: TopicFaults, ms: float) -> None:
        faults.stale_until = max(faults.stale_until, now_ms() + ms)
        if faults.stale_timer is not None:
            faults.stale_timer.cancel()
        faults.stale_timer = self.loop.call_later((faults.stale_until - now_ms()) / 1000, self._stale_over, key)

    def _stale_over(self, key: Key) -> None:
        """The topic comes back with what a new subscriber gets, then its stream."""
        faults = self.topics.get(key)
        if faults is None:
            return
        faults.stale_timer = None
        faults.stale_until = 0.0
        self._resnapshot(key)
        self._tidy(key, faults)

    def _resnapshot(self, key: Key) -> None:
        category, topic = key
        for box in self.publisher.boxes_of(category, topic):
            self.publisher.on_subscribe(category, topic, box)

    def forget(self, category: str, topic: str) -> None:
        """The topic's last subscriber on this worker left: nothing installed for it stays."""
        key = (category, topic)
        self.offsets.pop(key, None)
        faults = self.topics.pop(key, None)
        if faults is not None:
            faults.cancel()

    def _tidy(self, key: Key, faults: TopicFaults) -> None:
        if faults.idle and self.topics.get(key) is faults:
            faults.cancel()
            del self.topics[key]

    # -- the publisher's tick -----------------------------------------------------------------

    def filter(self, category: str, batches: dict[str, list[bytes]]) -> None:
        """Apply the installed faults to one symbol's tick (topic -> messages), in place."""
        if not self.topics:
            return
        for topic, payloads in batches.items():
            key = (category, topic)
            faults = self.topics.get(key)
            if faults is not None and payloads:
                batches[topic] = self._apply(key, faults, payloads)
                self._tidy(key, faults)

    def _apply(self, key: Key, faults: TopicFaults, payloads: list[bytes]) -> list[bytes]:
        if faults.stale_until:
            return []  # its timer brings the topic back
        topic = key[1]
        if topic.startswith(BOOK):
            if faults.rewrite:
                offset = self.offsets.get(key, 0)
                payloads = [shift_u(p, offset) for p in payloads]
            if faults.reset:
                return self._reset(key, faults, payloads)
            return payloads
        if faults.reorder or faults.held:
            payloads = self._reorder(key, faults, payloads)
        if faults.duplicate:
            doubled = []
            for payload in payloads:
                doubled.append(payload)
                if faults.duplicate:
                    doubled.append(payload)
                    faults.duplicate -= 1
            payloads = doubled
        return payloads

    def _reset(self, key: Key, faults: TopicFaults, payloads: list[bytes]) -> list[bytes]:
        """Replace the tick's deltas with a snapshot of the book after them, numbered ``u = 1``."""
        seen = read_u(payloads[-1])
        if seen is None:
            return payloads
        faults.reset = False
        real = seen + self.offsets.get(key, 0)  # what the model numbers the last message
        self._shift(key, faults, real - 1 - self.offsets.get(key, 0))
        self._resnapshot(key)
        return []

    def _reorder(self, key: Key, faults: TopicFaults, payloads: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for payload in payloads:
            if faults.reorder:
                faults.held.append(payload)
                faults.reorder -= 1
                if not faults.reorder:
                    out.extend(self._release(faults))
            else:
                out.append(payload)
        if faults.held and faults.hold_timer is None:
            faults.hold_timer = self.loop.call_later(HOLD_S, self._hold_over, key)
        return out

    @staticmethod
    def _release(faults: TopicFaults) -> list[bytes]:
        held, faults.held = faults.held, []
        if faults.hold_timer is not None:
            faults.hold_timer.cancel()
            faults.hold_timer = None
        held.reverse()
        return held

    def _hold_over(self, key: Key) -> None:
        faults = self.topics.get(key)
        if faults is None:
            return
        faults.hold_timer = None
        faults.reorder = 0
        held = self._release(faults)
        self.publisher.fanout.publish_batch(self.publisher.boxes_of(*key), held)
        self._tidy(key, faults)
