"""Ticker values (``tickers.{S}`` and ``/v5/market/tickers``) computed from a market model.

Every value is a Bybit decimal string. 24-hour statistics come from the model's candles: the
closed minutes of the window are summed once per minute (cached on the model) and the open
minute is merged on top, so a ticker costs microseconds at 10 pushes a second.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from ..bybit.numbers import fmt
from .candles import MINUTE_MS, Candle
from .fixed import fmt_product
from .funding import FUNDING_CAP
from .model import MarketModel
from .open_interest import values as oi_values

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: Key order of each shape, as Bybit sends it (recorded responses and the reference).
REST_FUTURES_KEYS = (
    "symbol", "lastPrice", "indexPrice", "markPrice", "prevPrice24h", "price24hPcnt", "highPrice24h",
    "lowPrice24h", "prevPrice1h", "openInterest", "openInterestValue", "singleOpenInterest", "singleOpenInterestValue",
    "turnover24h", "volume24h",
    "fundingRate", "nextFundingTime", "predictedDeliveryPrice", "basisRate", "deliveryFeeRate", "deliveryTime",
    "ask1Size", "bid1Price", "ask1Price", "bid1Size", "basis", "preOpenPrice", "preQty", "curPreListingPhase",
    "fundingIntervalHour", "basisRateYear", "fundingCap",
)  # fmt: skip
REST_SPOT_KEYS = (
    "symbol", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "lastPrice", "prevPrice24h", "price24hPcnt",
    "highPrice24h", "lowPrice24h", "turnover24h", "volume24h", "usdIndexPrice",
)  # fmt: skip
WS_FUTURES_KEYS = (
    "symbol", "tickDirection", "price24hPcnt", "lastPrice", "prevPrice24h", "highPrice24h", "lowPrice24h",
    "prevPrice1h", "markPrice", "indexPrice", "openInterest", "openInterestValue", "singleOpenInterest",
    "singleOpenInterestValue", "turnover24h", "volume24h",
    "fundingIntervalHour", "fundingCap", "nextFundingTime", "fundingRate", "bid1Price", "bid1Size", "ask1Price",
    "ask1Size", "preOpenPrice", "preQty", "curPreListingPhase",
)  # fmt: skip
#: a dated future's WS ticker: the perpetual's fields and its delivery's, as Bybit's docs list them
WS_DATED_KEYS = (*WS_FUTURES_KEYS, "deliveryTime", "basisRate", "deliveryFeeRate", "predictedDeliveryPrice", "basis")
WS_SPOT_KEYS = (
    "symbol", "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h", "volume24h", "turnover24h",
    "price24hPcnt", "usdIndexPrice",
)  # fmt: skip

_FOUR = Decimal("0.0001")


def _closed_window(model: MarketModel, start_ms: int, minute_ms: int, now_ms: int) -> Candle:
    """The window's closed part ``[start, current minute)``, computed once per minute."""
    cache: dict[int, tuple[int, Candle]] = model.__dict__.setdefault("_ticker_windows", {})
    span = minute_ms - start_ms
    hit = cache.get(span)
    if hit is not None and hit[0] == minute_ms:
        return hit[1]
    candle: Candle = model.candles.span(start_ms, minute_ms, now_ms)
    cache[span] = (minute_ms, candle)
    return candle


def _window(model: MarketModel, length_ms: int, now_ms: int) -> Candle:
    minute = now_ms - now_ms % MINUTE_MS
    closed = _closed_window(model, minute - length_ms, minute, now_ms)
    result = Candle(closed.start, closed.open, closed.high, closed.low, closed.close, closed.volume, closed.turnover)
    current = model.candles.current
    if current is not None and current.start == minute:
        result.merge(current)
    last = model.last_tick
    result.high = max(result.high, last)
    result.low = min(result.low, last)
    return result


def _ratio(new: int, old: int, places: int) -> str:
    if old == 0:
        return "0"
    value = (Decimal(new - old) / Decimal(old)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    return str(value.normalize()) if value else "0"


def funding_interval_hours(interval_s: int) -> str:
    """Tickers' ``fundingIntervalHour``: whole hours as Bybit shows them ("8"); a shorter
    interval (soak tests) as a fraction of an hour, to 6 places."""
    if interval_s % 3600 == 0:
        return str(interval_s // 3600)
    return format((Decimal(interval_s) / 3600).quantize(Decimal("0.000001")).normalize(), "f")


def ticker_fields(model: MarketModel, now_ms: int) -> dict[str, str]:
    """Every ticker value, keyed by Bybit's field names (a superset of each shape)."""
    fields = _common_fields(model, now_ms)
    if model.inst.dated:
        fields.update(delivery_fields(model, now_ms))
    return fields


def delivery_fields(model: MarketModel, now_ms: int) -> dict[str, str]:
    """A dated future's fields: no funding; its delivery, and its basis to the index
    (``basis`` = last - index, ``basisRate`` = basis / index, ``basisRateYear`` that rate a
    year); ``predictedDeliveryPrice`` is the index, the price delivery would settle at now."""
    inst = model.inst
    index = model.index_price()  # on the price scale's grid, as indexPrice prints it
    last = model.prices.decimal(model.last_tick)
    basis = last - index
    rate = basis / index if index else Decimal(0)
    left_ms = max(1, inst.delivery_time_ms - now_ms)
    year = rate * Decimal(365 * DAY_MS) / Decimal(left_ms)
    return {
        "fundingRate": "",
        "nextFundingTime": "0",
        "fundingIntervalHour": "",
        "fundingCap": "",
        "predictedDeliveryPrice": str(index),
        "basisRate": _places(rate, 8),
        "basisRateYear": _places(year, 8),
        "basis": str(basis),  # exactly lastPrice - indexPrice
        "deliveryFeeRate": str(inst.delivery_fee_rate),
        "deliveryTime": str(inst.delivery_time_ms),
    }


def _places(value: Decimal, places: int) -> str:
    q = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    return str(q.normalize()) if q else "0"


def _common_fields(model: MarketModel, now_ms: int) -> dict[str, str]:
    pf, sf = model.prices.fmt, model.sizes.fmt
    book = model.book
    day = _window(model, DAY_MS, now_ms)
    hour = _window(model, HOUR_MS, now_ms)
    last = model.last_tick
    mark = model.mark_tick()
    # index and mark print on the price scale's grid (finer than the tick), as Bybit's do
    index_price, mark_price = model.index_price(), model.mark_price()
    bid, ask = book.bids.top(1), book.asks.top(1)
    spot = model.category == "spot"
    turnover = Decimal(fmt_product(day.turnover, model.prices, 1, model.sizes)).quantize(_FOUR)
    open_interest = oi_values(model, model.open_interest.lots, model.prices.decimal(mark))
    interval_ms = model.inst.funding_interval_s * 1000
    next_funding = (now_ms // interval_ms + 1) * interval_ms
    return {
        "symbol": model.symbol,
        "tickDirection": model.last_direction,
        "lastPrice": pf(last),
        "indexPrice": str(index_price),
        "markPrice": str(mark_price),
        "usdIndexPrice": str(index_price),
        "prevPrice24h": pf(day.open),
        "price24hPcnt": _ratio(last, day.open, 4 if spot else 6),
        "highPrice24h": pf(day.high),
        "lowPrice24h": pf(day.low),
        "prevPrice1h": pf(hour.open),
        **open_interest,  # openInterest, openInterestValue, singleOpenInterest(Value): open_interest.py
        "turnover24h": str(turnover),
        "volume24h": sf(day.volume),
        "fundingRate": fmt(model.funding_rate()),
        "nextFundingTime": str(next_funding),
        "fundingIntervalHour": funding_interval_hours(model.inst.funding_interval_s),
        "fundingCap": fmt(FUNDING_CAP),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "basis": "",
        "basisRateYear": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
        "bid1Price": pf(bid[0][0]) if bid else "",
        "bid1Size": sf(bid[0][1]) if bid else "",
        "ask1Price": pf(ask[0][0]) if ask else "",
        "ask1Size": sf(ask[0][1]) if ask else "",
    }


def ticker_shape(fields: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    return {k: fields[k] for k in keys}
