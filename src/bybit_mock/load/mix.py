"""The weighted mix of REST operations a load run draws from.

``--mix "wallet=5,realtime=3,create_cancel=2,amend=1"``: each connection, for each operation
it runs, picks one name with probability weight / total. One operation may be several
requests (``amend`` is create, amend, cancel); each request has its own histogram, named
``rest.<request>`` (see ``rest.py``).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

#: The operations a mix may name, and what each one sends.
OPERATIONS: dict[str, str] = {
    "time": "GET /v5/market/time (unsigned)",
    "wallet": "GET /v5/account/wallet-balance?accountType=UNIFIED",
    "realtime": "GET /v5/order/realtime?category=linear&symbol=BTCUSDT",
    "positions": "GET /v5/position/list?category=linear&symbol=BTCUSDT",
    "create_cancel": "POST /v5/order/create (a resting limit order) then /v5/order/cancel of it",
    "amend": "POST /v5/order/create, /v5/order/amend (new price) then /v5/order/cancel",
}

DEFAULT_MIX = "wallet=5,realtime=3,create_cancel=2,amend=1"


class MixError(ValueError):
    """A ``--mix`` that cannot be used; the message says why."""


@dataclass(frozen=True)
class Mix:
    names: tuple[str, ...]
    weights: tuple[int, ...]

    def __post_init__(self) -> None:
        # cumulative weights, for a bisect per pick
        object.__setattr__(self, "_cumulative", tuple(_accumulate(self.weights)))

    @property
    def total(self) -> int:
        return sum(self.weights)

    def pick(self, rng: random.Random) -> str:
        cumulative: tuple[int, ...] = self._cumulative  # type: ignore[attr-defined]
        return self.names[bisect.bisect_right(cumulative, rng.randrange(self.total))]

    def spec(self) -> str:
        return ",".join(f"{n}={w}" for n, w in zip(self.names, self.weights, strict=True))


def _accumulate(weights: tuple[int, ...]) -> list[int]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


def parse_mix(spec: str) -> Mix:
    """``"wallet=5,realtime=3"`` → a :class:`Mix`; an empty spec is an empty mix (no REST)."""
    names: list[str] = []
    weights: list[int] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = name.strip()
        if name not in OPERATIONS:
            raise MixError(f"unknown operation {name!r} in --mix (known: {', '.join(OPERATIONS)})")
        if name in names:
            raise MixError(f"operation {name!r} appears twice in --mix")
        try:
            weight = int(raw) if sep else 1
        except ValueError:
            raise MixError(f"weight of {name!r} must be an integer, got {raw.strip()!r}") from None
        if weight < 0:
            raise MixError(f"weight of {name!r} must not be negative, got {weight}")
        if weight:
            names.append(name)
            weights.append(weight)
    return Mix(tuple(names), tuple(weights))
