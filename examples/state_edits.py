#!/usr/bin/env python3
"""Change the exchange behind a bot's back with ``ex.state``, and watch the bot's reconcile notice.

Run from the repository root: ``python examples/state_edits.py``
"""

from __future__ import annotations

import asyncio

from bybit_mock import MockExchange
from reference_bot import ReferenceBot


def change(pair: tuple[object, object] | None) -> str:
    return f"{pair[0]} -> {pair[1]}" if pair else "none"


async def run(ex: MockExchange) -> None:
    bot = ReferenceBot(ex.rest_url, ex.ws_url, ex.api_key, ex.api_secret, backoff=(0.2, 2.0))
    await bot.start()
    try:
        print(f"the bot sees: USDT {bot.usdt_balance}, position {bot.position}")

        # State edits send no push: only a REST read can tell the bot.
        ex.state.set_balance(ex.api_key, "USDT", 5000)
        ex.state.set_position(ex.api_key, "BTCUSDT", "Sell", "0.5", 64000)
        drift = await bot.reconcile()
        print(f"reconcile found: balance {change(drift.balance)}, position {change(drift.position)}")

        # A resting order fills while the bot's private connection is down: the push is lost,
        # and the reconcile that follows the reconnect finds the fill.
        order_id = await bot.place_order("Buy", "0.01", "Limit", price="50000")
        await bot.wait_for(lambda: order_id in bot.orders)
        bot.drop_connection("private")
        ex.state.fill_order(ex.api_key, order_id)
        await bot.wait_for(lambda: len(bot.drifts) == 2, timeout=10)
        found = bot.drifts[-1]  # what the reconcile after the reconnect found
        print(f"after reconnecting: missing fills {found.missing_fills}, orders gone {found.stale_orders}")
        print(f"the bot sees now: USDT {bot.usdt_balance}, position {bot.position}")
    finally:
        await bot.stop()


def main() -> None:
    with MockExchange() as ex:
        asyncio.run(run(ex))


if __name__ == "__main__":
    main()
