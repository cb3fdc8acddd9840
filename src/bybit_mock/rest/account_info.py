"""Account and asset endpoints whose answer is configuration, answered by the worker.

* ``/v5/asset/coin/query-info``: ``load_markets`` fetches currencies when keys are set;
* ``/v5/user/query-api``: ccxt's ``is_unified_enabled()`` reads ``uta``/``unified`` before
  trading or fetching balances (``/v5/account/info``, which holds the margin mode, is the
  engine's);
* ``/v5/account/fee-rate``: the configured maker and taker fees, which fills charge.

The mock's accounts are unified trading accounts (UTA 2.0). Shapes follow the docs and
ccxt's recorded fixtures.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..bybit import errors, params
from ..bybit.numbers import fmt
from ..config import MockExchangeConfig
from ..instruments import CATEGORIES
from .app import Call, HandlerResult

#: Per coin: (network, confirmations, withdraw fee, withdraw min, decimals).
_CHAINS: dict[str, tuple[str, str, str, str, str]] = {
    "BTC": ("BTC", "1", "0.0002", "0.0005", "8"),
    "ETH": ("ETH", "12", "0.0012", "0.0025", "8"),
    "USDT": ("ETH", "12", "5", "10", "4"),
    "USDC": ("ETH", "12", "5", "10", "4"),
}


def user_id(api_key: str) -> int:
    """A stable, made-up UID per API key (Bybit UIDs are 6-9 digit numbers)."""
    return 100_000_000 + int.from_bytes(hashlib.sha256(api_key.encode()).digest()[:4], "big") % 900_000_000


class CoinInfo:
    def __init__(self, config: MockExchangeConfig) -> None:
        # "USD" (an inverse contract's quote) is a unit of account, not a coin one holds
        coins = sorted({c for i in config.instruments for c in (i.base_coin, i.quote_coin)} - {"USD"})
        self.rows = [self._row(c) for c in coins]

    @staticmethod
    def _row(coin: str) -> dict[str, Any]:
        chain, confirmations, fee, minimum, decimals = _CHAINS.get(coin, (coin, "1", "0", "0", "8"))
        return {
            "name": coin,
            "coin": coin,
            "remainAmount": "50000000000",
            "chains": [
                {
                    "chainType": chain,
                    "confirmation": confirmations,
                    "withdrawFee": fee,
                    "depositMin": "0",
                    "withdrawMin": minimum,
                    "chain": chain,
                    "chainDeposit": "1",
                    "chainWithdraw": "1",
                    "minAccuracy": decimals,
                    "withdrawPercentageFee": "0",
                    "contractAddress": "",
                }
            ],
        }

    def __call__(self, call: Call) -> HandlerResult:
        coin = params.text(call.params, "coin")
        rows = self.rows if coin is None else [r for r in self.rows if r["coin"] == coin.upper()]
        return orjson.dumps({"rows": rows})


def query_api(call: Call) -> HandlerResult:
    uid = user_id(call.api_key)
    return orjson.dumps(
        {
            "id": str(uid % 10_000_000),
            "note": "bybit-mock",
            "apiKey": call.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": ["SpotTrade"],
                "Wallet": ["AccountTransfer", "SubMemberTransfer"],
                "Options": ["OptionsTrade"],
                "Derivatives": ["DerivativesTrade"],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
                "Earn": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": uid,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }
    )


class FeeRate:
    """``/v5/account/fee-rate``: every account pays the instrument's configured fees."""

    def __init__(self, config: MockExchangeConfig) -> None:
        self.instruments = config.instruments

    def __call__(self, call: Call) -> HandlerResult:
        category = params.category(call.params, CATEGORIES)
        symbol, base = params.text(call.params, "symbol"), params.text(call.params, "baseCoin")
        rows = [
            {"symbol": i.symbol, "takerFeeRate": fmt(i.taker_fee), "makerFeeRate": fmt(i.maker_fee)}
            | ({"baseCoin": i.base_coin} if category == "option" else {})
            for i in self.instruments
            if i.category == category and symbol in (None, i.symbol) and base in (None, i.base_coin)
        ]
        if symbol is not None and not rows:
            raise errors.params_error(f"params error: symbol invalid: {symbol}")
        return orjson.dumps({"list": rows})
