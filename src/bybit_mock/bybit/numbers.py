"""Decimal <-> Bybit number strings.

Bybit sends every amount as a decimal string with no exponent. Computed values (PnL,
margins, rates) are rounded to 8 places and stripped of trailing zeros, as Bybit shows them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_Q8 = Decimal("1e-8")
ZERO = Decimal(0)


def fmt(value: Decimal) -> str:
    """``Decimal('100000') -> '100000'``, ``Decimal('0.12300000') -> '0.123'``."""
    if not value:
        return "0"
    return format(value.quantize(_Q8, ROUND_HALF_EVEN).normalize(), "f")


def fmt_scale(value: Decimal, places: int) -> str:
    """Fixed places, as Bybit shows prices (``'65000.10'``)."""
    return format(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN), "f")


def parse_decimal(raw: object) -> Decimal | None:
    """A request number (string, int or float) as Decimal; None if it is not one."""
    if type(raw) is not str:  # the common case (JSON strings) skips these checks
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        raw = str(raw)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
