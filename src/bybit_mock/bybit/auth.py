"""HMAC-SHA256 request authentication, exactly as Bybit v5 checks it.

REST (``guide.mdx``, verified against pybit 5.17 and ccxt 4.5):

* the signed string is ``timestamp + api_key + recv_window + payload`` where the payload is
  the *raw* query string for GET (as sent: pybit sorts keys, ccxt keeps insertion order, and
  neither encodes, so the server must never decode or re-sort it) and the *raw* body for POST
  (pybit's has spaces after ``:`` and ``,``; ccxt's has none);
* ``recv_window`` is the ``X-BAPI-RECV-WINDOW`` header *as a string*, ``"5000"`` if absent;
* the timestamp must satisfy ``server - recv_window <= ts < server + 1000`` (10002); both
  headers must be plain digits (at most 18), or that is a 10002 too;
* an unknown key is 10003, a wrong signature 10004; ``X-BAPI-SIGN-TYPE`` is ignored (pybit
  always sends ``2``, even for HMAC keys);
* the comparison is constant-time.

Private WebSocket: ``{"op": "auth", "args": [key, expires, signature]}`` where the signature
is ``hex(HMAC_SHA256(secret, "GET/realtime" + str(expires)))`` and ``expires`` (ms, int from
pybit, str of digits from ccxt, at most 18 digits either way) must lie in the future.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping

from . import errors
from .numbers import parse_int, parse_unsigned

DEFAULT_RECV_WINDOW = "5000"
_OWS = b" \t"
#: A request stamped this far in the future is still accepted (Bybit's ``< server + 1000``).
FUTURE_TOLERANCE_MS = 1000


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC already keyed with ``secret``: copying it skips the key setup on every request."""
    return hmac.new(secret.encode(), None, hashlib.sha256)


def sign(secret: str, payload: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(payload.encode())
    return mac.hexdigest()


def rest_signature(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    """The ``X-BAPI-SIGN`` a correct client sends (used by tests and the load generator)."""
    return sign(secret, timestamp + api_key + recv_window + payload)


def rest_headers(api_key: str, secret: str, payload: str, timestamp_ms: int, recv_window: int = 5000) -> dict[str, str]:
    """Headers for a signed request, for tests and tools that do not use pybit or ccxt."""
    ts = str(timestamp_ms)
    rw = str(recv_window)
    return {
        "X-BAPI-API-KEY": api_key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": rw,
        "X-BAPI-SIGN": rest_signature(secret, ts, api_key, rw, payload),
    }


def verify_rest(
    headers: Mapping[bytes, bytes],
    payload: str,
    secret_for: Mapping[str, str],
    now_ms: int,
) -> str:
    """Check a REST request's auth headers; return the API key or raise :class:`BybitError`.

    ``headers`` maps lower-case header names to raw values. The caller has already checked
    that the key header is present (see :func:`api_key_of`).
    """
    # A header value's trailing spaces and tabs are not part of it (RFC 9110 5.5); llhttp
    # strips only the leading ones. Stripped here, where the values mean something, rather than
    # for every header of every request.
    api_key = headers[b"x-bapi-api-key"].rstrip(_OWS).decode("latin-1")
    ts_raw = headers.get(b"x-bapi-timestamp", b"").rstrip(_OWS).decode("latin-1")
    recv_window = headers.get(b"x-bapi-recv-window", DEFAULT_RECV_WINDOW.encode()).rstrip(_OWS).decode("latin-1")
    check_timestamp(ts_raw, recv_window, now_ms)
    secret = secret_for.get(api_key)
    if secret is None:
        raise errors.BybitError(errors.INVALID_API_KEY, errors.INVALID_API_KEY_MSG)
    # As bytes: compare_digest raises TypeError on a str holding non-ASCII characters.
    given = headers.get(b"x-bapi-sign", b"").rstrip(_OWS).lower()
    origin = ts_raw + api_key + recv_window + payload
    if not hmac.compare_digest(sign(secret, origin).encode(), given):
        raise errors.sign_error(origin)
    return api_key


def check_timestamp(ts_raw: str, recv_window: str, now_ms: int) -> None:
    """Bybit's rule ``server - recv_window <= ts < server + 1000``; 10002 otherwise.

    Both are plain digits: ``int()`` would also take ``" 12"``, ``"1_2"``, ``"+12"`` and a
    10 000-digit string (whose conversion alone costs the worker time).
    """
    ts = parse_unsigned(ts_raw)
    window = parse_unsigned(recv_window)
    if ts is None or window is None or not now_ms - window <= ts < now_ms + FUTURE_TOLERANCE_MS:
        raise errors.timestamp_error(ts_raw, now_ms, recv_window)


def api_key_of(headers: Mapping[bytes, bytes]) -> str | None:
    value = headers.get(b"x-bapi-api-key", b"").rstrip(_OWS)
    return value.decode("latin-1") if value else None


def ws_auth_signature(secret: str, expires: int | str) -> str:
    return sign(secret, f"GET/realtime{expires}")


def verify_ws_auth(args: object, secret_for: Mapping[str, str], now_ms: int) -> str | None:
    """Check a private-stream ``auth`` op's args; return the API key, or None if refused."""
    if not isinstance(args, list) or len(args) != 3:
        return None
    api_key, expires, signature = args
    if not isinstance(api_key, str) or not isinstance(signature, str):
        return None
    if type(expires) is int:  # not bool, which would sign as "True"
        expires_ms = parse_int(expires)  # bounded; a negative one is in the past anyway
    elif type(expires) is str:
        expires_ms = parse_unsigned(expires)
    else:
        return None
    if expires_ms is None or expires_ms <= now_ms:
        return None
    secret = secret_for.get(api_key)
    if secret is None:
        return None
    # Sign what the client sent (an int or a string), the way it rendered it.
    # As bytes: compare_digest raises TypeError on a str holding non-ASCII characters.
    if not hmac.compare_digest(ws_auth_signature(secret, expires).encode(), signature.lower().encode()):
        return None
    return api_key
