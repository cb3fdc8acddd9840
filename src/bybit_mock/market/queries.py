"""``/v5/market/{orderbook,recent-trade,kline,tickers,funding/history,open-interest}`` and the
mark, index and premium-index price klines: answered from the market models.

The engine calls these after bringing the models to now, so REST shows exactly the market
the streams show and the orders match against. Parameter rules follow Bybit's docs (section
3 of the reference); a bad parameter is retCode 10001 with a message naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..bybit import params
from ..bybit.errors import params_error
from ..bybit.numbers import fmt
from ..instruments import CATEGORIES, CONTRACTS
from . import open_interest, options
from .candles import INTERVAL_MINUTES
from .fixed import fmt_product
from .markets import Markets
from .model import MarketModel
from .ticker import REST_FUTURES_KEYS, REST_SPOT_KEYS, ticker_fields, ticker_shape

Query = Mapping[str, Any]

#: (default, maximum) of ``limit`` per category
ORDERBOOK_LIMITS = {"spot": (1, 200), "linear": (25, 500), "inverse": (25, 500), "option": (1, 25)}
RECENT_TRADE_LIMITS = {"spot": (60, 60), "linear": (500, 1000), "inverse": (500, 1000), "option": (500, 1000)}


def _symbol_model(models: Mapping[str, MarketModel], query: Query) -> MarketModel:
    symbol = params.required(query, "symbol")
    model = models.get(symbol)
    if model is None:
        raise params_error("params error: symbol invalid")
    return model


def orderbook(models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
    model = _symbol_model(models, query)
    default, maximum = ORDERBOOK_LIMITS[category]
    depth = params.limit(query, default, maximum)
    pf, sf = model.prices.fmt, model.sizes.fmt
    trades = model.trades
    return {
        "s": model.symbol,
        "b": [[pf(t), sf(q)] for t, q in model.book.bids.top(depth)],
        "a": [[pf(t), sf(q)] for t, q in model.book.asks.top(depth)],
        "ts": now_ms,
        "u": model.book_u(1000),
        "seq": model.version,
        "cts": trades[-1].t_ms if trades else now_ms,
    }


def recent_trades(models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
    model = _symbol_model(models, query)
    default, maximum = RECENT_TRADE_LIMITS[category]
    limit = params.limit(query, default, maximum)
    pf, sf = model.prices.fmt, model.sizes.fmt
    spot = category == "spot"
    items: list[dict[str, Any]] = []
    for t in reversed(model.trades):
        if len(items) == limit:
            break
        item: dict[str, Any] = {
            "execId": t.trade_id,
            "symbol": model.symbol,
            "price": pf(t.tick),
            "size": sf(t.lots),
            "side": t.side,
            "time": str(t.t_ms),
            "isBlockTrade": False,
        }
        if spot:
            item["isRPITrade"] = False
            item["seq"] = str(t.seq)
        items.append(item)
    return {"category": category, "list": items}


def kline(models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
    model = _symbol_model(models, query)
    interval, start, end, limit = _kline_window(query)
    prices, sizes = model.prices, model.sizes
    pf = prices.fmt
    rows = [
        [str(c.start), pf(c.open), pf(c.high), pf(c.low), pf(c.close), sizes.fmt(c.volume),
         fmt_product(c.turnover, prices, 1, sizes)]
        for c in model.candles.klines(interval, start, end, limit, now_ms)
    ]  # fmt: skip
    return {"symbol": model.symbol, "category": category, "list": rows}


def _kline_window(query: Query) -> tuple[str, int | None, int | None, int]:
    interval = params.required(query, "interval")
    if interval not in INTERVAL_MINUTES:
        raise params_error("params error: Invalid period")
    start, end = params.integer(query, "start"), params.integer(query, "end")
    if start is not None and end is not None and start > end:
        raise params_error("params error: start must be <= end")
    return interval, start, end, params.limit(query, 200, 1000)


class PriceKline:
    """``/v5/market/{mark,index,premium-index}-price-kline``: ``[start, open, high, low, close]``
    strings, newest first, from the model's candles of that price (:mod:`.prices`)."""

    def __init__(self, kind: str, categories: tuple[str, ...]) -> None:
        self.kind = kind
        self.categories = categories

    def __call__(self, models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
        if category not in self.categories:
            raise params_error(f"params error: category only support {', '.join(self.categories)}")
        model = _symbol_model(models, query)
        interval, start, end, limit = _kline_window(query)
        store, fixed = model.price_candles(self.kind)
        f = fixed.fmt
        rows = [[str(c.start), f(c.open), f(c.high), f(c.low), f(c.close)]
                for c in store.klines(interval, start, end, limit, now_ms)]  # fmt: skip
        return {"symbol": model.symbol, "category": category, "list": rows}


def tickers(models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
    symbol = params.text(query, "symbol")
    selected = [_symbol_model(models, query)] if symbol is not None else [models[s] for s in sorted(models)]
    keys = REST_SPOT_KEYS if category == "spot" else REST_FUTURES_KEYS
    return {"category": category, "list": [ticker_shape(ticker_fields(m, now_ms), keys) for m in selected]}


def funding_history(models: Mapping[str, MarketModel], category: str, query: Query, now_ms: int) -> dict[str, Any]:
    """Settled funding rates, newest first: ``startTime <= fundingRateTimestamp <= endTime``
    (neither: the latest ``limit``; Bybit refuses ``startTime`` alone), ``limit`` <= 200."""
    if category not in CONTRACTS:
        raise params_error("params error: category only support linear or inverse")
    model = _symbol_model(models, query)
    start, end = params.integer(query, "startTime"), params.integer(query, "endTime")
    if start is not None and end is None:
        raise params_error("params error: endTime is required when startTime is set")
    if start is not None and end is not None and start > end:
        raise params_error("params error: startTime must be <= endTime")
    limit = params.limit(query, 200, 200)
    interval = model.inst.funding_interval_s * 1000
    last = min(now_ms, end) if end is not None else now_ms
    t = last - last % interval
    newest = True
    items: list[dict[str, str]] = []
    while len(items) < limit and t > 0 and (start is None or t >= start):
        rate = model.settled_funding_rate(t)
        if rate is None and not newest:
            break  # older than the model keeps: nothing before it is kept either
        if rate is not None:
            items.append({"symbol": model.symbol, "fundingRate": fmt(rate), "fundingRateTimestamp": str(t)})
        newest = False  # only the latest time may be not yet settled (due but not reached)
        t -= interval
    return {"category": category, "list": items}


#: endpoint path -> (function, category when the parameter is absent: None means required)
Handler = Callable[[Mapping[str, MarketModel], str, Query, int], dict[str, Any]]
ENDPOINTS: dict[str, tuple[Handler, str | None]] = {
    "/v5/market/orderbook": (orderbook, None),
    "/v5/market/recent-trade": (recent_trades, None),
    "/v5/market/kline": (kline, "linear"),
    "/v5/market/tickers": (tickers, None),
    "/v5/market/funding/history": (funding_history, None),
    "/v5/market/open-interest": (open_interest.history, None),
    "/v5/market/mark-price-kline": (PriceKline("mark", ("linear", "inverse")), "linear"),
    "/v5/market/index-price-kline": (PriceKline("index", ("linear", "inverse")), "linear"),
    "/v5/market/premium-index-price-kline": (PriceKline("premium", ("linear",)), "linear"),
}


#: what options answer (computed from the underlying's index, ``options.py``); the others
#: find no option model and answer "symbol invalid"
OPTION_ENDPOINTS = {
    "/v5/market/orderbook": options.orderbook,
    "/v5/market/recent-trade": options.recent_trades,
    "/v5/market/tickers": options.tickers,
}


def answer(markets: Markets, path: str, query: Query, now_ms: int) -> dict[str, Any]:
    fn, default_category = ENDPOINTS[path]
    if default_category is not None and params.text(query, "category") is None:
        category = default_category
    else:
        category = params.category(query, CATEGORIES)
    if category == "option" and path in OPTION_ENDPOINTS:  # options have no models: ``options.py``
        return OPTION_ENDPOINTS[path](markets, query, now_ms)
    return fn(markets.of_category(category), category, query, now_ms)
