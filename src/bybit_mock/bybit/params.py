"""Request-parameter rules shared by the endpoints: categories, limits and cursors.

Parameters arrive as strings from a query string or as JSON values from a body; these
helpers accept both and raise Bybit's 10001 with a message that names the parameter.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from .errors import BybitError, params_error
from .numbers import parse_decimal, parse_int, parse_unsigned

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
    """A number parameter as Decimal, or None when absent; 10001 unless it is a plain decimal
    string or a JSON number within bounds (see :mod:`.numbers`)."""
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
    """An integer parameter (a plain integer string or a JSON int), or None when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_int(raw)
    if value is None:
        raise params_error(f"params error: {name} must be an integer")
    return value


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
    offset = parse_unsigned(token[len(_CURSOR_PREFIX) :]) if token.startswith(_CURSOR_PREFIX) else None
    if offset is None:
        raise BybitError(10001, "params error: invalid cursor")
    return offset


def page(items: list[Any], params: Params, default: int, maximum: int) -> tuple[list[Any], str]:
    """Slice ``items`` by ``limit``/``cursor`` (an offset); return the page and the next cursor
    ("" at the end). For lists that do not change under a client's feet (instruments, risk
    tiers, positions); records use :func:`page_records`."""
    size = limit(params, default, maximum)
    start = decode_cursor(params)
    chunk = items[start : start + size]
    nxt = encode_cursor(start + size) if start + size < len(items) else ""
    return chunk, nxt


def record_cursor(seq: int) -> str:
    """A cursor naming the record ``seq`` (the form of Bybit's ``id:n,id:n`` cursors, URL-encoded)."""
    return quote(f"{seq}:0,{seq}:0", safe="")


def decode_record_cursor(params: Params) -> int | None:
    raw = text(params, "cursor")
    if raw is None:
        return None
    seq = parse_unsigned(unquote(raw).split(",", 1)[0].partition(":")[0])
    if seq is None:
        raise BybitError(10001, "params error: invalid cursor")
    return seq


T = TypeVar("T")


def page_records(
    items: list[T], params: Params, default: int, maximum: int, seq: Callable[[T], int]
) -> tuple[list[T], str]:
    """A page of ``items`` (newest first: ``seq`` strictly decreasing) and the next cursor.

    The cursor names the last record returned, and the next page starts at the first record
    older than it. Records that arrive meanwhile are newer (they belong before page one), and
    records pruned meanwhile are older ones or gone, so a client paging while the account
    trades never sees a record twice and never misses one that still exists (an offset
    would shift by every new record).
    """
    size = limit(params, default, maximum)
    after = decode_record_cursor(params)
    start = 0 if after is None else bisect.bisect_right(items, -after, key=lambda item: -seq(item))
    chunk = items[start : start + size]
    nxt = record_cursor(seq(chunk[-1])) if chunk and start + size < len(items) else ""
    return chunk, nxt
