"""End-to-end tests run against the real multiprocess mock (the plugin's ``bybit_mock`` fixture).

Helpers here speak raw HTTP and sign requests by hand, so tests can send exactly the bytes
they mean (bad signatures, stale timestamps, pipelined or malformed requests).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from pybit.unified_trading import HTTP

from bybit_mock import MockExchange, MockExchangeConfig
from bybit_mock.bybit import auth
from bybit_mock.market.config import MarketConfig, SymbolMarketConfig

pytestmark = pytest.mark.e2e


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pybit_http(ex: MockExchange, **kwargs: Any) -> HTTP:
    """pybit's HTTP pointed at the mock; retry_codes={0} disables pybit's auto-retry."""
    kwargs.setdefault("api_key", ex.api_key)
    kwargs.setdefault("api_secret", ex.api_secret)
    session = HTTP(retry_codes={0}, **kwargs)
    session.endpoint = ex.rest_url
    return session


class RawHttp:
    """A keep-alive HTTP/1.1 connection that sends exact bytes and reads exact responses."""

    def __init__(self, ex: MockExchange) -> None:
        self.sock = socket.create_connection(("127.0.0.1", ex.rest_port), timeout=5)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        length = int(headers["content-length"])
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def expect_refusal(self, status: int, fragment: str) -> None:
        """The next answer refuses the request at the protocol level: ``status`` with Bybit's
        envelope (retCode 10001, ``fragment`` in retMsg), ``Connection: close``, then close."""
        got, headers, body = self.read_response()
        assert got == status and headers["connection"] == "close", (got, headers)
        data = envelope(body)
        assert data["retCode"] == 10001 and fragment in data["retMsg"], data
        assert self.is_closed()

    def is_closed(self) -> bool:
        self.sock.settimeout(2)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def get_request(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_get(
    ex: MockExchange,
    path: str,
    query: str,
    *,
    ts: int | None = None,
    secret: str | None = None,
    key: str | None = None,
    recv_window: int = 5000,
) -> bytes:
    headers = auth.rest_headers(
        key or ex.api_key, secret or ex.api_secret, query, now_ms() if ts is None else ts, recv_window
    )
    return get_request(f"{path}?{query}" if query else path, headers)


@pytest.fixture
def raw(bybit_mock: MockExchange) -> Any:
    conn = RawHttp(bybit_mock)
    yield conn
    conn.close()


def envelope(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(body)
    assert set(data) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert isinstance(data["time"], int)
    return data


@pytest.fixture(scope="session")
def custom_mock() -> Iterator[MockExchange]:
    """A second mock: 2 WS workers, tesser fields, BTCUSDT at 400 trades/s and 200 book
    deltas/s, ETHUSDT moved by book ticks only (no trades)."""
    cfg = MockExchangeConfig.default()
    cfg.ws_workers = 2
    cfg.market = MarketConfig(
        seed=11,
        tesser_compat=True,
        symbols=[
            SymbolMarketConfig("BTCUSDT", "linear", trade_rate=400, book_rates={50: 200}),
            SymbolMarketConfig("ETHUSDT", "linear", trade_rate=0, book_rates={50: 40}),
        ],
    )
    with MockExchange(cfg) as ex:
        yield ex


@pytest.fixture
def market(bybit_mock: MockExchange) -> MockExchange:
    """The default mock with markets frozen and BTCUSDT (linear and spot) at 65 000: exact fills."""
    bybit_mock.state.freeze_market()
    bybit_mock.state.set_mark_price("BTCUSDT", 65000)
    bybit_mock.state.set_mark_price("BTCUSDT", 65000, category="spot")
    return bybit_mock


ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving_cli(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``bybit-mock serve *args`` in a subprocess, with its ready line read; killed at the end
    if the test has not stopped it (a failing test must not leave a cluster behind)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bybit_mock.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        yield proc, orjson.loads(proc.stdout.readline())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
