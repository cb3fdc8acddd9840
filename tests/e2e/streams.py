"""Helpers for tests that read the public streams with a plain ``websockets`` client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


@asynccontextmanager
async def subscribed(url: str, *topics: str) -> AsyncIterator[ClientConnection]:
    async with connect(url, max_size=None) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "req_id": "s", "args": list(topics)}).decode())
        yield ws


async def collect(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """The stream messages that arrive within ``seconds`` (acks and pongs skipped)."""
    return [msg for _, msg in await collect_timed(ws, seconds)]


async def collect_timed(ws: ClientConnection, seconds: float) -> list[tuple[float, dict[str, Any]]]:
    """:func:`collect`, each message with the (monotonic) time it arrived."""
    out: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        msg = orjson.loads(raw)
        if "topic" in msg:
            out.append((time.monotonic(), msg))
    return out


def apply_book(book: dict[str, dict[str, str]], msg: dict[str, Any]) -> None:
    """A strict client: a delete for a level it does not hold is an error (pybit would crash)."""
    if msg["type"] == "snapshot":
        book["b"] = dict(msg["data"]["b"])
        book["a"] = dict(msg["data"]["a"])
        return
    for side in ("b", "a"):
        for price, size in msg["data"][side]:
            if size == "0":
                assert price in book[side], f"delete of unknown level {price} on {side}"
                del book[side][price]
            else:
                book[side][price] = size
