"""The browser journey walked over plain HTTP, up to the basket page: for integration tests
that need a signed-in browser without a browser, and for the bench's page scenario."""

from __future__ import annotations

import re

import requests

from tests.conftest import recaptcha_token

LINK = "/start?subscription=SUB-1001&offer=OFFER-SPORTS"


def signed_in_browser(
    app_url: str, link: str = LINK, customer: str = "alice"
) -> requests.Session | None:
    """Walk the browser journey with requests: landing, bot check, sign-in, basket."""
    http = requests.Session()
    start = http.get(app_url + link, timeout=10)
    if start.status_code != 200:
        return None
    form = form_of(start.text)
    if form is None:
        return None
    action, fields = form
    fields["g-recaptcha-response"] = fields["recaptcha_token"] = recaptcha_token()
    signin = http.post(requests.compat.urljoin(start.url, action), data=fields, timeout=10)
    login = form_of(signin.text)
    if login is None:
        return None
    action, fields = login
    fields["customer"] = customer
    basket = http.post(requests.compat.urljoin(signin.url, action), data=fields, timeout=10)
    if basket.status_code != 200 or "/basket" not in basket.url:
        return None
    return http


def sign_in_at(http: requests.Session, url: str, customer: str) -> requests.Response:
    """Open `url`, which sends a browser to sign in, and sign in at the sandbox as
    `customer`: the answer of `url` once back."""
    login = http.get(url, timeout=10)
    form = form_of(login.text)
    if form is None or "/oauth/" not in login.url:
        return login  # signed in already, or refused without a sign-in
    action, fields = form
    fields["customer"] = customer
    return http.post(requests.compat.urljoin(login.url, action), data=fields, timeout=10)


def form_of(html: str) -> tuple[str, dict[str, str]] | None:
    """The first POST form of a page: its action and its named inputs with values."""
    for attributes, body in re.findall(r"<form\b([^>]*)>(.*?)</form>", html, re.S | re.I):
        if 'method="post"' not in attributes.lower():
            continue
        action = re.search(r'action="([^"]*)"', attributes)
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', body))
        return (action.group(1) if action else "").replace("&amp;", "&"), fields
    return None


def offer_form(page: str, offer: str) -> tuple[str, dict[str, str]]:
    """The Add (or Remove) form of one offer on the basket page: action and fields."""
    for start in (m.start() for m in re.finditer(r'<form class="offer__action"', page)):
        form = form_of(page[start:])
        if form is not None and form[1].get("offer") == offer:
            return form
    raise AssertionError(f"no form for {offer} on the page")
