"""The option chain's market: Black-Scholes prices, implied volatilities, greeks and a book.

Options are listed, not traded, and they are kept cheap: no option has a market model (no book
to advance, no stream), so they cost nothing in the WS workers that advance every model. Each
answer is computed when asked, as a pure function of the underlying's index price (from its
perpetual's model: ``BTC`` options read the linear ``BTCUSDT`` index), the time to delivery and
the market seed, so every process that asks at the same instant gets the same figures.

* **IV**: a seeded at-the-money volatility per expiry (from 40 % to 60 %) plus a smile,
  ``0.8 x ln(K / S)^2``.
* **Mark**: Black-Scholes with no interest rate on the index ``S`` (``underlyingPrice`` is the
  index too: the mock has no futures curve for the expiry).
* **Greeks** as Bybit quotes them: ``delta``, ``gamma`` (per 1 USD), ``vega`` (per 1 % of
  volatility) and ``theta`` (per day).
* **Book**: levels one tick apart from 2 % either side of the mark, sizes seeded per level;
  ``bid1Iv`` and ``ask1Iv`` are the volatilities the best bid and ask imply.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from ..bybit import params
from ..bybit.errors import params_error
from ..instruments import InstrumentConfig, expiry_code
from .markets import Markets

YEAR_MS = 365 * 86_400_000
#: half the spread of the option book around the mark
HALF_SPREAD = 0.02
#: ``/v5/market/orderbook`` limit for options: (default, maximum), as Bybit's docs give it
ORDERBOOK_LIMIT = (1, 25)
#: key order of an option ticker, as Bybit sends it (ccxt's recorded responses)
OPTION_TICKER_KEYS = (
    "symbol", "bid1Price", "bid1Size", "bid1Iv", "ask1Price", "ask1Size", "ask1Iv", "lastPrice", "highPrice24h",
    "lowPrice24h", "markPrice", "indexPrice", "markIv", "underlyingPrice", "openInterest", "turnover24h",
    "volume24h", "totalVolume", "totalTurnover", "delta", "gamma", "vega", "theta", "predictedDeliveryPrice",
    "change24h",
)  # fmt: skip

_8 = Decimal("0.00000001")


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(call: bool, s: float, k: float, t: float, sigma: float) -> dict[str, float]:
    """Price and greeks of a European option, no interest rate; ``t`` in years.

    At or past expiry (``t <= 0``) the price is the intrinsic value and the greeks are flat."""
    if t <= 0 or sigma <= 0:
        intrinsic = max(0.0, s - k) if call else max(0.0, k - s)
        delta = (1.0 if s > k else 0.0) if call else (-1.0 if s < k else 0.0)
        return {"price": intrinsic, "delta": delta, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
    root = math.sqrt(t)
    d1 = (math.log(s / k) + 0.5 * sigma * sigma * t) / (sigma * root)
    d2 = d1 - sigma * root
    if call:
        price = s * _cdf(d1) - k * _cdf(d2)
        delta = _cdf(d1)
    else:
        price = k * _cdf(-d2) - s * _cdf(-d1)
        delta = _cdf(d1) - 1.0
    return {
        "price": price,
        "delta": delta,
        "gamma": _pdf(d1) / (s * sigma * root),
        "vega": s * _pdf(d1) * root / 100.0,  # per 1 % of volatility
        "theta": -s * _pdf(d1) * sigma / (2.0 * root) / 365.0,  # per day
    }


def implied_vol(call: bool, price: float, s: float, k: float, t: float) -> float:
    """The volatility at which Black-Scholes gives ``price`` (bisection; 0 if none does)."""
    if t <= 0 or price <= black_scholes(call, s, k, t, 1e-6)["price"]:
        return 0.0
    lo, hi = 1e-6, 5.0
    if black_scholes(call, s, k, t, hi)["price"] < price:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        if black_scholes(call, s, k, t, mid)["price"] < price:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def atm_vol(market_seed: int, base: str, delivery_ms: int) -> float:
    """The at-the-money volatility of one expiry: seeded, from 0.40 to 0.60."""
    h = zlib.crc32(f"{market_seed}/iv/{base}/{delivery_ms}".encode())
    return 0.40 + (h % 2001) / 10_000


def mark_vol(inst: InstrumentConfig, s: float, market_seed: int) -> float:
    """The option's mark IV: its expiry's ATM volatility plus the smile."""
    moneyness = math.log(float(inst.strike) / s)
    return atm_vol(market_seed, inst.base_coin, inst.delivery_time_ms) + 0.8 * moneyness * moneyness


def _dec(x: float, q: Decimal = _8) -> str:
    value = Decimal(repr(x)).quantize(q)
    return format(value.normalize(), "f") if value else "0"


class OptionQuote:
    """One option as of ``now_ms`` on index ``s``: mark, IV, greeks and its book."""

    def __init__(self, inst: InstrumentConfig, s: Decimal, now_ms: int, market_seed: int) -> None:
        self.inst = inst
        self.s = s
        self.now_ms = now_ms
        self.call = inst.option_type == "Call"
        self.t = max(0, inst.delivery_time_ms - now_ms) / YEAR_MS
        self.sigma = mark_vol(inst, float(s), market_seed)
        self.bs = black_scholes(self.call, float(s), float(inst.strike), self.t, self.sigma)
        self.seed = zlib.crc32(f"{market_seed}/{inst.symbol}".encode())

    def book(self, depth: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """``depth`` levels a side, best first: bids from 2 % under the mark down (none under one
        tick), asks from 2 % over it up."""
        tick = self.inst.tick_size
        mark = Decimal(repr(self.bs["price"]))
        best_bid = (mark * Decimal(1 - HALF_SPREAD) / tick).to_integral_value(ROUND_FLOOR) * tick
        best_ask = max(tick, (mark * Decimal(1 + HALF_SPREAD) / tick).to_integral_value(ROUND_CEILING) * tick)
        bids = [(best_bid - i * tick, self._size(-1 - i)) for i in range(depth) if best_bid - i * tick >= tick]
        asks = [(best_ask + i * tick, self._size(1 + i)) for i in range(depth)]
        return bids, asks

    def _size(self, level: int) -> Decimal:
        """A seeded size per level (0.1 to 10 contracts), fixed for the option's life."""
        h = zlib.crc32(f"{self.seed}/{level}".encode())
        return (Decimal(10 + h % 991) / 100).quantize(self.inst.qty_step)

    def ticker(self) -> dict[str, str]:
        bids, asks = self.book(1)
        s, k, t = float(self.s), float(self.inst.strike), self.t

        def iv(level: list[tuple[Decimal, Decimal]]) -> str:
            return _dec(implied_vol(self.call, float(level[0][0]), s, k, t), Decimal("0.0001")) if level else "0"

        pf = self.inst.price_scale
        return {
            "symbol": self.inst.symbol,
            "bid1Price": f"{bids[0][0]:.{pf}f}" if bids else "0",
            "bid1Size": str(bids[0][1]) if bids else "0",
            "bid1Iv": iv(bids),
            "ask1Price": f"{asks[0][0]:.{pf}f}" if asks else "0",
            "ask1Size": str(asks[0][1]) if asks else "0",
            "ask1Iv": iv(asks),
            "lastPrice": "0",  # no option trades: Bybit shows 0 for a contract that has none
            "highPrice24h": "0",
            "lowPrice24h": "0",
            "markPrice": _dec(self.bs["price"]),
            "indexPrice": _dec(float(self.s)),
            "markIv": _dec(self.sigma, Decimal("0.0001")),
            "underlyingPrice": str(self.s.quantize(Decimal("0.01"))),
            "openInterest": "0",
            "turnover24h": "0",
            "volume24h": "0",
            "totalVolume": "0",
            "totalTurnover": "0",
            "delta": _dec(self.bs["delta"]),
            "gamma": _dec(self.bs["gamma"]),
            "vega": _dec(self.bs["vega"]),
            "theta": _dec(self.bs["theta"]),
            "predictedDeliveryPrice": "0",
            "change24h": "0",
        }


def underlying_index(markets: Markets, inst: InstrumentConfig) -> Decimal:
    """The index an option is priced on: its base coin's linear perpetual (``BTCUSDT``)."""
    for quote in (inst.settle_coin, "USDT", "USDC"):
        model = markets.get("linear", f"{inst.base_coin}{quote}")
        if model is not None:
            return model.index_price()
    raise params_error(f"params error: no underlying for {inst.symbol}")


def options_listed(markets: Markets) -> dict[str, InstrumentConfig]:
    return {sym: i for (cat, sym), i in markets.instruments.items() if cat == "option"}


def _selected(markets: Markets, query: Mapping[str, Any], now_ms: int) -> list[InstrumentConfig]:
    listed = options_listed(markets)
    symbol = params.text(query, "symbol")
    if symbol is not None:
        inst = listed.get(symbol)
        if inst is None:
            raise params_error("params error: symbol invalid")
        return [inst]
    base = params.text(query, "baseCoin")
    exp = params.text(query, "expDate")
    return [
        i
        for _, i in sorted(listed.items())
        if base in (None, i.base_coin)
        and exp in (None, expiry_code(i.delivery_time_ms))
        and i.delivery_time_ms > now_ms
    ]


def tickers(markets: Markets, query: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """``/v5/market/tickers?category=option`` (by ``symbol``, ``baseCoin`` or ``expDate``)."""
    seed = markets.config.seed
    items = [
        OptionQuote(i, underlying_index(markets, i), now_ms, seed).ticker() for i in _selected(markets, query, now_ms)
    ]
    return {"category": "option", "list": items}


def orderbook(markets: Markets, query: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """``/v5/market/orderbook?category=option``: up to 25 levels a side."""
    symbol = params.required(query, "symbol")
    inst = options_listed(markets).get(symbol)
    if inst is None:
        raise params_error("params error: symbol invalid")
    depth = params.limit(query, *ORDERBOOK_LIMIT)
    quote = OptionQuote(inst, underlying_index(markets, inst), now_ms, markets.config.seed)
    bids, asks = quote.book(depth)
    pf = inst.price_scale
    # The book is recomputed from the index: it changes, at most, once per index move, so the
    # update id follows the clock in whole seconds.
    return {
        "s": symbol,
        "b": [[f"{p:.{pf}f}", str(q)] for p, q in bids],
        "a": [[f"{p:.{pf}f}", str(q)] for p, q in asks],
        "ts": now_ms,
        "u": now_ms // 1000,
        "seq": now_ms // 1000,
        "cts": now_ms,
    }


def recent_trades(markets: Markets, query: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """No option trades happen in the mock: an empty list (after the symbol is checked)."""
    _selected(markets, query, now_ms)
    return {"category": "option", "list": []}
