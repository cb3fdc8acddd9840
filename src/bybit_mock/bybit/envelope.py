"""Bybit's response envelope, assembled from pre-encoded parts.

Every REST answer is ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``. The engine
hands back the ``result`` already encoded by orjson, so the envelope is built by byte
concatenation instead of re-encoding a dict per request.
"""

from __future__ import annotations

from typing import Any

import orjson

_OK_HEAD = b'{"retCode":0,"retMsg":"OK","result":'
_TAIL = b',"retExtInfo":{},"time":'
_EMPTY = b"{}"


def ok(result: bytes, now_ms: int, ext_info: bytes | None = None) -> bytes:
    if ext_info is not None:  # the batch endpoints answer per entry in retExtInfo
        tail = b"".join((b',"retExtInfo":', ext_info, b',"time":'))
        return b"".join((_OK_HEAD, result, tail, str(now_ms).encode(), b"}"))
    return b"".join((_OK_HEAD, result, _TAIL, str(now_ms).encode(), b"}"))


def ok_obj(result: Any, now_ms: int) -> bytes:
    return ok(orjson.dumps(result), now_ms)


def error(code: int, msg: str, now_ms: int) -> bytes:
    return b"".join(
        (
            b'{"retCode":',
            str(code).encode(),
            b',"retMsg":',
            orjson.dumps(msg),
            b',"result":',
            _EMPTY,
            _TAIL,
            str(now_ms).encode(),
            b"}",
        )
    )
