"""The metrics module: bounded label values, the event-loop lag timer, nothing loaded when off.

What turns metrics on (``metrics.enable``) sets ``PROMETHEUS_MULTIPROC_DIR`` and registers the
instruments for the whole process, so those checks run in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bybit_mock import metrics
from bybit_mock.bybit import envelope
from bybit_mock.config import ConfigError, MockExchangeConfig


def fresh(code: str) -> object:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_route_label_is_a_known_route_or_unknown() -> None:
    routes = {"/v5/market/time", "/v5/order/create"}
    assert metrics.route_label("/v5/market/time", routes) == "/v5/market/time"
    assert metrics.route_label("/v5/market/time/", routes) == "unknown"
    assert metrics.route_label("/../etc/passwd?x=1", routes) == "unknown"
    assert metrics.method_label("POST") == "POST"
    assert metrics.method_label("PROPFIND") == "other"


def test_the_ret_code_is_read_from_the_envelope_only() -> None:
    assert metrics.ret_code_of(envelope.ok(b"{}", 1)) == "0"
    assert metrics.ret_code_of(envelope.error(110007, "insufficient", 1)) == "110007"
    assert metrics.ret_code_of(b"<html>502 Bad Gateway</html>") == "none"
    assert metrics.ret_code_of(b'{"retCode":"x' + b"9" * 100) == "none"
    assert metrics.ret_code_of(b'{"retCode":' + b"9" * 100) == "none"  # no comma within reach


def test_a_topic_label_drops_a_configured_symbol_only() -> None:
    symbols = {"BTCUSDT", "ETHUSDT"}
    assert metrics.topic_label("orderbook.50.BTCUSDT", symbols) == "orderbook.50"
    assert metrics.topic_label("publicTrade.ETHUSDT", symbols) == "publicTrade"
    assert metrics.topic_label("kline.1.BTCUSDT", symbols) == "kline.1"
    assert metrics.topic_label("order.linear", symbols) == "order.linear"
    assert metrics.topic_label("wallet", symbols) == "wallet"


def test_the_lag_timer_measures_how_late_the_loop_ran_it() -> None:
    loop = asyncio.new_event_loop()
    lags: list[float] = []
    timer = metrics.LagTimer(loop, lags.append, 0.02)
    try:
        timer.start()
        loop.run_until_complete(asyncio.sleep(0.07))  # a few punctual ticks
        punctual = len(lags)
        loop.call_soon(time.sleep, 0.2)  # a handler that blocks the loop
        loop.run_until_complete(asyncio.sleep(0.3))
    finally:
        timer.stop()
        loop.close()
    assert punctual >= 2
    assert max(lags) >= 0.15  # the blocked tick was seen late, by about the block
    assert min(lags) >= 0.0


def test_metrics_need_a_bool_and_default_to_off() -> None:
    assert MockExchangeConfig().metrics is False
    assert MockExchangeConfig.from_mapping({"server": {"metrics": True}}).metrics is True
    with pytest.raises(ConfigError, match="metrics"):
        MockExchangeConfig.from_mapping({"server": {"metrics": 1}})


def test_off_nothing_imports_prometheus_client() -> None:
    loaded = fresh(
        "import asyncio, json, sys\n"
        "from bybit_mock.config import MockExchangeConfig\n"
        "from bybit_mock import supervisor, worker, metrics\n"
        "from bybit_mock.rest.app import RestApp\n"
        "from bybit_mock.rest.routes import build_routes\n"
        "from bybit_mock.ws.app import WsApp\n"
        "from bybit_mock.service.client import StateClient\n"
        "from bybit_mock.scenarios.registry import Registry\n"
        "cfg = MockExchangeConfig.default()\n"
        "loop = asyncio.new_event_loop()\n"
        "state = StateClient(None, loop)\n"
        "RestApp(cfg, state, build_routes(cfg)); WsApp(cfg, state, loop)\n"
        "metrics.fired('s', 'fail')\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('prometheus_client')]))\n"
    )
    assert loaded == []


def test_on_hostile_paths_make_one_label_and_every_process_is_summed(tmp_path: Path) -> None:
    """Two 'workers' (processes) write to one directory; a render in a third sums them."""
    program = (
        "import json, sys\n"
        "from bybit_mock import metrics\n"
        "from bybit_mock.bybit import envelope\n"
        "from bybit_mock.rest.protocol import Request\n"
        f"m = metrics.enable({str(tmp_path)!r}, sys.argv[1])\n"
        "sent = []\n"
        "routes = {'/v5/market/time'}\n"
        "for i in range(200):\n"
        "    respond = m.meter(Request('GET', f'/x{i}', '', {}, b''), lambda *a, **k: sent.append(a), routes)\n"
        "    respond(404, envelope.error(10017, 'nope', 1))\n"
        "known = Request('GET', '/v5/market/time', '', {}, b'')\n"
        "m.meter(known, lambda *a, **k: None, routes)(200, envelope.ok(b'{}', 1))\n"
        "class L:\n"
        "    CHANNEL = 'public'\n"
        "conns = metrics.CountedListeners(m)\n"
        "a, b = L(), L()\n"
        "conns.add(a); conns.add(a); conns.add(b); conns.discard(b); conns.discard(b)\n"
        "m.ws_public_batches('linear', {'orderbook.50.BTCUSDT': [b'1', b'2']}, lambda t: 3, {'BTCUSDT'})\n"
        "m.batch_sent(5); m.round_trip(0.001)\n"
        "m.flush(); m.flush()  # (a second flush has nothing left to write)\n"
        "print(json.dumps(len(sent)))\n"
        "if sys.argv[2] == 'render':\n"
        "    from prometheus_client.parser import text_string_to_metric_families\n"
        "    body, kind = m.render()\n"
        "    samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(body.decode())\n"
        "               for s in f.samples]\n"
        "    print(json.dumps([kind.decode(), samples]))\n"
    )
    for name, then in (("rest-0", "-"), ("rest-1", "render")):
        done = subprocess.run(
            [sys.executable, "-c", program, name, then], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
    kind, samples = json.loads(done.stdout.strip().splitlines()[-1])
    assert kind.startswith("text/plain")
    values = {(n, tuple(sorted(labels.items()))): v for n, labels, v in samples}
    unknown = (("method", "GET"), ("ret_code", "10017"), ("route", "unknown"))
    assert values[("bybit_mock_rest_requests_total", unknown)] == 400  # 2 processes x 200 paths
    ok = (("method", "GET"), ("ret_code", "0"), ("route", "/v5/market/time"))
    assert values[("bybit_mock_rest_requests_total", ok)] == 2
    routes = {dict(labels).get("route") for n, labels, _ in samples if n.startswith("bybit_mock_rest")}
    assert routes == {"unknown", "/v5/market/time"}  # 200 hostile paths, one label value
    assert values[("bybit_mock_rest_request_seconds_count", (("route", "unknown"),))] == 400
    inf = (("le", "+Inf"), ("route", "unknown"))
    assert values[("bybit_mock_rest_request_seconds_bucket", inf)] == 400
    assert values[("bybit_mock_ws_connections", (("channel", "public"),))] == 2  # one live per process
    messages = (("channel", "linear"), ("topic", "orderbook.50"))
    assert values[("bybit_mock_ws_messages_out_total", messages)] == 12  # 2 messages x 3 subscribers x 2
    assert values[("bybit_mock_state_batch_size_sum", ())] == 10
    assert values[("bybit_mock_state_batch_size_bucket", (("le", "4.0"),))] == 0
    assert values[("bybit_mock_state_batch_size_bucket", (("le", "8.0"),))] == 2
    assert values[("bybit_mock_state_round_trip_seconds_count", ())] == 2
