"""An in-memory store and a stub backend that keep the promises of app/checkout/ports.py,
so the rules can be tested in-process, in milliseconds.

They are deliberately small: the real ones are tested against real Redis and the real
sandbox (tests/integration).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from app.checkout import Basket
from app.checkout.errors import (
    InvalidRequest,
    PromoInvalid,
    SubscriptionLocked,
    SubscriptionNotFound,
    UpstreamError,
)
from app.checkout.ports import QuoteNoLongerHolds
from app.checkout.values import (
    Money,
    Offer,
    Order,
    PendingChange,
    Promotion,
    Quote,
    Subscription,
)

GBP = "GBP"
NEXT_BILLING = "2027-01-01"


def money(amount: str) -> Money:
    return Money(Decimal(amount), GBP)


def offer(offer_id: str, amount: str) -> Offer:
    return Offer(offer_id, offer_id.removeprefix("OFFER-").title(), money(amount))


class MemoryStore:
    """`BasketStore` in a dict: compare-and-set on the version, as the Redis script does."""

    def __init__(self) -> None:
        self.baskets: dict[str, Basket] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def get(self, basket_id: str) -> Basket | None:
        return self.baskets.get(basket_id)

    def save(self, basket: Basket) -> Basket | None:
        with self._lock:
            stored = self.baskets.get(basket.basket_id)
            if (stored.version if stored else 0) != basket.version:
                return None
            now = time.time()
            written = replace(
                basket, version=basket.version + 1, updated_at=now, expires_at=now + 1800
            )
            self.baskets[basket.basket_id] = written
            self.writes += 1
            return written


@dataclass
class StubBackend:
    """`SubscriptionBackend` over a few subscriptions: prices add up, orders are kept by
    idempotency key, and the next answers can be made to fail."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)  # offer id → price now
    orders: dict[str, Order] = field(default_factory=dict)  # idempotency key → order
    submissions: int = 0
    lose_next_answer: bool = False  # the order is made, its answer never arrives
    code_expired: bool = False  # HALFKIDS is refused from now on, as expired
    _quotes: dict[str, Decimal] = field(default_factory=dict)  # quote id → new price

    def add(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.id] = subscription
        for each in (subscription.plan, *subscription.active_offers, *subscription.eligible_offers):
            self.prices.setdefault(each.id, each.price.amount)

    def get_subscription(self, subscription_id: str) -> Subscription:
        found = self.subscriptions.get(subscription_id)
        if found is None:
            raise SubscriptionNotFound()
        return found

    def _unlocked(self, subscription_id: str) -> Subscription:
        """Changes and orders are refused while a change is pending, as the backend does."""
        found = self.get_subscription(subscription_id)
        if found.pending_change is not None:
            raise SubscriptionLocked(found.pending_change)
        return found

    def _price(
        self, subscription: Subscription, add: Sequence[str], remove: Sequence[str]
    ) -> Decimal:
        kept = [o.id for o in subscription.active_offers if o.id not in remove]
        return sum((self.prices[i] for i in (subscription.plan.id, *kept, *add)), Decimal(0))

    def promotion(self, subscription_id: str, code: str) -> Promotion:
        self.get_subscription(subscription_id)
        self._check(code)
        return Promotion("HALFKIDS", "Kids at half price", "OFFER-KIDS")

    def _check(self, code: str) -> None:
        if code.upper() != "HALFKIDS":
            raise PromoInvalid("That code is not one we know.", why="unknown")
        if self.code_expired:
            raise PromoInvalid("That code has expired.", why="expired")

    def quote(
        self,
        subscription_id: str,
        add: Sequence[str],
        remove: Sequence[str],
        promo_code: str | None = None,
    ) -> Quote:
        subscription = self._unlocked(subscription_id)
        eligible = {o.id for o in subscription.eligible_offers}
        if any(i not in eligible for i in add):
            raise InvalidRequest("offer not eligible")
        new = self._price(subscription, add, remove)
        if promo_code is not None:
            self._check(promo_code)
            if "OFFER-KIDS" not in add:
                raise PromoInvalid("HALFKIDS is only with Kids.", why="not_applicable")
            new -= self.prices["OFFER-KIDS"] / 2
        quote_id = f"Q-{len(self._quotes) + 1}"
        self._quotes[quote_id] = new
        current = self._price(subscription, [], [])
        return Quote(
            quote_id,
            time.time() + 600,
            money(str(current)),
            money(str(new)),
            NEXT_BILLING,
            promo_code=promo_code,
        )

    def submit_order(self, order: dict[str, Any], idempotency_key: str) -> Order:
        self.submissions += 1
        if idempotency_key in self.orders:
            return self.orders[idempotency_key]
        subscription = self._unlocked(order["subscriptionId"])
        now = self._price(subscription, order["addOffers"], order["removeOffers"])
        code = order.get("promoCode")
        if code and not self.code_expired:
            now -= self.prices["OFFER-KIDS"] / 2
        else:
            code = None  # an expired code is not applied: the fresh quote says so
        if f"{now:.2f}" != order["expectedPrice"]["amount"]:
            fresh = self.quote(subscription.id, order["addOffers"], order["removeOffers"], code)
            raise QuoteNoLongerHolds(fresh)
        made = Order(f"ORD-{len(self.orders) + 1}", NEXT_BILLING, money(str(now)))
        self.orders[idempotency_key] = made
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise UpstreamError("the answer was lost")
        return made


def subscription(
    subscription_id: str = "SUB-1",
    customer: str = "alice",
    *,
    pending: PendingChange | None = None,
) -> Subscription:
    plan, hd = offer("PLAN-STANDARD", "20.00"), offer("OFFER-HD", "4.00")
    return Subscription(
        id=subscription_id,
        customer_id=customer,
        plan=plan,
        active_offers=(hd,),
        eligible_offers=(offer("OFFER-SPORTS", "8.00"), offer("OFFER-KIDS", "3.00")),
        recurring_price=money("24.00"),
        next_billing_date=NEXT_BILLING,
        pending_change=pending,
    )
