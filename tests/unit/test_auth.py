"""REST and WebSocket HMAC auth, against the rules in shared/reference/bybit-v5.md section 1."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from bybit_mock.bybit import auth, errors
from bybit_mock.bybit.errors import BybitError

KEY, SECRET = "k1", "s1"
NOW = 1_700_000_000_000


def headers(ts: int | str, payload: str, *, recv: str | None = "5000", sign: str | None = None) -> dict[bytes, bytes]:
    rw = recv if recv is not None else "5000"
    signature = sign if sign is not None else auth.rest_signature(SECRET, str(ts), KEY, rw, payload)
    h = {b"x-bapi-api-key": KEY.encode(), b"x-bapi-timestamp": str(ts).encode(), b"x-bapi-sign": signature.encode()}
    if recv is not None:
        h[b"x-bapi-recv-window"] = recv.encode()
    return h


def test_signature_is_documented_hmac() -> None:
    expected = hmac.new(b"s1", b"1k15000a=1", hashlib.sha256).hexdigest()
    assert auth.rest_signature("s1", "1", "k1", "5000", "a=1") == expected


@pytest.mark.parametrize("payload", ["", "accountType=UNIFIED&coin=USDT", '{"category": "linear", "qty": "0.01"}'])
def test_valid_request_passes(payload: str) -> None:
    assert auth.verify_rest(headers(NOW, payload), payload, {KEY: SECRET}, NOW) == KEY


def test_raw_payload_is_signed_not_a_reordering() -> None:
    h = headers(NOW, "b=2&a=1")
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(h, "a=1&b=2", {KEY: SECRET}, NOW)
    assert exc.value.code == errors.SIGN_ERROR
    assert exc.value.msg == f"error sign! origin_string[{NOW}{KEY}5000a=1&b=2]"


def test_recv_window_defaults_to_5000_when_header_absent() -> None:
    h = headers(NOW - 4999, "", recv=None)
    assert auth.verify_rest(h, "", {KEY: SECRET}, NOW) == KEY
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(headers(NOW - 5001, "", recv=None), "", {KEY: SECRET}, NOW)
    assert exc.value.code == errors.TIMESTAMP_ERROR


@pytest.mark.parametrize(("offset", "ok"), [(-5000, True), (-5001, False), (999, True), (1000, False), (0, True)])
def test_timestamp_window_edges(offset: int, ok: bool) -> None:
    h = headers(NOW + offset, "x=1")
    if ok:
        assert auth.verify_rest(h, "x=1", {KEY: SECRET}, NOW) == KEY
    else:
        with pytest.raises(BybitError) as exc:
            auth.verify_rest(h, "x=1", {KEY: SECRET}, NOW)
        assert exc.value.code == errors.TIMESTAMP_ERROR
        assert exc.value.msg == (
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{NOW + offset}],server_timestamp[{NOW}],recv_window[5000]"
        )


def test_custom_recv_window_is_signed_as_sent() -> None:
    h = headers(NOW - 9000, "", recv="10000")
    assert auth.verify_rest(h, "", {KEY: SECRET}, NOW) == KEY


def test_unknown_key_is_10003() -> None:
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(headers(NOW, ""), "", {"other": "x"}, NOW)
    assert (exc.value.code, exc.value.msg) == (10003, "API key is invalid.")


@pytest.mark.parametrize("ts", ["", "abc", "1.5"])
def test_malformed_timestamp_is_10002(ts: str) -> None:
    h = headers(NOW, "")
    h[b"x-bapi-timestamp"] = ts.encode()
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(h, "", {KEY: SECRET}, NOW)
    assert exc.value.code == 10002


def test_uppercase_hex_signature_is_accepted() -> None:
    sig = auth.rest_signature(SECRET, str(NOW), KEY, "5000", "").upper()
    assert auth.verify_rest(headers(NOW, "", sign=sig), "", {KEY: SECRET}, NOW) == KEY


def test_ws_auth_int_and_string_expires() -> None:
    for expires in (NOW + 1000, str(NOW + 10000)):
        sig = auth.ws_auth_signature(SECRET, expires)
        assert auth.verify_ws_auth([KEY, expires, sig], {KEY: SECRET}, NOW) == KEY


@pytest.mark.parametrize(
    "args",
    [
        [KEY, NOW - 1, auth.ws_auth_signature(SECRET, NOW - 1)],  # expired
        [KEY, NOW + 1000, "0" * 64],  # bad signature
        ["nobody", NOW + 1000, auth.ws_auth_signature(SECRET, NOW + 1000)],  # unknown key
        [KEY, NOW + 1000],  # wrong arity
        "not-a-list",
        [KEY, True, "x"],
        [KEY, "soon", "x"],
    ],
)
def test_ws_auth_refusals(args: object) -> None:
    assert auth.verify_ws_auth(args, {KEY: SECRET}, NOW) is None


# Forms ``int()`` takes but Bybit's plain digits do not. Each is signed correctly and, read by
# ``int()``, would be a timestamp inside the window: only the grammar refuses it.
NOT_PLAIN: list[Callable[[int], str]] = [
    lambda n: f" {n}",
    lambda n: f"{n} ",
    lambda n: f"+{n}",
    lambda n: f"{n:_}",  # 1_700_000_000_000
    lambda n: "0" * 4_000 + str(n),  # under int()'s 4 300-digit limit: read, and not for free
]
NOT_PLAIN_IDS = ["leading space", "trailing space", "plus", "underscores", "4013 digits"]
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
#: in a header, trailing spaces and tabs are not part of the value (RFC 9110 5.5)
IN_HEADERS = [(f, i) for f, i in zip(NOT_PLAIN, NOT_PLAIN_IDS, strict=True) if i != "trailing space"]
HEADER_NOT_PLAIN, HEADER_NOT_PLAIN_IDS = [f for f, _ in IN_HEADERS], [i for _, i in IN_HEADERS]


def test_trailing_whitespace_is_not_part_of_a_header_value() -> None:
    sent = {name: value + b" \t" for name, value in headers(NOW, "").items()}  # signed over the bare values
    assert auth.verify_rest(sent, "", {KEY: SECRET}, NOW) == KEY


@pytest.mark.parametrize("form", HEADER_NOT_PLAIN, ids=HEADER_NOT_PLAIN_IDS)
def test_timestamp_header_must_be_plain_digits(form: Callable[[int], str]) -> None:
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(headers(form(NOW), ""), "", {KEY: SECRET}, NOW)
    assert exc.value.code == errors.TIMESTAMP_ERROR


@pytest.mark.parametrize("form", HEADER_NOT_PLAIN, ids=HEADER_NOT_PLAIN_IDS)
def test_recv_window_header_must_be_plain_digits(form: Callable[[int], str]) -> None:
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(headers(NOW, "", recv=form(5000)), "", {KEY: SECRET}, NOW)
    assert exc.value.code == errors.TIMESTAMP_ERROR


def test_check_timestamp_refuses_unicode_digits() -> None:
    auth.check_timestamp(str(NOW), "5000", NOW)
    with pytest.raises(BybitError):
        auth.check_timestamp(str(NOW).translate(ARABIC_INDIC), "5000", NOW)
    with pytest.raises(BybitError):
        auth.check_timestamp(str(NOW), "5000".translate(ARABIC_INDIC), NOW)


def test_header_numbers_are_bounded_to_18_digits() -> None:
    assert auth.verify_rest(headers("0" + str(NOW), "", recv="0" * 14 + "5000"), "", {KEY: SECRET}, NOW) == KEY
    with pytest.raises(BybitError) as exc:
        auth.verify_rest(headers(NOW, "", recv="9" * 19), "", {KEY: SECRET}, NOW)
    assert exc.value.code == errors.TIMESTAMP_ERROR


@pytest.mark.parametrize(
    "form", [*NOT_PLAIN, lambda n: str(n).translate(ARABIC_INDIC)], ids=[*NOT_PLAIN_IDS, "Arabic-Indic digits"]
)
def test_ws_auth_expires_string_must_be_plain_digits(form: Callable[[int], str]) -> None:
    expires = form(NOW + 10_000)
    assert auth.verify_ws_auth([KEY, expires, auth.ws_auth_signature(SECRET, expires)], {KEY: SECRET}, NOW) is None


@pytest.mark.parametrize("expires", [10**18, 10**30, 10**400])
def test_ws_auth_expires_int_is_bounded(expires: int) -> None:
    """Far in the future and signed right, but more than 18 digits."""
    assert auth.verify_ws_auth([KEY, expires, auth.ws_auth_signature(SECRET, expires)], {KEY: SECRET}, NOW) is None
    within = 10**18 - 1
    assert auth.verify_ws_auth([KEY, within, auth.ws_auth_signature(SECRET, within)], {KEY: SECRET}, NOW) == KEY
