"""The landing cookie is signed again after a change only once it is past half its life."""

from __future__ import annotations

import time

import pytest
from flask import Response

from app import create_app, landing
from tests.conftest import SignedAt

pytestmark = pytest.mark.unit
SALT = "checkout.landing-state"


def _renewed(cookie_age: float | None, basket_id: str = "basket-id") -> bool:
    app = create_app()
    headers = {}
    if cookie_age is not None:
        signer = SignedAt(app.config["SECRET_KEY"], SALT, time.time() - cookie_age)
        headers["Cookie"] = f"landing_state={signer.sign('basket-id').decode()}"
    with app.test_request_context(headers=headers):
        response = Response()
        landing.renew(response, basket_id)
        return "landing_state=" in response.headers.get("Set-Cookie", "")


def test_a_young_cookie_is_kept_as_it_is():
    assert not _renewed(cookie_age=60)


def test_a_cookie_past_half_its_life_is_signed_again():
    ttl = create_app().config["BASKET_TTL_SECONDS"]
    assert _renewed(cookie_age=ttl + 60)


def test_no_cookie_or_another_baskets_cookie_gets_this_baskets():
    assert _renewed(cookie_age=None)
    assert _renewed(cookie_age=60, basket_id="another-basket")


def test_a_cookie_older_than_two_ttls_is_no_basket():
    app = create_app()
    too_old = time.time() - 2 * app.config["BASKET_TTL_SECONDS"] - 5
    old = SignedAt(app.config["SECRET_KEY"], SALT, too_old)
    with app.test_request_context(headers={"Cookie": f"landing_state={old.sign('b').decode()}"}):
        assert landing.read_basket_id() is None
