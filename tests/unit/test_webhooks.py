"""Partner events: what they say, how they are signed, where they may go. No network."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import create_app
from app.adapters.webhooks import (
    ABANDONED_TYPE,
    COMPLETED_TYPE,
    RefusedEndpoint,
    Sender,
    abandoned,
    completed,
    refuse_private,
)
from app.checkout import Basket
from app.checkout.values import Money, Offer, Order
from app.config import DEV_WEBHOOK_SECRET, ConfigError
from sandbox.settings import DEV_WEBHOOK_SECRET as SANDBOX_WEBHOOK_SECRET

OTHER_SECRET = "whsec_" + "b3RoZXItc2VjcmV0LWZvci1yb3RhdGlvbg=="
GBP = "GBP"


def offer(offer_id: str, amount: str) -> Offer:
    return Offer(offer_id, offer_id.title(), Money(Decimal(amount), GBP))


def basket(**changes: object) -> Basket:
    now = time.time()
    made = Basket(
        basket_id="b" * 43,
        customer_id="alice",
        subscription_id="SUB-1001",
        plan=offer("PLAN-STANDARD", "20.00"),
        active_offers=(offer("OFFER-HD", "4.00"),),
        eligible_offers=(offer("OFFER-SPORTS", "8.00"),),
        current_price=Money(Decimal("24.00"), GBP),
        new_price=Money(Decimal("28.00"), GBP),
        effective_date="2027-01-01",
        snapshot_at=now,
        created_at=now,
        updated_at=now,
        expires_at=now + 1800,
        add_offers=(offer("OFFER-SPORTS", "8.00"),),
        tracking={"utm_campaign": "autumn"},
        referrer="https://partner.example/",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


ORDER = Order("ORD-1", "2027-01-01", Money(Decimal("28.00"), GBP))


def test_a_completed_basket_is_one_event_with_what_the_partner_needs():
    done = basket(status="completed", order=ORDER)
    event = completed(done)
    assert event is not None and event.type == COMPLETED_TYPE
    body = json.loads(event.body)
    assert set(body) == {"type", "timestamp", "data"} and body["type"] == COMPLETED_TYPE
    data = body["data"]
    assert data["order"] == {
        "orderId": "ORD-1",
        "effectiveDate": "2027-01-01",
        "newPrice": {"amount": "28.00", "currency": "GBP"},
    }
    assert [o["id"] for o in data["addOffers"]] == ["OFFER-SPORTS"]
    assert data["totals"]["new"] == {"amount": "28.00", "currency": "GBP"}
    assert (data["customer"], data["referrer"], data["tracking"]) == (
        "alice",
        "https://partner.example/",
        {"utm_campaign": "autumn"},
    )
    again = completed(replace(done, version=done.version + 5, updated_at=time.time() + 60))
    assert again is not None and again.id == event.id  # one id, however often written


def test_only_an_open_basket_with_a_change_can_be_abandoned_and_never_a_completed_one():
    assert completed(basket()) is None
    assert abandoned(basket(add_offers=())) is None
    assert abandoned(basket(status="completing")) is None
    assert abandoned(basket(status="completed", order=ORDER)) is None
    event = abandoned(basket())
    assert event is not None and event.type == ABANDONED_TYPE
    data = json.loads(event.body)["data"]
    assert data["expiredAt"].endswith("Z") and "order" not in data


def sender(**options: object) -> Sender:
    settings: dict[str, object] = {"timeout": 1.0, "allow_private": True, **options}
    return Sender("http://127.0.0.1:9/partner", DEV_WEBHOOK_SECRET, **settings)  # type: ignore[arg-type]


def headers(event_id: str, at: datetime, signature: str) -> dict[str, str]:
    stamp = str(int(at.timestamp()))
    return {"webhook-id": event_id, "webhook-timestamp": stamp, "webhook-signature": signature}


def test_the_signature_verifies_with_the_reference_library_and_tampering_fails():
    event = completed(basket(status="completed", order=ORDER))
    assert event is not None
    now = datetime.now(UTC)
    signature = sender().signature(event.id, now, event.body)
    assert signature.startswith("v1,") and " " not in signature
    receiver = Webhook(SANDBOX_WEBHOOK_SECRET)
    assert receiver.verify(event.body, headers(event.id, now, signature))["data"]["order"]
    for tampered_body, tampered_id in (
        (event.body.replace("28.00", "18.00"), event.id),
        (event.body, "msg_other"),
    ):
        with pytest.raises(WebhookVerificationError):
            receiver.verify(tampered_body, headers(tampered_id, now, signature))


def test_during_a_rotation_both_signatures_are_sent_and_each_verifies():
    rotating = Sender(
        "http://127.0.0.1:9/partner",
        OTHER_SECRET,
        DEV_WEBHOOK_SECRET,
        timeout=1.0,
        allow_private=True,
    )
    now, body = datetime.now(UTC), '{"type":"checkout.completed"}'
    signature = rotating.signature("msg_1", now, body)
    assert len(signature.split(" ")) == 2
    for secret in (OTHER_SECRET, DEV_WEBHOOK_SECRET):
        Webhook(secret).verify(body, headers("msg_1", now, signature))


def test_the_checkout_and_the_sandbox_share_the_development_secret():
    assert DEV_WEBHOOK_SECRET == SANDBOX_WEBHOOK_SECRET


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.2/hook",
        "https://169.254.169.254/latest/meta-data",  # a cloud's instance metadata
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
    ],
)
def test_private_and_loopback_endpoints_are_refused(url: str):
    with pytest.raises(RefusedEndpoint):
        refuse_private(url)


def test_a_public_endpoint_is_not_refused():
    refuse_private("https://93.184.216.34/hook")  # an address literal: no DNS needed


def test_an_endpoint_refused_is_never_called():
    attempt = sender(allow_private=False).send(completed(basket(status="completed", order=ORDER)))  # type: ignore[arg-type]
    assert (attempt.delivered, attempt.status) == (False, None)
    assert "not a public address" in attempt.excerpt


PRODUCTION = {
    "ENV": "production",
    "TRUSTED_HOSTS": ["checkout.partner.example"],
    "SECRET_KEY": "p" * 40,
    "SUBSCRIPTION_API_URL": "https://backend.example/v1",
    "SUBSCRIPTION_API_TOKEN": "real-backend-token",
    "OAUTH_ISSUER": "https://id.example",
    "OAUTH_CLIENT_SECRET": "real-client-secret",
    "RECAPTCHA_SECRET_KEY": "real-recaptcha-secret",
    "RECAPTCHA_VERIFY_URL": "https://www.google.com/recaptcha/api/siteverify",
    "RECAPTCHA_SCRIPT_URL": "https://www.google.com/recaptcha/api.js",
    "METRICS_TOKEN": "m" * 20,
    "WEBHOOK_URL": "https://partner.example/hooks",
    "WEBHOOK_SECRET": OTHER_SECRET,
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"WEBHOOK_URL": "http://partner.example/hooks"}, "CHECKOUT_WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https://127.0.0.1/hooks"}, "CHECKOUT_WEBHOOK_URL"),
        ({"WEBHOOK_SECRET": DEV_WEBHOOK_SECRET}, "CHECKOUT_WEBHOOK_SECRET"),
        ({"WEBHOOK_SECRET": "not-a-whsec"}, "CHECKOUT_WEBHOOK_SECRET"),
        ({"WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "CHECKOUT_WEBHOOK_RETRY_SCHEDULE"),
    ],
)
def test_production_refuses_an_unsafe_partner_endpoint_or_secret(change, named):
    with pytest.raises(ConfigError, match=named):
        create_app({**PRODUCTION, **change})


def test_production_starts_with_events_off_and_refuses_private_addresses_by_default():
    app = create_app({**PRODUCTION, "WEBHOOK_URL": "", "WEBHOOK_SECRET": DEV_WEBHOOK_SECRET})
    assert app.config["WEBHOOK_ALLOW_PRIVATE"] is False
    assert create_app().config["WEBHOOK_ALLOW_PRIVATE"] is True  # development: the sandbox
    schedule = create_app({"WEBHOOK_RETRY_SCHEDULE": "0.5, 2"}).config["WEBHOOK_RETRY_SCHEDULE"]
    assert schedule == [0.5, 2.0]
