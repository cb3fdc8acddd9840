"""The routing table and the handlers that answer without the engine.

Handlers answer locally when the answer is configuration (server time, instruments) and go
to the state service when it is account state (wallet, positions).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..bybit import params, shapes
from ..config import MockExchangeConfig
from ..instruments import CATEGORIES, CONTRACTS
from ..market import queries
from .account_info import CoinInfo, FeeRate, query_api
from .app import Call, HandlerResult, Route, StateCall


def market_time(call: Call) -> HandlerResult:
    return b'{"timeSecond":"%d","timeNano":"%d"}' % (call.now_ns // 1_000_000_000, call.now_ns)


class Instruments:
    """``/v5/market/instruments-info`` from the configured instruments.

    A dated contract past its ``deliveryTime`` is delivered (``engine/delivery.py``): it shows
    status ``Closed`` and, as on Bybit, only when ``status=Closed`` is asked for (the default
    lists what trades: ``Trading`` for linear, inverse and spot; option's default also lists
    ``PreLaunch`` and ``Delivering``, which the mock never has)."""

    def __init__(self, config: MockExchangeConfig) -> None:
        self.items: dict[str, list[tuple[int, dict[str, Any]]]] = {c: [] for c in CATEGORIES}
        for inst in config.instruments:
            self.items[inst.category].append((inst.delivery_time_ms, shapes.instrument(inst)))

    def __call__(self, call: Call) -> HandlerResult:
        q = call.params
        category = params.category(q, CATEGORIES)
        status = params.text(q, "status") or "Trading"
        items = [
            item if not delivered else {**item, "status": "Closed"}
            for delivery_ms, item in self.items[category]
            if (delivered := 0 < delivery_ms <= call.now_ms) == (status == "Closed") and status in ("Trading", "Closed")
        ]
        symbol = params.text(q, "symbol")
        if symbol is not None:
            items = [i for i in items if i["symbol"] == symbol]
        base = params.text(q, "baseCoin") or ("BTC" if category == "option" else None)  # option's default
        if base is not None and category != "spot":
            items = [i for i in items if i["baseCoin"] == base]
        if category == "spot":  # spot is not paginated
            return orjson.dumps({"category": category, "list": items})
        chunk, cursor = params.page(items, q, default=500, maximum=1000)
        return orjson.dumps({"category": category, "list": chunk, "nextPageCursor": cursor})


class RiskLimit:
    """``/v5/market/risk-limit``: one tier per contract, the margin model the engine uses
    (initial margin 1 / max leverage, the configured maintenance rate, riskId 1)."""

    def __init__(self, config: MockExchangeConfig) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTRACTS}
        for inst in config.instruments:
            if inst.category in self.items:
                self.items[inst.category].append(shapes.risk_tier(inst))

    def __call__(self, call: Call) -> HandlerResult:
        category = params.category(call.params, CONTRACTS)
        symbol = params.text(call.params, "symbol")
        items = [i for i in self.items[category] if symbol in (None, i["symbol"])]
        chunk, cursor = params.page(items, call.params, default=15, maximum=15)
        return orjson.dumps({"category": category, "list": chunk, "nextPageCursor": cursor})


class MarketQuery:
    """Order book, trades, klines and tickers: answered by the engine's market models."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, call: Call) -> HandlerResult:
        return StateCall("market_query", (self.path, call.params))


class Engine:
    """A signed endpoint answered by one engine command: ``op(api_key, params)``."""

    def __init__(self, op: str) -> None:
        self.op = op

    def __call__(self, call: Call) -> HandlerResult:
        return StateCall(self.op, (call.api_key, call.params))


#: path -> (method, engine command) for the trading endpoints
TRADING = {
    "/v5/order/create": ("POST", "order_create"),
    "/v5/order/amend": ("POST", "order_amend"),
    "/v5/order/cancel": ("POST", "order_cancel"),
    "/v5/order/cancel-all": ("POST", "order_cancel_all"),
    "/v5/order/realtime": ("GET", "order_realtime"),
    "/v5/order/history": ("GET", "order_history"),
    "/v5/execution/list": ("GET", "execution_list"),
    "/v5/position/trading-stop": ("POST", "trading_stop"),
    "/v5/position/set-leverage": ("POST", "set_leverage"),
    "/v5/position/switch-mode": ("POST", "switch_mode"),
    "/v5/order/create-batch": ("POST", "order_create_batch"),
    "/v5/order/amend-batch": ("POST", "order_amend_batch"),
    "/v5/order/cancel-batch": ("POST", "order_cancel_batch"),
    "/v5/account/info": ("GET", "account_info"),
    "/v5/account/set-margin-mode": ("POST", "set_margin_mode"),
    "/v5/account/transaction-log": ("GET", "transaction_log"),
    "/v5/asset/transfer/inter-transfer": ("POST", "transfer"),
    "/v5/asset/transfer/query-inter-transfer-list": ("GET", "transfer_list"),
    "/v5/asset/transfer/query-account-coins-balance": ("GET", "funding_balance"),
    "/v5/asset/deposit/query-record": ("GET", "deposit_records"),
    "/v5/asset/withdraw/query-record": ("GET", "withdraw_records"),
    "/v5/asset/delivery-record": ("GET", "delivery_record"),
}


def build_routes(config: MockExchangeConfig) -> dict[str, Route]:
    return {
        "/v5/market/time": Route("GET", market_time, signed=False),
        "/v5/market/instruments-info": Route("GET", Instruments(config), signed=False),
        **{path: Route("GET", MarketQuery(path), signed=False) for path in queries.ENDPOINTS},
        "/v5/account/wallet-balance": Route("GET", Engine("wallet_balance"), signed=True),
        "/v5/position/list": Route("GET", Engine("position_list"), signed=True),
        "/v5/market/risk-limit": Route("GET", RiskLimit(config), signed=False),
        "/v5/account/fee-rate": Route("GET", FeeRate(config), signed=True),
        "/v5/user/query-api": Route("GET", query_api, signed=True),
        "/v5/asset/coin/query-info": Route("GET", CoinInfo(config), signed=True),
        "/v5/system/status": Route("GET", Engine("system_status"), signed=False),
        **{path: Route(method, Engine(op), signed=True) for path, (method, op) in TRADING.items()},
    }
