"""Request numbers as Bybit reads them: plain decimal and integer strings, bounded; JSON numbers
by value. Python's own grammar (``Decimal()``, ``int()``) takes far more, which is what these
tests catch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bybit_mock.bybit import params
from bybit_mock.bybit.errors import BybitError
from bybit_mock.bybit.numbers import parse_decimal, parse_int, parse_unsigned

EIGHTEEN = "9" * 18

ACCEPTED_DECIMALS = [
    ("1", "1"),
    ("0", "0"),
    ("0.001", "0.001"),
    ("65000.10", "65000.10"),
    ("-1.5", "-1.5"),
    ("-0", "-0"),
    ("007", "7"),
    (EIGHTEEN, EIGHTEEN),
    (f"-{EIGHTEEN}.{EIGHTEEN}", f"-{EIGHTEEN}.{EIGHTEEN}"),
]

REFUSED_DECIMALS = [
    "1e30",  # exponents: Decimal takes them, and 1e30 then breaks the engine's arithmetic
    "1E30",
    "1e-3",
    "0_0.001",  # Python's digit separators
    "1_000",
    " 0.001 ",  # spaces, either side
    "0.001 ",
    "\t1",
    "1\n",
    "+0.001",  # an explicit plus
    ".5",  # a bare point
    "5.",
    "-",
    "--1",
    "1.2.3",
    "1,5",
    "0x10",
    "inf",  # not numbers at all (Decimal parses these)
    "-Infinity",
    "nan",
    "sNaN",
    "\u0661\u0662",  # Arabic-Indic digits: Decimal and int() take every Unicode digit
    "1" * 19,  # too long: 19 digits before the point
    "0." + "1" * 19,  # 19 after it
    "9" * 10_000,
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED_DECIMALS)
def test_plain_decimal_strings_are_accepted(raw: str, expected: str) -> None:
    value = parse_decimal(raw)
    assert value is not None and format(value, "f") == expected


@pytest.mark.parametrize("raw", REFUSED_DECIMALS)
def test_other_decimal_strings_are_refused(raw: str) -> None:
    assert parse_decimal(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, "5"),
        (-5, "-5"),
        (10**18 - 1, EIGHTEEN),
        (0.1, "0.1"),  # by value: through repr, so no binary tail
        (1e-05, "0.00001"),  # repr(1e-05) has an exponent; the number is plain
        (2.5, "2.5"),
        (1e16, "10000000000000000"),  # plain digits, not Decimal('1E+16')
        (1e-18, "0.000000000000000001"),
    ],
)
def test_json_numbers_are_judged_by_value(raw: float, expected: str) -> None:
    value = parse_decimal(raw)
    assert value == Decimal(expected)
    assert format(value, "f") == expected
    assert value is not None and value.as_tuple().exponent <= 0  # never a positive exponent


@pytest.mark.parametrize(
    "raw",
    [10**18, -(10**18), 10**400, True, False, 1e18, -1e18, 1e-19, 1e300, float("inf"), float("-inf"), float("nan"),
     None, [], {}, b"1", Decimal("1")],
)  # fmt: skip
def test_json_numbers_out_of_bounds_and_other_types_are_refused(raw: object) -> None:
    assert parse_decimal(raw) is None


@pytest.mark.parametrize("raw", REFUSED_DECIMALS)
def test_params_decimal_answers_10001_naming_the_parameter(raw: str) -> None:
    with pytest.raises(BybitError) as exc:
        params.decimal({"qty": raw}, "qty", required=True)
    assert (exc.value.code, exc.value.msg) == (10001, "params error: qty invalid")


def test_params_decimal_absent_or_empty() -> None:
    assert params.decimal({}, "qty") is None
    assert params.decimal({"qty": ""}, "qty") is None
    assert params.decimal({"qty": None}, "qty") is None
    with pytest.raises(BybitError, match="qty is required"):
        params.decimal({"qty": ""}, "qty", required=True)
    assert params.decimal({"qty": "0.01"}, "qty", required=True) == Decimal("0.01")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5", 5), ("-5", -5), ("0", 0), ("007", 7), (EIGHTEEN, 10**18 - 1), (5, 5), (-5, -5), (10**18 - 1, 10**18 - 1)],
)
def test_plain_integers_are_accepted(raw: object, expected: int) -> None:
    assert parse_int(raw) == expected
    assert params.integer({"limit": raw}, "limit") == expected


@pytest.mark.parametrize(
    "raw",
    ["1_000", " 5", "5 ", "+5", "5.0", "1e3", ".5", "-", "abc", "\u0661", "1" * 19, "9" * 10_000,
     5.0, True, False, 10**18, -(10**18), [5], {"n": 5}],
)  # fmt: skip
def test_other_integers_are_refused(raw: object) -> None:
    assert parse_int(raw) is None
    with pytest.raises(BybitError) as exc:
        params.integer({"limit": raw}, "limit")
    assert (exc.value.code, exc.value.msg) == (10001, "params error: limit must be an integer")


def test_params_integer_absent_or_empty_is_none() -> None:
    assert params.integer({}, "limit") is None
    assert params.integer({"limit": ""}, "limit") is None
    assert params.integer({"limit": None}, "limit") is None


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("5000", 5000), ("1700000000000", 1_700_000_000_000)])
def test_header_numbers_are_unsigned_digits(raw: str, expected: int) -> None:
    assert parse_unsigned(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "-5000", "+5000", " 5000", "5_000", "5000.0", "5e3", "\u0665\u0660\u0660\u0660", "1" * 19]
)
def test_other_header_numbers_are_refused(raw: str) -> None:
    assert parse_unsigned(raw) is None
