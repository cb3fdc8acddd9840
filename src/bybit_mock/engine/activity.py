"""Private activity at a configured rate, per account (``AccountConfig.activity``).

Soak tests need private traffic a bot did not cause: a reconciling bot must keep up with it,
and a divergence alarm must see REST and the stream disagree. Two modes (``docs/soak.md``):

* ``consistent``: another trader on the same account. Each event is a real engine operation
  in a cycle of four: place a Buy, place a Sell (GTC limits ``AWAY`` from the mark, so the
  market does not fill them), fill one of them (``Trading.fill_resting``, as maker at its own
  price, on the side that flattens the position), cancel the other (``Trading.order_cancel``).
  The pushes go out as for any order and REST agrees. The activity touches only the orders
  it placed; it never holds more than ``MAX_RESTING`` of them (placing turns into
  cancelling), and with nothing of its own left to fill or cancel (a bot cancelled them
  all) it places instead, so every due event still does something. Its position goes
  between flat and one ``qty``, so a modest balance lasts. A refused operation (no
  margin left) changes nothing, is counted in ``failed`` and pushes nothing.
* ``canned``: the private messages of a JSONL file (``private_replay.py``) with fresh ids and
  times: ``("private_raw", (api_key, message))`` events the WS workers send as they are. The
  engine's state does not change, so REST deliberately disagrees with them.

When events are due comes from :class:`~bybit_mock.market.schedule.Schedule`, as for the
market streams: event ``k`` is due at ``epoch + k / rate``, computed, never accumulated, so
the count by any time is exact whatever the clock thread's jitter. The engine runs what is
due on every advance (``Exchange._advance``, every ~10 ms and before every batch). A stall
longer than ``MAX_BACKLOG_NS`` drops what was due before it (counted in ``skipped``) rather
than bursting a whole stall's events at once. ``reset()`` starts every schedule again from then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from ..bybit.errors import BybitError
from ..config import ActivityConfig, InstrumentConfig
from ..market.schedule import Schedule
from .private_replay import PrivateReplay

if TYPE_CHECKING:
    from .book import AccountBook
    from .events import EventLog
    from .pushes import Pushes
    from .trading import Trading

log = logging.getLogger(__name__)

#: how far from the mark the activity's limit orders rest (fraction of the price)
AWAY = Decimal("0.05")
#: the most open orders of its own the activity keeps on an account
MAX_RESTING = 8
#: a stall longer than this (ns) drops the events due before it instead of bursting them
MAX_BACKLOG_NS = 1_000_000_000


@dataclass
class Counts:
    """What one account's activity did since the last reset."""

    done: int = 0  # events run (consistent: operations that succeeded)
    failed: int = 0  # consistent: operations the engine refused (changed nothing)
    skipped: int = 0  # events dropped after a stall longer than MAX_BACKLOG_NS


class _Trader:
    """One account's consistent activity: the other trader's orders and its next step."""

    def __init__(self, api_key: str, inst: InstrumentConfig, qty: Decimal | None) -> None:
        self.api_key = api_key
        self.inst = inst
        self.qty = qty if qty is not None else inst.min_qty
        self.mine: list[str] = []  # ids of the orders it placed, oldest first
        self.step = 0

    def run(self, trading: Trading, book: AccountBook, now_ms: int) -> None:
        """One event (raises what the engine refuses: the caller rolls its pushes back)."""
        self.mine = [i for i in self.mine if (o := book.orders.get(i)) is not None and o.is_open]
        step = self.step
        self.step = (step + 1) % 4
        if step < 2 and len(self.mine) >= MAX_RESTING:
            step = 3
        elif step >= 2 and not self.mine:
            step = 0
        if step < 2:
            self._place(trading, "Buy" if step == 0 else "Sell")
        elif step == 2:
            self._fill(trading, book, now_ms)
        else:
            self._cancel(trading, self.mine[0])

    def _place(self, trading: Trading, side: str) -> None:
        inst = self.inst
        mark = trading.margin.mark((inst.category, inst.symbol))
        away = mark * (1 - AWAY if side == "Buy" else 1 + AWAY)
        ticks = (away / inst.tick_size).to_integral_value(ROUND_FLOOR if side == "Buy" else ROUND_CEILING)
        query = {
            "category": inst.category,
            "symbol": inst.symbol,
            "side": side,
            "orderType": "Limit",
            "qty": str(self.qty),
            "price": str(max(ticks, Decimal(1)) * inst.tick_size),
            "timeInForce": "GTC",
        }
        self.mine.append(trading.order_create(self.api_key, query)["orderId"])

    def _fill(self, trading: Trading, book: AccountBook, now_ms: int) -> None:
        inst = self.inst
        pos = book.accounts[self.api_key].positions.get((inst.category, inst.symbol, 0))
        flattening = "Sell" if pos is not None and pos.size and pos.side == "Buy" else "Buy"
        order_id = next((i for i in self.mine if book.orders[i].side == flattening), self.mine[0])
        order = book.orders[order_id]
        trading.fill_resting(order, order.leaves_qty, order.price, now_ms)

    def _cancel(self, trading: Trading, order_id: str) -> None:
        inst = self.inst
        trading.order_cancel(self.api_key, {"category": inst.category, "symbol": inst.symbol, "orderId": order_id})


class _Stream:
    """One account's activity: its schedule, its source of events and what it did."""

    def __init__(self, api_key: str, config: ActivityConfig, source: _Trader | PrivateReplay, epoch_ns: int) -> None:
        self.api_key = api_key
        self.config = config
        self.source = source
        self.schedule = Schedule(epoch_ns, [config.rate])
        self.counts = Counts()


class Activity:
    """Every configured account's activity; :meth:`run_due` runs what is due by now."""

    def __init__(
        self,
        accounts: dict[str, ActivityConfig],
        instruments: dict[tuple[str, str], InstrumentConfig],
        parts: Callable[[], tuple[AccountBook, Trading, Pushes, EventLog]],
    ) -> None:
        self._configs = accounts
        self._instruments = instruments
        self._parts = parts
        #: canned files are read and encoded once, at start (a bad file fails the start)
        self._replays = {k: PrivateReplay.load(c.file) for k, c in accounts.items() if c.mode == "canned"}
        self.streams: dict[str, _Stream] = {}

    @property
    def busy(self) -> bool:
        return bool(self._configs)

    def restart(self, now_ms: int) -> None:
        """Every schedule from ``now_ms``; canned files from their first message, loop 0
        (``Exchange.reset``, once the new account book is in place)."""
        self.streams = {}
        for key, config in self._configs.items():
            source: _Trader | PrivateReplay
            if config.mode == "canned":
                source = self._replays[key]
                source.restart()
            else:
                source = _Trader(key, self._instruments[(config.category, config.symbol)], config.qty)
            self.streams[key] = _Stream(key, config, source, now_ms * 1_000_000)

    def run_due(self, now_ms: int) -> bool:
        """Run every event due by ``now_ms`` (under the engine lock); whether any ran. The
        caller commits: each consistent operation's pushes stand unless it was refused, and an
        account's operations of one tick go out as one push, as Bybit batches its stream."""
        book, trading, pushes, events = self._parts()
        ran = False
        with pushes.coalescing():
            for stream in self.streams.values():
                ran = self._run_stream(stream, now_ms, book, trading, pushes, events) or ran
        return ran

    @staticmethod
    def _run_stream(
        stream: _Stream, now_ms: int, book: AccountBook, trading: Trading, pushes: Pushes, events: EventLog
    ) -> bool:
        schedule, counts, source = stream.schedule, stream.counts, stream.source
        now_ns = now_ms * 1_000_000
        first = schedule.next_time()
        if first is not None and first < now_ns - MAX_BACKLOG_NS:
            before = schedule.count(0)
            schedule.skip_to(now_ns - MAX_BACKLOG_NS)
            counts.skipped += schedule.count(0) - before
        ran = False
        while schedule.pop_due(now_ns) is not None:
            ran = True
            if isinstance(source, PrivateReplay):
                events.append("private_raw", (stream.api_key, source.next(now_ms)))
                counts.done += 1
                continue
            point = pushes.savepoint()
            try:
                source.run(trading, book, now_ms)
            except BybitError:
                pushes.rollback(point)
                counts.failed += 1
            except Exception:  # an engine bug must not stop the clock thread (logged once)
                pushes.rollback(point)
                if not counts.failed:
                    log.exception("private activity on %s failed", stream.api_key)
                counts.failed += 1
            else:
                counts.done += 1
        return ran

    def counts(self) -> dict[str, Counts]:
        return {key: stream.counts for key, stream in self.streams.items()}

    def status(self) -> dict[str, dict[str, Any]]:
        """Each account's activity since the last reset: its mode, rate, start (ms), and its
        counts ``done``, ``failed`` and ``skipped`` (``MockExchangeState.activity``)."""
        return {
            key: {"mode": s.config.mode, "rate": s.config.rate, "started_ms": s.schedule.epoch_ns // 1_000_000}
            | asdict(s.counts)
            for key, s in self.streams.items()
        }
