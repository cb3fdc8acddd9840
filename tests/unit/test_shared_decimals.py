"""Kept decimals are shared by exact text: same instance, same digits and exponent, same grammar."""

from __future__ import annotations

import pickle
from decimal import Decimal

from bybit_mock.bybit.numbers import parse_decimal, shared
from bybit_mock.market.fixed import Fixed


def test_shared_keeps_the_exponent() -> None:
    one = shared(Decimal("1.0"))
    assert shared(Decimal("1.0")) is one
    other = shared(Decimal("1"))  # equal, but printed differently: not the same instance
    assert other is not one and str(other) == "1" and str(one) == "1.0"


def test_parsed_texts_are_shared_and_still_checked() -> None:
    first = parse_decimal("0.0010")
    assert first is not None and str(first) == "0.0010"
    assert parse_decimal("0.0010") is first
    assert str(parse_decimal("00.10")) == "0.10"
    shared(Decimal("1E-7"))  # kept elsewhere under its str(); the grammar still refuses the text
    assert parse_decimal("1E-7") is None and parse_decimal("1e-3") is None


def test_grid_decimals_are_shared_and_not_pickled() -> None:
    prices = Fixed(Decimal("0.10"), 2)
    price = prices.decimal(650001)
    assert str(price) == "65000.10" and prices.decimal(650001) is price
    copy = pickle.loads(pickle.dumps(prices))
    assert copy.fmt(650001) == "65000.10" and str(copy.decimal(650001)) == "65000.10"
    assert len(pickle.dumps(prices)) < 300  # the kept decimals stay behind
