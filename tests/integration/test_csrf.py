"""The browser's CSRF token (flask-wtf's): on every form, accepted, and required."""

from __future__ import annotations

import pytest
import requests

from sandbox.stack import Service
from tests.conftest import Sandbox, recaptcha_token
from tests.journey import offer_form, signed_in_browser

pytestmark = pytest.mark.integration


def test_a_pages_token_is_accepted_and_a_tampered_one_refused(
    app_server: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    again = browser.get(app_server.url + "/basket", timeout=10)
    form = offer_form(again.text, "OFFER-SPORTS")  # the first offer's "Add"
    assert form is not None
    action, fields = form
    fields["recaptcha_token"] = recaptcha_token()
    changed = browser.post(app_server.url + action, data=fields, timeout=10)
    assert changed.status_code == 200 and changed.url.endswith("/basket"), changed.status_code
    assert "will be added to your plan" in changed.text

    fields["csrf_token"] = fields["csrf_token"][:-2] + "xx"
    refused = browser.post(app_server.url + action, data=fields, timeout=10)
    assert refused.status_code == 400


def test_a_page_without_forms_opens_no_session_for_a_visitor(app_server: Service):
    """A bot walking the site must not leave a session behind in Redis on every request."""
    for path in ("/", "/no-such-page"):
        response = requests.get(app_server.url + path, timeout=10)
        assert response.status_code in (200, 404)
        assert "checkout_session" not in response.headers.get("Set-Cookie", ""), path


def test_every_form_is_refused_without_its_token(app_server: Service):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    fields = {"offer": "OFF-X", "subscription": "SUB-1001", "recaptcha_token": recaptcha_token()}
    for path in ("/start", "/basket/add", "/basket/remove", "/review", "/signout"):
        refused = browser.post(app_server.url + path, data=fields, timeout=10)
        assert refused.status_code == 400, path
    assert browser.get(app_server.url + "/basket", timeout=10).status_code == 200  # still in
