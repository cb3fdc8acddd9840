"""Prices and margin: what an order needs, what an account has free, and the checks between.

Every check here only reads: it answers with a figure or raises Bybit's refusal, and the
caller changes state only after every check of a request has passed. That is what makes a
refused request leave the engine as it was (see ``exchange.py``).

* A **spot** order pays from one coin (quote for a buy, base for a sell); it needs what it
  may spend and has what that coin holds free (wallet - locked).
* A **contract** order needs initial margin on the part that opens a position (the part that
  closes one needs none) plus the taker fee; a linear order is checked against the account's
  available balance (USD), an inverse one against its own coin's free margin, as in Bybit's
  unified account.
* ``credit`` gives back, for the check only, what an order being amended holds now: the
  amended order replaces it.
"""

from __future__ import annotations

from decimal import Decimal

from ..bybit import errors
from ..bybit.errors import BybitError
from ..config import InstrumentConfig
from ..market.markets import Markets
from .accounts import ZERO, Account, Valuation, free_by_coin, notional
from .book import Ident, spent_coin
from .ledger import DEFAULT_LEVERAGE
from .matching import Plan, filled_qty
from .orders import Order

_STABLECOINS = frozenset({"USDT", "USDC"})
_ONE = Decimal(1)


def insufficient(category: str) -> BybitError:
    if category == "spot":
        return BybitError(170131, "Insufficient balance.")
    return BybitError(errors.AB_NOT_ENOUGH, "ab not enough for new order")


def needed(
    account: Account,
    inst: InstrumentConfig,
    order: Order,
    qty: Decimal,
    price: Decimal,
    leverage: Decimal | None = None,
) -> Decimal:
    """What ``qty`` more of ``order`` at ``price`` may cost: coin for spot, initial margin and
    the taker fee for contracts (``leverage``: as if the position had it)."""
    if inst.category == "spot":
        if order.side == "Sell":
            return qty
        return qty * price * (1 + inst.taker_fee)
    if order.reduce_only:
        return ZERO
    pos = account.positions.get((inst.category, inst.symbol, order.position_idx))
    opening = qty
    if pos is not None and pos.size and pos.side != order.side:
        opening = max(ZERO, qty - pos.size)  # the part that closes needs no margin
    if leverage is None:
        leverage = pos.leverage if pos is not None else DEFAULT_LEVERAGE
    value = notional(inst.category, opening, price)
    return value / leverage + value * inst.taker_fee


class Margin:
    def __init__(self, instruments: dict[Ident, InstrumentConfig], markets: Markets) -> None:
        self.instruments = instruments
        self.markets = markets

    # -- prices -----------------------------------------------------------------------------

    def mark(self, ident: Ident) -> Decimal:
        """A listed symbol's price as it stands (no advance: see ``Exchange.mark_prices``)."""
        return self.markets.models[ident].mark_price()

    def last(self, ident: Ident) -> Decimal:
        """A listed symbol's last trade price (what market orders and trailing stops go by)."""
        return self.markets.models[ident].last_price()

    def watched_prices(self, ident: Ident) -> dict[str, Decimal]:
        """The three prices a trigger may watch, by ``triggerBy``."""
        model = self.markets.models[ident]
        return {"LastPrice": model.last_price(), "MarkPrice": model.mark_price(), "IndexPrice": model.index_price()}

    def usd_price(self, coin: str) -> Decimal:
        if coin in _STABLECOINS:
            return _ONE
        for category in ("spot", "linear"):
            price = self.markets.mark_price((category, f"{coin}USDT"))
            if price is not None:
                return price
        return ZERO

    # -- what an account has ----------------------------------------------------------------

    def valuation(self, account: Account) -> Valuation:
        coins = set(account.coins) | {self.instruments[i[:2]].settle_coin for i in account.positions}
        return Valuation(account, self.instruments, self.markets.mark_prices(), {c: self.usd_price(c) for c in coins})

    def free_by_coin(self, account: Account, credit: dict[str, Decimal] | None = None) -> dict[str, Decimal]:
        per_coin = free_by_coin(account, self.instruments, self.mark)
        for coin, amount in (credit or {}).items():
            per_coin[coin] = per_coin.get(coin, ZERO) + amount
        return per_coin

    def available(self, account: Account, credit: dict[str, Decimal] | None = None) -> Decimal:
        """``Valuation(...).total_available`` without building the views or every mark.

        The margin check of every contract order needs this one figure; the views cost four
        times as much. Same sums, grouped per coin: USD x (wallet + uPnL - position IM -
        order IM), uPnL left out in isolated margin mode.
        """
        per_coin = self.free_by_coin(account, credit)
        return max(ZERO, sum((self.usd_price(coin) * value for coin, value in per_coin.items() if value), ZERO))

    # -- checks -----------------------------------------------------------------------------

    def check_funds(
        self, account: Account, inst: InstrumentConfig, order: Order, plan: Plan, credit: Decimal = ZERO
    ) -> None:
        """Refuse (110007 / 170131) an order the account cannot pay for; ``plan`` is what a
        market order would take, ``credit`` what the order holds now (an amend)."""
        if inst.category == "spot":
            bal = account.balance_of(spent_coin(inst, order.side))
            free = bal.wallet - bal.locked + credit
            if order.order_type == "Market":
                if order.side == "Buy":
                    cost = sum((p * q for p, q in plan), ZERO) * (1 + inst.taker_fee)
                else:
                    cost = filled_qty(plan)
            else:
                cost = needed(account, inst, order, order.leaves_qty, order.price)
            if cost > free:
                raise insufficient("spot")
            return
        if order.order_type == "Market":
            worst = plan[-1][0] if plan else order.last_price_on_created
            cost = needed(account, inst, order, order.qty, worst)
        else:
            cost = needed(account, inst, order, order.leaves_qty, order.price)
        if cost <= 0:
            return
        back = {inst.settle_coin: credit} if credit else None
        if inst.category == "inverse":  # margined by its own coin
            if cost > self.free_by_coin(account, back).get(inst.settle_coin, ZERO):
                raise insufficient(inst.category)
        elif cost > self.available(account, back):
            raise insufficient(inst.category)

    def stop_hold(self, account: Account, inst: InstrumentConfig, order: Order, credit: Decimal = ZERO) -> Decimal:
        """What a conditional order holds while it waits: nothing (Bybit takes margin when it
        triggers), except a spot ``tpslOrder``, which holds its coin from the start (170131 if
        the coin is not there)."""
        if order.stop_order_type != "tpslOrder":
            return ZERO
        ref = order.price or order.trigger_price
        qty = order.qty / ref if order.market_unit == "quoteCoin" else order.qty
        cost = needed(account, inst, order, qty, ref)
        bal = account.balance_of(spent_coin(inst, order.side))
        if cost > bal.wallet - bal.locked + credit:
            raise insufficient("spot")
        return cost
