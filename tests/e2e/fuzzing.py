"""What the fuzz tests of the REST and WS input surfaces share: the oracle's rules, the
strategies for values and orders, and a snapshot of the state a bad request must not change."""

from __future__ import annotations

import re
import string
from types import TracebackType
from typing import Any, NamedTuple

from hypothesis import strategies as st

from bybit_mock import MockExchange

#: every parameter name the engine or a handler reads: junk keys stay clear of them
KNOWN_PARAMS = frozenset(
    re.findall(
        r"\w+",
        "accountType activePrice amount baseCoin buyLeverage category closeOnTrigger coin currency cursor "
        "end endTime execType fromAccountType interval isLeverage limit marketUnit mode openOnly orderFilter "
        "orderId orderIv orderLinkId orderStatus orderType positionIdx price qty reduceOnly request "
        "sellLeverage setMarginMode settleCoin side slLimitPrice slOrderType slTriggerBy slippageTolerance "
        "slippageToleranceType smpType start startTime status stopLoss stopOrderType symbol takeProfit "
        "timeInForce toAccountType tp tpLimitPrice tpOrderType tpTriggerBy tpslMode tpslOrder trailingStop "
        "transferId triggerBy triggerDirection triggerPrice type v ",
    )
)
#: Bybit's number grammar (``bybit/numbers.py``), restated here as the oracle
PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")
#: a limit buy far under the market: it rests, and is the control that the handler is reachable
BASE_ORDER: dict[str, Any] = {
    "category": "linear",
    "symbol": "BTCUSDT",
    "side": "Buy",
    "orderType": "Limit",
    "qty": "0.001",
    "price": "10000",
    "timeInForce": "GTC",
}


class Snapshot(NamedTuple):
    open_orders: Any
    executions: Any
    balances: Any
    funding: Any
    positions: Any


def snapshot(ex: MockExchange) -> Snapshot:
    key = ex.api_key
    st_ = ex.state
    return Snapshot(
        st_.open_orders(key), st_.executions(key), st_.balances(key), st_.funding_balances(key), st_.positions(key)
    )


class StateGuard:
    """Around every example (``with guard:``): afterwards the bystander is still served
    (:meth:`bystander_served`, per surface) and the engine holds what it held before the test;
    after a failure the state is reset, so the examples hypothesis tries next start clean."""

    def __init__(self, ex: MockExchange) -> None:
        self.ex = ex
        self.before = snapshot(ex)

    def __enter__(self) -> StateGuard:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.check()
        elif snapshot(self.ex) != self.before:
            self.ex.state.reset()

    def check(self) -> None:
        self.bystander_served()
        now = snapshot(self.ex)
        if now != self.before:
            self.ex.state.reset()
            raise AssertionError(f"engine state changed:\nbefore {self.before}\nafter  {now}")

    def bystander_served(self) -> None:
        raise NotImplementedError


# -- strategies: values -----------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # orjson writes no wider ints
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
junk_keys = st.text(min_size=1, max_size=12).filter(lambda k: k not in KNOWN_PARAMS)
#: forms Python (or JSON) would read as a number and Bybit does not, and plain numbers out of range
NOT_BYBIT_NUMBERS = [
    "1e30",
    "1E3",
    "1e-3",
    "0_0.1",
    " 1",
    "1 ",
    "+1",
    ".5",
    "5.",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "0x10",
    "1,5",
    "\u0661",  # an Arabic-Indic one
    "\uff11",  # a full-width one
    "1" * 19,
    "0." + "0" * 18 + "1",
    "0",
    "-0.001",
    "-1",
]


def bad_number(plain_but_invalid: list[str]) -> st.SearchStrategy[Any]:
    """A value no Bybit number parameter takes, or a plain one out of this field's range."""
    return st.one_of(
        st.sampled_from(NOT_BYBIT_NUMBERS + plain_but_invalid),
        st.text(max_size=25).filter(lambda s: not PLAIN_DECIMAL.fullmatch(s) and s != ""),
        st.integers(min_value=-(2**63), max_value=0) | st.integers(min_value=10**18, max_value=2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f <= 0 or abs(f) >= 1e18),
        st.booleans(),
        st.lists(json_scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    )


def text_not_in(allowed: set[str], *, empty_ok: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value whose text form (``params.text``) is not one of ``allowed``."""

    def bad(value: Any) -> bool:
        if value is None or value == "":
            return not empty_ok
        if isinstance(value, bool):
            return ("true" if value else "false") not in allowed
        return str(value) not in allowed if isinstance(value, str | int | float) else True

    return json_values.filter(bad) | st.text(max_size=12).filter(bad)


LINK_ID_CHARS = set(string.ascii_letters + string.digits + "-_")
#: per field of ``BASE_ORDER`` (and a few optional ones): values that make the order invalid
BAD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "category": text_not_in({"linear", "spot", "inverse"}),
    "symbol": text_not_in({"BTCUSDT", "ETHUSDT"}),
    "side": text_not_in({"Buy", "Sell"}),
    "orderType": text_not_in({"Market", "Limit"}),
    "qty": bad_number(["0.0015", "0.0001", "1191", "1190.001"]),
    "price": bad_number(["10000.05", "0.1", "2000000", "1999999.9"]),
    "timeInForce": text_not_in({"GTC", "IOC", "FOK", "PostOnly"}, empty_ok=True),
    "orderLinkId": st.one_of(
        st.text(min_size=37, max_size=60),
        st.text(min_size=1, max_size=20).filter(lambda s: not set(s) <= LINK_ID_CHARS),
        st.lists(json_scalars, max_size=2),
        st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
        # a number is read as its text: 5e-324 is "5e-324", a well-formed id; 0.5 is not
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not set(str(f)) <= LINK_ID_CHARS),
    ),
    "positionIdx": st.one_of(
        st.integers(min_value=-(2**63), max_value=2**64 - 1).filter(lambda n: n != 0),
        st.text(min_size=1, max_size=8).filter(lambda s: not re.fullmatch(r"-?[0-9]+", s)),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.lists(json_scalars, max_size=2),
    ),
    "reduceOnly": st.one_of(
        st.text(min_size=2, max_size=8).filter(lambda s: s not in ("true", "false"))
        | st.sampled_from(["2", "t", "-1"]),
        st.integers(min_value=-(2**63), max_value=2**63).filter(lambda n: n not in (0, 1)),
        st.lists(json_scalars, max_size=2),
    ),
    "takeProfit": st.text(min_size=1, max_size=10).filter(lambda s: not PLAIN_DECIMAL.fullmatch(s)),
}


@st.composite
def bad_orders(draw: st.DrawFn, junk_values: st.SearchStrategy[Any] = json_values) -> dict[str, Any]:
    """``BASE_ORDER`` with one field made invalid, maybe with junk keys of any value beside it."""
    order = dict(BASE_ORDER)
    if draw(st.booleans()):
        order.pop("timeInForce")  # optional: GTC
    order.update(draw(st.dictionaries(junk_keys, junk_values, max_size=3)))
    field = draw(st.sampled_from(sorted(BAD_FIELDS)))
    order[field] = draw(BAD_FIELDS[field])
    return order


def too_deep(value: Any) -> bool:
    """Bybit's requests are shallow: nothing sits deeper than 6 levels, at most 10 000 values."""
    stack = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        children = list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else []
        if count > 10_000 or (children and depth >= 6):
            return True
        stack.extend((c, depth + 1) for c in children)
    return False
