"""The change rules of the subscription backend: quotes, orders, idempotency, the lock.

Every public method of :class:`SubscriptionStore` takes the store's lock, so concurrent
requests (the server is threaded) see each order created exactly once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.data import (
    OFFERS,
    PendingChange,
    Subscription,
    demo_subscriptions,
    first_of_next_month,
    money,
)


class BackendError(Exception):
    """A refusal the backend answers with ``{"error": code, ...}`` and an HTTP status."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Change:
    """A validated change request: at most one offer added, any active ones removed."""

    add: tuple[str, ...]
    remove: tuple[str, ...]

    @classmethod
    def parse(cls, body: Any) -> Change:
        if not isinstance(body, dict):
            raise BackendError(400, "invalid_request", "The body must be a JSON object.")
        lists = []
        for name in ("addOffers", "removeOffers"):
            ids = body.get(name, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise BackendError(400, "invalid_request", f"{name} must be a list of ids.")
            if len(set(ids)) != len(ids):
                raise BackendError(400, "invalid_request", f"{name} repeats an offer id.")
            lists.append(tuple(ids))
        add, remove = lists
        if len(add) > 1:
            raise BackendError(
                400, "invalid_request", "At most one offer can be added.", offerId=add[1]
            )
        if both := sorted(set(add) & set(remove)):
            raise BackendError(
                400, "invalid_request", "An offer cannot be added and removed.", offerId=both[0]
            )
        return cls(add, remove)

    def check_against(self, subscription: Subscription) -> None:
        """Refuse offers that are unknown, not eligible to add or not active to remove."""
        for offer_id in self.add + self.remove:
            if offer_id not in OFFERS:
                raise BackendError(400, "unknown_offer", "No such offer.", offerId=offer_id)
        for offer_id in self.add:
            if offer_id not in subscription.eligible():
                raise BackendError(
                    400, "offer_not_eligible", "The offer cannot be added.", offerId=offer_id
                )
        for offer_id in self.remove:
            if offer_id not in subscription.active:
                raise BackendError(
                    400, "offer_not_active", "The offer is not active.", offerId=offer_id
                )

    def new_offers(self, subscription: Subscription) -> list[str]:
        kept = [o for o in subscription.active if o not in self.remove]
        return kept + list(self.add)

    def describe(self) -> str:
        parts = [f"Add {OFFERS[o].name}" for o in self.add]
        parts += [f"remove {OFFERS[o].name}" for o in self.remove]
        text = ", ".join(parts)
        return text[:1].upper() + text[1:]

    def quote(self, subscription: Subscription) -> dict[str, Any]:
        return {
            "subscriptionId": subscription.id,
            "currentPrice": money(subscription.price_with(subscription.active)),
            "newPrice": money(subscription.price_with(self.new_offers(subscription))),
            "effectiveDate": first_of_next_month().isoformat(),
            "addOffers": [OFFERS[o].to_json() for o in self.add],
            "removeOffers": [OFFERS[o].to_json() for o in self.remove],
        }


@dataclass(frozen=True)
class OrderRequest:
    """The body of ``POST /orders`` after shape checks."""

    subscription_id: str
    customer_id: str
    basket_id: str | None
    change: Change
    referrer: str | None
    tracking: dict[str, str]

    @classmethod
    def parse(cls, body: Any) -> OrderRequest:
        change = Change.parse(body)  # also ensures body is a dict
        for name in ("subscriptionId", "customerId"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise BackendError(400, "invalid_request", f"{name} is required.")
        for name in ("basketId", "referrer"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise BackendError(400, "invalid_request", f"{name} must be a string or null.")
        tracking = body.get("tracking") or {}
        if not isinstance(tracking, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tracking.items()
        ):
            raise BackendError(400, "invalid_request", "tracking must map strings to strings.")
        return cls(
            body["subscriptionId"],
            body["customerId"],
            body.get("basketId"),
            change,
            body.get("referrer"),
            dict(tracking),
        )


def fingerprint(body: Any) -> str:
    """A digest of a request body, to tell a retry from a reuse of an idempotency key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Order:
    order_id: str
    request: OrderRequest
    idempotency_key: str
    body_fingerprint: str
    response: dict[str, Any]
    submissions: int = 1

    def record(self) -> dict[str, Any]:
        """The full record, as ``/_sandbox/orders`` shows it to tests."""
        return {
            **self.response,
            "customerId": self.request.customer_id,
            "basketId": self.request.basket_id,
            "referrer": self.request.referrer,
            "tracking": self.request.tracking,
            "idempotencyKey": self.idempotency_key,
            "submissions": self.submissions,
        }


@dataclass
class SubscriptionStore:
    """Subscriptions and orders, guarded by one lock."""

    subscriptions: dict[str, Subscription] = field(default_factory=demo_subscriptions)
    orders: list[Order] = field(default_factory=list)
    by_key: dict[str, Order] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.subscriptions = demo_subscriptions()
            self.orders.clear()
            self.by_key.clear()

    def _find(self, subscription_id: str) -> Subscription:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise BackendError(404, "subscription_not_found", "Subscription not found.")
        return subscription

    @staticmethod
    def _ensure_unlocked(subscription: Subscription) -> None:
        if subscription.pending_change is not None:
            raise BackendError(
                409,
                "pending_change",
                "Subscription has pending change.",
                pendingChange=subscription.pending_change.to_json(),
            )

    def get(self, subscription_id: str) -> dict[str, Any]:
        with self.lock:
            return self._find(subscription_id).to_json()

    def quote(self, subscription_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            subscription = self._find(subscription_id)
            change = Change.parse(body)
            self._ensure_unlocked(subscription)
            change.check_against(subscription)
            return change.quote(subscription)

    def place_order(self, idempotency_key: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Create the order once per idempotency key; returns (order, created)."""
        digest = fingerprint(body)
        with self.lock:
            previous = self.by_key.get(idempotency_key)
            if previous is not None:
                if previous.body_fingerprint != digest:
                    raise BackendError(
                        422,
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different body.",
                    )
                previous.submissions += 1
                return copy.deepcopy(previous.response), False
            request = OrderRequest.parse(body)
            subscription = self._find(request.subscription_id)
            if subscription.customer_id != request.customer_id:
                raise BackendError(404, "subscription_not_found", "Subscription not found.")
            self._ensure_unlocked(subscription)
            change = request.change
            change.check_against(subscription)
            if not change.add and not change.remove:
                raise BackendError(400, "invalid_request", "Add or remove at least one offer.")
            order_id = f"ORD-{secrets.token_hex(4).upper()}"
            quote = change.quote(subscription)
            response = {
                "orderId": order_id,
                "subscriptionId": subscription.id,
                "status": "accepted",
                "effectiveDate": quote["effectiveDate"],
                "addOffers": quote["addOffers"],
                "removeOffers": quote["removeOffers"],
                "newPrice": quote["newPrice"],
                "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            if subscription.locks_on_order:
                subscription.pending_change = PendingChange(
                    order_id,
                    change.describe(),
                    first_of_next_month(),
                    subscription.price_with(change.new_offers(subscription)),
                )
            order = Order(order_id, request, idempotency_key, digest, response)
            self.orders.append(order)
            self.by_key[idempotency_key] = order
            return copy.deepcopy(response), True

    def unlock(self, subscription_id: str) -> None:
        """Drop a pending change but keep its order, as if a billing cycle had passed."""
        with self.lock:
            self._find(subscription_id).pending_change = None

    def order_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(order.record()) for order in self.orders]
