"""Money outside order entry: margin mode, the funding wallet, transfers, deposits and the
unified wallet's transaction log.

* ``/v5/account/set-margin-mode``: ``REGULAR_MARGIN`` (cross, the default) or
  ``ISOLATED_MARGIN`` (positions lend no unrealised profit to the available balance).
  Portfolio margin is refused with Bybit's 3400045.
* ``/v5/asset/transfer/inter-transfer``: ``UNIFIED`` <-> ``FUND``; out of the unified wallet
  only what the margin does not need (131212), a transfer id once (131214).
* ``/v5/asset/deposit/query-record``: deposits a test made with the state API's
  ``deposit()``; they land in the funding wallet, as on Bybit.
* ``/v5/account/transaction-log``: a row per coin per fill and per transfer, newest first,
  with the coin's balance after it (``cashBalance``), so a client can reconcile its books.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..bybit import errors, params
from ..bybit.errors import BybitError
from ..bybit.numbers import fmt, parse_decimal, shared
from ..config import InstrumentConfig, to_decimal
from . import requests
from .accounts import ZERO, Account
from .book import trim_history
from .ledger import FillResult
from .orders import Execution
from .part import Part
from .records import Deposit, LogEntry, Transfer

MARGIN_MODES = ("REGULAR_MARGIN", "ISOLATED_MARGIN", "PORTFOLIO_MARGIN")
WALLETS = ("UNIFIED", "FUND")
_AMOUNT_STEP = Decimal("0.00000001")


def log_fill(
    account: Account, inst: InstrumentConfig, e: Execution, result: FillResult, seq: Callable[[], int]
) -> list[LogEntry]:
    """The transaction-log rows of one fill (after it): the settle coin's for a contract,
    both coins' for spot."""
    o = e.order

    def row(coin: str, flow: Decimal, fee: Decimal, qty: Decimal, size: Decimal = ZERO) -> LogEntry:
        return LogEntry(
            seq(), e.time_ms, "TRADE", coin, shared(flow), shared(fee), account.balance_of(coin).wallet,
            inst.category, inst.symbol, o.side, shared(qty), shared(size), e.price, e.fee_rate, e.exec_id,
            o.order_id, o.link_id,
        )  # fmt: skip

    if inst.category != "spot":  # cashFlow: the realised PnL; size: the position after, signed
        pos = account.positions.get((inst.category, inst.symbol, o.position_idx))
        return [row(inst.settle_coin, result.pnl, e.fee, e.qty, pos.signed_size if pos else ZERO)]
    value = e.qty * e.price
    base_flow, quote_flow = (e.qty, -value) if o.side == "Buy" else (-e.qty, value)
    base_fee, quote_fee = (e.fee, ZERO) if result.fee_coin == inst.base_coin else (ZERO, e.fee)
    return [
        row(inst.base_coin, base_flow, base_fee, base_flow - base_fee),
        row(inst.quote_coin, quote_flow, quote_fee, quote_flow - quote_fee),
    ]


class Funds(Part):
    # -- margin mode ------------------------------------------------------------------------

    def account_info(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/account/info``: a unified account (UTA 2.0) in its margin mode."""
        account = self.book.account(api_key)
        return {
            "marginMode": account.margin_mode,
            "updatedTime": str(account.margin_mode_ms),
            "unifiedMarginStatus": 6,  # UTA 2.0 (ccxt: >= 5)
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def set_margin_mode(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        account = self.book.account(api_key)
        mode = params.required(query, "setMarginMode")
        if mode not in MARGIN_MODES:
            raise errors.params_error(f"params error: setMarginMode must be one of {', '.join(MARGIN_MODES)}")
        if mode == "PORTFOLIO_MARGIN":
            raise BybitError(3400045, "Set margin mode failed: portfolio margin is not modelled by bybit-mock")
        if mode != account.margin_mode:
            account.margin_mode = mode
            account.margin_mode_ms = self._clock()
            self.book.touch()
            self.pushes.emit_wallet(account)  # the available balance moved
        return {"reasons": []}

    # -- funding wallet and transfers -------------------------------------------------------

    def transfer(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``POST /v5/asset/transfer/inter-transfer`` between ``UNIFIED`` and ``FUND``."""
        account = self.book.account(api_key)
        transfer_id = params.required(query, "transferId")
        coin = params.required(query, "coin").upper()
        source, target = params.required(query, "fromAccountType"), params.required(query, "toAccountType")
        for wallet in (source, target):
            if wallet not in WALLETS:
                raise BybitError(131203, f"Request parameter error: accountType {wallet} (bybit-mock: UNIFIED, FUND)")
        if source == target:
            raise BybitError(131211, "fromAccountType can't be the same as toAccountType")
        amount = parse_decimal(query.get("amount"))
        if amount is None or amount <= 0:
            raise BybitError(131215, "Amount error")
        if amount != amount.quantize(_AMOUNT_STEP):
            raise BybitError(131210, "Amount accuracy error")
        if any(t.transfer_id == transfer_id for t in account.transfers):
            raise BybitError(131214, "TransferId exist")
        if source == "FUND":
            if account.funding.get(coin, ZERO) < amount:
                raise BybitError(131212, "Insufficient balance")
        else:
            # what the margin needs stays: the coin's free part and the account's available
            unheld = account.balance_of(coin).unheld
            if amount > unheld or amount * self.margin.usd_price(coin) > self.margin.available(account):
                raise BybitError(131212, "Insufficient balance")
        sign = 1 if target == "UNIFIED" else -1
        account.funding[coin] = account.funding.get(coin, ZERO) - sign * amount
        bal = account.coin(coin)
        bal.wallet += sign * amount
        now = self._clock()
        account.transfers.append(Transfer(self.book.ids.seq(), transfer_id, coin, amount, source, target, now))
        trim_history(account.transfers, self.book.history_limit)
        kind = "TRANSFER_IN" if sign > 0 else "TRANSFER_OUT"
        row = LogEntry(self.book.ids.seq(), now, kind, coin, sign * amount, ZERO, bal.wallet, qty=sign * amount)
        self.book.log(account, [row])
        self.pushes.emit_wallet(account)
        return {"transferId": transfer_id, "status": "SUCCESS"}

    def transfer_list(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/asset/transfer/query-inter-transfer-list``, newest first."""
        account = self.book.account(api_key)
        transfer_id, coin = params.text(query, "transferId"), params.text(query, "coin")
        status = params.text(query, "status")
        start, end = requests.window(query, self._clock())
        found = [
            t
            for t in reversed(account.transfers)
            if transfer_id in (None, t.transfer_id)
            and coin in (None, t.coin)
            and status in (None, "SUCCESS")
            and start <= t.time_ms <= end
        ]
        chunk, cursor = params.page_records(found, query, 20, 50, lambda t: t.seq)
        return {"list": [t.item() for t in chunk], "nextPageCursor": cursor}

    def funding_balance(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/asset/transfer/query-account-coins-balance`` for ``FUND`` and ``UNIFIED``."""
        account = self.book.account(api_key)
        wallet = params.required(query, "accountType")
        if wallet not in WALLETS:
            raise errors.params_error(f"params error: accountType {wallet} (bybit-mock: UNIFIED, FUND)")
        coins = params.text(query, "coin")
        if wallet == "FUND":
            balances = dict(account.funding)
        else:
            balances = {name: bal.wallet for name, bal in account.coins.items()}
        wanted = None if coins is None else set(coins.upper().split(","))
        rows = []
        for name, amount in sorted(balances.items()):
            if wanted is not None and name not in wanted:
                continue
            free = amount if wallet == "FUND" else account.coins[name].unheld
            rows.append({"coin": name, "walletBalance": fmt(amount), "transferBalance": fmt(max(free, ZERO)),
                         "bonus": "0", "transferSafeAmount": "", "ltvTransferSafeAmount": ""})  # fmt: skip
        return {"accountType": wallet, "bizType": 1, "accountId": "", "memberId": "", "balance": rows}

    # -- deposits ---------------------------------------------------------------------------

    def deposit(self, api_key: str, coin: str, amount: Decimal | int | str, chain: str | None = None) -> str:
        """State API: an on-chain deposit of ``amount`` ``coin`` lands in the funding wallet;
        returns its transaction id (``deposit/query-record`` lists it)."""
        value = to_decimal(amount, "amount")
        if value <= 0:
            raise ValueError("amount must be > 0")
        account = self.book.account(api_key)
        coin = coin.upper()
        tx_id = self.book.ids.hex()
        account.deposits.append(Deposit(self.book.ids.seq(), coin, value, self._clock(), chain or coin, tx_id))
        account.funding[coin] = account.funding.get(coin, ZERO) + value
        self.book.touch()
        return tx_id

    def funding_balances(self, api_key: str) -> dict[str, Decimal]:
        """State API: the funding wallet, per coin."""
        return {coin: amount for coin, amount in self.book.account(api_key).funding.items() if amount}

    def deposit_records(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/asset/deposit/query-record``: default window the last 30 days, newest first."""
        account = self.book.account(api_key)
        coin = params.text(query, "coin")
        start, end = requests.window(query, self._clock(), days=30)
        found = [d for d in reversed(account.deposits) if coin in (None, d.coin) and start <= d.time_ms <= end]
        chunk, cursor = params.page_records(found, query, 50, 50, lambda d: d.seq)
        return {"rows": [d.item() for d in chunk], "nextPageCursor": cursor}

    def withdraw_records(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/asset/withdraw/query-record``: the mock takes no withdrawals, so the list is
        empty, but the query is checked as Bybit checks it (a 30-day window at most)."""
        self.book.account(api_key)
        requests.window(query, self._clock(), days=30)
        withdraw_type = params.integer(query, "withdrawType")
        if withdraw_type is not None and withdraw_type not in (0, 1, 2):
            raise errors.params_error("params error: withdrawType must be 0, 1 or 2")
        return {"rows": [], "nextPageCursor": ""}

    # -- transaction log --------------------------------------------------------------------

    def transaction_log(self, api_key: str, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/account/transaction-log`` of the unified wallet, newest first."""
        account = self.book.account(api_key)
        if params.text(query, "accountType") not in (None, "UNIFIED"):
            raise errors.params_error("params error: accountType only supports UNIFIED")
        category, currency = params.text(query, "category"), params.text(query, "currency")
        base, kind = params.text(query, "baseCoin"), params.text(query, "type")
        start, end = requests.window(query, self._clock())
        found = [
            row
            for row in reversed(account.log)
            if category in (None, row.category)
            and currency in (None, row.currency)
            and kind in (None, row.type)
            and (base is None or row.symbol.startswith(base))
            and start <= row.time_ms <= end
        ]
        chunk, cursor = params.page_records(found, query, 20, 50, lambda row: row.seq)
        return {"list": [row.item() for row in chunk], "nextPageCursor": cursor}
