"""The pytest plugin's own mocks: ``bybit_mock_factory`` and ``@pytest.mark.bybit_mock_config``.

A test that needs a config of its own (more workers, other accounts) gets a dedicated mock,
started from the session's ``bybit_mock_config`` or from a config it passes, and closed when
the test ends, even when it fails. Whether the processes really are gone by then is checked
in a nested pytest run, where a later test looks for the earlier tests' pids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bybit_mock import AccountConfig, ConfigError, MockExchange, MockExchangeConfig
from bybit_mock.pytest_plugin import MockExchangeFactory

from .conftest import pybit_http
from .test_supervisor import wait_gone
from .test_trading_pybit import usdt

OWN = MockExchangeConfig().with_account(AccountConfig("own-key", "own-secret").with_balance("USDT", 42))

#: Environment a nested pytest must not inherit from this one (options, xdist worker identity).
INHERITED = (
    "PYTEST_ADDOPTS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
)


def run_pytest(
    directory: Path, source: str, *args: str, timeout: float = 90
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Write ``source`` as a test module in ``directory`` and run pytest on it in a new
    interpreter (the plugin loads through its entry point, as for any user). The module finds
    a directory for its records in ``BYBIT_MOCK_TEST_OUT``; returns the run and that directory."""
    (directory / "test_inner.py").write_text(textwrap.dedent(source))
    out = directory / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env["BYBIT_MOCK_TEST_OUT"] = str(out)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args, "test_inner.py"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done, out


def test_factory_applies_changes_to_the_session_config(
    bybit_mock_factory: MockExchangeFactory, bybit_mock_config: MockExchangeConfig, bybit_mock_server: MockExchange
) -> None:
    ex = bybit_mock_factory(rest_workers=2, ws_workers=2)
    assert ex.running and ex is not bybit_mock_server
    assert (ex.config.rest_workers, ex.config.ws_workers) == (2, 2)
    assert {"state", "rest-0", "rest-1", "ws-0", "ws-1"} <= set(ex.pids())
    assert ex.rest_port != bybit_mock_server.rest_port and ex.pids()["state"] != bybit_mock_server.pids()["state"]
    assert (bybit_mock_config.rest_workers, bybit_mock_config.ws_workers) == (1, 1)  # the session's is unchanged
    assert ex.api_key == bybit_mock_config.accounts[0].api_key
    assert Decimal(usdt(pybit_http(ex))["walletBalance"]) == 100_000


def test_factory_starts_from_a_given_config_and_each_call_is_a_new_mock(
    bybit_mock_factory: MockExchangeFactory,
) -> None:
    first = bybit_mock_factory(OWN)
    second = bybit_mock_factory(config=OWN, rest_workers=2)
    assert first.api_key == second.api_key == "own-key"
    assert first.config is not OWN and OWN.rest_workers == 1 and second.config.rest_workers == 2
    assert first.rest_port != second.rest_port
    first.state.set_balance("own-key", "USDT", 7)
    assert usdt(pybit_http(first))["walletBalance"] == "7"
    assert usdt(pybit_http(second))["walletBalance"] == "42"


def test_factory_refuses_unknown_fields_and_bad_values(bybit_mock_factory: MockExchangeFactory) -> None:
    with pytest.raises(TypeError, match="no field"):
        bybit_mock_factory(rest_worker=2)
    with pytest.raises(ConfigError, match="rest_workers"):
        bybit_mock_factory(rest_workers=0)
    with pytest.raises(TypeError, match="expected a MockExchangeConfig"):
        bybit_mock_factory({"rest_workers": 2})  # type: ignore[arg-type]


def test_unmarked_bybit_mock_is_the_shared_mock(bybit_mock: MockExchange, bybit_mock_server: MockExchange) -> None:
    assert bybit_mock is bybit_mock_server


@pytest.mark.bybit_mock_config(rest_workers=2)
def test_marker_gives_bybit_mock_a_dedicated_mock(bybit_mock: MockExchange, bybit_mock_server: MockExchange) -> None:
    assert bybit_mock is not bybit_mock_server and bybit_mock.running
    assert bybit_mock.config.rest_workers == 2 and "rest-1" in bybit_mock.pids()
    assert bybit_mock_server.config.rest_workers == 1
    assert usdt(pybit_http(bybit_mock))["walletBalance"] == "100000"


@pytest.mark.bybit_mock_config(OWN)
def test_marker_takes_a_config(bybit_mock: MockExchange) -> None:
    assert bybit_mock.api_key == "own-key" and bybit_mock.config.accounts == OWN.accounts
    assert usdt(pybit_http(bybit_mock))["walletBalance"] == "42"


@pytest.mark.bybit_mock_config(ws_workers=2)
class TestMarkersCombine:
    def test_class_marker(self, bybit_mock: MockExchange) -> None:
        assert (bybit_mock.config.rest_workers, bybit_mock.config.ws_workers) == (1, 2)

    @pytest.mark.bybit_mock_config(rest_workers=2)
    def test_closer_keywords_add_to_farther_ones(self, bybit_mock: MockExchange) -> None:
        assert (bybit_mock.config.rest_workers, bybit_mock.config.ws_workers) == (2, 2)

    @pytest.mark.bybit_mock_config(config=OWN)
    def test_a_closer_config_starts_over(self, bybit_mock: MockExchange) -> None:
        assert bybit_mock.api_key == "own-key" and bybit_mock.config.ws_workers == 1


INNER = """
    import json, os, pathlib, time

    import pytest

    OUT = pathlib.Path(os.environ["BYBIT_MOCK_TEST_OUT"])


    def record(name, ex):
        (OUT / f"{name}.json").write_text(json.dumps(ex.pids()))


    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split()[2] != "Z"
        except FileNotFoundError:
            return False


    def test_factory_then_fail(bybit_mock_factory):
        record("factory", bybit_mock_factory(rest_workers=2))
        record("factory-2", bybit_mock_factory())
        raise AssertionError("fails on purpose")


    @pytest.mark.bybit_mock_config(ws_workers=2)
    def test_marker_then_fail(bybit_mock):
        record("marker", bybit_mock)
        raise RuntimeError("fails on purpose")


    @pytest.mark.bybit_mock_config(no_such_field=1)
    def test_bad_marker(bybit_mock):
        pass


    def test_shared(bybit_mock):
        record("shared", bybit_mock)


    def test_earlier_dedicated_mocks_are_gone(bybit_mock):
        names = ("factory", "factory-2", "marker")
        pids = [p for name in names for p in json.loads((OUT / f"{name}.json").read_text()).values()]
        assert len(pids) == 4 + 3 + 4  # state, REST and WS workers
        assert [p for p in pids if alive(p)] == []
        assert bybit_mock.pids() == json.loads((OUT / "shared.json").read_text())  # the shared one lives on
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_dedicated_mocks_are_closed_when_their_test_ends_even_on_failure(tmp_path: Path) -> None:
    done, out = run_pytest(tmp_path, INNER, "--strict-markers", "-p", "no:randomly")
    report = done.stdout + done.stderr
    assert done.returncode == 1, report
    assert "2 failed, 2 passed, 1 error" in report, report
    assert "FAILED test_inner.py::test_factory_then_fail" in report
    assert "FAILED test_inner.py::test_marker_then_fail" in report
    assert "ERROR test_inner.py::test_bad_marker" in report and "no field(s) no_such_field" in report
    assert "PASSED test_inner.py::test_earlier_dedicated_mocks_are_gone" in report
    shared = list(json.loads((out / "shared.json").read_text()).values())
    assert wait_gone(shared) == []  # and the session's mock went with the session


SCENARIOS_INNER = """
    from bybit_mock import Scenario, ScenarioAction, ScenarioTrigger


    def test_arms_and_fires(bybit_mock):
        bybit_mock.scenarios.push(Scenario("left", ScenarioTrigger.rest("/v5/market/time"), ScenarioAction.delay(1)))
        bybit_mock.scenarios.push(Scenario("fired", ScenarioTrigger.NOW, ScenarioAction.edit_balance("USDT", "1",
                                                                                   api_key=bybit_mock.api_key)))
        assert [s["name"] for s in bybit_mock.scenarios.list()] == ["left"]
        assert [e["scenario"] for e in bybit_mock.scenarios.journal()] == ["fired"]


    def test_starts_with_none_armed_and_an_empty_journal(bybit_mock):
        assert bybit_mock.scenarios.list() == []
        assert bybit_mock.scenarios.journal() == []
        assert bybit_mock.state.balance(bybit_mock.api_key, "USDT") == 100000
"""


def test_the_fixture_clears_scenarios_and_the_journal_between_tests(tmp_path: Path) -> None:
    done, _ = run_pytest(tmp_path, SCENARIOS_INNER, "-p", "no:randomly")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
