"""One stderr line per scenario firing, rate-limited per scenario.

A soak run wants to see its faults land in the server's own output, next to whatever else
``bybit-mock serve`` prints, without reading the journal. Logged at WARNING, the default log
level's, on the ``bybit_mock.scenarios.fired`` logger (raise its level to silence it). A busy
scenario (1 % of creates under load, a fault on every message) would flood stderr, so each
scenario logs at most :data:`PER_SECOND` lines a second; the firings past that are counted and
reported as ``(+k more)`` on a line of the next second that logs anything. The journal keeps
every firing either way.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("bybit_mock.scenarios.fired")

#: lines a second one scenario may log
PER_SECOND = 5


class FireLog:
    def __init__(self, per_second: int = PER_SECOND) -> None:
        self.per_second = per_second
        self._second = -1
        self._lines: dict[str, int] = {}  # scenario id -> lines logged this second
        self._more: dict[str, tuple[str, int]] = {}  # scenario id -> (name, firings not logged)

    def fired(
        self, now_ms: int, ident: str, name: str, trigger: str, action: dict[str, Any], matched: dict[str, Any]
    ) -> None:
        if not log.isEnabledFor(logging.WARNING):
            return
        second = now_ms // 1000
        if second != self._second:
            self._second = second
            self._lines.clear()
            self._summarise()
        lines = self._lines.get(ident, 0)
        if lines >= self.per_second:
            _, more = self._more.get(ident, (name, 0))
            self._more[ident] = (name, more + 1)
            return
        self._lines[ident] = lines + 1
        on = " ".join(f"{k}={v}" for k, v in matched.items())
        log.warning("scenario %s %r fired: %s -> %s%s", ident, name, trigger, _action(action), f" ({on})" if on else "")

    def _summarise(self) -> None:
        """The firings past the limit in the seconds before, one line per scenario."""
        for ident, (name, more) in self._more.items():
            log.warning("scenario %s %r fired: (+%d more)", ident, name, more)
        self._more.clear()


def _action(action: dict[str, Any]) -> str:
    """``ws_reset channel=private``: the type and its short fields (an event body is left out)."""
    fields = " ".join(
        f"{k}={v}" for k, v in action.items() if k != "type" and isinstance(v, str | int | float) and len(str(v)) <= 40
    )
    return f"{action['type']} {fields}".rstrip()
