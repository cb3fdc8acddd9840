"""Funding settlement: at every funding time, every open perpetual position pays or receives.

At each funding time of a perpetual (multiples of its ``funding_interval_s`` since the Unix
epoch: Bybit's 00:00, 08:00 and 16:00 UTC for 8 h) every open position settles with the
rate its market model fixed then (``model.settled_funding_rate``)::

    payment = position value at the mark price x rate          (8 decimals)

value ``size x mark`` for linear, ``size / mark`` in the coin for inverse. A long pays a
positive rate and a short receives it (the other way round for a negative rate). The
payment, in the settle coin, is what Bybit reports:

* the wallet balance and the coin's and the position's realised PnL (``curRealisedPnl``,
  ``cumRealisedPnl``) move by ``-payment``;
* a ``/v5/account/transaction-log`` row of type ``SETTLEMENT`` (``funding`` the payment,
  ``change = -funding``, ``cashBalance`` after it);
* an execution with ``execType`` ``Funding`` (``/v5/execution/list`` and the ``execution``
  stream): ``execQty`` the size, ``execPrice`` and ``markPrice`` the mark, ``execValue``
  the value, ``execFee`` the payment (> 0 paid, < 0 received) and ``feeRate`` the rate as
  the position sees it (the funding rate for a long, its negative for a short), so
  ``execFee = execValue x feeRate`` as in every Bybit record; ``orderType`` and
  ``stopOrderType`` ``UNKNOWN``, ``createType`` empty, order qty and price 0;
* ``execution``, ``position`` and ``wallet`` pushes.

Each funding time is one engine change (its pushes committed together). If the engine's
clock jumps over several funding times, each settles once, in order, with its own rate, at
the mark price of the moment the engine settles them. The first funding time settled is the
first after the engine (or its last ``reset()``) started.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

from ..config import InstrumentConfig
from .accounts import Account, Position, notional
from .book import AccountBook, Ident
from .margin import Margin
from .orders import Execution, Order
from .part import Part
from .pushes import Pushes
from .records import LogEntry

ZERO = Decimal(0)
#: payments are settled to 8 decimals, as Bybit's wallet shows them
PAYMENT_STEP = Decimal("0.00000001")


def funding_payment(inst: InstrumentConfig, pos: Position, mark: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """``(payment, fee rate)`` of one position: > 0 paid, < 0 received; the fee rate is the
    funding rate as the position sees it (negated for a short)."""
    fee_rate = rate if pos.side == "Buy" else -rate
    payment = (notional(inst.category, pos.size, mark) * fee_rate).quantize(PAYMENT_STEP, ROUND_HALF_EVEN)
    return payment, fee_rate


class FundingSettlement(Part):
    def __init__(self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int]) -> None:
        super().__init__(book, margin, pushes, clock)
        now = clock()
        #: per perpetual: its interval (ms) and the last funding time settled (the one at or
        #: before the start: positions settle from the next one on)
        self.interval_ms: dict[Ident, int] = {
            ident: max(1, inst.funding_interval_s) * 1000 for ident, inst in self.instruments.items() if inst.perpetual
        }
        self.settled_to: dict[Ident, int] = {ident: now - now % ms for ident, ms in self.interval_ms.items()}
        self._next_due = self._earliest()

    def _earliest(self) -> int:
        due = [t + self.interval_ms[ident] for ident, t in self.settled_to.items()]
        return min(due) if due else 2**62

    def run_due(self, now_ms: int, commit: Callable[[], None]) -> bool:
        """Settle every funding time due by ``now_ms``, oldest first, each committed as its own
        change (``commit``); True if any was due."""
        if now_ms < self._next_due:  # the common case: one comparison per engine advance
            return False
        due: list[tuple[int, Ident]] = []
        for ident, last in self.settled_to.items():
            step = self.interval_ms[ident]
            due.extend((t, ident) for t in range(last + step, now_ms - now_ms % step + 1, step))
        for t, ident in sorted(due):
            self.settle(ident, t)
            self.settled_to[ident] = t
            commit()
        self._next_due = self._earliest()
        return bool(due)

    def settle(self, ident: Ident, boundary_ms: int) -> None:
        """One funding time of one perpetual, on every open position in it."""
        model = self.margin.markets.get(*ident)
        if model is None:
            return
        rate = model.settled_funding_rate(boundary_ms)
        if rate is None:  # the model passed it long ago and no longer keeps it (a huge clock jump)
            return
        mark = model.mark_price()
        inst = self.instruments[ident]
        for account in self.book.accounts.values():
            held = [p for key, p in account.positions.items() if key[:2] == ident and p.size]
            for pos in held:
                self._pay(account, inst, pos, boundary_ms, rate, mark)

    def _pay(
        self, account: Account, inst: InstrumentConfig, pos: Position, boundary_ms: int, rate: Decimal, mark: Decimal
    ) -> None:
        payment, fee_rate = funding_payment(inst, pos, mark, rate)
        ids = self.book.ids
        coin = account.coin(inst.settle_coin)
        coin.wallet -= payment
        coin.cum_realised_pnl -= payment
        pos.cur_realised_pnl -= payment
        pos.cum_realised_pnl -= payment
        pos.updated_ms = boundary_ms
        pos.seq = ids.seq()
        # the order a Bybit funding record names: no user order, so UNKNOWN type, no qty or price
        order = Order(
            ids.uuid(), "", account.api_key, inst.category, inst.symbol, pos.side, "UNKNOWN", ZERO, ZERO, "",
            False, boundary_ms, mark, status="Filled", stop_order_type="UNKNOWN", create_type="",
            updated_ms=boundary_ms, position_idx=pos.position_idx,
        )  # fmt: skip
        execution = Execution(
            ids.uuid(), order, mark, pos.size, payment, fee_rate, inst.settle_coin, False, boundary_ms, mark,
            ZERO, ZERO, ids.seq(), ZERO, ZERO, ZERO, exec_type="Funding",
        )  # fmt: skip
        row = LogEntry(
            ids.seq(), boundary_ms, "SETTLEMENT", inst.settle_coin, ZERO, ZERO, coin.wallet, inst.category,
            inst.symbol, pos.side, pos.size, pos.signed_size, mark, fee_rate, execution.exec_id, order.order_id,
            funding=payment,
        )  # fmt: skip
        self.book.record_fill(account, execution, [row])
        self.pushes.emit(account, inst, [], [execution])
