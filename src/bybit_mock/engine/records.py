"""What an account's money did, kept for the query endpoints: the unified wallet's
transaction log, transfers between the unified and funding wallets, and deposits.

Records are immutable once written; the engine appends them as money moves (a fill, a
transfer, a deposit through the state API) and the endpoints filter and page them. Each
carries ``seq``, from the engine-wide record sequence: lists are newest first by it, and a
page cursor names the last record's ``seq``, so paging never repeats or skips a record
whatever is appended or pruned meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..bybit.numbers import fmt


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One ``/v5/account/transaction-log`` row: one coin's balance change."""

    seq: int
    time_ms: int
    type: str  # TRADE, SETTLEMENT (funding), TRANSFER_IN, TRANSFER_OUT
    currency: str
    cash_flow: Decimal  # gross: realised PnL of a contract fill, coins in or out of a spot fill
    fee: Decimal
    cash_balance: Decimal  # the coin's wallet balance after this change
    category: str = ""
    symbol: str = ""
    side: str = "None"
    qty: Decimal = Decimal(0)
    size: Decimal = Decimal(0)  # contracts: the position after the fill, signed (short < 0)
    trade_price: Decimal = Decimal(0)
    fee_rate: Decimal = Decimal(0)
    trade_id: str = ""
    order_id: str = ""
    order_link_id: str = ""
    #: a SETTLEMENT row's funding payment: > 0 paid, < 0 received (Bybit's sign)
    funding: Decimal = Decimal(0)

    @property
    def id(self) -> str:
        return str(self.seq)

    @property
    def change(self) -> Decimal:
        """Bybit's ``change = cashFlow - funding - fee``."""
        return self.cash_flow - self.funding - self.fee

    def item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "symbol": self.symbol,
            "category": self.category,
            "side": self.side,
            "transactionTime": str(self.time_ms),
            "type": self.type,
            "transSubType": "",
            "qty": fmt(self.qty),
            "size": fmt(self.size),
            "currency": self.currency,
            "tradePrice": fmt(self.trade_price),
            "funding": fmt(self.funding),
            "fee": fmt(self.fee),
            "cashFlow": fmt(self.cash_flow),
            "change": fmt(self.change),
            "cashBalance": fmt(self.cash_balance),
            "feeRate": fmt(self.fee_rate),
            "bonusChange": "0",
            "tradeId": self.trade_id,
            "orderId": self.order_id,
            "orderLinkId": self.order_link_id,
            "extraFees": "",
        }


@dataclass(frozen=True, slots=True)
class Transfer:
    """An internal transfer (``/v5/asset/transfer/inter-transfer``)."""

    seq: int
    transfer_id: str
    coin: str
    amount: Decimal
    from_type: str
    to_type: str
    time_ms: int

    def item(self) -> dict[str, Any]:
        return {
            "transferId": self.transfer_id,
            "coin": self.coin,
            "amount": fmt(self.amount),
            "fromAccountType": self.from_type,
            "toAccountType": self.to_type,
            "timestamp": str(self.time_ms),
            "status": "SUCCESS",
        }


@dataclass(frozen=True, slots=True)
class Deposit:
    """An on-chain deposit credited to the funding wallet (made by a test through the state API)."""

    seq: int
    coin: str
    amount: Decimal
    time_ms: int
    chain: str
    tx_id: str

    def item(self) -> dict[str, Any]:
        return {
            "id": str(self.seq),
            "coin": self.coin,
            "chain": self.chain,
            "amount": fmt(self.amount),
            "txID": self.tx_id,
            "status": 3,  # success
            "toAddress": "",
            "tag": "",
            "depositFee": "",
            "successAt": str(self.time_ms),
            "confirmations": "10000",
            "txIndex": "0",
            "blockHash": "",
            "batchReleaseLimit": "-1",
            "depositType": "0",
            "fromAddress": "",
        }


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One position delivered at its contract's expiry (``/v5/asset/delivery-record``)."""

    seq: int
    time_ms: int  # the contract's delivery time
    category: str
    symbol: str
    side: str  # the position's side
    position: Decimal  # its size
    delivery_price: Decimal
    strike: Decimal  # options only (0 for a future: shown as "")
    fee: Decimal
    rpl: Decimal  # realised PnL of the delivery, before the fee

    def item(self) -> dict[str, Any]:
        return {
            "deliveryTime": self.time_ms,
            "symbol": self.symbol,
            "side": self.side,
            "position": fmt(self.position),
            "deliveryPrice": fmt(self.delivery_price),
            "strike": fmt(self.strike) if self.strike else "",
            "fee": fmt(self.fee),
            "deliveryRpl": fmt(self.rpl),
        }
