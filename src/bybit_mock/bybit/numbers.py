"""Decimal <-> Bybit number strings.

Bybit sends every amount as a decimal string with no exponent. Computed values (PnL,
margins, rates) are rounded to 8 places and stripped of trailing zeros, as Bybit shows them.

Request numbers are read by Bybit's grammar, not Python's. A number parameter is a plain
decimal string, ``-?DIGITS(.DIGITS)?`` in ASCII digits: no exponent (``1e-3``), no ``+``, no
spaces, no ``_`` separators, no ``inf``/``nan``, no bare point (``.5``, ``5.``), the form
Bybit documents and prints (ccxt formats its numbers so before it sends them). ``Decimal()``
would take all of those, and Arabic-Indic digits too, and an exponent such as ``1e30`` later
breaks the engine's arithmetic. A JSON number is judged by its value, since ``repr(1e-05)``
has an exponent though the number is plain. An integer parameter is ``-?DIGITS``; a header
number (``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW``) is ``DIGITS``. Anything else is None,
which the callers answer with 10001 (10002 for the headers).

Every form is bounded: at most 18 digits before the point and 18 after. That is far more than
any real amount or millisecond timestamp needs, bounds the CPU a parse costs (``int()`` of a
10 000-digit string is not free), and keeps what the engine computes on a checked value (its
remainder by a step of up to 10 decimals, its rounding to 8 places) inside Decimal's 28 digits.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

_Q8 = Decimal("1e-8")
ZERO = Decimal(0)

MAX_INT_DIGITS = 18
MAX_FRACTION_DIGITS = 18
#: ``[0-9]``, not ``\d``: ``\d`` matches every Unicode digit, and so would ``int()``.
_PLAIN_DECIMAL = re.compile(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?")
_PLAIN_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}")
_PLAIN_UNSIGNED = re.compile(rf"[0-9]{{1,{MAX_INT_DIGITS}}}")
_INT_LIMIT = 10**MAX_INT_DIGITS
_ONE = Decimal(1)

#: Kept decimals by exact text (digits and exponent: ``Decimal`` equality ignores the exponent,
#: and ``"0.10"`` must stay ``"0.10"``). Each Decimal is ~104 B and the engine keeps ~10 per
#: order in its history; quantities, prices, fees and cumulative values repeat endlessly in a
#: busy loop, so kept records share one instance of each (Decimals are immutable). Bounded: a
#: full table is dropped and refilled; what was already shared stays shared.
_SHARED: dict[str, Decimal] = {}
#: request texts already parsed (a client sends the same few quantities and prices again)
_PARSED: dict[str, Decimal] = {}
SHARED_MAX = 4096


def shared(value: Decimal) -> Decimal:
    """The one kept instance of ``value`` (same digits and exponent), for records kept long."""
    key = str(value)
    kept = _SHARED.get(key)
    if kept is None:
        if len(_SHARED) >= SHARED_MAX:
            _SHARED.clear()
        kept = _SHARED[key] = value
    return kept


def fmt(value: Decimal) -> str:
    """``Decimal('100000') -> '100000'``, ``Decimal('0.12300000') -> '0.123'``."""
    if not value:
        return "0"
    return format(value.quantize(_Q8, ROUND_HALF_EVEN).normalize(), "f")


def fmt_scale(value: Decimal, places: int) -> str:
    """Fixed places, as Bybit shows prices (``'65000.10'``)."""
    return format(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN), "f")


def parse_decimal(raw: object) -> Decimal | None:
    """A request number (plain decimal string, JSON int or float) as Decimal; None if it is not one."""
    if type(raw) is str:  # the common case: JSON strings and query strings
        kept = _PARSED.get(raw)  # only texts that passed the grammar are in it
        if kept is None:
            if not _PLAIN_DECIMAL.fullmatch(raw):
                return None
            if len(_PARSED) >= SHARED_MAX:
                _PARSED.clear()
            kept = _PARSED[raw] = shared(Decimal(raw))
        return kept
    if type(raw) is int:  # bool is a subclass of int; ``type() is`` leaves it out
        return Decimal(raw) if -_INT_LIMIT < raw < _INT_LIMIT else None
    if type(raw) is float:
        value = Decimal(repr(raw))  # repr: the shortest string that reads back, so 0.1 stays 0.1
        if not value.is_finite():
            return None
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if -exponent > MAX_FRACTION_DIGITS or value.adjusted() >= MAX_INT_DIGITS:
            return None
        return value.quantize(_ONE) if exponent > 0 else value  # 1e+16 -> 10000000000000000
    return None


def parse_int(raw: object) -> int | None:
    """A request integer (plain integer string or JSON int); None if it is not one."""
    if type(raw) is str:
        return int(raw) if _PLAIN_INTEGER.fullmatch(raw) else None
    if type(raw) is int:
        return raw if -_INT_LIMIT < raw < _INT_LIMIT else None
    return None


def parse_unsigned(raw: str) -> int | None:
    """A header number (``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW``): digits only; None otherwise."""
    return int(raw) if _PLAIN_UNSIGNED.fullmatch(raw) else None
