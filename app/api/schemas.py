"""What partners send and get back, as pydantic models: the one source of both the API's
validation and its description (app/api/openapi.py turns these into its schemas).

Limits come from where they are decided: an id's pattern from the checkout's values, one
offer to add from its rules, the tracking bounds from its tracking capture.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as ValidationError

from ..checkout import COMPLETED, MAX_ADD_OFFERS, Basket
from ..checkout.errors import PromoInvalid
from ..checkout.tracking import MAX_KEYS, MAX_REFERRER, MAX_VALUE
from ..checkout.values import ID_PATTERN, PROMO_PATTERN

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
PromoCode = Annotated[str, StringConstraints(pattern=PROMO_PATTERN)]


def _distinct(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError("the ids are not distinct")
    return ids


class _Request(BaseModel):
    # Strict: `"complete": "yes"` is refused, not read as true. Unknown fields are ignored.
    model_config = ConfigDict(strict=True, extra="ignore")


class CreateBasket(_Request):
    subscriptionId: Id = Field(examples=["SUB-1001"])
    referrer: str | None = Field(
        None,
        max_length=MAX_REFERRER,
        description="An absolute http(s) URL; wins over the Referer header",
        json_schema_extra={"format": "uri"},
    )
    tracking: dict[str, Annotated[str, Field(max_length=MAX_VALUE * 4)]] | None = Field(
        None,
        max_length=MAX_KEYS * 2,
        description=(
            "Optional tracking data for analytics and reporting: utm_* and click ids are kept "
            f"(at most {MAX_KEYS} keys, values cut to {MAX_VALUE} characters); other keys "
            "are dropped"
        ),
    )
    promoCode: PromoCode | None = Field(
        None,
        description="A campaign's promotion code (SPORTSHALF); a code the backend refuses "
        "is 400 promo_invalid, and no basket is made",
    )


class UpdateBasket(_Request):
    addOffers: list[Id] = Field(
        default_factory=list,
        max_length=MAX_ADD_OFFERS,
        description=f"At most {MAX_ADD_OFFERS} offer id; replaces an earlier choice",
    )
    removeOffers: Annotated[list[Id], AfterValidator(_distinct)] = Field(
        default_factory=list,
        description="Offer ids to remove: at most CHECKOUT_MAX_REMOVE_OFFERS (the "
        "description served by the app says how many)",
        json_schema_extra={"uniqueItems": True},
    )
    complete: bool = Field(
        False,
        description="Submit the change to the subscription backend, exactly once whatever "
        "the retries",
    )
    promoCode: PromoCode | None = Field(
        None,
        description="A promotion code to apply; null removes the basket's; absent leaves "
        "it as it is. A code the backend refuses is 400 promo_invalid, nothing changed",
    )


# -- answers -------------------------------------------------------------------------------
# The models below describe the answers (the OpenAPI schemas are made from them); `answer`
# writes them as plain JSON-ready data, which costs a third of building the models. The
# tests hold the two together: every answer of the integration suite is validated against
# `BasketAnswer` (tests/integration/conftest.py), and schemathesis checks the description.


class MoneyView(BaseModel):
    amount: str = Field(pattern=r"^[0-9]+\.[0-9]{2}$", description="A decimal string")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")


class OfferView(BaseModel):
    id: str
    name: str
    description: str = ""
    price: MoneyView


class SignedMoney(BaseModel):
    amount: str = Field(
        pattern=r"^-?[0-9]+\.[0-9]{2}$", description="A decimal string; negative lowers the price"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")


class Line(BaseModel):
    """One line of the price: an offer added or removed, or a discount."""

    kind: Literal["add", "remove", "discount"]
    offerId: str | None
    description: str
    amount: SignedMoney = Field(description="A month; negative for removals and discounts")
    recurring: bool
    months: int | None = Field(description="For how many months; null: for as long as it lasts")
    startsOn: str = Field(json_schema_extra={"format": "date"})


class Totals(BaseModel):
    current: MoneyView
    new: MoneyView = Field(description="The monthly price from the next bill (effectiveDate)")
    effectiveDate: str = Field(json_schema_extra={"format": "date"})
    lines: list[Line] = Field(description="What makes the new price, line by line")
    dueToday: MoneyView | None = Field(
        description="Due now for what starts today (prorated to the next bill); null "
        "without changes"
    )


class PendingChangeView(BaseModel):
    description: str
    effectiveDate: str = Field(json_schema_extra={"format": "date"})


class Tracking(BaseModel):
    referrer: str | None
    params: dict[str, str]


class OrderView(BaseModel):
    orderId: str
    effectiveDate: str = Field(json_schema_extra={"format": "date"})
    newPrice: MoneyView


class QuoteView(BaseModel):
    """The backend's quote for the pending changes, which the confirmation orders at its
    price."""

    quoteId: str
    expiresAt: str = Field(json_schema_extra={"format": "date-time"})


class BasketView(BaseModel):
    """The basket as partners see it: money as decimal strings with a currency."""

    basketId: str
    subscriptionId: str
    promoCode: str | None = Field(
        description="The promotion code the basket holds, as the backend names it"
    )
    promoApplied: bool = Field(
        description="Whether the price includes the code: a code for one offer waits, "
        "held, until that offer is among the changes"
    )
    status: Literal["open", "completed"]
    checkoutCompleted: bool = Field(description="Whether the checkout is completed")
    currentPlan: OfferView
    activeOffers: list[OfferView]
    availableOffers: list[OfferView]
    suggestedOffer: str | None
    addOffers: list[OfferView]
    removeOffers: list[OfferView]
    totals: Totals
    pendingChange: PendingChangeView | None
    tracking: Tracking
    expiresAt: str = Field(json_schema_extra={"format": "date-time"})
    order: OrderView | None
    quote: QuoteView | None = Field(description="Null without changes")


class BasketAnswer(BaseModel):
    message: str
    basket: BasketView


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    requestId: str
    reason: str | None = Field(None, description="What was wrong, specifically")
    previousTotals: Totals | None = Field(
        None, description="price_changed: the price the caller saw, line by line"
    )
    totals: Totals | None = Field(
        None, description="price_changed: the price now, which the basket holds"
    )
    # Literal of the tuple, so the reasons are written once (mypy wants them spelled out).
    promoReason: Literal[PromoInvalid.WHYS] | None = Field(  # type: ignore[valid-type]
        None, description="promo_invalid: why the code was refused"
    )
    pendingChange: PendingChangeView | None = Field(
        None, description="subscription_locked: what is pending, and when it applies"
    )


def answer(basket: Basket, message: str) -> dict[str, Any]:
    """A `BasketAnswer`, as JSON-ready data."""
    completed = basket.status == COMPLETED
    pending, order = basket.pending_change, basket.order
    return {
        "message": message,
        "basket": {
            "basketId": basket.basket_id,
            "subscriptionId": basket.subscription_id,
            "promoCode": basket.promo_code,
            "promoApplied": basket.promo_applied,
            "status": "completed" if completed else "open",
            "checkoutCompleted": completed,
            "currentPlan": basket.plan.to_json(),
            "activeOffers": [o.to_json() for o in basket.active_offers],
            "availableOffers": [o.to_json() for o in basket.eligible_offers],
            "suggestedOffer": basket.suggested_offer,
            "addOffers": [o.to_json() for o in basket.add_offers],
            "removeOffers": [o.to_json() for o in basket.remove_offers],
            "totals": basket.totals(),
            "pendingChange": pending.to_json() if pending else None,
            "tracking": {"referrer": basket.referrer, "params": basket.tracking},
            "expiresAt": _iso(basket.expires_at),
            "order": order.to_json() if order else None,
            "quote": {"quoteId": basket.quote_id, "expiresAt": _iso(basket.quote_expires_at or 0)}
            if basket.quote_id
            else None,
        },
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
