"""Request-parameter rules shared by the endpoints: categories, limits and cursors.

Parameters arrive as strings from a query string or as JSON values from a body; these
helpers accept both and raise Bybit's 10001 with a message that names the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from .errors import BybitError, params_error
from .numbers import parse_decimal

Params = Mapping[str, Any]


def text(params: Params, name: str) -> str | None:
    """A parameter as a string, or None when absent or empty (JSON null counts as absent)."""
    value = params.get(name)
    if type(value) is str:  # the common case first: this runs a dozen times per order
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise params_error(f"params error: {name} must be a string")


def required(params: Params, name: str) -> str:
    value = text(params, name)
    if value is None:
        raise params_error(f"params error: {name} is required")
    return value


def category(params: Params, allowed: tuple[str, ...]) -> str:
    value = text(params, "category")
    if value is None:
        raise params_error("params error: category is required")
    if value not in allowed:
        raise params_error(f"params error: category only support {', '.join(allowed)}")
    return value


def decimal(params: Params, name: str, required: bool = False) -> Decimal | None:
    """A number parameter (a numeric string or a JSON number) as Decimal, or None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise params_error(f"params error: {name} is required")
        return None
    value = parse_decimal(raw)
    if value is None:
        raise params_error(f"params error: {name} invalid")
    return value


def integer(params: Params, name: str) -> int | None:
    """An integer parameter (a number or a numeric string), or None when absent."""
    raw = text(params, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise params_error(f"params error: {name} must be an integer") from None


def limit(params: Params, default: int, maximum: int) -> int:
    value = integer(params, "limit")
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise params_error(f"params error: limit must be in [1, {maximum}]")
    return value


_CURSOR_PREFIX = "cursor="


def encode_cursor(offset: int) -> str:
    """An opaque, URL-encoded page token, as Bybit's are (``cursor%3D20``)."""
    return quote(f"{_CURSOR_PREFIX}{offset}", safe="")


def decode_cursor(params: Params) -> int:
    raw = text(params, "cursor")
    if raw is None:
        return 0
    token = unquote(raw)
    if token.startswith(_CURSOR_PREFIX) and token[len(_CURSOR_PREFIX) :].isdigit():
        return int(token[len(_CURSOR_PREFIX) :])
    raise BybitError(10001, "params error: invalid cursor")


def page(items: list[Any], params: Params, default: int, maximum: int) -> tuple[list[Any], str]:
    """Slice ``items`` by ``limit``/``cursor``; return the page and the next cursor ("" at the end)."""
    size = limit(params, default, maximum)
    start = decode_cursor(params)
    chunk = items[start : start + size]
    nxt = encode_cursor(start + size) if start + size < len(items) else ""
    return chunk, nxt
