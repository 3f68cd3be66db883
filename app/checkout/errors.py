"""The checkout's refusals: plain exceptions, each with a stable `code`.

Raised by the rules and by the adapters that speak for the outside (the backend, the bot
check, the token check, the rate limits). They say what went wrong in the checkout's own
words; how each is answered (status, wording, page) is decided once, in
app/web/problems.py. `reason` says specifically what was wrong; `extra` carries what a
partner needs to act on it, as JSON-ready values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .basket import Basket
    from .values import PendingChange


class CheckoutError(Exception):
    code = "internal_error"

    def __init__(self, reason: str | None = None, **extra: Any) -> None:
        super().__init__(reason or self.code)
        self.reason = reason
        self.extra = extra


class InvalidRequest(CheckoutError):
    code = "invalid_request"


class MultipleAddOffers(InvalidRequest):
    code = "multiple_add_offers"


class NothingToConfirm(InvalidRequest):
    """A confirmation of a basket without changes: the pages send the customer back to it."""


class RecaptchaFailed(InvalidRequest):
    code = "recaptcha_failed"


class PromoInvalid(InvalidRequest):
    """A promotion code the backend refused: `why` is one of `WHYS`, `not_applicable`
    meaning to this subscription, or to these changes; `reason` says it in words, in the
    customer's language where the backend has it."""

    code = "promo_invalid"
    UNKNOWN, EXPIRED, NOT_APPLICABLE = "unknown", "expired", "not_applicable"
    WHYS = (UNKNOWN, EXPIRED, NOT_APPLICABLE)

    def __init__(self, reason: str, *, why: str) -> None:
        why = why if why in self.WHYS else self.UNKNOWN
        super().__init__(reason, promoReason=why)
        self.why = why


class Unauthorized(CheckoutError):
    code = "unauthorized"


class TooManyRequests(CheckoutError):
    code = "too_many_requests"

    def __init__(self, reason: str | None = None, *, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class BasketNotFound(CheckoutError):
    code = "basket_not_found"


class SubscriptionNotFound(CheckoutError):
    code = "subscription_not_found"


class SubscriptionLocked(CheckoutError):
    """The subscription has a pending change; `pending` says what and when, if known."""

    code = "subscription_locked"

    def __init__(self, pending: PendingChange | None) -> None:
        super().__init__(pendingChange=pending.to_json() if pending else None)
        self.pending = pending


class BasketCompleted(CheckoutError):
    code = "basket_completed"


class PriceChanged(CheckoutError):
    """The backend's price for the change moved since the customer saw it: nothing was
    ordered, and the basket now holds the new quote for them to see and confirm."""

    code = "price_changed"

    def __init__(self, *, before: Basket, after: Basket) -> None:
        super().__init__(previousTotals=before.totals(), totals=after.totals())
        self.before = before
        self.after = after  # the basket as it is now, holding the new quote


class BasketChanged(CheckoutError):
    """The version a change was for (the API's If-Match, a page's form) is not current;
    `current` is the basket as it is now."""

    code = "basket_changed"

    def __init__(self, current: Basket) -> None:
        super().__init__()
        self.current = current


class CheckoutInProgress(CheckoutError):
    code = "checkout_in_progress"


class UpstreamError(CheckoutError):
    """The subscription backend, reCAPTCHA or the identity provider failed us."""

    code = "upstream_error"


class ServiceUnavailable(CheckoutError):
    """Our own state (Redis) is briefly out of reach: nothing was changed."""

    code = "service_unavailable"


class OrderNotRecorded(ServiceUnavailable):
    """The backend accepted the order, then the basket could not be marked completed
    (Redis failing over): saying "nothing was changed" would be untrue."""

    code = "order_not_recorded"
