"""HTTP/1.1 response bytes, precomputed where possible (uvicorn's STATUS_LINE trick)."""

from __future__ import annotations

from http import HTTPStatus

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_JSON_HEADERS = b"Content-Type: application/json; charset=utf-8\r\nContent-Length: "


def json_response(
    status: int, body: bytes, *, close: bool = False, extra: bytes = b"", content_type: bytes | None = None
) -> bytes:
    """A complete response; ``extra`` is pre-rendered ``Name: value\\r\\n`` lines; a
    ``content_type`` other than JSON is for the edge's HTML pages a scenario sends."""
    headers = _JSON_HEADERS if content_type is None else b"Content-Type: " + content_type + b"\r\nContent-Length: "
    return b"".join(
        (
            _STATUS_LINES[status],
            headers,
            str(len(body)).encode(),
            b"\r\nConnection: close\r\n" if close else b"\r\n",
            extra,
            b"\r\n",
            body,
        )
    )
