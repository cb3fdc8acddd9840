"""The WS worker's market publisher: advances every symbol's model and fans its messages out.

Each worker holds its own copy of every market model (fetched from the state service at start
and after a control change such as a price jump or a reset) and advances it on a timer. The
models are deterministic, so every worker publishes the same messages the engine matches
against, and nothing crosses a process boundary per message.

One wake-up handles everything due since the last one: per topic, the messages are encoded
once (orjson), framed once and joined, and each subscriber's outbox gets one append per topic
(:meth:`FanOut.publish_batch`). Topics nobody on this worker subscribes to cost the model
update only, never an encode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..instruments import ALL_BOOK_DEPTHS, CONTRACTS
from ..market import messages
from ..market.candles import INTERVAL_MINUTES, interval_start
from ..market.canned import CannedMarket
from ..market.model import Event, MarketModel
from ..market.schedule import Schedule
from ..market.ticker import WS_DATED_KEYS, WS_FUTURES_KEYS, WS_SPOT_KEYS, ticker_fields, ticker_shape
from ..market.views import DepthView
from .fanout import FanOut, Outbox

log = logging.getLogger(__name__)

#: topic -> the outboxes of this worker's subscribers to it
BoxesOf = Callable[[str, str], list[Outbox]]
#: (category, symbol): ask the engine to start a canned market's clock
StartMarket = Callable[[str, str], None]

_TICKER, _KLINE = 0, 1


class SymbolFeed:
    """One model and the per-topic state its streams need on this worker."""

    def __init__(self, model: MarketModel, ticker_rate: float, kline_rate: float, now_ns: int) -> None:
        self.model = model
        self.category: str = model.category
        self.symbol: str = model.symbol
        self.futures = self.category in CONTRACTS
        #: topics a replayed market sends verbatim from its recording (empty when synthetic):
        #: the publisher never generates those itself
        self.recorded: frozenset[str] = model.recorded_topics
        self.views: dict[int, DepthView] = {}
        #: ticker values last sent (linear deltas are computed against them); None: not live
        self.ticker_sent: dict[str, str] | None = None
        #: kline interval -> start of the candle last sent
        self.kline_sent: dict[str, int] = {}
        # Tickers and klines read the model but never change it, so their timing lives here.
        self.aux = Schedule(now_ns, [ticker_rate, kline_rate])
        s = self.symbol
        self.trade_topic = f"publicTrade.{s}"
        self.ticker_topic = f"tickers.{s}"
        self.book_topics = {d: f"orderbook.{d}.{s}" for d in ALL_BOOK_DEPTHS}
        self.kline_topics = {i: f"kline.{i}.{s}" for i in INTERVAL_MINUTES}
        self.topics = (self.trade_topic, self.ticker_topic, *self.book_topics.values(), *self.kline_topics.values())

    def next_due(self) -> int | None:
        times = [t for t in (self.model.schedule.next_time(), self.aux.next_time()) if t is not None]
        return min(times) if times else None


class MarketPublisher:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fanout: FanOut,
        boxes_of: BoxesOf,
        rates: Callable[[str, str], tuple[float, float]],
        tesser: bool = False,
        start_market: StartMarket | None = None,
    ) -> None:
        self.loop = loop
        self.fanout = fanout
        self.boxes_of = boxes_of
        self.rates = rates  # (category, symbol) -> (ticker rate, kline rate)
        self.tesser = tesser
        self.feeds: dict[tuple[str, str], SymbolFeed] = {}
        self.start_market = start_market
        #: canned markets whose start this worker asked for: (category, symbol) -> generation
        self._start_asked: dict[tuple[str, str], str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.messages_published = 0
        #: scripted market faults (``market_faults.py``): a tick's messages, topic -> payloads,
        #: pass through this hook (in place) before they go out ...
        self.on_batches: Callable[[str, dict[str, list[bytes]]], None] | None = None
        #: ... and a book topic's ``u`` is sent this much lower than the model's (a skipped
        #: update id, or a restart at u=1); applied where every book message is built
        self.u_offsets: dict[tuple[str, str], int] = {}

    # -- models -----------------------------------------------------------------------------

    def load(self, models: Iterable[MarketModel]) -> None:
        """Take new copies of the models (at start, or after a jump or reset) and re-snapshot."""
        now = time.time_ns()
        for model in models:
            key = (model.category, model.symbol)
            old = self.feeds.get(key)
            out: list[Event] = []
            continued = False
            if isinstance(model, CannedMarket):
                # A canned stream goes on from where this worker's copy was: every item once.
                continued = model.resume(old.model if old is not None else None, now, out)
            else:
                model.advance(now)  # catch up silently: these events were the engine's, not news
            ticker_rate, kline_rate = self.rates(*key)
            feed = self.feeds[key] = SymbolFeed(model, ticker_rate, kline_rate, now)
            if old is not None:
                self._resnapshot(old, feed, books=not continued)
            if out:
                self._publish_in_order(feed, out, now)
            self._ask_start(feed)
        self._reschedule()

    def _resnapshot(self, old: SymbolFeed, feed: SymbolFeed, books: bool = True) -> None:
        """After a reload, everyone subscribed gets a fresh snapshot (Bybit does the same on a
        reset); a canned stream that goes on sends only its own books, once."""
        for depth, view in old.views.items():
            if view.live and books:
                self._send_initial(feed, feed.book_topics[depth], self.boxes_of(feed.category, feed.book_topics[depth]))
        if old.ticker_sent is not None:
            self._send_initial(feed, feed.ticker_topic, self.boxes_of(feed.category, feed.ticker_topic))
        feed.kline_sent = dict(old.kline_sent)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- subscriptions ----------------------------------------------------------------------

    def on_subscribe(self, category: str, topic: str, box: Outbox) -> None:
        """Send what a new subscriber is owed at once: book and ticker snapshots, the open candle."""
        parts = topic.split(".")
        feed = self.feeds.get((category, parts[-1]))
        if feed is not None:
            self._send_initial(feed, topic, [box])
            self._ask_start(feed)

    def _ask_start(self, feed: SymbolFeed) -> None:
        """A paced canned market starts with its first subscriber: ask the engine once per model
        (it starts it for every worker and sends the reload that carries it here)."""
        model, key = feed.model, (feed.category, feed.symbol)
        if not isinstance(model, CannedMarket) or not model.awaiting_start or self.start_market is None:
            return
        if self._start_asked.get(key) == model.generation:
            return
        if any(self.boxes_of(feed.category, topic) for topic in feed.topics):
            self._start_asked[key] = model.generation
            self.start_market(*key)

    def _send_initial(self, feed: SymbolFeed, topic: str, boxes: list[Outbox]) -> None:
        if not boxes:
            return
        model = feed.model
        now_ms = time.time_ns() // 1_000_000
        kind = topic.split(".", 1)[0]
        payload: bytes | None = None
        if kind == "orderbook":
            depth = int(topic.split(".")[1])
            view = feed.views.get(depth)
            if view is None:
                view = feed.views[depth] = DepthView(depth)
            if topic in feed.recorded and not model.book_u(depth):
                return  # the recorded (canned) book has not started: nothing to show yet
            if not view.live or topic in feed.recorded:
                # A recorded topic's deltas are the recording's, applied to the model's book: a
                # new subscriber's snapshot is that book now, never an older shared view.
                view.reset(model.book, model.book_u(depth), model.version, now_ms, self._cts(model, now_ms))
            bids, asks = view.snapshot_levels()
            payload = self._book_payload(feed, topic, "snapshot", bids, asks, view)
        elif kind == "tickers" and topic in feed.recorded:
            recorded = model.ticker_snapshot()
            if recorded is not None:
                payload = messages.ticker_message(topic, "snapshot", recorded, model.version, now_ms, not feed.futures)
        elif kind == "kline" and topic in feed.recorded:
            pass  # the recording's own kline messages follow
        elif kind == "tickers":
            if feed.ticker_sent is None:
                feed.ticker_sent = self._ticker_data(feed, now_ms)
            payload = messages.ticker_message(
                topic, "snapshot", feed.ticker_sent, model.version, now_ms, not feed.futures
            )
        elif kind == "kline":
            interval = topic.split(".")[1]
            start = interval_start(interval, now_ms)
            candle = model.candles.candle(interval, start, now_ms)
            if candle is not None:
                feed.kline_sent[interval] = start
                entry = messages.kline_entry(interval, candle, False, now_ms, model.prices, model.sizes, self.tesser)
                payload = messages.kline_message(topic, [entry], now_ms, self.tesser)
        if payload is not None:
            self.fanout.publish(boxes, payload)

    # -- the timer --------------------------------------------------------------------------

    def start(self) -> None:
        self._reschedule()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        times = [t for f in self.feeds.values() if (t := f.next_due()) is not None]
        if not times:
            self._timer = None
            return
        delay = max(0.0, (min(times) - time.time_ns()) / 1e9)
        self._timer = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = time.time_ns()
        try:
            for feed in self.feeds.values():
                self._advance(feed, now)
        except Exception:  # a bug in one message must not stop every stream
            log.exception("market publisher tick failed")
        self._reschedule()

    def _advance(self, feed: SymbolFeed, now: int) -> None:
        out: list[Event] = []
        feed.model.advance(now, out)
        self._publish_in_order(feed, out, now)

    def _publish_in_order(self, feed: SymbolFeed, out: list[Event], now: int) -> None:
        """:meth:`_publish`, which batches per topic; a canned market's items (several due at
        once: a step of many) go out in their order across topics too, one run of a topic at a time."""
        if not isinstance(feed.model, CannedMarket) or len(out) < 2:
            self._publish(feed, out, now)
            return
        topics = [feed.trade_topic if event[0] == "trade" else event[2] for event in out]
        start = 0
        for i in range(1, len(out) + 1):
            if i == len(out) or topics[i] != topics[start]:
                self._publish(feed, out[start:i], now)
                start = i

    def _publish(self, feed: SymbolFeed, out: list[Event], now: int) -> None:
        """Send what the model reported (``out``) and the ticker and kline pushes due by ``now``."""
        model = feed.model
        category = feed.category
        batches: dict[str, list[bytes]] = {}
        boxes_cache: dict[str, list[Outbox]] = {}

        def boxes(topic: str) -> list[Outbox]:
            found = boxes_cache.get(topic)
            if found is None:
                found = boxes_cache[topic] = self.boxes_of(category, topic)
            return found

        for event in out:
            kind = event[0]
            if kind == "trade":
                topic = feed.trade_topic
                if boxes(topic):
                    ts = event[1] // 1_000_000
                    batches.setdefault(topic, []).append(
                        messages.trade_message(
                            topic, feed.symbol, event[2], ts, model.prices, model.sizes, feed.futures, self.tesser
                        )
                    )
            elif kind == "book":
                self._book_event(feed, event, boxes, batches)
            elif kind == "raw":
                topic = event[2]
                if boxes(topic):
                    msg = messages.with_tesser_fields(event[3]) if self.tesser else event[3]
                    batches.setdefault(topic, []).append(orjson.dumps(msg))
        aux = feed.aux
        while (due := aux.pop_due(now)) is not None:
            t_ms = due[0] // 1_000_000
            if due[1] == _TICKER:
                self._ticker_event(feed, t_ms, boxes, batches)
            else:
                self._kline_event(feed, t_ms, boxes, batches)
        if self.on_batches is not None:
            self.on_batches(category, batches)
        publish = self.fanout.publish_batch
        for topic, payloads in batches.items():
            publish(boxes(topic), payloads)
            self.messages_published += len(payloads)

    def _book_event(
        self,
        feed: SymbolFeed,
        event: tuple[Any, ...],
        boxes: Callable[[str], list[Outbox]],
        batches: dict[str, list[bytes]],
    ) -> None:
        # the book's version as of this event: when one late wake-up publishes several events
        # of a depth, each keeps its own ``seq`` (the model's has moved on to the last one's)
        _, t_ns, depth, u, seq = event
        view = feed.views.get(depth)
        if view is None or not view.live:
            return
        topic = feed.book_topics[depth]
        if not boxes(topic):
            view.live = False  # the last subscriber left; the next one gets a fresh snapshot
            return
        model = feed.model
        # never before the view's last message: a subscriber's snapshot is stamped "now", and an
        # event a late wake-up publishes after it may be due a few ms earlier
        ts = max(t_ns // 1_000_000, view.ts)
        if depth == 1:
            # Level 1 is snapshots only (every category).
            view.reset(model.book, u, seq, ts, self._cts(model, ts))
            bids, asks = view.snapshot_levels()
            kind = "snapshot"
        else:
            bids, asks = view.advance(model.book, u, seq, ts, self._cts(model, ts))
            kind = "delta"
        batches.setdefault(topic, []).append(self._book_payload(feed, topic, kind, bids, asks, view))

    def _book_payload(
        self,
        feed: SymbolFeed,
        topic: str,
        kind: str,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        view: DepthView,
    ) -> bytes:
        ts_first = not feed.futures or view.depth == 1
        model = feed.model
        u = view.u - self.u_offsets.get((feed.category, topic), 0) if self.u_offsets else view.u
        return messages.dumps(messages.book_dict(
            topic, kind, feed.symbol, bids, asks, u, view.seq, view.ts, view.cts,
            model.prices, model.sizes, ts_first, self.tesser,
        ))  # fmt: skip

    @staticmethod
    def _cts(model: MarketModel, ts: int) -> int:
        """Matching-engine time of the book: the last trade's, or a moment before ``ts``."""
        trades = model.trades
        return min(ts, trades[-1].t_ms) if trades else ts - 2

    def _ticker_data(self, feed: SymbolFeed, now_ms: int) -> dict[str, str]:
        fields = ticker_fields(feed.model, now_ms)
        if not feed.futures:
            return ticker_shape(fields, WS_SPOT_KEYS)
        return ticker_shape(fields, WS_DATED_KEYS if feed.model.inst.dated else WS_FUTURES_KEYS)

    def _ticker_event(
        self, feed: SymbolFeed, t_ms: int, boxes: Callable[[str], list[Outbox]], batches: dict[str, list[bytes]]
    ) -> None:
        topic = feed.ticker_topic
        if feed.ticker_sent is None:
            return
        if not boxes(topic):
            feed.ticker_sent = None
            return
        data = self._ticker_data(feed, t_ms)
        cs = feed.model.version
        if feed.futures:
            changed = {k: v for k, v in data.items() if feed.ticker_sent.get(k) != v}
            feed.ticker_sent = data
            if not changed:
                return
            delta = {"symbol": feed.symbol} | changed
            payload = messages.ticker_message(topic, "delta", delta, cs, t_ms, False)
        else:
            feed.ticker_sent = data
            payload = messages.ticker_message(topic, "snapshot", data, cs, t_ms, True)
        batches.setdefault(topic, []).append(payload)

    def _kline_event(
        self, feed: SymbolFeed, t_ms: int, boxes: Callable[[str], list[Outbox]], batches: dict[str, list[bytes]]
    ) -> None:
        model = feed.model
        for interval, last_start in list(feed.kline_sent.items()):
            topic = feed.kline_topics[interval]
            if not boxes(topic) or topic in feed.recorded:
                del feed.kline_sent[interval]
                continue
            start = interval_start(interval, t_ms)
            entries = []
            if start != last_start:  # the candle closed: confirm it first, as Bybit does
                closed = model.candles.candle(interval, last_start, t_ms)
                if closed is not None:
                    entries.append(
                        messages.kline_entry(interval, closed, True, t_ms, model.prices, model.sizes, self.tesser)
                    )
            candle = model.candles.candle(interval, start, t_ms)
            if candle is not None:
                entries.append(
                    messages.kline_entry(interval, candle, False, t_ms, model.prices, model.sizes, self.tesser)
                )
            feed.kline_sent[interval] = start
            if entries:
                batches.setdefault(topic, []).append(messages.kline_message(topic, entries, t_ms, self.tesser))
