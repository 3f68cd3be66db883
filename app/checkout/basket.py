"""The basket: one customer's pending change to one subscription, as the checkout holds it.

Its fields are the stored form too (app/adapters/baskets.py writes them as they are); the
partners' view of it is app/api/schemas.py's `BasketView`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from .values import Money, Offer, Order, PendingChange, Promotion, QuoteLine

OPEN, COMPLETING, COMPLETED = "open", "completing", "completed"


def new_basket_id() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Basket:
    basket_id: str
    customer_id: str
    subscription_id: str
    plan: Offer
    active_offers: tuple[Offer, ...]
    eligible_offers: tuple[Offer, ...]
    current_price: Money
    new_price: Money
    effective_date: str
    snapshot_at: float
    created_at: float
    updated_at: float = 0.0
    expires_at: float = 0.0
    version: int = 0
    status: str = OPEN
    add_offers: tuple[Offer, ...] = ()
    remove_offers: tuple[Offer, ...] = ()
    suggested_offer: str | None = None
    referrer: str | None = None
    tracking: dict[str, str] = field(default_factory=dict)
    pending_change: PendingChange | None = None
    completing_since: float | None = None
    order: Order | None = None
    # The backend's quote for the pending changes: the order names it, with its price.
    quote_id: str | None = None
    quote_expires_at: float | None = None
    # A change has been saved once: its first change is announced once (`FirstChange`).
    changed: bool = False
    # The nonce of the completion that claimed it (COMPLETING): tells that completion its
    # own claim from another's when redis-py had to send the claim again.
    claim: str | None = None
    # The campaign's deal the customer brought or entered, if the backend accepted it; and
    # whether the price includes it (a code for an offer waits until the offer is chosen).
    promotion: Promotion | None = None
    promo_applied: bool = False
    # The quote's lines (each offer added or removed, each discount), and what is due
    # today for what starts now; none without changes.
    lines: tuple[QuoteLine, ...] = ()
    due_today: Money | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def promo_code(self) -> str | None:
        return self.promotion.code if self.promotion else None

    @property
    def applied_code(self) -> str | None:
        """The code the price includes, the one the order carries."""
        return self.promo_code if self.promo_applied else None

    @property
    def has_changes(self) -> bool:
        return bool(self.add_offers or self.remove_offers)

    @property
    def pays_today(self) -> bool:
        """Whether some of the change starts now, with something due today for it."""
        return self.due_today is not None and self.due_today.amount > 0

    def totals(self) -> dict[str, Any]:
        """The price, as JSON-ready data: now, after the change and from when, line by
        line, and what is due today."""
        return {
            "current": self.current_price.to_json(),
            "new": self.new_price.to_json(),
            "effectiveDate": self.effective_date,
            "lines": [line.to_json() for line in self.lines],
            "dueToday": self.due_today.to_json() if self.due_today else None,
        }

    def offer(self, offer_id: str) -> Offer | None:
        for offer in (*self.active_offers, *self.eligible_offers):
            if offer.id == offer_id:
                return offer
        return None

    @property
    def tag(self) -> str:
        """This version of this basket, as an opaque tag (the API's ETag): unique to the
        basket, since all baskets share one URL."""
        digest = hashlib.sha256(self.basket_id.encode()).hexdigest()[:12]
        return f"{digest}-{self.version}"
