"""Our signed cookies keep itsdangerous's format: each reads what the other signs."""

from __future__ import annotations

import time

import pytest
from itsdangerous import Signer, TimestampSigner

from app.cookies import SignedValue, from_header
from tests.conftest import SignedAt

pytestmark = pytest.mark.unit

SECRET = "a-secret-of-at-least-thirty-two-characters"
SALT = "checkout.test"


def timed() -> SignedValue:
    return SignedValue(SECRET, SALT, timed=True, max_length=512)


def test_a_timed_value_signed_by_itsdangerous_reads_with_its_time():
    signed = SignedAt(SECRET, SALT, time.time() - 60).sign("basket-1").decode()
    value, signed_at = timed().unsign(signed, max_age=3600)  # type: ignore[misc]
    assert value == "basket-1" and abs(time.time() - 60 - signed_at) < 2


def test_itsdangerous_reads_what_we_sign():
    assert TimestampSigner(SECRET, salt=SALT).unsign(timed().sign("basket-1"), 60) == b"basket-1"
    plain = SignedValue(SECRET, SALT, timed=False, max_length=256)
    assert Signer(SECRET, salt=SALT).unsign(plain.sign("session-id")) == b"session-id"
    assert plain.unsign(Signer(SECRET, salt=SALT).sign("session-id").decode()) == ("session-id", 0)


FOREIGN = {
    "another secret": lambda: SignedAt("another-secret-of-thirty-two-chars", SALT, time.time()),
    "another salt": lambda: SignedAt(SECRET, "another-salt", time.time()),
    "older than max_age": lambda: SignedAt(SECRET, SALT, time.time() - 3601),
    "from the future": lambda: SignedAt(SECRET, SALT, time.time() + 120),
}


@pytest.mark.parametrize("signer", FOREIGN.values(), ids=FOREIGN.keys())
def test_foreign_or_expired_values_read_as_none(signer):
    assert timed().unsign(signer().sign("b").decode(), max_age=3600) is None


@pytest.mark.parametrize("signed", ["b", "", ".", "b.AAAA.", "b.é.é", "b.!!!.x"])
def test_malformed_values_read_as_none(signed: str):
    assert timed().unsign(signed, max_age=3600) is None


def test_a_changed_value_or_signature_reads_as_none():
    good = timed().sign("basket-1")
    assert timed().unsign(good.replace("basket-1", "basket-2"), 3600) is None
    assert timed().unsign(good[:-1] + ("A" if good[-1] != "A" else "B"), 3600) is None
    assert timed().unsign(good, 3600) is not None


def test_values_longer_than_the_limit_are_not_checked():
    short = SignedValue(SECRET, SALT, timed=True, max_length=10)
    assert short.unsign(short.sign("basket-1")) is None


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("landing_state=abc", "abc"),
        ("a=1; landing_state=abc; b=2", "abc"),
        ("a=1;landing_state=abc.def=;b=2", "abc.def="),
        ("landing_state=first; landing_state=second", "first"),
        ("xlanding_state=abc; landing_state_old=def", None),
        ("a=1", None),
        ("", None),
    ],
)
def test_one_cookie_is_found_in_the_header(header: str, value: str | None):
    assert from_header({"HTTP_COOKIE": header}, "landing_state") == value
    assert from_header({}, "landing_state") is None
