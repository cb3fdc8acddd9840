"""Position settings: leverage and position mode (one-way or hedge).

Both are checked whole before they change anything: ``set-leverage`` computes the margin the
positions and their resting orders would need at the new leverage and refuses (110044)
before moving a thing.
"""

from __future__ import annotations

from typing import Any

from ..bybit import errors, params
from ..bybit.errors import BybitError
from ..config import InstrumentConfig
from ..instruments import CONTRACTS
from . import margin as margins
from . import requests
from .accounts import ZERO, Account
from .ledger import DEFAULT_LEVERAGE, position_of
from .part import Part


class PositionSettings(Part):
    def set_leverage(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/set-leverage``: buy and sell leverage are equal (cross margin);
        in hedge mode both of the symbol's positions take it."""
        account = self.book.account(api_key)
        inst = requests.traded(self.instruments, query, CONTRACTS)
        leverage = requests.leverage(query, inst)
        ident = (inst.category, inst.symbol)
        indices = account.position_indices(*ident)
        held = [account.positions.get((*ident, i)) for i in indices]
        if all((p.leverage if p is not None else DEFAULT_LEVERAGE) == leverage for p in held):
            raise BybitError(110043, "Set leverage not modified")
        orders = [o for o in self.book.resting.get(ident, {}).values() if o.api_key == api_key]
        holds = [margins.needed(account, inst, o, o.leaves_qty, o.price, leverage) for o in orders]
        # the settle coin's extra initial margin, positions and resting orders together
        extra = sum((p.value() / leverage - p.initial_margin() for p in held if p is not None and p.size), ZERO)
        extra += sum((new - o.held for o, new in zip(orders, holds, strict=True)), ZERO)
        after = self.margin.valuation(account).unclipped_available - extra * self.margin.usd_price(inst.settle_coin)
        if after < 0:
            raise BybitError(110044, "Available margin is insufficient")
        now = self._clock()
        for idx in indices:
            pos = position_of(account, inst, now, idx)
            pos.leverage = leverage
            pos.updated_ms = now
        for order, amount in zip(orders, holds, strict=True):
            self.book.rehold(account, inst, order, amount)
        self.book.touch()
        self.pushes.emit(account, inst, [], [])
        return {}

    def switch_mode(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/position/switch-mode``: one-way (0) or hedge (3), by symbol or settle coin.

        A symbol switches only with no position and no open order (110024, 110028); by coin,
        the symbols that can switch do and the others stay, as Bybit does. Inverse contracts
        are one-way only in the unified account (110029).
        """
        account = self.book.account(api_key)
        category = params.category(query, CONTRACTS)
        mode = params.integer(query, "mode")
        if mode not in (0, 3):
            raise errors.params_error("params error: mode must be 0 or 3")
        hedge = mode == 3
        symbol, coin = params.text(query, "symbol"), params.text(query, "coin")
        if symbol is None and coin is None:
            raise errors.params_error("params error: symbol or coin is required")
        if hedge and category == "inverse":
            raise BybitError(110029, "Hedge mode is not available for this symbol")
        if symbol is not None:  # a symbol takes priority over a coin
            inst = requests.traded(self.instruments, query, CONTRACTS)
            if ((category, symbol) in account.hedged) == hedge:
                raise BybitError(110025, "Position mode is not modified")
            if _holds_position(account, inst):
                raise BybitError(110024, "You have an existing position, so position mode cannot be switched")
            if self.book.has_open_orders(api_key, (category, symbol)):
                raise BybitError(110028, "Open orders exist, so you cannot change position mode")
            self._switch(account, inst, hedge)
            return {}
        for inst in [i for i in self.instruments.values() if i.category == category and i.settle_coin == coin]:
            ident = (inst.category, inst.symbol)
            if not _holds_position(account, inst) and not self.book.has_open_orders(api_key, ident):
                self._switch(account, inst, hedge)
        return {}

    def _switch(self, account: Account, inst: InstrumentConfig, hedge: bool) -> None:
        """Flat positions of the old mode give way to the new mode's, at the same leverage."""
        now = self._clock()
        old = [account.positions.pop((inst.category, inst.symbol, i), None) for i in (0, 1, 2)]
        leverage = next((p.leverage for p in old if p is not None), DEFAULT_LEVERAGE)
        (account.hedged.add if hedge else account.hedged.discard)((inst.category, inst.symbol))
        for idx in account.position_indices(inst.category, inst.symbol):
            position_of(account, inst, now, idx).leverage = leverage
        self.book.touch()


def _holds_position(account: Account, inst: InstrumentConfig) -> bool:
    """Whether any of the account's positions in this instrument (either mode's) is open."""
    return any(p.size for key, p in account.positions.items() if key[:2] == (inst.category, inst.symbol))
