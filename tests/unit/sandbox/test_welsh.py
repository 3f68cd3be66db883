"""The sandbox in Welsh: the backend's names and descriptions by ``Accept-Language``, the
sign-in and signed-out pages by OpenID Connect's ``ui_locales``.

In process, through the sandbox app's test client, as tests/unit/sandbox/test_sandbox.py does.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from sandbox.data import OFFERS, PLANS
from sandbox.language import PAGE_TEXTS, from_ui_locales
from tests.unit.sandbox.backend_calls import (
    ALICE_CHANGE,
    alice_order,
    backend_headers,
    place_order,
    quote,
    read_subscription,
)
from tests.unit.sandbox.oauth_flow import CALLBACK, Pkce, authorize_params

pytestmark = pytest.mark.unit

HD_ENGLISH = {"name": "HD Quality", "description": "Every channel in full high definition."}


def names(offers: list[dict[str, Any]]) -> dict[str, str]:
    return {offer["id"]: offer["name"] for offer in offers}


def without_words(answer: Any) -> Any:
    """The answer less every name and description: what must not change with the language."""
    if isinstance(answer, dict):
        return {
            key: without_words(value)
            for key, value in answer.items()
            if key not in ("name", "description")
        }
    if isinstance(answer, list):
        return [without_words(item) for item in answer]
    return answer


def assert_in_language(response: Any, language: str) -> None:
    assert response.headers["Content-Language"] == language
    assert "Accept-Language" in response.headers["Vary"]


# --- the backend -----------------------------------------------------------------------


def test_subscription_in_welsh(client: FlaskClient) -> None:
    english = read_subscription(client, "SUB-1001")
    welsh = read_subscription(client, "SUB-1001", "cy")
    assert_in_language(english, "en")
    assert_in_language(welsh, "cy")
    body = welsh.get_json()
    assert body["plan"]["name"] == "Safonol"
    assert names(body["eligibleOffers"]) == {
        "OFFER-SPORTS": "Chwaraeon",
        "OFFER-KIDS": "Plant",
        "OFFER-CINEMA": "Sinema",
    }
    descriptions = {offer["id"]: offer["description"] for offer in body["eligibleOffers"]}
    assert descriptions["OFFER-SPORTS"] == "Pêl-droed, criced a rygbi yn fyw."
    assert descriptions["OFFER-KIDS"] == "Cartwnau a rhaglenni i blant, heb hysbysebion."
    assert descriptions["OFFER-CINEMA"].endswith("bob dydd Gwener.")
    # HD has no Welsh form: the English name and description, in a Welsh answer
    (hd,) = body["activeOffers"]
    assert {"name": hd["name"], "description": hd["description"]} == HD_ENGLISH
    # ids, prices, dates and order are the same in both
    assert without_words(body) == without_words(english.get_json())
    assert body != english.get_json()


@pytest.mark.parametrize(
    ("subscription_id", "plan"), [("SUB-3003", "Sylfaenol"), ("SUB-2002", "Premiwm")]
)
def test_plans_in_welsh(client: FlaskClient, subscription_id: str, plan: str) -> None:
    assert read_subscription(client, subscription_id, "cy").get_json()["plan"]["name"] == plan


def test_pending_change_in_welsh(client: FlaskClient) -> None:
    welsh = read_subscription(client, "SUB-2002", "cy").get_json()["pendingChange"]
    english = read_subscription(client, "SUB-2002").get_json()["pendingChange"]
    assert welsh["description"] == "Symud i lawr i Safonol"
    assert english["description"] == "Downgrade to Standard"
    assert without_words(welsh) == without_words(english)


@pytest.mark.parametrize("accept", [None, "", "en", "fr", "cy;q=0.5, en", "*", "de, fr;q=0.5"])
def test_english_unless_welsh_is_the_best_match(client: FlaskClient, accept: str | None) -> None:
    response = read_subscription(client, "SUB-1001", accept)
    assert_in_language(response, "en")
    body = response.get_json()
    assert body["plan"]["name"] == "Standard"
    assert names(body["eligibleOffers"])["OFFER-SPORTS"] == "Sports"


@pytest.mark.parametrize("accept", ["cy", "CY", "cy-GB", "cy, en;q=0.8", "fr, cy;q=0.1"])
def test_welsh_when_it_is_the_best_match(client: FlaskClient, accept: str) -> None:
    response = read_subscription(client, "SUB-1001", accept)
    assert_in_language(response, "cy")
    assert response.get_json()["plan"]["name"] == "Safonol"


def test_hd_has_no_welsh_on_purpose() -> None:
    """The fallback is in the data, not an accident of the lookup; the rest have Welsh."""
    hd = OFFERS["OFFER-HD"]
    assert (hd.welsh_name, hd.welsh_description) == (None, None)
    assert hd.to_json("cy") == hd.to_json("en")
    for offer in OFFERS.values():
        if offer is not hd:
            assert offer.welsh_name and offer.welsh_description, offer.id
            assert offer.to_json("cy") != offer.to_json("en")
    assert [plan.welsh_name for plan in PLANS.values()] == ["Sylfaenol", "Safonol", "Premiwm"]


def test_quote_in_welsh(client: FlaskClient) -> None:
    change = {"addOffers": ["OFFER-CINEMA"], "removeOffers": ["OFFER-HD"]}
    english = quote(client, change)
    welsh = quote(client, change, language="cy")
    assert welsh.status_code == 200
    assert_in_language(welsh, "cy")
    assert_in_language(english, "en")
    body = welsh.get_json()
    assert names(body["addOffers"]) == {"OFFER-CINEMA": "Sinema"}
    assert names(body["removeOffers"]) == {"OFFER-HD": "HD Quality"}
    same = without_words(english.get_json())
    # Each quote is its own, and expires a quote's life after it was made (to the second:
    # two quotes a moment apart may straddle one).
    mine = {"quoteId": same["quoteId"], "expiresAt": same["expiresAt"]}
    assert {**without_words(body), **mine} == same


def test_order_in_welsh(client: FlaskClient) -> None:
    issued = quote(client, ALICE_CHANGE, language="cy").get_json()
    placed = place_order(client, alice_order(issued), language="cy")
    assert placed.status_code == 201
    assert_in_language(placed, "cy")
    body = placed.get_json()
    assert names(body["addOffers"]) == {"OFFER-SPORTS": "Chwaraeon"}
    assert names(body["removeOffers"]) == {"OFFER-HD": "HD Quality"}
    assert body["newPrice"] == issued["newPrice"] == {"amount": "28.00", "currency": "GBP"}

    # A repeat answers in its own language: the same order, at the same prices.
    repeat = place_order(client, alice_order(issued))
    assert repeat.status_code == 200
    assert_in_language(repeat, "en")
    assert names(repeat.get_json()["addOffers"]) == {"OFFER-SPORTS": "Sports"}
    assert without_words(repeat.get_json()) == without_words(body)
    # The backend's own record of it stays in English.
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    assert names(record["addOffers"]) == {"OFFER-SPORTS": "Sports"}

    pending = read_subscription(client, "SUB-1001", "cy").get_json()["pendingChange"]
    assert pending["description"] == "Ychwanegu Chwaraeon, tynnu HD Quality"
    english = read_subscription(client, "SUB-1001").get_json()["pendingChange"]
    assert english["description"] == "Add Sports, remove HD Quality"


def test_refusals_that_name_things_are_in_welsh(client: FlaskClient) -> None:
    locked = quote(client, ALICE_CHANGE, "SUB-2002", language="cy")
    assert locked.status_code == 409
    assert_in_language(locked, "cy")
    assert locked.get_json()["pendingChange"]["description"] == "Symud i lawr i Safonol"

    issued = quote(client, ALICE_CHANGE).get_json()
    priced = client.post("/_sandbox/prices", json={"offerId": "OFFER-SPORTS", "price": "9"})
    assert priced.status_code == 200
    changed = place_order(client, alice_order(issued), language="cy")
    assert changed.status_code == 409
    assert_in_language(changed, "cy")
    fresh = changed.get_json()["quote"]
    assert names(fresh["addOffers"]) == {"OFFER-SPORTS": "Chwaraeon"}
    assert fresh["newPrice"] == {"amount": "29.00", "currency": "GBP"}


def test_refusals_that_name_nothing_carry_no_language(client: FlaskClient) -> None:
    missing = client.get("/backend/v1/subscriptions/SUB-9999", headers=backend_headers("cy"))
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "Subscription not found."
    assert "Content-Language" not in missing.headers
    assert "Vary" not in missing.headers


# --- the sign-in and signed-out pages --------------------------------------------------


def page_text(response: Any) -> str:
    """The page with its markup's character references undone (``Mae&#39;r`` → ``Mae'r``)."""
    return html.unescape(response.get_data(as_text=True))


def english_left_in(page: str) -> list[str]:
    """The English pages' words still on a page: none, on a Welsh one."""
    english = dataclasses.asdict(PAGE_TEXTS["en"])
    return [text for key, text in english.items() if key != "lang" and text in page]


def test_sign_in_page_in_welsh(client: FlaskClient) -> None:
    params = authorize_params(Pkce(), ui_locales="cy")
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 200
    page = page_text(response)
    assert '<html lang="cy">' in page
    assert "<title>Mewngofnodi – Partner TV (amgylchedd prawf)</title>" in page
    assert "<h1>Mewngofnodi i Partner TV</h1>" in page
    assert "Mae'r gwasanaeth <strong>checkout-dev</strong> yn gofyn i chi fewngofnodi." in page
    assert "<legend>Dewiswch gwsmer demo</legend>" in page
    assert "Olivia Operator (olivia), gweithredwr</label>" in page
    assert re.findall(r"<button[^>]*>([^<]*)</button>", page) == ["Mewngofnodi"]
    assert english_left_in(page) == []
    # ui_locales travels on with the rest of the request, for the form's own post
    assert '<input type="hidden" name="ui_locales" value="cy">' in page


@pytest.mark.parametrize("ui_locales", [None, "", "en", "fr", "en cy", "de fr"])
def test_sign_in_page_in_english(client: FlaskClient, ui_locales: str | None) -> None:
    overrides = {} if ui_locales is None else {"ui_locales": ui_locales}
    params = authorize_params(Pkce(), **overrides)
    page = page_text(client.get("/oauth/authorize", query_string=params))
    assert '<html lang="en">' in page
    assert "<h1>Sign in to Partner TV</h1>" in page
    assert re.findall(r"<button[^>]*>([^<]*)</button>", page) == ["Sign in"]


@pytest.mark.parametrize("ui_locales", ["cy", "fr cy", "cy-GB en", "CY"])
def test_welsh_is_the_first_known_ui_locale(client: FlaskClient, ui_locales: str) -> None:
    params = authorize_params(Pkce(), ui_locales=ui_locales)
    page = page_text(client.get("/oauth/authorize", query_string=params))
    assert '<html lang="cy">' in page


def test_ui_locales_parsing() -> None:
    assert from_ui_locales(None) == from_ui_locales("") == "en"
    assert from_ui_locales("fr-CA cy-GB en") == "cy"
    assert from_ui_locales("en-GB cy") == "en"
    assert from_ui_locales("  cy  ") == "cy"


def test_sign_in_with_ui_locales_and_an_unknown_parameter(client: FlaskClient) -> None:
    """Both ride along in the form and neither stops the sign-in."""
    params = authorize_params(Pkce(), ui_locales="cy", display_theme="dark")
    page = page_text(client.get("/oauth/authorize", query_string=params))
    assert '<input type="hidden" name="display_theme" value="dark">' in page
    signed_in = client.post("/oauth/authorize", data={**params, "customer": "alice"})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    location = signed_in.headers["Location"]
    assert location.startswith(f"{CALLBACK}?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["state-123"] and query["code"]


def test_form_post_errors_follow_ui_locales(client: FlaskClient) -> None:
    params = authorize_params(Pkce(), ui_locales="cy")
    response = client.post("/oauth/authorize", data={**params, "customer": "mallory"})
    assert response.status_code == 400
    page = page_text(response)
    assert '<html lang="cy">' in page
    assert "<h1>Gwrthodwyd y cais i fewngofnodi</h1>" in page
    assert "<p>Dewiswch un o'r cwsmeriaid demo.</p>" in page
    assert "Cod gwall: <code>invalid_request</code>" in page
    assert english_left_in(page) == []


def test_rejected_request_page_in_welsh_marks_authlibs_english(client: FlaskClient) -> None:
    params = authorize_params(Pkce(), ui_locales="cy", redirect_uri="https://evil.example/cb")
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 400
    page = page_text(response)
    assert "<h1>Gwrthodwyd y cais i fewngofnodi</h1>" in page
    # Authlib's description is English: said so, for screen readers
    assert re.search(r'<p lang="en">[^<]*Redirect URI', page)
    english = page_text(client.get("/oauth/authorize", query_string={**params, "ui_locales": ""}))
    assert "<h1>Sign-in request rejected</h1>" in english
    assert english.count('lang="en"') == 1  # the page's own, nothing to mark


def test_signed_out_page_follows_ui_locales(client: FlaskClient) -> None:
    welsh = page_text(client.get("/oauth/logout", query_string={"ui_locales": "cy"}))
    assert '<html lang="cy">' in welsh
    assert "<h1>Rydych wedi allgofnodi</h1>" in welsh
    assert "Gallwch gau'r ffenestr hon." in welsh
    assert english_left_in(welsh) == []
    english = page_text(client.get("/oauth/logout"))
    assert '<html lang="en">' in english and "<h1>You are signed out</h1>" in english
    # Back to a local post-logout URI there is no page, and the language is the RP's affair.
    back = client.get(
        "/oauth/logout",
        query_string={"post_logout_redirect_uri": "http://localhost:5000/out", "ui_locales": "cy"},
    )
    assert back.status_code == 302
    assert back.headers["Location"] == "http://localhost:5000/out"
