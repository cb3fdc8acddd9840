"""Platform maintenance as ``GET /v5/system/status`` reports it.

Bybit announces maintenance windows there; bots (and ccxt's ``fetch_status``, which reports
``maintenance`` while one is ``ongoing``) poll it to pause trading. The mock starts with none;
a test schedules windows with ``MockExchangeState.add_maintenance`` and watches its bot react as
the window's state goes ``scheduled`` -> ``ongoing`` -> ``completed`` with the engine's clock.

A window only announces: what the exchange does during it (refused orders, dropped sockets) is
what a test scripts with scenarios (``docs/scenarios.md``), as a real maintenance varies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..bybit import errors, params

STATES = ("scheduled", "ongoing", "completed")
#: Bybit's codes: serviceTypes 1 trading, 2 funding, 3 deposit, 4 withdrawal, 5 others;
#: product 1 futures, 2 spot, 3 options, 4 copy trading
ALL_SERVICES = (1, 2, 3, 4, 5)
ALL_PRODUCTS = (1, 2, 3, 4)
#: maintainType 1 planned, 2 temporary, 3 incident; env 1 production, 2 production demo
PLANNED, PRODUCTION = 1, 1


@dataclass(frozen=True)
class Maintenance:
    id: str
    title: str
    begin_ms: int
    end_ms: int
    href: str
    service_types: tuple[int, ...]
    product: tuple[int, ...]
    uid_suffix: tuple[int, ...]
    maintain_type: int

    def state(self, now_ms: int) -> str:
        if now_ms < self.begin_ms:
            return "scheduled"
        return "ongoing" if now_ms < self.end_ms else "completed"

    def item(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state(now_ms),
            "begin": str(self.begin_ms),
            "end": str(self.end_ms),
            "href": self.href,
            "serviceTypes": list(self.service_types),
            "product": list(self.product),
            "uidSuffix": list(self.uid_suffix),
            "maintainType": self.maintain_type,
            "env": PRODUCTION,
        }


class SystemStatus:
    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self.windows: list[Maintenance] = []

    def add(
        self,
        title: str,
        begin_ms: int,
        end_ms: int,
        *,
        href: str = "",
        service_types: Iterable[int] = ALL_SERVICES,
        product: Iterable[int] = ALL_PRODUCTS,
        uid_suffix: Iterable[int] = (),
        maintain_type: int = PLANNED,
    ) -> str:
        """Announce a window from ``begin_ms`` to ``end_ms`` (engine ms); returns its id."""
        if end_ms < begin_ms:
            raise ValueError("end_ms must not be before begin_ms")
        window = Maintenance(
            str(uuid.uuid4()),
            title,
            begin_ms,
            end_ms,
            href,
            tuple(service_types),
            tuple(product),
            tuple(uid_suffix),
            maintain_type,
        )
        self.windows.append(window)
        return window.id

    def query(self, _api_key: object, query: dict[str, Any]) -> dict[str, Any]:
        """``GET /v5/system/status``: every window, newest first, filtered by ``id`` and ``state``."""
        wanted_id = params.text(query, "id")
        state = params.text(query, "state")
        if state is not None and state not in STATES:
            raise errors.params_error(f"state must be one of {', '.join(STATES)}")
        now = self._clock()
        items = [w.item(now) for w in reversed(self.windows) if wanted_id in (None, w.id)]
        return {"list": [i for i in items if state in (None, i["state"])]}
