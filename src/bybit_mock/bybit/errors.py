"""Bybit's error codes and messages, and the exception that carries them.

Business and auth errors travel as HTTP 200 with a non-zero ``retCode`` (pybit raises
``InvalidRequestError`` for those and ``FailedRequestError`` for any non-200; ccxt maps the
codes to its own exception classes), so :class:`BybitError` defaults to HTTP 200. The texts
are the ones real Bybit sends where they are known (see ``shared/reference/bybit-v5.md``).
"""

from __future__ import annotations

from typing import Final

PARAMS_ERROR: Final = 10001
TIMESTAMP_ERROR: Final = 10002
INVALID_API_KEY: Final = 10003
SIGN_ERROR: Final = 10004
PERMISSION_DENIED: Final = 10005
TOO_MANY_VISITS: Final = 10006
SERVER_ERROR: Final = 10016
ROUTE_NOT_FOUND: Final = 10017
ORDER_NOT_EXISTS: Final = 110001
AB_NOT_ENOUGH: Final = 110007
DUPLICATE_ORDER_LINK_ID: Final = 110072

INVALID_API_KEY_MSG: Final = "API key is invalid."
#: Bybit's rate-limit refusal ("Too many visits!", as the v5 rate-limit page quotes it)
TOO_MANY_VISITS_MSG: Final = "Too many visits!"


class BybitError(Exception):
    """A Bybit ``retCode`` error; ``http_status`` is 200 unless Bybit uses a real HTTP error."""

    __slots__ = ("code", "http_status", "msg")

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def params_error(detail: str) -> BybitError:
    return BybitError(PARAMS_ERROR, detail)


def timestamp_error(req_ts: str, server_ts: int, recv_window: str) -> BybitError:
    return BybitError(
        TIMESTAMP_ERROR,
        "invalid request, please check your server timestamp or recv_window param. "
        f"req_timestamp[{req_ts}],server_timestamp[{server_ts}],recv_window[{recv_window}]",
    )


def sign_error(origin: str) -> BybitError:
    return BybitError(SIGN_ERROR, f"error sign! origin_string[{origin}]")
