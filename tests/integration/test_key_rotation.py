"""Rotating the secret key signs nobody out: cookies signed with a key listed in
CHECKOUT_SECRET_KEY_FALLBACKS still read, and the session's is signed again with the new
key, so it outlives the fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from itsdangerous import BadSignature, Signer

from app.config import DEV_SECRET_KEY
from sandbox.stack import Service, app_service, free_port
from tests.conftest import Sandbox, recaptcha_token
from tests.journey import offer_form, signed_in_browser

pytestmark = pytest.mark.integration
NEW_KEY = "the-new-secret-key-after-the-rotation-0123456789"
SESSION_SALT = "checkout.session"


def _started(app_env: dict[str, str], **settings: str) -> Iterator[Service]:
    service = app_service(free_port(), {**app_env, **settings}).start(quiet=True)
    yield service
    service.stop()


@pytest.fixture
def rotated(app_env: dict[str, str]) -> Iterator[Service]:
    """The app after the rotation: the new key, the old one as a fallback."""
    yield from _started(
        app_env, CHECKOUT_SECRET_KEY=NEW_KEY, CHECKOUT_SECRET_KEY_FALLBACKS=DEV_SECRET_KEY
    )


@pytest.fixture
def fallback_dropped(app_env: dict[str, str]) -> Iterator[Service]:
    """Later: the old key is no longer accepted at all."""
    yield from _started(app_env, CHECKOUT_SECRET_KEY=NEW_KEY)


def test_a_signed_in_customer_keeps_session_and_basket_across_a_rotation(
    app_server: Service, rotated: Service, fallback_dropped: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)  # signed with the old (development) key
    assert browser is not None, "the journey up to the basket page did not complete"
    old_session = browser.cookies["checkout_session"]
    with pytest.raises(BadSignature):
        Signer(NEW_KEY, salt=SESSION_SALT).unsign(old_session)

    page = browser.get(rotated.url + "/basket", timeout=10, allow_redirects=False)
    assert page.status_code == 200 and "Choose your changes" in page.text
    new_session = browser.cookies["checkout_session"]
    assert new_session != old_session  # the same session, signed again with the new key
    assert Signer(NEW_KEY, salt=SESSION_SALT).unsign(new_session) == Signer(
        DEV_SECRET_KEY, salt=SESSION_SALT
    ).unsign(old_session)

    form = offer_form(page.text, "OFFER-SPORTS")
    assert form is not None
    action, fields = form
    fields["recaptcha_token"] = recaptcha_token()
    changed = browser.post(rotated.url + action, data=fields, timeout=10)
    assert changed.status_code == 200 and "will be added to your plan" in changed.text

    # With the old key gone, the session signed again is still good.
    later = browser.get(fallback_dropped.url + "/start?subscription=SUB-1001", timeout=10)
    assert later.status_code == 200
    assert "Signed in as Alice Example" in later.text
