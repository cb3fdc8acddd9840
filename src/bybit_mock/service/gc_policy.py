"""Garbage collection in the state service: never walk the retained history.

The engine keeps up to ``history_limit`` (100 000) orders, their executions and transaction-log
rows: about 300 000 objects the cyclic garbage collector tracks. CPython runs a full
collection whenever the objects that survived younger collections since the last one reach a
quarter of the long-lived ones, and a full collection walks every tracked object: 155 ms with
the default history retained (``benches/test_tail.py`` and this module's test measure it), a
stall of every request and push behind it, every few tens of thousands of orders.

So the market clock thread calls :func:`freeze_survivors` about once a second:
``gc.freeze()``, which moves every object alive into the permanent generation that no
collection walks, in constant time. A full collection then only ever sees the last second's
survivors. (Collecting the young generations first, to keep their garbage out of the frozen
set, cost 3-5 ms of CPU each second in the state service: their survivors' headers are cold in
the cache. Measured instead: nothing to keep out, below.)

The REST and WS workers freeze once, when ready (:func:`freeze_startup`): their heaps after
that are small and they run asyncio, whose exceptions and callbacks do make cycles.

What this gives up: cyclic garbage that is frozen is never collected. The engine makes none
(its records hold strings, numbers and Decimals, and a refused request's exception is dropped
where it is caught): ``tests/unit/test_gc_policy.py`` runs every kind of request, refusals
included, and finds nothing unreachable; and a state service that served 130 000 orders over
REST and WS (``benches/test_tail.py``), unfrozen and fully collected at the end, held 6
unreachable objects among 423 000 frozen (one class made at run time). Objects freed by their
reference count (history evicted by newer history) are freed as ever, frozen or not.
"""

from __future__ import annotations

import gc

#: how often the market clock freezes the survivors (seconds)
FREEZE_INTERVAL = 1.0


def freeze_startup() -> None:
    """A worker, ready to serve: what it built to start (imports, routes, market models) lives
    as long as it does, so it leaves every later collection's way (a full collection of a WS
    worker's startup heap took 13 ms, mid-stream)."""
    gc.collect()
    gc.freeze()


def freeze_survivors() -> None:
    """Move every object alive now out of every later collection's way."""
    gc.freeze()
