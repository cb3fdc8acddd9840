"""The engine's canned-market commands (``market/canned.py``), under the engine lock.

* ``append``: items (plain dicts, the JSON an admin API receives) added to their symbols'
  streams. Every item is checked before any is added, so a bad one adds nothing; the
  ``ValueError`` names it (``items[3].close: ...``).
* ``step``: a step-mode market's next ``n`` items are released (due now).
* ``start``: a paced market's clock starts; a WS worker sends it for the symbol's first
  subscriber.

Each change brings the markets to now (the released items apply at once, and resting orders
they reach fill) and appends ``("market_reload", (category, symbol))``: every WS worker
reloads the model and sends the items its old copy had not (``CannedMarket.resume``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..market.canned import CannedMarket, Record
from ..market.canned_items import items_from_dicts

if TYPE_CHECKING:
    from .exchange import Exchange


class CannedCalls:
    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange

    def model(self, category: object, symbol: object) -> CannedMarket:
        if not isinstance(category, str) or not isinstance(symbol, str):
            raise ValueError(f"category and symbol must be strings, got {category!r} and {symbol!r}")
        model = self.ex.markets.get(category, symbol)
        if model is None:
            raise ValueError(f"symbol: no instrument {category}/{symbol}")
        if not isinstance(model, CannedMarket):
            raise ValueError(
                f"symbol: {category}/{symbol} is not a canned market (configure it with with_candles, "
                "with_canned_market or source = 'canned')"
            )
        return model

    def append(self, kind: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add ``items`` (``kind`` None: each names its own) in order; each symbol's status after."""
        parsed = items_from_dicts(kind, items)
        groups: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        for i, item in enumerate(parsed):
            groups.setdefault((item.category, item.symbol), []).append((f"items[{i}]", item))
        checked: list[tuple[CannedMarket, list[Record]]] = []
        for ident, group in groups.items():
            model = self.model(*ident)
            checked.append((model, model.check(group)))
        now_ns = self.ex._advance() * 1_000_000  # the market as of now, before the change
        for model, records in checked:
            model.append(records, now_ns)
        return self._changed(list(groups))

    def step(self, category: str, symbol: str, n: int) -> dict[str, Any]:
        """Release the next ``n`` items (fewer if fewer wait); ``n`` 0 only reads the status."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: expected an integer >= 0, got {n!r}")
        model = self.model(category, symbol)
        if n == 0:
            self.ex._advance()
            return model.status()
        if not model.step_mode:
            raise ValueError(f"step: {category}/{symbol} streams at {model.pace:g} items/s (configure step=True)")
        released = model.release(n, self.ex._advance() * 1_000_000)
        return self._changed([(category, symbol)])[0] | {"stepped": released}

    def start(self, category: str, symbol: str) -> bool:
        """Start a paced market's clock now (a worker's op: unknown or started markets are a no-op)."""
        model = self.ex.markets.get(category, symbol)
        if not isinstance(model, CannedMarket) or not model.start(self.ex._advance() * 1_000_000):
            return False
        self._changed([(category, symbol)])
        return True

    def _changed(self, idents: list[tuple[str, str]]) -> list[dict[str, Any]]:
        self.ex._advance()  # what is due now applies, and moves resting orders
        for ident in idents:
            self.ex.events.append("market_reload", ident)
        return [self.model(*ident).status() for ident in idents]
