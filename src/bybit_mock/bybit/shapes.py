"""JSON shapes of the configuration's REST results (instruments, risk tiers), field for field
as Bybit returns them; account state's shapes (wallet, positions, orders) are the engine's
(``engine/shapes.py``).

The field sets are the union of Bybit's documentation examples and the real responses
recorded in ccxt's fixtures (``shared/reference/ccxt-static/response-bybit.json``). Types
follow the docs: amounts are strings, a handful of fields are ints or booleans.
"""

from __future__ import annotations

from typing import Any

from ..config import InstrumentConfig
from .numbers import fmt, fmt_scale

#: the one risk tier bybit-mock models (positions and /v5/market/risk-limit agree)
RISK_LIMIT_VALUE = "2000000"


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
    """An ``/v5/market/instruments-info`` list item (linear/inverse, spot or option shape)."""
    if inst.category == "option":
        return option_instrument(inst)
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
        "contractType": inst.contract_type,
        "status": "Trading",
        "baseCoin": inst.base_coin,
        "quoteCoin": inst.quote_coin,
        "launchTime": str(inst.launch_time_ms),
        "deliveryTime": str(inst.delivery_time_ms),
        "deliveryFeeRate": fmt(inst.delivery_fee_rate) if inst.dated else "",
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
        # minutes (Bybit's 480 for 8 h; 0 for a dated future, which has no funding); a
        # sub-minute soak-test interval shows 1, not 0, so a client that sizes a history window
        # from it (ccxt) still asks for a window
        "fundingInterval": 0 if inst.dated else max(1, inst.funding_interval_s // 60),
        "settleCoin": inst.settle_coin,
        "copyTrading": "both",
        "upperFundingRate": "" if inst.dated else "0.00375",
        "lowerFundingRate": "" if inst.dated else "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "displayName": "",
        "symbolType": "",
    }


def option_instrument(inst: InstrumentConfig) -> dict[str, Any]:
    """An option's ``/v5/market/instruments-info`` item (Bybit's option shape)."""
    return {
        "symbol": inst.symbol,
        "status": "Trading",
        "baseCoin": inst.base_coin,
        "quoteCoin": inst.quote_coin,
        "settleCoin": inst.settle_coin,
        "optionsType": inst.option_type,
        "launchTime": str(inst.launch_time_ms),
        "deliveryTime": str(inst.delivery_time_ms),
        "deliveryFeeRate": fmt(inst.delivery_fee_rate),
        "priceFilter": {
            "minPrice": fmt(inst.tick_size),
            "maxPrice": fmt(inst.max_price),
            "tickSize": fmt(inst.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt(inst.max_qty),
            "minOrderQty": fmt(inst.min_qty),
            "qtyStep": fmt(inst.qty_step),
        },
        "displayName": "",
    }
