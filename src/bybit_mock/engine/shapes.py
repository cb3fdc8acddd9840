"""Account state as Bybit's JSON: wallet, positions, orders and fills, field for field.

The field sets are the union of Bybit's documentation examples and the real responses
recorded in ccxt's fixtures (``shared/reference/ccxt-static/response-bybit.json``); the
private stream's items add ``category`` and a few fields, as Bybit's do. Types follow the
docs: amounts are strings, a handful of fields are ints or booleans.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..bybit.numbers import fmt, fmt_scale
from ..bybit.shapes import RISK_LIMIT_VALUE
from ..config import InstrumentConfig
from .accounts import Position, Valuation, notional
from .orders import Execution, Order
from .views import CoinView

ZERO = Decimal(0)


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


def position(
    pos: Position,
    inst: InstrumentConfig,
    mark: Decimal,
    liq_price: Decimal | None = None,
    bust_price: Decimal | None = None,
) -> dict[str, Any]:
    """A ``/v5/position/list`` item for ``pos`` marked at ``mark`` (flat: side ""), with its
    liquidation and bankruptcy prices (``liq_prices.prices``; None: "")."""
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
        "liqPrice": fmt_scale(liq_price, scale) if liq_price is not None and p.size else "",
        "bustPrice": fmt_scale(bust_price, scale) if bust_price is not None and p.size else "",
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


def order_item(o: Order, inst: InstrumentConfig, stream: bool = False) -> dict[str, Any]:
    """One order as ``/v5/order/realtime`` and ``/history`` list it (``stream``: as ``order`` pushes it)."""
    ps = inst.price_scale
    leaves = o.leaves_qty
    tpsl = o.tpsl
    item: dict[str, Any] = {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "orderLinkId": o.link_id,
        "slLimitPrice": _price(tpsl.sl_limit_price if tpsl else ZERO, ps),
        "orderId": o.order_id,
        "cancelType": o.cancel_type,
        "avgPrice": fmt(o.avg_price) if o.cum_qty else ("0" if o.category == "spot" else ""),
        "stopOrderType": o.stop_order_type,
        "lastPriceOnCreated": fmt_scale(o.last_price_on_created, ps),
        "orderStatus": o.status,
        "createType": o.create_type,
        "takeProfit": _price(tpsl.take_profit, ps) if tpsl else "",
        "cumExecValue": fmt(o.cum_value),
        "tpslMode": tpsl.mode if tpsl else "",
        "smpType": "None",
        "triggerDirection": o.trigger_direction,
        "blockTradeId": "",
        "cumFeeDetail": {o.fee_coin: fmt(o.cum_fee)} if o.cum_fee else {},
        "rejectReason": o.reject_reason,
        "isLeverage": "0" if o.category == "spot" else "",
        "price": fmt_scale(o.price, ps) if o.price else "0",
        "orderIv": "",
        "createdTime": str(o.created_ms),
        "tpTriggerBy": tpsl.tp_trigger_by if tpsl else "",
        "positionIdx": o.position_idx,
        "timeInForce": o.time_in_force,
        "leavesValue": fmt(notional(o.category, leaves, o.price)),
        "updatedTime": str(o.updated_ms),
        "side": o.side,
        "smpGroup": 0,
        "triggerPrice": fmt_scale(o.trigger_price, ps) if o.trigger_price else "",
        "tpLimitPrice": _price(tpsl.tp_limit_price if tpsl else ZERO, ps),
        "cumExecFee": fmt(o.cum_fee),
        "slTriggerBy": tpsl.sl_trigger_by if tpsl else "",
        "leavesQty": fmt(leaves),
        "closeOnTrigger": o.close_on_trigger,
        "slippageToleranceType": "UNKNOWN",
        "placeType": "",
        "cumExecQty": fmt(o.cum_qty),
        "reduceOnly": o.reduce_only,
        "qty": fmt(o.qty),
        "stopLoss": _price(tpsl.stop_loss, ps) if tpsl else "",
        "marketUnit": o.market_unit,
        "smpOrderId": "",
        "slippageTolerance": "0",
        "triggerBy": o.trigger_by,
        "extraFees": "",
        "parentOrderLinkId": "",
        "rpiTakerAccess": False,
        "rpiMatchedQty": "0",
    }
    if stream:
        item["category"] = o.category
        item["closedPnl"] = fmt(o.closed_pnl)
        item["feeCurrency"] = o.fee_coin if o.category == "spot" else ""
    return item


def execution_item(e: Execution, inst: InstrumentConfig, stream: bool = False) -> dict[str, Any]:
    """One fill as ``/v5/execution/list`` lists it (``stream``: as ``execution`` pushes it)."""
    o = e.order
    ps = inst.price_scale
    spot = o.category == "spot"
    item: dict[str, Any] = {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "underlyingPrice": "",
        "orderLinkId": o.link_id,
        "orderId": o.order_id,
        "stopOrderType": o.stop_order_type or ("" if spot else "UNKNOWN"),
        "execTime": str(e.time_ms),
        "feeCurrency": e.fee_coin if spot else "",
        "createType": o.create_type,
        "feeRate": fmt(e.fee_rate),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": "" if spot else fmt_scale(e.mark_price, ps),
        "execPrice": fmt_scale(e.price, ps),
        "markIv": "",
        "orderQty": fmt(e.order_qty),
        "orderPrice": fmt_scale(e.order_price, ps) if e.order_price else "0",
        "execValue": fmt(notional(e.order.category, e.qty, e.price)),
        "closedSize": "" if spot else fmt(e.closed_size),
        "execType": e.exec_type,
        "seq": e.seq,
        "side": o.side,
        "indexPrice": "",
        "leavesQty": fmt(e.leaves_qty),
        "isMaker": e.is_maker,
        "execFee": fmt(e.fee),
        "execId": e.exec_id,
        "marketUnit": o.market_unit,
        "execQty": fmt(e.qty),
        "execPnl": fmt(e.pnl),
        "extraFees": "",
    }
    if stream:
        item["category"] = o.category
        item["isLeverage"] = "0"
    return item


def _price(value: Decimal, scale: int) -> str:
    return fmt_scale(value, scale) if value else "0"
