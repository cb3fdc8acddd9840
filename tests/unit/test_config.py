from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bybit_mock import AccountConfig, ConfigError, MockExchangeConfig
from bybit_mock.config import DEMO_API_KEY
from bybit_mock.market.config import SymbolMarketConfig

GOOD = """
[server]
rest_workers = 2
ws_workers = 1
rest_port = 0
log_level = "INFO"

[[accounts]]
api_key = "alice"
api_secret = "alice-secret"
balances = { USDT = 2500.5, btc = "0.1" }
positions = [ { symbol = "BTCUSDT", side = "Buy", size = "0.01", entry_price = 60000, leverage = 5 } ]

[[instruments]]
symbol = "SOLUSDT"
category = "linear"
base_coin = "SOL"
quote_coin = "USDT"
price = 150
tick_size = "0.01"
qty_step = "0.1"
min_qty = "0.1"
max_qty = "79770.0"

[[instruments]]
symbol = "BTCUSDT"
base_coin = "BTC"
quote_coin = "USDT"
price = 65000
tick_size = "0.10"
qty_step = "0.001"
min_qty = "0.001"
max_qty = "1190"
"""


def test_default_has_demo_account_and_instruments() -> None:
    cfg = MockExchangeConfig.default()
    assert cfg.accounts[0].api_key == DEMO_API_KEY
    assert cfg.accounts[0].balances == {"USDT": Decimal("100000")}
    perpetuals = {(i.category, i.symbol) for i in cfg.instruments if not i.dated}
    assert perpetuals == {
        ("linear", "BTCUSDT"),
        ("linear", "ETHUSDT"),
        ("spot", "BTCUSDT"),
        ("spot", "ETHUSDT"),
        ("inverse", "BTCUSD"),
    }
    dated = [i for i in cfg.instruments if i.dated]  # 2 linear + 2 inverse futures, 12 options
    assert sorted({i.category for i in dated}) == ["inverse", "linear", "option"]
    assert len(dated) == 16
    assert MockExchangeConfig().accounts == []


def test_toml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(GOOD)
    cfg = MockExchangeConfig.from_toml(path)
    assert cfg.rest_workers == 2 and cfg.log_level == "INFO"
    acct = cfg.accounts[0]
    assert acct.balances == {"USDT": Decimal("2500.5"), "BTC": Decimal("0.1")}
    assert acct.positions[0].leverage == 5 and acct.positions[0].entry_price == 60000
    assert [i.symbol for i in cfg.instruments] == ["SOLUSDT", "BTCUSDT"]
    assert cfg.instruments[1].price_scale == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nrest_workers = 0", "rest_workers"),
        ("[server]\nrest_port = 70000", "rest_port"),
        ("[server]\nbogus = 1", "unknown key"),
        ("[server]\nrest_workers = 'two'", "expected int"),
        ("nonsense = 1", "unknown top-level"),
        ("[[accounts]]\napi_key = 'a'", "api_secret"),
        ("[[accounts]]\napi_key = 'a'\napi_secret = 'b'\nbalances = { USDT = 'lots' }", "not a number"),
        ("[[accounts]]\napi_key = 'a'\napi_secret = 'b'\nbalances = { USDT = -1 }", ">= 0"),
        (
            "[[accounts]]\napi_key='a'\napi_secret='b'\npositions=[{symbol='XUSDT',side='Buy',size=1,entry_price=1}]",
            "unknown instrument",
        ),
        (
            "[[accounts]]\napi_key='a'\napi_secret='b'\npositions=[{symbol='BTCUSDT',side='Long',size=1,entry_price=1}]",
            "side",
        ),
        ("[[instruments]]\nsymbol='X'\nbase_coin='X'\nquote_coin='USDT'\nprice=1", "tick_size"),
        ("this is = not toml [", "invalid TOML"),
        ("[server]\nhistory_limit = 10", "history_limit must be >= 100"),
        ("[server]\nhistory_limit = 'many'", "history_limit: expected int"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        MockExchangeConfig.from_toml(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        MockExchangeConfig.from_toml("/nonexistent/x.toml")


def test_builders_chain() -> None:
    acct = AccountConfig("k", "s").with_balance("usdc", 3).with_position("BTCUSDT", "Sell", "1", "1")
    cfg = MockExchangeConfig().with_account(acct)
    assert cfg.accounts[0].balances == {"USDC": Decimal(3)}
    with pytest.raises(ConfigError, match="share"):
        cfg.with_account(AccountConfig("k", "s2"))


def test_ack_delay_is_a_float_and_not_negative() -> None:
    assert MockExchangeConfig.from_mapping({"server": {"ack_delay_ms": 5}}).ack_delay_ms == 5.0
    with pytest.raises(ConfigError, match="ack_delay_ms"):
        MockExchangeConfig.from_mapping({"server": {"ack_delay_ms": -1}})


# -- copies: a builder returns a new config and never changes the one it was called on -------


def test_with_account_leaves_the_receiver_alone() -> None:
    base = MockExchangeConfig.default()
    derived = base.copy().with_account(AccountConfig("k2", "s2"))
    assert [a.api_key for a in base.accounts] == [DEMO_API_KEY]
    assert [a.api_key for a in derived.accounts] == [DEMO_API_KEY, "k2"]
    again = base.with_account(AccountConfig("k3", "s3"))
    assert again is not base and [a.api_key for a in base.accounts] == [DEMO_API_KEY]


def test_a_refused_with_account_leaves_the_receiver_alone() -> None:
    base = MockExchangeConfig.default()
    with pytest.raises(ConfigError, match="share"):
        base.with_account(AccountConfig(DEMO_API_KEY, "other"))
    assert len(base.accounts) == 1
    base.validate()  # still valid: no duplicate was left behind


def test_with_instruments_leaves_the_receiver_alone() -> None:
    base = MockExchangeConfig()
    only_linear = [i for i in base.instruments if i.category == "linear"]
    derived = base.with_instruments(only_linear)
    assert len(base.instruments) == 21 and len(derived.instruments) == 4  # 2 perpetuals, 2 dated
    only_linear.clear()  # the caller's list is not the config's
    assert len(derived.instruments) == 4


def test_copy_is_deep() -> None:
    base = MockExchangeConfig.default().with_account(AccountConfig("k", "s").with_position("BTCUSDT", "Buy", 1, 1))
    base.market.symbols.append(SymbolMarketConfig("BTCUSDT", book_rates={50: 10.0}))
    copy = base.copy()
    copy.accounts[0].balances["USDT"] = Decimal(1)
    copy.accounts[1].positions[0].size = Decimal(5)
    copy.accounts.append(AccountConfig("x", "y"))
    copy.instruments.pop()
    copy.market.seed = 99
    copy.market.symbols[0].book_rates[50] = 1.0
    copy.market.symbols.clear()
    assert base.accounts[0].balances["USDT"] == Decimal(100_000)
    assert base.accounts[1].positions[0].size == 1
    assert [a.api_key for a in base.accounts] == [DEMO_API_KEY, "k"]
    assert len(base.instruments) == 21
    assert base.market.seed == 1 and base.market.symbols[0].book_rates == {50: 10.0}


def test_copy_applies_and_validates_changes_and_copies_them() -> None:
    base = MockExchangeConfig.default()
    accounts = [AccountConfig("a", "b")]
    derived = base.copy(rest_workers=3, accounts=accounts)
    accounts[0].balances["USDT"] = Decimal(7)
    assert derived.rest_workers == 3 and derived.accounts[0].balances == {}
    assert base.rest_workers == 1
    with pytest.raises(ConfigError, match="rest_workers"):
        base.copy(rest_workers=0)


def test_account_builders_return_new_accounts() -> None:
    base = AccountConfig("k", "s", {"USDT": 10})
    richer = base.with_balance("btc", "0.5")
    placed = richer.with_position("BTCUSDT", "Buy", "0.1", 60_000, leverage=5)
    assert base.balances == {"USDT": Decimal(10)} and base.positions == []
    assert richer.balances == {"USDT": Decimal(10), "BTC": Decimal("0.5")} and richer.positions == []
    assert placed.balances == richer.balances and placed.balances is not richer.balances
    assert [(p.symbol, p.size, p.leverage) for p in placed.positions] == [("BTCUSDT", Decimal("0.1"), Decimal(5))]
    placed.positions[0].size = Decimal(9)
    assert placed.with_balance("USDT", 1).positions[0].size == 9  # carried over ...
    assert placed.with_balance("USDT", 1).positions[0] is not placed.positions[0]  # ... as a copy


def test_with_balance_checks_the_amount() -> None:
    with pytest.raises(ConfigError, match=">= 0"):
        AccountConfig("k", "s").with_balance("USDT", -1)
    with pytest.raises(ConfigError, match="not a number"):
        AccountConfig("k", "s").with_balance("USDT", "lots")


# -- scenarios armed at start ------------------------------------------------------------------------

SCENARIOS = """
[[scenarios]]
name = "realtime-down"
trigger = { type = "rest", path = "/v5/order/realtime", method = "GET" }
action = { type = "fail", ret_code = 10001, ret_msg = "scripted" }
times = 2

[[scenarios]]
trigger = { type = "order_create" }
match = { symbol = "BTCUSDT", side = "Buy" }
action = { type = "fill_plan", steps = [{ after_ms = 25, quantity = "0.5", price = "1001" }, { quantity = 1 }] }
probability = 0.5
window = { for_ms = 60000 }
"""


def test_toml_scenarios_are_the_json_form(tmp_path: Path) -> None:
    from bybit_mock.scenarios import OrderFillStep, Scenario, ScenarioAction, ScenarioTrigger  # noqa: PLC0415

    path = tmp_path / "mock.toml"
    path.write_text(SCENARIOS)
    cfg = MockExchangeConfig.from_toml(path)
    assert [Scenario.from_json(raw) for raw in cfg.scenarios] == [
        Scenario("realtime-down", ScenarioTrigger.rest("/v5/order/realtime", "GET"),
                 ScenarioAction.fail(10001, "scripted"), times=2),
        Scenario.from_json({
            "trigger": {"type": "order_create"}, "match": {"symbol": "BTCUSDT", "side": "Buy"},
            "action": ScenarioAction.fill_plan([OrderFillStep(25, "0.5", "1001"), OrderFillStep(0, 1)]).to_json(),
            "probability": 0.5, "window": {"for_ms": 60000},
        }),
    ]  # fmt: skip
    assert (cfg.scenario_seed, cfg.journal_limit) == (1, 10_000)  # the defaults


def test_toml_scenarios_table_with_seed_and_journal_limit(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        "[scenarios]\nseed = 7\njournal_limit = 50\narmed = [\n"
        '  { trigger = { type = "order_cancel" }, action = { type = "delay", ms = 10 } },\n]\n'
    )
    cfg = MockExchangeConfig.from_toml(path)
    assert (cfg.scenario_seed, cfg.journal_limit) == (7, 50)
    assert cfg.scenarios == [{"trigger": {"type": "order_cancel"}, "action": {"type": "delay", "ms": 10}}]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[scenarios]]\ntrigger = { type = 'order_create' }\naction = { type = 'delay' }",
         r"scenarios\[0\]\.action\.ms: is required"),
        ("[[scenarios]]\ntrigger = { type = 'order_create' }\naction = { type = 'hang' }\n"
         "[[scenarios]]\ntrigger = { type = 'tick' }\naction = { type = 'hang' }", r"scenarios\[1\]\.trigger\.type"),
        ("[[scenarios]]\naction = { type = 'hang' }", r"scenarios\[0\]\.trigger: is required"),
        ("[scenarios]\nsede = 1", r"\[scenarios\]: unknown key\(s\): sede"),
        ("[scenarios]\nseed = 'x'", r"\[scenarios\] seed: expected int"),
        ("[scenarios]\njournal_limit = 0", "journal_limit must be >= 1"),
        ("[scenarios]\narmed = 5", "scenarios.armed must be an array"),
        ("[server]\nadmin = 'maybe'", "admin must be one of on, off"),
        ("[server]\nadmin = true", r"\[server\] admin: expected str"),
        ("[server]\nadmin_token = 5", r"\[server\] admin_token: expected str"),
        ("[server]\nhost = '0.0.0.0'", "needs an admin_token"),
    ],
)  # fmt: skip
def test_bad_scenarios_and_admin_settings_name_what_is_wrong(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        MockExchangeConfig.from_toml(path)


def test_toml_admin_settings(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\nadmin_token = "t0k"\n')
    cfg = MockExchangeConfig.from_toml(path)
    assert (cfg.admin, cfg.admin_token) == ("on", "t0k")
    path.write_text('[server]\nhost = "0.0.0.0"\nadmin = "off"\n')
    assert MockExchangeConfig.from_toml(path).admin == "off"
    assert (MockExchangeConfig().admin, MockExchangeConfig().admin_token) == ("on", None)


def test_cli_flags_mend_what_the_file_alone_breaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bybit_mock.cli import build_parser, load_config  # noqa: PLC0415

    path = tmp_path / "mock.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\nrest_workers = 3\n')
    monkeypatch.delenv("BYBIT_MOCK_ADMIN_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs an admin_token"):
        load_config(build_parser().parse_args(["serve", "--config", str(path)]))
    cfg = load_config(build_parser().parse_args(["serve", "--config", str(path), "--admin-token", "t"]))
    assert (cfg.host, cfg.admin_token, cfg.rest_workers) == ("0.0.0.0", "t", 3)
    monkeypatch.setenv("BYBIT_MOCK_ADMIN_TOKEN", "from-env")
    cfg = load_config(build_parser().parse_args(["serve", "--host", "0.0.0.0"]))
    assert cfg.admin_token == "from-env" and cfg.accounts[0].api_key == DEMO_API_KEY
    cfg = load_config(build_parser().parse_args(["serve", "--config", str(path), "--admin", "off"]))
    assert cfg.admin == "off"
