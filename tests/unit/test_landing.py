"""The landing cookie: signed by itsdangerous, read back only when it is ours and young
enough, signed again after a change only once it is past half its life, and still read
after the secret key is rotated."""

from __future__ import annotations

import time

import pytest
from flask import Flask, Response
from itsdangerous import TimestampSigner

from app import create_app
from app.web import landing
from tests.conftest import SignedAt

pytestmark = pytest.mark.unit
SALT = "checkout.landing-state"
OLD_KEY = "the-key-before-the-rotation-of-32-chars"
NEW_KEY = "the-key-after-the-rotation-of-32-chars!"


def _read(app: Flask, cookie: str | None) -> str | None:
    headers = {"Cookie": f"landing_state={cookie}"} if cookie is not None else {}
    with app.test_request_context(headers=headers):
        return landing.read_basket_id()


def _renewed(app: Flask, cookie_age: float | None, basket_id: str = "basket-id") -> bool:
    headers = {}
    if cookie_age is not None:
        signer = SignedAt(app.config["SECRET_KEY"], SALT, time.time() - cookie_age)
        headers["Cookie"] = f"landing_state={signer.sign('basket-id').decode()}"
    with app.test_request_context(headers=headers):
        response = Response()
        landing.renew(response, basket_id)
        return "landing_state=" in response.headers.get("Set-Cookie", "")


def test_a_young_cookie_is_kept_as_it_is(app):
    assert not _renewed(app, cookie_age=60)


def test_a_cookie_past_half_its_life_is_signed_again(app):
    assert _renewed(app, cookie_age=app.config["BASKET_TTL_SECONDS"] + 60)


def test_no_cookie_or_another_baskets_cookie_gets_this_baskets(app):
    assert _renewed(app, cookie_age=None)
    assert _renewed(app, cookie_age=60, basket_id="another-basket")


def test_a_cookie_older_than_two_ttls_is_no_basket(app):
    too_old = time.time() - 2 * app.config["BASKET_TTL_SECONDS"] - 5
    assert _read(app, SignedAt(app.config["SECRET_KEY"], SALT, too_old).sign("b").decode()) is None


FOREIGN = {
    "another secret": lambda key: SignedAt("another-secret-of-thirty-two-chars", SALT, time.time()),
    "another salt": lambda key: SignedAt(key, "another-salt", time.time()),
    "from the future": lambda key: SignedAt(key, SALT, time.time() + 120),
}


@pytest.mark.parametrize("signer", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_foreign_cookie_is_no_basket(app, signer):
    assert _read(app, signer(app.config["SECRET_KEY"]).sign("basket-id").decode()) is None


@pytest.mark.parametrize("cookie", ["", "b", ".", "b.AAAA.", "b.é.é", "b.!!!.x", "x" * 600])
def test_a_malformed_cookie_is_no_basket(app, cookie: str):
    assert _read(app, cookie) is None


def test_a_changed_basket_id_or_signature_is_no_basket(app):
    with app.test_request_context():
        response = Response()
        landing.issue(response, "basket-1")
    good = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert _read(app, good) == "basket-1"
    assert _read(app, good.replace("basket-1", "basket-2")) is None
    # A character in the middle of the signature: the last one may carry only padding bits.
    head, _, signature = good.rpartition(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    assert _read(app, f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}") is None


def test_the_cookie_is_found_among_others_in_the_header(app):
    good = TimestampSigner(app.config["SECRET_KEY"], salt=SALT).sign("basket-1").decode()
    headers = {"Cookie": f"a=1; xlanding_state=no; landing_state={good}; b=2"}
    with app.test_request_context(headers=headers):
        assert landing.read_basket_id() == "basket-1"


def test_after_a_key_rotation_old_cookies_read_and_new_ones_use_the_new_key():
    before = create_app({"SECRET_KEY": OLD_KEY})
    after = create_app({"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": [OLD_KEY]})
    with before.test_request_context():
        response = Response()
        landing.issue(response, "basket-1")
    signed_before = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert _read(after, signed_before) == "basket-1"
    with after.test_request_context():
        response = Response()
        landing.issue(response, "basket-2")
    signed_after = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert TimestampSigner(NEW_KEY, salt=SALT).unsign(signed_after) == b"basket-2"
    assert _read(before, signed_after) is None  # the old key alone cannot read it
    # Once the fallback is dropped, what the old key signed is no longer accepted.
    assert _read(create_app({"SECRET_KEY": NEW_KEY}), signed_before) is None


def test_fallback_keys_may_be_given_as_a_comma_separated_variable(monkeypatch):
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("CHECKOUT_SECRET_KEY_FALLBACKS", f"{OLD_KEY}, another-old-key")
    app = create_app()
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY, "another-old-key"]
    assert _read(app, SignedAt(OLD_KEY, SALT, time.time()).sign("basket-1").decode()) == "basket-1"
