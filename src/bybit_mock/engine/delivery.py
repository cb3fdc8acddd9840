"""Delivery: what happens to a dated future at its ``deliveryTime``.

The engine's ``_advance`` runs :meth:`Delivery.run_due` once the clock passes a contract's
delivery time (the clock thread advances the engine even when no request comes). For every
account, in one change:

* its open orders on the contract are cancelled (``cancelType`` ``CancelBySettle``; the
  position's TP/SL first, as when a position closes: ``CancelByTpSlTsClear``);
* each open position is closed at the **delivery price**, the contract's index price at the
  moment of delivery (Bybit settles at the average index of the last 30 minutes: the mock
  takes the index at expiry, so a test can predict the figure from one ticker);
* the realised PnL (``pnl_of``: linear ``(price - entry) x size``, inverse
  ``size x (1/entry - 1/price)``, sign by side) less the delivery fee (``deliveryFeeRate`` x
  the delivered value) moves the settle coin's wallet balance, and is counted in
  ``cumRealisedPnl``;
* a transaction-log row of type ``DELIVERY`` (``cashFlow`` the PnL, ``fee`` the fee, ``side``
  the closing side, ``size`` 0 after it) and a ``/v5/asset/delivery-record`` row;
* one push of the cancelled orders, the position (now flat) and the wallet.

The contract then refuses new orders with Bybit's 110074 (``trading.py`` checks the delivery
time itself, so the refusal needs no state) and ``instruments-info`` lists it as ``Closed``.
The market model keeps streaming (there is no way for a stream to say "delivered").
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..bybit import params
from ..bybit.errors import BybitError
from ..instruments import CONTRACTS, InstrumentConfig
from . import requests
from .accounts import ZERO, Account, notional, pnl_of
from .book import AccountBook, trim_history
from .margin import Margin
from .orders import Order
from .part import Part
from .pushes import Pushes
from .records import DeliveryRecord, LogEntry
from .tpsl import PositionStops

#: Bybit's "This contract is not live": an order on a delivered contract
NOT_LIVE = 110074
#: categories ``/v5/asset/delivery-record`` answers (options are never held in the mock)
RECORD_CATEGORIES = ("inverse", "linear", "option")


def refuse_if_delivered(inst: InstrumentConfig, now_ms: int) -> None:
    """110074 for an order on a contract past its delivery time."""
    if inst.dated and inst.delivery_time_ms <= now_ms:
        raise BybitError(NOT_LIVE, "This contract is not live")


class Delivery(Part):
    def __init__(
        self, book: AccountBook, margin: Margin, pushes: Pushes, clock: Callable[[], int], stops: PositionStops
    ) -> None:
        super().__init__(book, margin, pushes, clock)
        self.stops = stops
        #: (delivery time, category, symbol) of the contracts still to deliver, soonest last
        dated = [(i.delivery_time_ms, *ident) for ident, i in self.instruments.items() if i.dated]
        self.pending = sorted((d for d in dated if d[1] in CONTRACTS), reverse=True)

    def due(self, now_ms: int) -> bool:
        return bool(self.pending) and self.pending[-1][0] <= now_ms

    def run_due(self, now_ms: int) -> None:
        """Deliver every contract whose time has come (the caller commits the pushes)."""
        while self.due(now_ms):
            _, category, symbol = self.pending.pop()
            self.deliver(self.instruments[(category, symbol)], now_ms)

    def deliver(self, inst: InstrumentConfig, now_ms: int) -> None:
        price = self.margin.markets.models[(inst.category, inst.symbol)].index_price()
        for account in self.book.accounts.values():
            orders = self._cancel_orders(account, inst, now_ms)
            held = [
                p
                for idx in account.position_indices(inst.category, inst.symbol)
                if (p := account.positions.get((inst.category, inst.symbol, idx))) is not None and p.size
            ]
            for pos in held:
                self.stops.clear(account, inst, pos, now_ms)
                self._settle(account, inst, pos, price, now_ms)
            if orders or held:
                self.book.touch()
                self.pushes.emit(account, inst, orders, [])

    def _cancel_orders(self, account: Account, inst: InstrumentConfig, now_ms: int) -> list[Order]:
        ident = (inst.category, inst.symbol)
        mine = sorted(
            (o for books in (self.book.resting, self.book.triggers) for o in books.get(ident, {}).values()
             if o.api_key == account.api_key),
            key=lambda o: o.seq,
        )  # fmt: skip
        for order in mine:
            self.book.release(account, inst, order)
            order.close(now_ms, "CancelBySettle")
        return mine

    def _settle(self, account: Account, inst: InstrumentConfig, pos: Any, price: Decimal, now_ms: int) -> None:
        """Close ``pos`` at ``price``: PnL less the fee to the wallet, the two records."""
        size, side = pos.size, pos.side
        pnl = pnl_of(inst.category, pos.signed_size, pos.entry_price, price)
        fee = notional(inst.category, size, price) * inst.delivery_fee_rate
        net = pnl - fee
        coin = account.coin(inst.settle_coin)
        coin.wallet += net
        coin.cum_realised_pnl += net
        pos.cur_realised_pnl = net
        pos.cum_realised_pnl += net
        pos.size = ZERO
        pos.entry_price = ZERO
        pos.updated_ms = now_ms
        seq = self.book.ids.seq
        pos.seq = seq()
        closing = "Sell" if side == "Buy" else "Buy"
        row = LogEntry(
            seq(), now_ms, "DELIVERY", inst.settle_coin, pnl, fee, coin.wallet, inst.category, inst.symbol, closing,
            size, ZERO, price, inst.delivery_fee_rate,
        )  # fmt: skip
        self.book.log(account, [row])
        record = DeliveryRecord(
            seq(), inst.delivery_time_ms, inst.category, inst.symbol, side, size, price, inst.strike, fee, pnl
        )
        account.deliveries.append(record)
        trim_history(account.deliveries, self.book.history_limit)

    def delivery_record(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/asset/delivery-record``: the account's deliveries, newest first (default
        window the last 30 days, ``limit`` up to 50, default 20)."""
        account = self.book.account(api_key)
        category = params.category(query, RECORD_CATEGORIES)
        symbol, exp = params.text(query, "symbol"), params.text(query, "expDate")
        start, end = requests.window(query, self._clock(), days=30)
        found = [
            r
            for r in reversed(account.deliveries)
            if r.category == category
            and symbol in (None, r.symbol)
            and (exp is None or exp in r.symbol)
            and start <= r.time_ms <= end
        ]
        chunk, cursor = params.page_records(found, query, 20, 50, lambda r: r.seq)
        return {"category": category, "list": [r.item() for r in chunk], "nextPageCursor": cursor}
