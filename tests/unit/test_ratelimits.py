"""Bybit's per-UID REST rate limits: the limiter alone (clock driven by hand) and in the engine."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bybit_mock import ConfigError, MockExchangeConfig
from bybit_mock.bybit import errors
from bybit_mock.cli import build_parser, load_config
from bybit_mock.engine import ratelimits
from bybit_mock.engine.exchange import Exchange
from bybit_mock.engine.ratelimits import RESET_LEAD_MS, LimitInfo, RateLimiter, Rule
from bybit_mock.rest.http import json_response

CREATE = "/v5/order/create"
KEY = "alice"


class Clock:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def fill(limiter: RateLimiter, path: str, category: str | None, n: int, key: str = KEY) -> list[LimitInfo]:
    infos = []
    for _ in range(n):
        granted, info = limiter.hit(key, path, category)
        assert granted == 1, info
        infos.append(info)
    return infos


def test_the_table_matches_bybit_for_order_entry_and_reads() -> None:
    assert ratelimits.rule_of(CREATE, "linear") == (Rule(10), "futures")
    assert ratelimits.rule_of(CREATE, "inverse") == (Rule(10), "futures")
    assert ratelimits.rule_of(CREATE, "spot") == (Rule(20), "spot")
    assert ratelimits.rule_of("/v5/order/amend", "spot")[0] == Rule(10)
    assert ratelimits.rule_of("/v5/order/cancel", "spot")[0] == Rule(20)
    assert ratelimits.rule_of("/v5/order/cancel-all", "option")[0] == Rule(1)
    assert ratelimits.rule_of("/v5/order/cancel-all", "spot")[0] == Rule(20)
    assert ratelimits.rule_of("/v5/order/create-batch", "linear")[0] == Rule(10)
    for path in ("/v5/order/realtime", "/v5/order/history", "/v5/execution/list", "/v5/position/list"):
        assert ratelimits.rule_of(path, "linear") == (Rule(50), "")
    assert ratelimits.rule_of("/v5/account/wallet-balance", None) == (Rule(50), "")
    assert ratelimits.rule_of("/v5/asset/transfer/inter-transfer", None)[0] == Rule(60, 60_000)
    assert ratelimits.rule_of("/v5/some/new-endpoint", None) == (ratelimits.DEFAULT, "")


def test_every_signed_route_the_mock_serves_is_in_the_table() -> None:
    from bybit_mock.rest.routes import build_routes  # noqa: PLC0415  # the worker side, only here

    signed = {path for path, route in build_routes(MockExchangeConfig.default()).items() if route.signed}
    assert signed <= set(ratelimits.LIMITS), signed - set(ratelimits.LIMITS)


def test_the_eleventh_linear_create_in_a_second_is_refused_and_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    infos = fill(limiter, CREATE, "linear", 10)
    assert [i.remaining for i in infos] == list(range(9, -1, -1))
    assert all(i.limit == 10 and i.reset_ms == clock.now for i in infos)  # not exceeded: "now"
    start = clock.now
    clock.now += 500
    for _ in range(3):  # refusals do not count: the window frees at the same instant each time
        granted, info = limiter.hit(KEY, CREATE, "linear")
        assert granted == 0 and info == LimitInfo(10, 0, start + 1000)
    clock.now = start + 1000
    assert limiter.hit(KEY, CREATE, "linear") == (1, LimitInfo(10, 9, clock.now))  # all ten left at once


def test_the_window_rolls_one_slot_at_a_time() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(10):
        fill(limiter, CREATE, "linear", 1)
        clock.now += 10  # slots taken at t0, t0+10, ..., t0+90
    start = clock.now - 100
    clock.now = start + 1000  # the first slot left exactly now
    granted, info = limiter.hit(KEY, CREATE, "linear")
    assert granted == 1 and info.remaining == 0
    granted, info = limiter.hit(KEY, CREATE, "linear")
    # the next oldest frees next, 10 ms on, but a reset is never less than the lead ahead
    assert granted == 0 and info.reset_ms == max(start + 10 + 1000, clock.now + RESET_LEAD_MS)
    clock.now = start + 10 + 1000
    assert limiter.hit(KEY, CREATE, "linear")[0] == 1
    clock.now = start + 1010 + 1000  # every slot has left
    assert limiter.hit(KEY, CREATE, "linear") == (1, LimitInfo(10, 9, clock.now))


def test_keys_groups_and_lines_count_apart() -> None:
    limiter = RateLimiter(Clock())
    fill(limiter, CREATE, "linear", 10)
    assert limiter.hit(KEY, CREATE, "linear")[0] == 0
    assert limiter.hit(KEY, CREATE, "inverse")[0] == 0  # linear and inverse: one line (futures)
    assert fill(limiter, CREATE, "linear", 1, key="bob")[0].remaining == 9  # another UID
    assert fill(limiter, "/v5/order/cancel", "linear", 1)[0].remaining == 9  # another endpoint
    spot = fill(limiter, CREATE, "spot", 20)  # spot: its own line, 20/s
    assert spot[0] == LimitInfo(20, 19, spot[0].reset_ms) and spot[-1].remaining == 0
    assert limiter.hit(KEY, CREATE, "spot")[0] == 0


def test_the_reset_timestamp_is_never_in_the_past() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    fill(limiter, CREATE, "linear", 10)
    for step in (0, 1, 500, 899, 900, 950, 999):
        clock.now = 1_700_000_000_000 + step
        granted, info = limiter.hit(KEY, CREATE, "linear")
        assert granted == 0
        assert info.reset_ms >= clock.now + RESET_LEAD_MS  # pybit sleeps reset - now: never negative
        assert info.reset_ms >= 1_700_000_000_000 + 1000  # and not before a slot frees
    clock.now -= 5000  # the wall clock stepped back: still ahead of now
    assert limiter.hit(KEY, CREATE, "linear")[1].reset_ms > clock.now


def test_a_batch_counts_its_orders_and_takes_what_is_left() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    batch = "/v5/order/create-batch"
    query = {"category": "linear", "request": [{}] * 8}
    assert ratelimits.cost_of(batch, query) == 8
    assert ratelimits.cost_of(batch, {"category": "option", "request": [{}] * 8}) == 1
    assert ratelimits.cost_of(batch, {"category": "linear", "request": "nonsense"}) == 1
    assert ratelimits.cost_of(CREATE, query) == 1
    assert limiter.hit(KEY, batch, "linear", 8) == (8, LimitInfo(10, 2, clock.now))
    granted, info = limiter.hit(KEY, batch, "linear", 8)
    assert granted == 2 and info.remaining == 0 and info.reset_ms >= clock.now + RESET_LEAD_MS
    assert limiter.hit(KEY, batch, "linear", 1)[0] == 0
    assert limiter.hit(KEY, CREATE, "linear")[0] == 1  # the single endpoint has its own window


def test_per_minute_rules_keep_their_window() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    path = "/v5/asset/transfer/inter-transfer"
    fill(limiter, path, None, 60)
    clock.now += 30_000
    granted, info = limiter.hit(KEY, path, None)
    assert granted == 0 and info.reset_ms == clock.now - 30_000 + 60_000


def test_clear_forgets_every_window() -> None:
    limiter = RateLimiter(Clock())
    fill(limiter, CREATE, "linear", 10)
    limiter.clear()
    assert limiter.hit(KEY, CREATE, "linear")[1].remaining == 9


def test_the_header_lines_frame_into_a_response() -> None:
    lines = ratelimits.header_lines(LimitInfo(10, 0, 1672738134824))
    assert lines == b"X-Bapi-Limit: 10\r\nX-Bapi-Limit-Status: 0\r\nX-Bapi-Limit-Reset-Timestamp: 1672738134824\r\n"
    head, _, body = json_response(200, b"{}", extra=lines).partition(b"\r\n\r\n")
    assert body == b"{}" and head.endswith(lines.rstrip(b"\r\n"))


# -- in the engine ------------------------------------------------------------------------


def engine(clock: Clock) -> tuple[Exchange, str]:
    ex = Exchange(MockExchangeConfig.default(), clock=clock)
    ex.freeze_market()
    return ex, ex.account_keys()[0]


def order(i: int) -> dict[str, str]:
    return {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001",
            "price": "30000", "orderLinkId": f"o{i}"}  # fmt: skip


def test_the_engine_refuses_the_eleventh_create_and_changes_nothing() -> None:
    clock = Clock()
    ex, key = engine(clock)
    commands = [("rate_limited", (key, CREATE, "order_create", (key, order(i)))) for i in range(11)]
    replies = ex.apply_batch(commands)
    assert [r[0] for r in replies] == [0] * 10 + [errors.TOO_MANY_VISITS]
    assert replies[-1][1] == "Too many visits!" and replies[-1][2].reset_ms >= clock.now + RESET_LEAD_MS
    assert [r[2].remaining for r in replies[:10]] == list(range(9, -1, -1))
    assert len(ex.open_orders(key)) == 10
    clock.now += 1000  # a second later the window has room again
    ((code, _, info),) = ex.apply_batch([commands[-1]])
    assert code == 0 and info.remaining == 9 and len(ex.open_orders(key)) == 11


def test_a_request_let_through_counts_even_when_it_fails_and_reset_clears() -> None:
    clock = Clock()
    ex, key = engine(clock)
    bad = ("rate_limited", (key, CREATE, "order_create", (key, {"category": "linear"})))
    replies = ex.apply_batch([bad] * 10)
    assert {r[0] for r in replies} == {errors.PARAMS_ERROR} and replies[-1][2].remaining == 0
    assert ex.apply_batch([bad])[0][0] == errors.TOO_MANY_VISITS
    ex.reset()
    assert ex.apply_batch([bad])[0][2].remaining == 9


def test_a_batch_over_the_limit_places_its_first_orders_only() -> None:
    clock = Clock()
    ex, key = engine(clock)
    batch = "/v5/order/create-batch"
    first = {"category": "linear", "request": [order(i) for i in range(8)]}
    second = {"category": "linear", "request": [order(i) for i in range(8, 16)]}
    replies = ex.apply_batch(
        [("rate_limited", (key, batch, "order_create_batch", (key, query))) for query in (first, second)]
    )
    assert [r[2].remaining for r in replies] == [2, 0]
    outcomes = [o["code"] for o in orjson.loads(replies[1][1][1])["list"]]
    assert outcomes == [0, 0] + [errors.TOO_MANY_VISITS] * 6
    assert len(ex.open_orders(key)) == 10


def test_a_worker_answered_request_is_only_counted() -> None:
    ex, key = engine(Clock())
    command = ("rate_limited", (key, "/v5/account/fee-rate", "", (key, {"category": "linear"})))
    replies = ex.apply_batch([command] * 6)
    assert [r[:2] for r in replies] == [(0, None)] * 5 + [(errors.TOO_MANY_VISITS, "Too many visits!")]


@pytest.mark.parametrize("args", [(), ("k",), ("k", CREATE, "rate_limited", ())])
def test_a_malformed_rate_limited_command_fails_alone(args: tuple[object, ...]) -> None:
    ex, _ = engine(Clock())
    replies = ex.apply_batch([("rate_limited", args), ("instance", ())])
    assert replies[0][0] == errors.SERVER_ERROR and replies[1] == (0, ex.instance_id)


# -- configuration ------------------------------------------------------------------------


def test_config_default_toml_and_validation(tmp_path: Path) -> None:
    assert MockExchangeConfig().rate_limits == "bybit"
    path = tmp_path / "mock.toml"
    path.write_text('[server]\nrest_port = 0\nrate_limits = "off"\n')
    assert MockExchangeConfig.from_toml(path).rate_limits == "off"
    for text, fragment in (
        ('rate_limits = "strict"', "rate_limits must be one of bybit, off"),
        ("rate_limits = 1", "expected str"),
    ):
        path.write_text(f"[server]\n{text}\n")
        with pytest.raises(ConfigError, match=fragment):
            MockExchangeConfig.from_toml(path)
    with pytest.raises(ConfigError, match="rate_limits"):
        MockExchangeConfig.default().copy(rate_limits="none")


def test_cli_flag_overrides_the_config() -> None:
    args = build_parser().parse_args(["serve", "--rate-limits", "off"])
    assert load_config(args).rate_limits == "off"
    assert load_config(build_parser().parse_args(["serve"])).rate_limits == "bybit"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--rate-limits", "loose"])
