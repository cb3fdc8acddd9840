"""Exact decimal strings from integer ticks and lots.

A tick size like ``0.10`` is ``10 * 10**-2``: a price of ``t`` ticks is the integer
``t * 10`` scaled by ``10**-2``, printed ``"650001.00"`` with no float or Decimal on the way.
Bybit prints prices with the instrument's price scale and sizes with the qty step's scale.
"""

from __future__ import annotations

from decimal import Decimal


def scale_of(step: Decimal) -> tuple[int, int]:
    """``(units, scale)`` with ``step == units * 10**-scale``."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    return int(step.scaleb(scale)), scale


class Fixed:
    """Formats integer multiples of a step (and products of two steps) as decimal strings."""

    __slots__ = ("_decimals", "_div", "scale", "step", "units")

    #: decimals kept by count: prices stay near each other, and the orders, fills and log rows
    #: the engine keeps then share one instance of each (~104 B) instead of one per record
    KEPT = 4096

    def __init__(self, step: Decimal, min_scale: int = 0) -> None:
        units, scale = scale_of(step)
        if scale < min_scale:  # e.g. tick 0.10 is printed "65000.10", not "65000.1"
            units *= 10 ** (min_scale - scale)
            scale = min_scale
        self.step = step
        self.units = units
        self.scale = scale
        self._div = 10**scale
        self._decimals: dict[int, Decimal] = {}

    def __getstate__(self) -> tuple[Decimal, int, int]:
        return self.step, self.units, self.scale  # not the kept decimals: copies start empty

    def __setstate__(self, state: tuple[Decimal, int, int]) -> None:
        self.step, self.units, self.scale = state
        self._div = 10**self.scale
        self._decimals = {}

    def fmt(self, count: int) -> str:
        return fmt_scaled(count * self.units, self.scale, self._div)

    def to_count(self, value: Decimal) -> int:
        """The nearest whole number of steps (prices and sizes from outside are rounded to the grid)."""
        return int((value / self.step).to_integral_value())

    def decimal(self, count: int) -> Decimal:
        kept = self._decimals.get(count)
        if kept is None:
            if len(self._decimals) >= self.KEPT:
                self._decimals.clear()
            kept = self._decimals[count] = Decimal(count * self.units).scaleb(-self.scale)
        return kept


def fmt_scaled(value: int, scale: int, div: int) -> str:
    if scale == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(value), div)
    return f"{sign}{q}.{r:0{scale}d}"


def fmt_product(a: int, fa: Fixed, b: int, fb: Fixed) -> str:
    """``a`` steps of ``fa`` times ``b`` steps of ``fb`` (a turnover), exact."""
    scale = fa.scale + fb.scale
    return fmt_scaled(a * fa.units * b * fb.units, scale, 10**scale)
