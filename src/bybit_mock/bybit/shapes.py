"""JSON shapes of REST results, field for field as Bybit returns them.

The field sets are the union of Bybit's documentation examples and the real responses
recorded in ccxt's fixtures (``shared/reference/ccxt-static/response-bybit.json``). Types
follow the docs: amounts are strings, a handful of fields are ints or booleans.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..config import InstrumentConfig
from ..engine.accounts import Position, Valuation, notional
from ..engine.views import CoinView
from .numbers import fmt, fmt_scale

ZERO = Decimal(0)
#: the one risk tier bybit-mock models (positions and /v5/market/risk-limit agree)
RISK_LIMIT_VALUE = "2000000"


def wallet_coin(c: CoinView) -> dict[str, Any]:
    return {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": "",
        "totalOrderIM": fmt(c.order_im),
        "equity": fmt(c.equity),
        "totalPositionMM": fmt(c.position_mm),
        "usdValue": fmt(c.usd_value),
        "spotHedgingQty": "0",
        "unrealisedPnl": fmt(c.unrealised_pnl),
        "collateralSwitch": True,
        "borrowAmount": "0",
        "totalPositionIM": fmt(c.position_im),
        "walletBalance": fmt(c.wallet_balance),
        "cumRealisedPnl": fmt(c.cum_realised_pnl),
        "locked": fmt(c.locked),
        "marginCollateral": True,
        "coin": c.coin,
        "spotBorrow": "0",
    }


def wallet_account(v: Valuation, coins: list[CoinView]) -> dict[str, Any]:
    im_rate = fmt(v.rate(v.total_im))
    mm_rate = fmt(v.rate(v.total_mm))
    return {
        "totalEquity": fmt(v.total_equity),
        "accountIMRate": im_rate,
        "accountIMRateByMp": im_rate,
        "totalMarginBalance": fmt(v.total_margin),
        "totalInitialMargin": fmt(v.total_im),
        "totalInitialMarginByMp": fmt(v.total_im),
        "accountType": "UNIFIED",
        "totalAvailableBalance": fmt(v.total_available),
        "accountMMRate": mm_rate,
        "accountMMRateByMp": mm_rate,
        "totalPerpUPL": fmt(v.total_upl),
        "totalWalletBalance": fmt(v.total_wallet),
        "accountLTV": "0",
        "totalMaintenanceMargin": fmt(v.total_mm),
        "totalMaintenanceMarginByMp": fmt(v.total_mm),
        "coin": [wallet_coin(c) for c in coins],
    }


def position(pos: Position, inst: InstrumentConfig, mark: Decimal) -> dict[str, Any]:
    """A ``/v5/position/list`` item for ``pos`` marked at ``mark`` (flat: side "")."""
    p = pos.view(mark)
    scale = inst.price_scale
    value = pos.value()
    value_mp = notional(inst.category, p.size, p.mark_price)
    im = value / p.leverage if p.size else ZERO
    im_mp = value_mp / p.leverage if p.size else ZERO
    mm = value * inst.maintenance_margin_rate
    mm_mp = value_mp * inst.maintenance_margin_rate
    fee = inst.taker_fee
    if p.side == "Buy":
        break_even = p.entry_price * (1 + fee) / (1 - fee)
    elif p.side == "Sell":
        break_even = p.entry_price * (1 - fee) / (1 + fee)
    else:
        break_even = ZERO
    leverage = fmt(p.leverage)
    return {
        "positionIdx": pos.position_idx,
        "riskId": 1,
        "riskLimitValue": RISK_LIMIT_VALUE,
        "symbol": p.symbol,
        "side": p.side,
        "size": fmt(p.size),
        "avgPrice": fmt(p.entry_price) if p.size else "0",
        "positionValue": fmt(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if p.size else 0,
        "leverage": leverage,
        "breakEvenPrice": fmt_scale(break_even, scale) if p.size else "0",
        "positionBalance": fmt(im),
        "markPrice": fmt_scale(p.mark_price, scale),
        "liqPrice": "",
        "bustPrice": "",
        "positionMM": fmt(mm),
        "positionMMByMp": fmt(mm_mp),
        "positionIM": fmt(im),
        "positionIMByMp": fmt(im_mp),
        "tpslMode": "Full",
        "takeProfit": fmt_scale(pos.take_profit, scale) if pos.take_profit else "",
        "stopLoss": fmt_scale(pos.stop_loss, scale) if pos.stop_loss else "",
        "trailingStop": fmt_scale(pos.trailing_stop, scale) if pos.trailing_stop else "0",
        "unrealisedPnl": fmt(p.unrealised_pnl),
        "curRealisedPnl": fmt(pos.cur_realised_pnl),
        "cumRealisedPnl": fmt(p.cum_realised_pnl),
        "seq": pos.seq,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(pos.created_ms),
        "updatedTime": str(pos.updated_ms),
    }


def risk_tier(inst: InstrumentConfig) -> dict[str, Any]:
    """The one ``/v5/market/risk-limit`` tier bybit-mock models; positions show ``riskId`` 1
    and its ``riskLimitValue``."""
    return {
        "id": 1,
        "symbol": inst.symbol,
        "riskLimitValue": RISK_LIMIT_VALUE,
        "maintenanceMargin": fmt(inst.maintenance_margin_rate),
        "initialMargin": fmt(1 / inst.max_leverage),
        "isLowestRisk": 1,
        "maxLeverage": fmt_scale(inst.max_leverage, 2),
        "mmDeduction": "0",
    }


def instrument(inst: InstrumentConfig) -> dict[str, Any]:
    """An ``/v5/market/instruments-info`` list item (linear/inverse or spot shape)."""
    if inst.category == "spot":
        return {
            "symbolId": inst.symbol_id,
            "symbol": inst.symbol,
            "baseCoin": inst.base_coin,
            "quoteCoin": inst.quote_coin,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": fmt(inst.qty_step),
                "quotePrecision": "0.0000001",
                "minOrderQty": fmt(inst.min_qty),
                "maxOrderQty": fmt(inst.max_qty),
                "minOrderAmt": fmt(inst.min_notional),
                "maxOrderAmt": "8000000",
                "maxLimitOrderQty": fmt(inst.max_qty),
                "maxMarketOrderQty": fmt(inst.max_mkt_qty),
                "postOnlyMaxLimitOrderSize": "60000",
            },
            "priceFilter": {"tickSize": fmt(inst.tick_size)},
            "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
            "symbolType": "",
        }
    qty_places = max(0, -int(inst.qty_step.normalize().as_tuple().exponent))
    return {
        "symbol": inst.symbol,
        "symbolId": inst.symbol_id,
        "contractType": "LinearPerpetual" if inst.category == "linear" else "InversePerpetual",
        "status": "Trading",
        "baseCoin": inst.base_coin,
        "quoteCoin": inst.quote_coin,
        "launchTime": str(inst.launch_time_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(inst.price_scale),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": fmt_scale(inst.max_leverage, 2),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": fmt_scale(inst.tick_size, inst.price_scale),
            "maxPrice": fmt_scale(inst.max_price, inst.price_scale),
            "tickSize": fmt_scale(inst.tick_size, inst.price_scale),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt_scale(inst.max_qty, qty_places),
            "minOrderQty": fmt_scale(inst.min_qty, qty_places),
            "qtyStep": fmt_scale(inst.qty_step, qty_places),
            "postOnlyMaxOrderQty": fmt_scale(inst.max_qty, qty_places),
            "maxMktOrderQty": fmt_scale(inst.max_mkt_qty, qty_places),
            "minNotionalValue": fmt(inst.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": inst.settle_coin,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "displayName": "",
        "symbolType": "",
    }
