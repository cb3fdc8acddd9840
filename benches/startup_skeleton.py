"""The cold-start reference: the mock's start-up sequence with nothing inside (stdlib only).

``bybit-mock``'s supervisor starts a ``multiprocessing`` Manager (spawned: the state service)
and waits until it serves, then spawns the workers (one REST, one WS by default) in parallel
and waits until each reports ready over a pipe. :func:`start_and_stop` does exactly that with
an empty Manager and workers that report ready at once, under the same spawn settings (the
caller's ``__main__`` is not re-run in the children), so the mock's start-up divided by this
one is what its imports, engine and workers' loading cost over the process machinery itself.
This module imports only the standard library: a child that imports it pays nothing more.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from multiprocessing.connection import Connection
from multiprocessing.managers import SyncManager


def _worker(ready: Connection) -> None:
    ready.send("ready")
    try:
        ready.recv()  # until told to stop (or the pipe goes)
    except EOFError:
        pass


def start_and_stop(workers: int = 2, hide_main: Callable[[], AbstractContextManager[None]] = nullcontext) -> float:
    """Seconds from nothing to a serving Manager and ``workers`` ready processes; then stops them.
    ``hide_main`` hides ``__main__`` while a child is spawned (the supervisor's ``_children_skip_main``)."""
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    manager = SyncManager(ctx=ctx)
    with hide_main():
        manager.start()
    pipes, procs = [], []
    for _ in range(workers):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(theirs,), daemon=True)
        with hide_main():
            proc.start()
        theirs.close()
        pipes.append(ours)
        procs.append(proc)
    for pipe in pipes:
        if not pipe.poll(30) or pipe.recv() != "ready":
            raise RuntimeError("a skeleton worker did not report ready")
    elapsed = time.perf_counter() - start
    for pipe in pipes:
        pipe.send("stop")
        pipe.close()
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    manager.shutdown()
    return elapsed
