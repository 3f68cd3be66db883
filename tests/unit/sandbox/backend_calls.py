"""The checkout's calls to the sandbox's backend API, in process: the service token, the
subscription read, quotes and orders, in either language."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

BACKEND = {"Authorization": "Bearer sandbox-backend-token"}
ALICE_CHANGE = {"addOffers": ["OFFER-SPORTS"], "removeOffers": ["OFFER-HD"]}


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def backend_headers(language: str | None = None) -> dict[str, str]:
    """The service token, and ``Accept-Language`` if given."""
    return BACKEND if language is None else {**BACKEND, "Accept-Language": language}


def read_subscription(
    client: FlaskClient, subscription_id: str, language: str | None = None
) -> Any:
    """The subscription read, which must answer 200."""
    response = client.get(
        f"/backend/v1/subscriptions/{subscription_id}", headers=backend_headers(language)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def get_subscription(
    client: FlaskClient, subscription_id: str, language: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = read_subscription(client, subscription_id, language).get_json()
    return body


def quote(
    client: FlaskClient, body: Any, subscription_id: str = "SUB-1001", language: str | None = None
) -> Any:
    return client.post(
        f"/backend/v1/subscriptions/{subscription_id}/quotes",
        json=body,
        headers=backend_headers(language),
    )


def alice_order(issued: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Alice's order of ``ALICE_CHANGE`` under the quote ``issued``, agreeing to its new
    price; ``fields`` added or overriding."""
    return {
        "subscriptionId": "SUB-1001",
        "customerId": "alice",
        **ALICE_CHANGE,
        "quoteId": issued["quoteId"],
        "expectedPrice": issued["newPrice"],
        **fields,
    }


def place_order(
    client: FlaskClient, body: Any, key: str = "key-1", language: str | None = None
) -> Any:
    headers = {**backend_headers(language), "Idempotency-Key": key}
    return client.post("/backend/v1/orders", json=body, headers=headers)
