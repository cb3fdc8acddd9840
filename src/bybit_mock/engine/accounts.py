"""Accounts: coin balances and positions, and the margin arithmetic that derives from them.

The model is Bybit's unified trading account (UTA), simplified:

* a linear position's value is ``size * entry_price``; its initial margin (IM) is
  ``value / leverage`` and its maintenance margin (MM) ``value * mmr``; its unrealised PnL is
  ``(mark - entry) * size`` for a long and the opposite for a short; an inverse position's
  value is ``size / entry_price`` in its coin and its PnL ``size * (1/entry - 1/mark)``;
* a coin's equity is its wallet balance plus the unrealised PnL of positions settled in it;
* the account's margin balance is the USD value of wallet balances plus unrealised PnL, and
  its available balance is margin balance minus all initial margin (positions and orders);
  in isolated margin mode unrealised PnL is left out of the available balance;
* one-way mode holds a position per symbol (``positionIdx`` 0), hedge mode a long (1) and a
  short (2).

Collateral haircuts and borrowing are not modelled; liquidation is ``liquidation.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from ..config import AccountConfig, InstrumentConfig
from .records import DeliveryRecord, Deposit, LogEntry, Transfer
from .views import CoinView, PositionView

ZERO = Decimal(0)

#: a position's key in ``Account.positions``: (category, symbol, positionIdx). One-way mode
#: holds index 0; hedge mode holds 1 (the long) and 2 (the short).
PosKey = tuple[str, str, int]
#: the side each hedge-mode index opens
HEDGE_SIDES = {1: "Buy", 2: "Sell"}


def notional(category: str, qty: Decimal, price: Decimal) -> Decimal:
    """``qty`` at ``price`` in the settle coin: ``qty x price``, except inverse contracts,
    whose quantity is in USD and whose value is in the coin (``qty / price``)."""
    if category == "inverse":
        return qty / price if price else ZERO
    return qty * price


def pnl_of(category: str, signed_qty: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
    """Profit of ``signed_qty`` (long > 0) opened at ``entry`` and closed at ``exit_price``, in
    the settle coin: ``(exit - entry) x qty``, or ``qty x (1/entry - 1/exit)`` for inverse."""
    if category == "inverse":
        return signed_qty * (1 / entry - 1 / exit_price) if entry and exit_price else ZERO
    return (exit_price - entry) * signed_qty


@dataclass
class CoinBalance:
    wallet: Decimal
    cum_realised_pnl: Decimal = ZERO
    #: Spot sell orders lock the coin they sell; linear orders lock margin (order IM) instead.
    locked: Decimal = ZERO
    order_im: Decimal = ZERO

    @property
    def unheld(self) -> Decimal:
        """The wallet balance no open order holds (spot locks and contract order margin)."""
        return self.wallet - self.locked - self.order_im


@dataclass
class Position:
    category: str
    symbol: str
    side: str
    size: Decimal
    entry_price: Decimal
    leverage: Decimal
    created_ms: int
    updated_ms: int
    seq: int = 0
    cum_realised_pnl: Decimal = ZERO
    cur_realised_pnl: Decimal = ZERO
    position_idx: int = 0
    #: the position's own TP, SL (prices) and trailing stop (a distance); 0 = none
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    trailing_stop: Decimal = ZERO

    def view(self, mark: Decimal) -> PositionView:
        """This position marked at ``mark`` (a flat one shows side "")."""
        return PositionView(
            self.category,
            self.symbol,
            self.side if self.size else "",
            self.size,
            self.entry_price,
            self.leverage,
            mark,
            self.unrealised_pnl(mark),
            self.cum_realised_pnl,
            self.position_idx,
        )

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "Buy" else -self.size

    def value(self) -> Decimal:
        return notional(self.category, self.size, self.entry_price)

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        return pnl_of(self.category, self.signed_size, self.entry_price, mark) if self.size else ZERO

    def initial_margin(self) -> Decimal:
        return self.value() / self.leverage if self.size else ZERO

    def maintenance_margin(self, inst: InstrumentConfig) -> Decimal:
        return self.value() * inst.maintenance_margin_rate


@dataclass
class Account:
    api_key: str
    secret: str
    coins: dict[str, CoinBalance] = field(default_factory=dict)
    positions: dict[PosKey, Position] = field(default_factory=dict)
    #: (category, symbol) in hedge mode (``switch-mode`` 3); the others are one-way
    hedged: set[tuple[str, str]] = field(default_factory=set)
    #: REGULAR_MARGIN (cross) or ISOLATED_MARGIN: isolated positions lend no unrealised
    #: profit to the available balance (their losses stay in their own margin)
    margin_mode: str = "REGULAR_MARGIN"
    margin_mode_ms: int = 0
    #: the funding wallet (``FUND``): deposits land here; transfers move coins to trading
    funding: dict[str, Decimal] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    deposits: list[Deposit] = field(default_factory=list)
    #: positions delivered at their contract's expiry (``delivery.py``)
    deliveries: list[DeliveryRecord] = field(default_factory=list)

    @property
    def isolated(self) -> bool:
        return self.margin_mode == "ISOLATED_MARGIN"

    @classmethod
    def from_config(cls, cfg: AccountConfig, now_ms: int) -> Account:
        acct = cls(cfg.api_key, cfg.api_secret, {c: CoinBalance(v) for c, v in cfg.balances.items()})
        acct.margin_mode_ms = now_ms
        for p in cfg.positions:
            acct.positions[(p.category, p.symbol, 0)] = Position(
                p.category, p.symbol, p.side, p.size, p.entry_price, p.leverage, now_ms, now_ms
            )
        return acct

    def position_indices(self, category: str, symbol: str) -> tuple[int, ...]:
        """The positionIdx values this symbol's mode holds: (0,) one-way, (1, 2) hedge."""
        return (1, 2) if (category, symbol) in self.hedged else (0,)

    def balance_of(self, name: str) -> CoinBalance:
        """A coin's balance to read: a zero one, not stored, if the account holds none.

        Checks and queries use this; only what really moves money uses :meth:`coin`, so a
        refused order or a read never leaves an empty coin row behind."""
        return self.coins.get(name) or CoinBalance(ZERO)

    def coin(self, name: str) -> CoinBalance:
        """A coin's balance to change, created (at zero) on first use."""
        bal = self.coins.get(name)
        if bal is None:
            bal = self.coins[name] = CoinBalance(ZERO)
        return bal


class Valuation:
    """Marks an account to market: per-coin views and account totals, in USD."""

    def __init__(
        self,
        account: Account,
        instruments: dict[tuple[str, str], InstrumentConfig],
        mark: dict[tuple[str, str], Decimal],
        usd_price: dict[str, Decimal],
    ) -> None:
        upl: dict[str, Decimal] = {}
        im: dict[str, Decimal] = {}
        mm: dict[str, Decimal] = {}
        self.positions: list[PositionView] = []
        for ident, pos in account.positions.items():
            inst = instruments[ident[:2]]
            coin = inst.settle_coin
            view = pos.view(mark[ident[:2]])
            upl[coin] = upl.get(coin, ZERO) + view.unrealised_pnl
            im[coin] = im.get(coin, ZERO) + pos.initial_margin()
            mm[coin] = mm.get(coin, ZERO) + pos.maintenance_margin(inst)
            self.positions.append(view)
        self.coins: list[CoinView] = []
        for name in sorted(set(account.coins) | set(upl)):
            bal = account.coins.get(name) or CoinBalance(ZERO)
            pnl = upl.get(name, ZERO)
            self.coins.append(
                CoinView(
                    name,
                    bal.wallet,
                    bal.wallet + pnl,
                    pnl,
                    bal.cum_realised_pnl,
                    im.get(name, ZERO),
                    mm.get(name, ZERO),
                    bal.order_im,
                    bal.locked,
                    usd_price.get(name, ZERO),
                )
            )
        self.total_wallet = sum((c.wallet_balance * c.usd_price for c in self.coins), ZERO)
        self.total_upl = sum((c.unrealised_pnl * c.usd_price for c in self.coins), ZERO)
        self.total_equity = sum((c.usd_value for c in self.coins), ZERO)
        self.total_margin = self.total_wallet + self.total_upl
        self.total_im = sum(((c.position_im + c.order_im) * c.usd_price for c in self.coins), ZERO)
        self.total_mm = sum((c.position_mm * c.usd_price for c in self.coins), ZERO)
        # isolated margin: a position's unrealised PnL stays with it (see Account.margin_mode)
        usable = self.total_wallet if account.isolated else self.total_margin
        #: may be negative (a loss ate the margin); Bybit shows the clipped total_available
        self.unclipped_available = usable - self.total_im
        self.total_available = max(ZERO, self.unclipped_available)

    def rate(self, margin: Decimal) -> Decimal:
        return (margin / self.total_margin).quantize(Decimal("0.0001")) if self.total_margin > 0 else ZERO


def free_by_coin(
    account: Account,
    instruments: dict[tuple[str, str], InstrumentConfig],
    mark_of: Callable[[tuple[str, str]], Decimal],
) -> dict[str, Decimal]:
    """Per coin, in that coin: wallet + uPnL - position IM - order IM (may be negative).

    An inverse contract's margin is its own coin (as in Bybit's unified account), so an
    inverse order is checked against its coin's figure rather than the USD total.
    """
    per_coin = {name: bal.wallet - bal.order_im for name, bal in account.coins.items()}
    for ident, pos in account.positions.items():
        if pos.size:
            coin = instruments[ident[:2]].settle_coin
            upl = ZERO if account.isolated else pos.unrealised_pnl(mark_of(ident[:2]))
            per_coin[coin] = per_coin.get(coin, ZERO) + upl - pos.initial_margin()
    return per_coin
