"""The options of ``bybit-mock load`` and the run they describe.

The target must be this machine (127.0.0.0/8, ::1, ``localhost``) or a host named with
``--allow-host``: a load generator pointed elsewhere by a typo is a denial-of-service tool.
Every run has a ``--duration`` (at most an hour) and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ..config_checks import is_loopback
from .mix import DEFAULT_MIX, OPERATIONS, MixError, parse_mix

if TYPE_CHECKING:
    from ..mock import MockExchange

MAX_DURATION_S = 3600.0
EXIT_USAGE = 2


class TargetError(ValueError):
    """A URL the load generator refuses to load (bad form, or not a loopback/allowed host)."""


def check_target(url: str, schemes: tuple[str, ...], allowed: Sequence[str]) -> tuple[str, int]:
    """``(host, port)`` of ``url``, which must be loopback or one of ``allowed``."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname or parts.port is None:
        raise TargetError(f"{url!r}: expected {schemes[0]}://HOST:PORT")
    host = parts.hostname
    if not is_loopback(host) and host not in allowed:
        raise TargetError(
            f"{host!r} is not a loopback address; the load generator only targets this machine "
            f"unless the host is named with --allow-host {host}"
        )
    return host, parts.port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target")
    target.add_argument("--rest-url", help="REST base URL, e.g. http://127.0.0.1:PORT")
    target.add_argument("--ws-url", help="WebSocket base URL, e.g. ws://127.0.0.1:PORT")
    target.add_argument("--key", help="API key (signs REST, authenticates private and trade sockets)")
    target.add_argument("--secret", help="API secret")
    target.add_argument(
        "--serve",
        action="store_true",
        help="start a mock here (rate limits off, a funded demo account) and load it",
    )
    target.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a non-loopback host that may be loaded (repeatable); anything else is refused",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, required=True, help=f"seconds, at most {MAX_DURATION_S:.0f}")
    loop = load.add_mutually_exclusive_group()
    loop.add_argument("--connections", type=int, help="closed loop: REST connections, one operation in flight on each")
    loop.add_argument("--rate", type=float, help="open loop: REST operations per second (over all processes)")
    load.add_argument(
        "--open-connections",
        type=int,
        default=64,
        metavar="N",
        help="open loop: the REST connection pool (over all processes; default 64)",
    )
    load.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"weighted REST operations (default {DEFAULT_MIX!r}; known: {', '.join(OPERATIONS)})",
    )
    load.add_argument("--ws-public", type=int, default=0, metavar="N", help="public subscribers (linear)")
    load.add_argument("--ws-private", type=int, default=0, metavar="N", help="authenticated private subscribers")
    load.add_argument(
        "--ws-trade-rate", type=float, default=0.0, metavar="R", help="/v5/trade create+cancel cycles per second"
    )
    load.add_argument("--public-topics", default="orderbook.50.BTCUSDT,publicTrade.BTCUSDT,tickers.BTCUSDT")
    load.add_argument("--private-topics", default="order,execution,position,wallet")
    load.add_argument(
        "--spread-topics",
        action="store_true",
        help="each public subscriber takes one of --public-topics (round-robin) instead of all of them",
    )
    load.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1), help="generator processes")
    load.add_argument("--seed", type=int, default=0, help="seeds the operation picks")
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="FILE.json", help="write the result here (it is printed to stdout either way)")
    out.add_argument("--quiet", action="store_true", help="no progress line")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bybit_mock.load", description=__doc__)
    add_arguments(parser)
    return parser


def _usage(message: str) -> int:
    print(f"bybit-mock load: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_command(args: argparse.Namespace) -> int:
    if not 0 < args.duration <= MAX_DURATION_S:
        return _usage(f"--duration must be in (0, {MAX_DURATION_S:.0f}] seconds")
    if args.processes < 1 or (args.connections is not None and args.connections < 0) or args.open_connections < 1:
        return _usage("--processes, --connections and --open-connections must be positive")
    if (args.rate is not None and args.rate <= 0) or args.ws_trade_rate < 0 or min(args.ws_public, args.ws_private) < 0:
        return _usage("rates and WebSocket counts must not be negative (--rate: positive)")
    try:
        mix = parse_mix(args.mix)
    except MixError as exc:
        return _usage(str(exc))
    if args.serve:
        if args.rest_url or args.ws_url:
            return _usage("--serve starts its own mock: leave out --rest-url and --ws-url")
        return _with_served_mock(args, mix)
    if not (args.rest_url and args.ws_url and args.key and args.secret):
        return _usage("give --rest-url, --ws-url, --key and --secret (or --serve)")
    return _load(args, mix, args.rest_url, args.ws_url, args.key, args.secret)


def _with_served_mock(args: argparse.Namespace, mix: Any) -> int:
    from ..config import MockExchangeConfig  # noqa: PLC0415  # only --serve needs the server
    from ..mock import MockExchange  # noqa: PLC0415

    exchange: MockExchange
    with MockExchange(MockExchangeConfig.default().copy(rate_limits="off")) as exchange:
        return _load(args, mix, exchange.rest_url, exchange.ws_url, exchange.api_key, exchange.api_secret)


def _load(args: argparse.Namespace, mix: Any, rest_url: str, ws_url: str, key: str, secret: str) -> int:
    from .report import result_document  # noqa: PLC0415  # hdrhistogram: only when a run starts
    from .rest import RestTarget  # noqa: PLC0415
    from .runner import LoadError, Plan, run  # noqa: PLC0415

    try:
        rest_host, rest_port = check_target(rest_url, ("http",), args.allow_host)
        check_target(ws_url, ("ws",), args.allow_host)
    except TargetError as exc:
        return _usage(str(exc))
    open_loop = args.rate is not None
    connections = args.open_connections if open_loop else (args.connections if args.connections is not None else 16)
    plan = Plan(
        rest=RestTarget(rest_host, rest_port, key, secret),
        ws_url=ws_url.rstrip("/"),
        mix=mix,
        duration_s=args.duration,
        connections=connections if mix.names else 0,
        rate=args.rate or 0.0,
        ws_public=args.ws_public,
        ws_private=args.ws_private,
        ws_trade_rate=args.ws_trade_rate,
        public_topics=_topics(args.public_topics),
        private_topics=_topics(args.private_topics),
        seed=args.seed,
        spread_topics=args.spread_topics,
    )
    # connecting is not measured, but 10 000 subscribers take a while: 1 s more per 100
    setup_timeout = 30.0 + (args.ws_public + args.ws_private) / 100
    try:
        recorder, elapsed = run(plan, args.processes, progress=not args.quiet, setup_timeout=setup_timeout)
    except LoadError as exc:
        print(f"bybit-mock load: {exc}", file=sys.stderr)
        return 1
    described = {
        "rest_url": rest_url,
        "ws_url": ws_url,
        "mode": "open" if open_loop else "closed",
        "duration_s": args.duration,
        "connections": connections if mix.names else 0,
        "rate": args.rate,
        "mix": mix.spec(),
        "ws_public": args.ws_public,
        "ws_private": args.ws_private,
        "ws_trade_rate": args.ws_trade_rate,
        "spread_topics": args.spread_topics,
        "processes": args.processes,
        "seed": args.seed,
    }
    document = orjson.dumps(result_document(recorder, described, elapsed), option=orjson.OPT_INDENT_2)
    if args.out:
        Path(args.out).write_bytes(document + b"\n")
    sys.stdout.write(document.decode() + "\n")
    return 0


def _topics(spec: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in spec.split(",") if t.strip())


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))
