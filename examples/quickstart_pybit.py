#!/usr/bin/env python3
"""Quick start: start the mock from Python, point pybit's HTTP and WebSocket at it, trade once.

Run from the repository root: ``python examples/quickstart_pybit.py``
"""

from __future__ import annotations

import queue
import time
from typing import Any

from pybit.unified_trading import HTTP, WebSocket

from bybit_mock import MockExchange


def main() -> None:
    with MockExchange() as ex:  # every process up in ~0.5 s; all stopped when the block ends
        http = HTTP(api_key=ex.api_key, api_secret=ex.api_secret, retry_codes={0})  # {0}: no auto-retry
        http.endpoint = ex.rest_url  # pybit has no constructor argument for it

        class LocalWebSocket(WebSocket):  # pybit builds wss://stream.bybit.com/... inside __init__
            def _connect(self, url: str) -> None:
                super()._connect(url.replace("wss://{SUBDOMAIN}.{DOMAIN}.{TLD}", ex.ws_url))

        ws = LocalWebSocket(testnet=False, channel_type="private", api_key=ex.api_key, api_secret=ex.api_secret)
        fills: queue.Queue[dict[str, Any]] = queue.Queue()

        def on_execution(message: dict[str, Any]) -> None:  # runs on pybit's WebSocket thread
            for fill in message["data"]:
                fills.put(fill)

        ws.execution_stream(callback=on_execution)
        time.sleep(0.5)  # pybit does not say when the subscribe ack arrives; pushes before it are not sent
        try:
            wallet = http.get_wallet_balance(accountType="UNIFIED", coin="USDT")["result"]["list"][0]
            print("USDT wallet balance:", wallet["coin"][0]["walletBalance"])

            order = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001")
            order_id = order["result"]["orderId"]
            print("market order placed:", order_id)

            fill = fills.get(timeout=5)  # the private `execution` push
            print(f"execution push: {fill['side']} {fill['execQty']} @ {fill['execPrice']}, fee {fill['execFee']}")
            assert fill["orderId"] == order_id

            (listed,) = http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
            assert listed["execId"] == fill["execId"]  # REST agrees with the push
            position = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
            print(f"position: {position['side']} {position['size']} @ {position['avgPrice']}")

        finally:
            ws.exit()


if __name__ == "__main__":
    main()
