"""Liquidation: the price a position is liquidated at, its bankruptcy price, and the takeover.

The margin model is the one ``accounts.py`` keeps: a position's initial margin (IM) is
``value / leverage`` and its maintenance margin (MM) ``value x mmr``, both on the entry value.

* **Isolated margin** (``ISOLATED_MARGIN``): each position stands alone. It is liquidated
  when its MM exceeds its margin, ``IM + unrealised PnL at the mark``. Solved for the mark,
  as Bybit's isolated formulas (no extra margin added, no fee reserve)::

      linear  long  liq = entry x (1 - 1/lev + mmr)    bust = entry x (1 - 1/lev)
      linear  short liq = entry x (1 + 1/lev - mmr)    bust = entry x (1 + 1/lev)
      inverse long  liq = entry / (1 + 1/lev - mmr)    bust = entry / (1 + 1/lev)
      inverse short liq = entry / (1 - 1/lev + mmr)    bust = entry / (1 - 1/lev)

* **Cross margin** (``REGULAR_MARGIN``): the account is liquidated when its total MM exceeds
  its margin balance (USD: wallet + unrealised PnL, as ``totalMarginBalance``). A position's
  ``liqPrice`` is then an account-level estimate: the price of that contract at which the
  margin balance would meet the total MM, every other price held where it is; its
  ``bustPrice`` the price at which the margin balance would reach zero. With ``D`` the
  headroom in the position's coin (USD headroom / the coin's USD price) and ``q`` the signed
  size at mark ``m``: linear ``p = m - D / q``; inverse ``1/p = 1/m + D / q``. A price at or
  below zero means the position alone cannot take the account there: ``liqPrice`` "".

Displayed prices are rounded to the tick toward the entry side (up for a long, down for a
short), so the displayed figure is never beyond the exact one.

The takeover (:meth:`Liquidation.check`, after every market move): the account's open
orders on the symbol are cancelled first (``cancelType`` ``CancelAllBeforeLiq``; the
position's own TP/SL go with the position, ``CancelByTpSlTsClear``), then the position is
closed at its bankruptcy price by a reduce-only IOC limit order created by the liquidation
engine (``createType`` ``CreateByTakeOver_PassThrough``, ``stopOrderType`` "") whose fill is
``execType`` ``BustTrade``, with no fee (the whole margin is taken). Its transaction-log row is
of type ``LIQUIDATION``. In isolated margin the wallet loses exactly the position's IM; in
cross margin the positions are taken over largest MM first, each at the account-level
bankruptcy price, which takes the account's margin balance to zero. Partial (laddered)
liquidation and auto-deleveraging (ADL) are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from ..bybit.numbers import shared
from ..config import InstrumentConfig
from ..instruments import CONTRACTS
from . import stops
from .accounts import ZERO, Account, Position
from .book import AccountBook, Ident
from .funds import log_fill
from .ledger import apply_fill
from .liq_prices import account_margin, cross_prices, isolated_prices, to_tick
from .margin import Margin
from .orders import Execution, Order
from .part import Part
from .pushes import Pushes
from .tpsl import PositionStops

TAKEOVER_CREATE_TYPE = "CreateByTakeOver_PassThrough"
CANCEL_BEFORE_LIQ = "CancelAllBeforeLiq"
BUST_TRADE = "BustTrade"
LOG_TYPE = "LIQUIDATION"


class Liquidation(Part):
    def __init__(
        self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int], stops_: PositionStops
    ) -> None:
        super().__init__(book, margin, pushes, clock)
        self.stops = stops_
        #: the marks and book version of the last check: nothing moved, nothing to look at
        self._seen: tuple[int, tuple[Decimal, ...]] | None = None

    def check(self, now_ms: int) -> bool:
        """Take over every position whose margin ran out (after a market move); whether any was."""
        marks = {ident: self.margin.mark(ident) for ident in self.instruments if ident[0] in CONTRACTS}
        seen = (self.book.version, tuple(marks.values()))
        if seen == self._seen:
            return False
        usd: dict[str, Decimal] = {}  # the coins' USD prices at this instant, looked up once
        done = False
        for account in self.book.accounts.values():
            if not any(p.size for p in account.positions.values()):
                continue
            if account.isolated:
                for key, pos in list(account.positions.items()):
                    inst = self.instruments[key[:2]]
                    if pos.size and self._isolated_short(pos, inst, marks[key[:2]]):
                        bust = to_tick(isolated_prices(pos, inst)[1], inst, pos.side)
                        self._take_over(account, inst, pos, bust, now_ms)
                        done = True
            else:
                balance, total_mm = account_margin(account, self.margin, marks, usd)
                if total_mm > balance:
                    self._take_over_cross(account, now_ms)
                    done = True
        self._seen = (self.book.version, seen[1])
        return done

    @staticmethod
    def _isolated_short(pos: Position, inst: InstrumentConfig, mark: Decimal) -> bool:
        """Whether the position's MM exceeds its margin (IM + unrealised PnL at the mark)."""
        return pos.maintenance_margin(inst) > pos.initial_margin() + pos.unrealised_pnl(mark)

    def _take_over_cross(self, account: Account, now_ms: int) -> None:
        """Every position of the account, largest MM first, each at the account-level
        bankruptcy price as it stands (the first takes the margin balance to zero; the
        others then close at their mark)."""
        held = [(key, pos) for key, pos in account.positions.items() if pos.size]
        held.sort(key=lambda kp: -kp[1].maintenance_margin(self.instruments[kp[0][:2]]))
        for key, pos in held:
            inst = self.instruments[key[:2]]
            balance, total_mm = account_margin(account, self.margin)
            mark = self.margin.mark(key[:2])
            bust = cross_prices(pos, inst, mark, balance, total_mm, self.margin.usd_price(inst.settle_coin))[1]
            self._take_over(account, inst, pos, to_tick(bust, inst, pos.side) or mark, now_ms)

    def _take_over(
        self, account: Account, inst: InstrumentConfig, pos: Position, bust: Decimal | None, now_ms: int
    ) -> None:
        """Cancel the account's orders on the symbol, then close ``pos`` at ``bust``."""
        ident: Ident = (inst.category, inst.symbol)
        mark = self.margin.mark(ident)
        price = bust if bust is not None else mark
        cancelled = self._cancel_orders(account, inst, now_ms)
        side = "Sell" if pos.side == "Buy" else "Buy"
        order = Order(
            self.book.ids.order_id(inst.category), "", account.api_key, inst.category, inst.symbol, side, "Limit",
            pos.size, price, "IOC", True, now_ms, mark, create_type=TAKEOVER_CREATE_TYPE,
            position_idx=pos.position_idx, updated_ms=now_ms,
        )  # fmt: skip
        self.book.register(order)
        qty = pos.size
        seq = self.book.ids.seq()
        result = apply_fill(account, inst, side, qty, price, ZERO, now_ms, seq, pos.position_idx)
        order.fill(qty, price, ZERO, now_ms)
        order.fee_coin = result.fee_coin
        order.closed_pnl = shared(result.pnl)
        execution = Execution(
            exec_id=self.book.ids.uuid(), order=order, price=price, qty=qty, fee=ZERO, fee_rate=ZERO,
            fee_coin=result.fee_coin, is_maker=False, time_ms=now_ms, mark_price=mark,
            closed_size=shared(result.closed_size), pnl=shared(result.pnl), seq=seq, order_qty=qty,
            order_price=price, leaves_qty=ZERO, exec_type=BUST_TRADE,
        )  # fmt: skip
        rows = [replace(r, type=LOG_TYPE) for r in log_fill(account, inst, execution, result, self.book.ids.seq)]
        self.book.record_fill(account, execution, rows)
        self.stops.clear(account, inst, pos, now_ms)  # its TP/SL go with it (CancelByTpSlTsClear)
        self.pushes.emit(account, inst, [*cancelled, order], [execution])

    def _cancel_orders(self, account: Account, inst: InstrumentConfig, now_ms: int) -> list[Order]:
        """The account's open orders on the symbol, cancelled before the takeover (a position's
        own TP/SL excepted: they are cleared with the position)."""
        ident = (inst.category, inst.symbol)
        found = [
            o
            for orders in (self.book.resting.get(ident, {}), self.book.triggers.get(ident, {}))
            for o in orders.values()
            if o.api_key == account.api_key and o.stop_order_type not in stops.POSITION_STOPS
        ]
        found.sort(key=lambda o: o.seq)
        for order in found:
            self.book.release(account, inst, order)
            order.close(now_ms, CANCEL_BEFORE_LIQ)
        return found
