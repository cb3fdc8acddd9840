"""Request payloads as Bybit accepts them: JSON objects of a bounded shape.

Every Bybit request is shallow: a flat object of strings and numbers, a batch's
``{"request": [{...}, ...]}``, a WebSocket op's ``{"op", "args": [...], "header": {...}}``.
Nothing legitimate nests deeper than four levels. A hostile client can still send JSON that
orjson parses (it allows 1 024 levels) but that later code cannot handle: pickle and orjson
both recurse, so a value nested a thousand deep fails to cross to the state service or to
be echoed in an answer. Checking the shape once, where the bytes are parsed, keeps such a
value from ever reaching code that shares anything with other clients (the batched state
channel above all).

The check walks the value without recursion, so it is itself safe on any input.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import params_error

#: Deepest a value may sit in a request (the top-level object is at depth 1).
MAX_DEPTH = 6
#: Most values (objects, lists and scalars together) a request may hold.
MAX_VALUES = 10_000


def shape_error(value: Any, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> str | None:
    """Why ``value`` is not a request-shaped JSON value, or None if it is."""
    if type(value) is dict and len(value) < max_values:  # most requests: one flat object
        for child in value.values():
            if type(child) is dict or type(child) is list:
                break
        else:
            return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            return f"too many values (limit {max_values})"
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= max_depth and children:
            return f"nested too deep (limit {max_depth} levels)"
        stack.extend((child, depth + 1) for child in children)
    return None


def check_shape(value: Any, what: str = "request") -> None:
    """Raise Bybit's 10001 if ``value`` is not request-shaped."""
    problem = shape_error(value)
    if problem is not None:
        raise params_error(f"params error: {what} {problem}")


def loads_object(data: bytes | bytearray | memoryview | str, what: str = "request body") -> dict[str, Any]:
    """Parse a JSON object of request shape; anything else raises Bybit's 10001."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise params_error(f"params error: {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise params_error(f"params error: {what} must be a JSON object")
    check_shape(value, what)
    return value
