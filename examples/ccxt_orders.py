#!/usr/bin/env python3
"""ccxt's bybit against the mock: a resting limit order, a fill made on demand, a market order.

Run from the repository root: ``python examples/ccxt_orders.py``
"""

from __future__ import annotations

import ccxt

from bybit_mock import MockExchange

SYMBOL = "BTC/USDT:USDT"  # ccxt's name for the BTCUSDT linear perpetual


def main() -> None:
    with MockExchange() as ex:
        ex.state.freeze_market()  # hold the market still so the prices below are exact
        ex.state.set_mark_price("BTCUSDT", 65000)

        markets = {"fetchMarkets": {"types": ["linear"]}}  # load only what we trade: quicker
        exchange = ccxt.bybit({"apiKey": ex.api_key, "secret": ex.api_secret, "options": markets})
        exchange.urls["api"] = dict.fromkeys(exchange.urls["api"], ex.rest_url)  # every REST host -> the mock
        exchange.load_markets()

        limit = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 60000)
        print("open orders:", [(o["id"], o["side"], o["price"]) for o in exchange.fetch_open_orders(SYMBOL)])

        ex.state.fill_order(ex.api_key, limit["id"])  # as if the market had come down to 60 000
        print("open orders after state.fill_order:", exchange.fetch_open_orders(SYMBOL))

        exchange.create_order(SYMBOL, "market", "buy", 0.01)  # takes the best ask, 65 000
        for trade in exchange.fetch_my_trades(SYMBOL):
            print(f"trade: {trade['side']} {trade['amount']} @ {trade['price']} ({trade['takerOrMaker']})")
        (position,) = exchange.fetch_positions([SYMBOL])
        print(f"position: {position['side']} {position['contracts']} @ {position['entryPrice']}")
        print("USDT total:", exchange.fetch_balance()["USDT"]["total"])


if __name__ == "__main__":
    main()
