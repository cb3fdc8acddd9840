"""HTTP/1.1 response bytes, precomputed where possible (uvicorn's STATUS_LINE trick)."""

from __future__ import annotations

from http import HTTPStatus

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_JSON_HEADERS = b"Content-Type: application/json; charset=utf-8\r\nContent-Length: "


def json_response(status: int, body: bytes, *, close: bool = False, extra: bytes = b"") -> bytes:
    """A complete response; ``extra`` is pre-rendered ``Name: value\\r\\n`` lines."""
    return b"".join(
        (
            _STATUS_LINES[status],
            _JSON_HEADERS,
            str(len(body)).encode(),
            b"\r\nConnection: close\r\n" if close else b"\r\n",
            extra,
            b"\r\n",
            body,
        )
    )
