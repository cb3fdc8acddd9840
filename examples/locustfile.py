#!/usr/bin/env python3
"""Load from many machines: a Locust user that trades on the mock with signed Bybit v5 requests.

Locust runs the users, spreads them over worker processes and machines, and adds up the
statistics; this file only says what one user does. Against a mock you started yourself
(``bybit-mock serve --rate-limits off`` prints its REST URL and the demo key)::

    BYBIT_MOCK_KEY=bybit-mock-demo-key BYBIT_MOCK_SECRET=bybit-mock-demo-secret \\
        locust -f examples/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:PORT

``BYBIT_MOCK_KEY`` may be a comma-separated list of keys: each user then takes the next one, so
the load comes from many accounts. ``BYBIT_MOCK_SECRET`` is one secret for every key, or a list
in the same order. ``python examples/locustfile.py`` with no arguments starts its own mock (four
accounts, rate limits off), runs Locust against it for three seconds and prints the summary.
More, distributed runs included: examples/README.md.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import os
import time
from typing import Any


def demo() -> None:
    """Start a mock with four accounts and no rate limits, run Locust at it headless for three
    seconds (the same command line you would type), and print what it counted."""
    import csv  # noqa: PLC0415  # only the demo needs these
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from bybit_mock import MockExchange, MockExchangeConfig  # noqa: PLC0415
    from bybit_mock.config import AccountConfig  # noqa: PLC0415

    accounts = [AccountConfig(f"load-{n}", "load-secret", {"USDT": 100_000}) for n in range(4)]
    config = MockExchangeConfig(accounts=accounts, rate_limits="off")
    with MockExchange(config) as ex, tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"BYBIT_MOCK_KEY": ",".join(a.api_key for a in accounts), "BYBIT_MOCK_SECRET": "load-secret"}
        command = [sys.executable, "-m", "locust", "-f", __file__, "--headless", "-u", "4", "-r", "4", "-t", "3s",
                   "--host", ex.rest_url, "--csv", f"{tmp}/run", "--only-summary"]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise SystemExit(f"locust exited with {done.returncode}:\n{done.stderr}")
        with open(f"{tmp}/run_stats.csv", newline="") as stats:
            for row in csv.DictReader(stats):
                route = f"{row['Type']} {row['Name']}".strip()  # the total's row has no Type
                print(f"{route}: {row['Request Count']} requests, {row['Failure Count']} failures")


if __name__ == "__main__":
    # Run as a script, this file is the demo, and stops here: importing Locust monkey-patches
    # the standard library for gevent, and the mock's processes are better started without.
    demo()
    raise SystemExit

from locust import task  # noqa: E402  # (after the demo: see above)
from locust.contrib.fasthttp import FastHttpUser  # noqa: E402

SYMBOL = "BTCUSDT"
RECV_WINDOW = "5000"


@functools.cache  # read once per process, when the first user starts: a master needs no keys
def accounts_from_env() -> list[tuple[str, str]]:
    """``(key, secret)`` pairs from ``BYBIT_MOCK_KEY`` and ``BYBIT_MOCK_SECRET``.

    Every Locust process (master, each worker) reads its own environment, so workers on
    different machines can be given different accounts."""
    keys = [k.strip() for k in os.environ.get("BYBIT_MOCK_KEY", "").split(",") if k.strip()]
    secrets = [s.strip() for s in os.environ.get("BYBIT_MOCK_SECRET", "").split(",") if s.strip()]
    if not keys or len(secrets) not in (1, len(keys)):
        raise SystemExit("set BYBIT_MOCK_KEY (one key or a list) and BYBIT_MOCK_SECRET (one, or one per key)")
    return list(zip(keys, secrets * len(keys) if len(secrets) == 1 else secrets, strict=True))


_user_numbers = itertools.count()


def signed_headers(key: str, secret: str, payload: str) -> dict[str, str]:
    """Bybit v5's four auth headers; ``payload`` is the query string (GET) or the body (POST),
    exactly the bytes sent: the server signs what it received, so re-encoding breaks the match."""
    timestamp = str(int(time.time() * 1000))
    signature = hmac.new(secret.encode(), (timestamp + key + RECV_WINDOW + payload).encode(), hashlib.sha256)
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": timestamp,
        "X-BAPI-RECV-WINDOW": RECV_WINDOW,
        "X-BAPI-SIGN": signature.hexdigest(),
    }


class BybitTrader(FastHttpUser):
    """Reads its wallet and open orders, follows the ticker, and places limit orders far below
    the market (they rest, never fill) and cancels them: steady load that leaves the account as
    it found it."""

    # No pause between tasks: each user sends as fast as the mock answers. Use
    # `wait_time = locust.between(0.5, 1)` for a slower, more human pace.

    def on_start(self) -> None:
        # The users of a process take the accounts in turn, from the first. Workers given the same
        # list share accounts; give each worker (machine) a list of its own to keep them apart.
        accounts = accounts_from_env()
        self.key, self.secret = accounts[next(_user_numbers) % len(accounts)]
        last = float(self.ticker()["lastPrice"])
        self.far_price = f"{int(last * 0.7)}"  # 30 % under the market: rests; an integer is on any tick

    def call(self, method: str, path: str, params: dict[str, str], signed: bool = True) -> dict[str, Any]:
        """Send one request; a non-zero ``retCode`` (or a non-JSON answer) fails it in the stats.

        Requests are named by route (``name=path``), so Locust groups them whatever the query."""
        if method == "GET":
            payload = "&".join(f"{k}={v}" for k, v in params.items())  # plain values: nothing to encode
            url, body = f"{path}?{payload}", None
        else:
            payload = json.dumps(params, separators=(",", ":"))
            url, body = path, payload
        headers = signed_headers(self.key, self.secret, payload) if signed else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self.client.request(method, url, data=body, headers=headers, name=path, catch_response=True) as reply:
            try:
                answer: dict[str, Any] = reply.json()
            except ValueError:
                reply.failure(f"HTTP {reply.status_code}: not JSON")
                return {}
            if answer.get("retCode") != 0:
                reply.failure(f"retCode {answer.get('retCode')}: {answer.get('retMsg')}")  # 10006: rate limited
            return answer.get("result") or {}

    def ticker(self) -> dict[str, Any]:
        result = self.call("GET", "/v5/market/tickers", {"category": "linear", "symbol": SYMBOL}, signed=False)
        return result["list"][0] if result.get("list") else {"lastPrice": "0"}

    # The weights: how often each task is picked relative to the others.

    @task(4)
    def market_ticker(self) -> None:
        self.ticker()

    @task(3)
    def wallet_balance(self) -> None:
        self.call("GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "USDT"})

    @task(3)
    def open_orders(self) -> None:
        self.call("GET", "/v5/order/realtime", {"category": "linear", "symbol": SYMBOL})

    @task(2)
    def place_and_cancel(self) -> None:
        order = {"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Limit",
                 "qty": "0.001", "price": self.far_price, "timeInForce": "GTC"}  # fmt: skip
        placed = self.call("POST", "/v5/order/create", order)
        if "orderId" in placed:
            self.call(
                "POST", "/v5/order/cancel", {"category": "linear", "symbol": SYMBOL, "orderId": placed["orderId"]}
            )
