"""The ``bybit-mock`` command.

``bybit-mock serve`` prints exactly one JSON line on stdout once every process is ready:

    {"event": "ready", "rest_url": ..., "ws_url": ..., "api_key": ..., "api_secret": ...,
     "admin_url": ... (None with --admin off), "metrics_url": ... (None without --metrics),
     "pids": {...}}

so a script (or another language's test harness) can start the mock and read where it is;
a human-readable banner goes to stderr. Bad configuration is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

import orjson

from . import __version__
from .config import ADMIN_MODES, RATE_LIMITS, ConfigError, MockExchangeConfig, demo_account
from .config_checks import read_toml
from .load.command import add_arguments as add_load_arguments
from .load.command import run_command as run_load
from .mock import MockExchange
from .supervisor import StartError

EXIT_CONFIG = 2
#: where ``--admin-token`` is read from when it is not given (argv is visible to every local user)
ADMIN_TOKEN_ENV = "BYBIT_MOCK_ADMIN_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bybit-mock",
        description="A programmable, multiprocess mock of the Bybit v5 exchange (REST + WebSocket).",
    )
    parser.add_argument("--version", action="version", version=f"bybit-mock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the mock until interrupted",
        description="Run the mock until SIGINT/SIGTERM. Without --config it serves the built-in "
        "default: a demo account with 100 000 USDT and BTCUSDT/ETHUSDT (linear and spot).",
    )
    serve.add_argument("--config", metavar="FILE.toml", help="configuration file (see docs/configuration.md)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--rest-port", type=int, metavar="PORT", help="REST port; 0 picks a free one (default 0)")
    serve.add_argument("--ws-port", type=int, metavar="PORT", help="WebSocket port; 0 picks a free one (default 0)")
    serve.add_argument("--rest-workers", type=int, metavar="N", help="REST worker processes (default 1)")
    serve.add_argument("--ws-workers", type=int, metavar="M", help="WebSocket worker processes (default 1)")
    serve.add_argument(
        "--rate-limits",
        choices=RATE_LIMITS,
        help="bybit: Bybit's per-UID REST limits, X-Bapi-Limit* headers and 10006 (default); "
        "off: no counting, no headers (load tests)",
    )
    serve.add_argument(
        "--admin",
        choices=ADMIN_MODES,
        help="the HTTP admin API under /__admin/ on the REST port (default on; see docs/admin.md)",
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"require this token on every admin request (default: ${ADMIN_TOKEN_ENV}); "
        "needed when --host is not a loopback address",
    )
    serve.add_argument(
        "--metrics",
        action="store_true",
        default=None,
        help="Prometheus metrics at /metrics on the REST port (needs prometheus-client; see docs/metrics.md)",
    )
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default WARNING")
    add_soak_parser(sub)
    load = sub.add_parser(
        "load",
        help="drive a mock with signed REST and WebSocket load, and report latencies",
        description="A multiprocess load generator: closed loop (--connections) or open loop (--rate), "
        "HDR latency percentiles per operation, errors by retCode; see docs/load.md.",
    )
    add_load_arguments(load)
    return parser


def add_soak_parser(sub: Any) -> None:
    soak = sub.add_parser(
        "soak",
        help="run the mock under load with its fault schedule, and report memory, descriptors and lag",
        description="Start the mock from --config (its [[scenarios]] armed), run `bybit-mock load` against it "
        "for --duration seconds, sample every process, and write soak.json and soak.png to --out. "
        "Arguments after -- go to the load generator (see docs/soak.md).",
    )
    soak.add_argument("--config", metavar="FILE.toml", help="configuration file (default: the built-in demo)")
    soak.add_argument("--duration", type=float, required=True, metavar="SECONDS", help="how long the load runs")
    soak.add_argument("--out", default="soak-out", metavar="DIR", help="where the report goes (default soak-out)")
    soak.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="sampling period (default 5)")
    soak.add_argument("--warmup", type=float, metavar="SECONDS", help="growth is measured after this (default 1/5)")
    soak.add_argument("load_args", nargs="*", metavar="-- LOAD ARGS", help="passed to bybit-mock load")


def soak(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from .soak.runner import run_soak  # noqa: PLC0415  # matplotlib and the load only for a soak

    try:
        config = MockExchangeConfig.from_toml(args.config) if args.config else MockExchangeConfig.default()
        report = run_soak(config, args.duration, Path(args.out), args.load_args, args.interval, args.warmup)
    except (ConfigError, ValueError) as exc:
        print(f"bybit-mock soak: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    summary = {
        "out": args.out,
        "rss_growth_pct": {
            name: round(fig["rss_growth"]["growth_pct"], 2)
            for name, fig in report["processes"].items()
            if fig["rss_growth"]
        },
        "unexplained_errors": report["errors"]["unexplained"],
        "scheduled_firings": report["errors"]["scheduled_firings"],
    }
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 0 if not report["errors"]["unexplained"] and report["load_exit_code"] == 0 else 1


def load_config(args: argparse.Namespace) -> MockExchangeConfig:
    """The file's config (or the built-in default) with the flags given, checked once, whole:
    the flags go into ``[server]`` before any check, so a flag may mend what the file alone
    would break (``--admin-token`` for a file's non-loopback ``host``)."""
    flags = {
        "host": args.host,
        "rest_port": args.rest_port,
        "ws_port": args.ws_port,
        "rest_workers": args.rest_workers,
        "ws_workers": args.ws_workers,
        "log_level": args.log_level,
        "rate_limits": args.rate_limits,
        "admin": args.admin,
        "metrics": args.metrics,
        "admin_token": args.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None,
    }
    overrides = {name: value for name, value in flags.items() if value is not None}
    if not args.config:
        return MockExchangeConfig(accounts=[demo_account()], **overrides)
    data = read_toml(args.config)
    server = data.get("server", {})
    if isinstance(server, dict):  # (not a table: from_mapping says so)
        data["server"] = {**server, **overrides}  # the command line wins over the file
    return MockExchangeConfig.from_mapping(data)


def serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"bybit-mock: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exchange = MockExchange(config)
    try:
        exchange.start()
    except StartError as exc:
        print(f"bybit-mock: could not start: {exc}", file=sys.stderr)
        return 1
    try:
        account = config.accounts[0] if config.accounts else None
        ready = {
            "event": "ready",
            "rest_url": exchange.rest_url,
            "ws_url": exchange.ws_url,
            "api_key": account.api_key if account else None,
            "api_secret": account.api_secret if account else None,
            "admin_url": exchange.admin_url if config.admin == "on" else None,
            "metrics_url": exchange.metrics_url if config.metrics else None,
            "pids": exchange.pids(),
        }
        sys.stdout.write(orjson.dumps(ready).decode() + "\n")
        sys.stdout.flush()
        print(banner(exchange, config), file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("bybit-mock: stopping", file=sys.stderr, flush=True)
    finally:
        exchange.close()
    return 0


def _underlyings(symbols: list[str]) -> list[str]:
    return sorted({s.split("-", 1)[0] for s in symbols})


def banner(exchange: MockExchange, config: MockExchangeConfig) -> str:
    lines = [
        f"bybit-mock {__version__} ready",
        f"  REST        {exchange.rest_url}  ({config.rest_workers} worker(s))",
        f"  WebSocket   {exchange.ws_public_url('linear')}  |  {exchange.ws_private_url}"
        f"  |  {exchange.ws_trade_url}  ({config.ws_workers} worker(s))",
    ]
    for acct in config.accounts:
        coins = ", ".join(f"{amount:f} {coin}" for coin, amount in acct.balances.items()) or "no balance"
        lines.append(f"  account     key={acct.api_key}  secret={acct.api_secret}  ({coins})")
    by_category: dict[str, list[str]] = {}
    for inst in config.instruments:
        by_category.setdefault(inst.category, []).append(inst.symbol)
    for category, symbols in by_category.items():
        # an option chain is dozens of symbols: its count and underlyings say enough
        shown = ", ".join(symbols) if category != "option" else f"{len(symbols)} ({', '.join(_underlyings(symbols))})"
        lines.append(f"  {category:<11s} {shown}")
    lines.append(f"  rate limits: {config.rate_limits}")
    if config.admin == "on":
        access = "token required" if config.admin_token else "open to this machine"
        lines.append(f"  admin       {exchange.admin_url}  ({access})")
    else:
        lines.append("  admin: off")
    if config.metrics:
        lines.append(f"  metrics     {exchange.metrics_url}")
    lines.append("  Ctrl-C to stop.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "soak":
        return soak(args)
    if args.command == "load":
        return run_load(args)
    parser.print_help(sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
