"""The operators' funnel page in a real browser: signed in as the sandbox's operator."""

from __future__ import annotations

import uuid
from contextlib import suppress
from typing import Any

import requests
from playwright.sync_api import Page, expect

from sandbox.stack import deliverer_service, wait_for
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


def test_an_operator_sees_the_failed_partner_events_and_sends_one_again(
    page: Page, base_url: str, sandbox: Sandbox, app_env: dict[str, str]
) -> None:
    """A deliverer beside the app, a receiver that fails every attempt: the event is
    kept as failed, listed for the operator, and sent again at the press of a button."""
    fast = {
        **app_env,
        "CHECKOUT_WEBHOOK_RETRY_SCHEDULE": "0.1,0.1",
        "CHECKOUT_WEBHOOK_LEASE_SECONDS": "2",
    }
    deliverer = deliverer_service(fast).start(quiet=True)
    try:
        # What earlier tests left to deliver goes first: the faults below are for this one.
        # Only as long as a busy deliverer might take: the test carries on regardless.
        with suppress(TimeoutError):
            wait_for(
                lambda: (
                    "checkout_webhook_queue_depth 0.0"
                    in requests.get(f"{base_url}/metrics", timeout=5).text
                ),
                "the events earlier tests left to be delivered",
                within=20,
                every=0.2,
            )
        sandbox.fault("error", count=3, path="/partner/", status=503)
        headers = {"Authorization": f"Bearer {sandbox.token('alice')}"}
        session = requests.Session()
        basket = "/api/v1/checkout/basket"
        for body, status in (
            ({"subscriptionId": "SUB-1001"}, 201),
            ({"addOffers": ["OFFER-KIDS"], "complete": True}, 200),
        ):
            send = session.post if "subscriptionId" in body else session.put
            answer = send(
                base_url + basket,
                json=body,
                headers={**headers, "X-Recaptcha-Token": recaptcha_token()},
                timeout=10,
            )
            assert answer.status_code == status, answer.text
        order = answer.json()["basket"]["order"]["orderId"]

        page.goto("/ops/events")
        sign_in(page, "olivia")
        heading(page).to_have_text("Partner events")
        row = (
            page.get_by_role("row")
            .filter(has_text="checkout.completed")
            .filter(has=page.get_by_role("button", name="Send again"))
        )

        def listed() -> int:
            """Rows of the failed event; while there is none, the page afresh."""
            found = row.count()
            if not found:
                page.reload()
            return found

        # The three attempts take a moment.
        wait_for(listed, "the failed event on the page", within=20, every=0.2)
        expect(row.first).to_contain_text("503")
        check_page(page, "ops-events")

        page.set_viewport_size({"width": 1280, "height": 900})
        row.first.get_by_role("button", name="Send again").click()
        expect(page.get_by_role("status")).to_contain_text("will be sent again now")

        def accepted() -> list[dict[str, Any]]:
            deliveries = requests.get(f"{sandbox.url}/_sandbox/webhooks", timeout=5).json()
            return [
                d
                for d in deliveries["deliveries"]
                if d["status"] == 204 and d["body"]["data"]["order"]["orderId"] == order
            ]

        delivered = wait_for(accepted, "the event sent again to be accepted", within=15, every=0.2)
        assert delivered[0]["verified"]
        page.reload()
        expect(page.get_by_text("No event has failed.")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="Delivered").first).to_be_visible()
    finally:
        deliverer.stop()
