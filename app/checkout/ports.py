"""What the rules need from the outside, as interfaces the adapters implement.

`Checkout` is given a store and a backend; it never knows they are Redis and HTTP. The
tests give it an in-memory store and a stub backend that keep the same promises
(tests/unit/checkout/fakes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .basket import Basket
from .errors import ServiceUnavailable
from .values import Order, Promotion, Quote, Subscription


class StoreUnavailable(ServiceUnavailable):
    """The store could not be reached: whether a write landed is unknown."""


class BasketStore(Protocol):
    def get(self, basket_id: str) -> Basket | None:
        """The basket as last saved; None once it expired or never was."""
        ...

    def save(self, basket: Basket) -> Basket | None:
        """Write `basket` if nobody saved it since it was read (its `version` is still the
        stored one; 0: it must not exist yet). The saved basket (version + 1, `updated_at`
        and `expires_at` set), or None when somebody else saved first. Raises
        `StoreUnavailable`."""
        ...


class QuoteNoLongerHolds(Exception):
    """The backend refused an order because its quote no longer holds: it expired
    (`fresh` is None), or the price moved (`fresh` is the backend's new quote)."""

    def __init__(self, fresh: Quote | None) -> None:
        super().__init__("price changed" if fresh else "quote expired")
        self.fresh = fresh


class SubscriptionBackend(Protocol):
    """The partner's subscription system. Each call raises `SubscriptionNotFound`,
    `SubscriptionLocked` or `InvalidRequest` when the backend refuses, `UpstreamError`
    when it fails."""

    def get_subscription(self, subscription_id: str) -> Subscription: ...

    def promotion(self, subscription_id: str, code: str) -> Promotion:
        """The deal a code stands for, if this subscription may have it; raises
        `PromoInvalid` otherwise."""
        ...

    def quote(
        self,
        subscription_id: str,
        add: Sequence[str],
        remove: Sequence[str],
        promo_code: str | None = None,
    ) -> Quote:
        """The price of the change, line by line, with the promotion applied (or
        `PromoInvalid`), to be named by the order."""
        ...

    def submit_order(self, order: dict[str, Any], idempotency_key: str) -> Order:
        """Order the change; the same key always answers the same order. Raises
        `QuoteNoLongerHolds` when the named quote expired or its price moved."""
        ...
