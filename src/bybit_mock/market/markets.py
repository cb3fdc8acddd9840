"""Every symbol's market model, built from the configuration."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from ..instruments import InstrumentConfig
from .canned import CannedMarket
from .config import MarketConfig, SymbolMarketConfig
from .model import MarketModel
from .synthetic import SyntheticMarket


def build_model(inst: InstrumentConfig, cfg: SymbolMarketConfig, market_seed: int, epoch_ns: int) -> MarketModel:
    if cfg.source == "replay":
        from .replay import ReplayMarket  # noqa: PLC0415  # loaded only when a recording is configured

        return ReplayMarket(inst, cfg, market_seed, epoch_ns)
    if cfg.source == "canned":
        return CannedMarket(inst, cfg, market_seed, epoch_ns)
    return SyntheticMarket(inst, cfg, market_seed, epoch_ns)


class Markets:
    """``(category, symbol) -> model``, advanced together."""

    def __init__(self, instruments: list[InstrumentConfig], config: MarketConfig, epoch_ns: int) -> None:
        self.config = config
        self.instruments: dict[tuple[str, str], InstrumentConfig] = {(i.category, i.symbol): i for i in instruments}
        # Options have no model (no book to advance in every process): ``options.py`` prices them.
        self.models: dict[tuple[str, str], MarketModel] = {
            i: self._build(i, epoch_ns) for i in self.instruments if i[0] != "option"
        }
        #: symbols moved away from their own course (a price set through the API)
        self.changed: set[tuple[str, str]] = set()

    def _build(self, ident: tuple[str, str], epoch_ns: int) -> MarketModel:
        inst = self.instruments[ident]
        return build_model(inst, self.config.for_symbol(*ident, dated=inst.dated), self.config.seed, epoch_ns)

    def rebuild_changed(self, epoch_ns: int) -> bool:
        """Restart the changed symbols, and every canned market that has moved (started,
        stepped or appended to), from their configured start; True if there were any."""
        changed, self.changed = self.changed, set()
        changed |= {i for i, m in self.models.items() if isinstance(m, CannedMarket) and not m.pristine}
        for ident in changed:
            self.models[ident] = self._build(ident, epoch_ns)
        return bool(changed)

    def __iter__(self) -> Iterator[MarketModel]:
        return iter(self.models.values())

    def get(self, category: str, symbol: str) -> MarketModel | None:
        return self.models.get((category, symbol))

    def of_category(self, category: str) -> dict[str, MarketModel]:
        return {sym: m for (cat, sym), m in self.models.items() if cat == category}

    def advance(self, now_ns: int) -> None:
        for model in self.models.values():
            model.advance(now_ns)

    def price_key(self) -> tuple[tuple[int, int, int], ...]:
        """Changes whenever any last, index or mark price does (cheap: one tuple per model)."""
        return tuple(m.price_state() for m in self.models.values())

    def mark_prices(self) -> dict[tuple[str, str], Decimal]:
        return {ident: m.mark_price() for ident, m in self.models.items()}

    def mark_price(self, ident: tuple[str, str]) -> Decimal | None:
        """One symbol's mark price (None if not listed): cheaper than :meth:`mark_prices`."""
        model = self.models.get(ident)
        return None if model is None else model.mark_price()

    def select(self, category: str | None, symbol: str | None) -> list[tuple[str, str]]:
        found = [i for i in self.models if category in (None, i[0]) and symbol in (None, i[1])]
        if not found:
            raise ValueError(f"no market for category={category!r} symbol={symbol!r}")
        return found

    def freeze(self, idents: list[tuple[str, str]], frozen: bool, now_ns: int) -> None:
        for ident in idents:
            model = self.models[ident]
            model.advance(now_ns)
            model.frozen = frozen
            model.schedule.skip_to(now_ns)
            self.changed.add(ident)
