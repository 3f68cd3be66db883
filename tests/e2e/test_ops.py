"""The operators' funnel page in a real browser: signed in as the sandbox's operator."""

from __future__ import annotations

import uuid

import requests
from playwright.sync_api import Page, expect

from tests.conftest import Sandbox, recaptcha_token
from tests.e2e.conftest import check_page, heading, sign_in


def test_an_operator_sees_each_campaigns_funnel_readable_on_a_phone(
    page: Page, base_url: str, sandbox: Sandbox
) -> None:
    campaign = f"winter-{uuid.uuid4().hex[:6]}"
    created = requests.post(  # a partner's customer starts a checkout from the campaign
        f"{base_url}/api/v1/checkout/basket",
        json={"subscriptionId": "SUB-1001", "tracking": {"utm_campaign": campaign}},
        headers={
            "Authorization": f"Bearer {sandbox.token('alice')}",
            "X-Recaptcha-Token": recaptcha_token(),
        },
        timeout=10,
    )
    assert created.status_code == 201

    page.goto("/ops/funnel")
    sign_in(page, "olivia")
    heading(page).to_have_text("Checkout funnel")
    section = page.get_by_role("region", name=campaign)
    expect(section.get_by_role("row", name="Checkout started")).to_contain_text("1")
    expect(page.get_by_role("img", name="Checkout funnel, all campaigns")).to_be_visible()
    expect(page.get_by_role("img", name="Confirmations per day")).to_be_visible()
    check_page(page, "ops-funnel")


def test_a_customer_is_told_the_page_is_not_for_them(page: Page) -> None:
    response = page.goto("/ops/funnel")
    sign_in(page, "alice")
    heading(page).to_have_text("You cannot see this page")
    assert response is not None
    check_page(page, "error-forbidden")
