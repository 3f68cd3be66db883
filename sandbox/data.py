"""The partner's catalogue and demo customers: offers, plans and subscriptions.

Demo data is rebuilt by :func:`demo_subscriptions` and :class:`Catalogue` at every start
and every reset; the rules that change it live in :mod:`sandbox.subscriptions`. The module's
``OFFERS`` and plans are the demo prices and are never changed: a price set through
``/_sandbox/prices`` lives in one store's :class:`Catalogue`, so it cannot leak into another
sandbox app in the same process.

Offers, plans and pending changes carry their Welsh (``cy``) words beside the English ones,
for answers to a call that asks for Welsh (``Accept-Language``). Where the partner has no
Welsh form (OFFER-HD, on purpose), Welsh answers carry the English. The campaign
promotions (``PROMOTIONS``) are described, and refused, in both languages.

Every date the sandbox works with comes from :func:`today`: the real date, or the one a
test set on a sandbox's :class:`Clock` (``PUT /_sandbox/today``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.language import ENGLISH, WELSH, in_language

CURRENCY = "GBP"


def money(amount: Decimal) -> dict[str, str]:
    """Money as the backend speaks it: a two-place decimal string and a currency."""
    return {"amount": str(amount.quantize(Decimal("0.01"))), "currency": CURRENCY}


@dataclass
class Clock:
    """One sandbox's test clock: a date a test set, or None for the real date."""

    fixed: date | None = None


def today(clock: Clock | None = None) -> date:
    """The sandbox's today: ``clock``'s date if a test set one, otherwise the real date.

    The one place the sandbox reads the date: next billing dates, quotes' lines and what
    is due today all start from here.
    """
    if clock is not None and clock.fixed is not None:
        return clock.fixed
    return date.today()


def first_of_next_month(day: date | None = None) -> date:
    """When a change takes effect: the next billing date after ``day`` (default today)."""
    day = day or today()
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def first_of_month(day: date) -> date:
    """The first day of ``day``'s billing period: billing periods are calendar months."""
    return day.replace(day=1)


@dataclass(frozen=True)
class Offer:
    id: str
    name: str
    description: str
    price: Decimal
    #: None where the partner has no Welsh: then Welsh answers carry the English
    welsh_name: str | None = None
    welsh_description: str | None = None

    def name_in(self, language: str) -> str:
        return in_language(language, self.name, self.welsh_name)

    def to_json(self, language: str = ENGLISH) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name_in(language),
            "description": in_language(language, self.description, self.welsh_description),
            "price": money(self.price),
        }


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price: Decimal
    welsh_name: str | None = None

    def to_json(self, language: str = ENGLISH) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": in_language(language, self.name, self.welsh_name),
            "price": money(self.price),
        }


@dataclass(frozen=True)
class Customer:
    """A demo account, the OAuth resource owner: a customer, or an operator with roles."""

    id: str
    name: str
    #: None for an operator, who owns no subscription
    subscription_id: str | None
    #: shown on the sign-in page; the load-test customers are not
    listed: bool = True
    #: the profile claims the provider sends (None: just `name`). Providers differ: some
    #: send only `preferred_username` or `email`, some none at all.
    profile: tuple[tuple[str, str], ...] | None = None
    #: the ``roles`` claim of an operator's tokens; customers have none, so theirs carry none
    roles: tuple[str, ...] = ()

    def claims(self) -> dict[str, Any]:
        """The ID token's and userinfo's claims for this account: profile, then any roles."""
        claims: dict[str, Any] = (
            dict(self.profile) if self.profile is not None else {"name": self.name}
        )
        if self.roles:
            claims["roles"] = list(self.roles)
        return claims


@dataclass(frozen=True)
class PendingChange:
    order_id: str
    description: str
    effective_date: date
    new_price: Decimal
    welsh_description: str | None = None

    def to_json(self, language: str = ENGLISH) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "description": in_language(language, self.description, self.welsh_description),
            "effectiveDate": self.effective_date.isoformat(),
            "newPrice": money(self.new_price),
        }


@dataclass
class Catalogue:
    """The offers and plans at their current prices: the demo prices until a test sets one."""

    offers: dict[str, Offer] = field(default_factory=lambda: dict(OFFERS))
    plans: dict[str, Plan] = field(default_factory=lambda: dict(PLANS))

    def set_offer_price(self, offer_id: str, price: Decimal) -> Offer:
        if offer_id not in self.offers:
            raise ValueError(f"no such offer: {offer_id}")
        self.offers[offer_id] = dataclasses.replace(self.offers[offer_id], price=price)
        return self.offers[offer_id]

    def set_plan_price(self, plan_id: str, price: Decimal) -> Plan:
        if plan_id not in self.plans:
            raise ValueError(f"no such plan: {plan_id}")
        self.plans[plan_id] = dataclasses.replace(self.plans[plan_id], price=price)
        return self.plans[plan_id]

    def price(self, plan_id: str, offer_ids: Sequence[str]) -> Decimal:
        """The monthly price of a plan with these offers, at today's prices."""
        offers = sum((self.offers[o].price for o in offer_ids), Decimal("0"))
        return self.plans[plan_id].price + offers


@dataclass
class Subscription:
    id: str
    customer_id: str
    #: by id: the plan's price is the catalogue's, which a test may change
    plan_id: str
    active: list[str]
    #: offers this subscription may carry; eligible = these minus the active ones
    available: list[str]
    pending_change: PendingChange | None = None
    #: False for the load-test subscriptions, so a benchmark can order again and again
    locks_on_order: bool = True

    def eligible(self) -> list[str]:
        return [offer_id for offer_id in self.available if offer_id not in self.active]

    def price_with(self, catalogue: Catalogue, offer_ids: Sequence[str]) -> Decimal:
        return catalogue.price(self.plan_id, offer_ids)

    def to_json(
        self, catalogue: Catalogue, language: str = ENGLISH, day: date | None = None
    ) -> dict[str, Any]:
        """The subscription as the backend answers it, on ``day`` (default today)."""
        pending = self.pending_change
        return {
            "id": self.id,
            "customerId": self.customer_id,
            "status": "active",
            "plan": catalogue.plans[self.plan_id].to_json(language),
            "activeOffers": [catalogue.offers[o].to_json(language) for o in self.active],
            "eligibleOffers": [catalogue.offers[o].to_json(language) for o in self.eligible()],
            "recurringPrice": money(self.price_with(catalogue, self.active)),
            "nextBillingDate": first_of_next_month(day).isoformat(),
            "pendingChange": pending.to_json(language) if pending else None,
        }


OFFERS: dict[str, Offer] = {
    offer.id: offer
    for offer in (
        # No Welsh form, on purpose: Welsh answers fall back to the English name and
        # description, so that fallback can be seen and tested.
        Offer("OFFER-HD", "HD Quality", "Every channel in full high definition.", Decimal("4.00")),
        Offer(
            "OFFER-SPORTS",
            "Sports",
            "Live football, cricket and rugby.",
            Decimal("8.00"),
            welsh_name="Chwaraeon",
            welsh_description="Pêl-droed, criced a rygbi yn fyw.",
        ),
        Offer(
            "OFFER-KIDS",
            "Kids",
            "Ad-free cartoons and shows for children.",
            Decimal("3.00"),
            welsh_name="Plant",
            welsh_description="Cartwnau a rhaglenni i blant, heb hysbysebion.",
        ),
        Offer(
            "OFFER-CINEMA",
            "Cinema",
            "New film premieres every Friday.",
            Decimal("6.50"),
            welsh_name="Sinema",
            welsh_description="Ffilmiau newydd i'w gweld am y tro cyntaf bob dydd Gwener.",
        ),
    )
}
BASIC = Plan("PLAN-BASIC", "Basic", Decimal("10.00"), welsh_name="Sylfaenol")
STANDARD = Plan("PLAN-STANDARD", "Standard", Decimal("20.00"), welsh_name="Safonol")
PREMIUM = Plan("PLAN-PREMIUM", "Premium", Decimal("30.00"), welsh_name="Premiwm")
PLANS: dict[str, Plan] = {plan.id: plan for plan in (BASIC, STANDARD, PREMIUM)}


@dataclass(frozen=True)
class Promotion:
    """A campaign's code: an amount off the monthly price, for some months.

    Either a share of one offer's price (which must then be among the subscription's
    offers after the change), or a fixed amount off whatever the change is.
    """

    code: str
    description: str
    welsh_description: str
    months: int
    #: the offer it discounts, and needs; None for any change
    offer_id: str | None = None
    #: the share of ``offer_id``'s monthly price taken off, e.g. 0.5 for half price
    share_off: Decimal | None = None
    #: a fixed amount taken off the monthly price
    amount_off: Decimal | None = None
    #: refused as expired whatever a test does; a test can expire the others for a while
    expired: bool = False

    def description_in(self, language: str) -> str:
        return in_language(language, self.description, self.welsh_description)


#: the demo campaign codes, by code (upper case); never changed: a code a test expires is
#: expired in one store only, until its reset
PROMOTIONS: dict[str, Promotion] = {
    promotion.code: promotion
    for promotion in (
        Promotion(
            "SPORTSHALF",
            "Sports at half price for 3 months",
            "Chwaraeon am hanner pris am 3 mis",
            months=3,
            offer_id="OFFER-SPORTS",
            share_off=Decimal("0.5"),
        ),
        Promotion(
            "WELCOME5",
            "£5 off your monthly price for one month",
            "£5 oddi ar eich pris misol am un mis",
            months=1,
            amount_off=Decimal("5.00"),
        ),
        # An old campaign's code, still printed on flyers: always refused as expired.
        Promotion(
            "EXPIRED",
            "£10 off your monthly price for one month",
            "£10 oddi ar eich pris misol am un mis",
            months=1,
            amount_off=Decimal("10.00"),
            expired=True,
        ),
    )
}
#: why a code is refused, as ``promo_invalid``'s ``reason`` says
PROMO_REASONS = ("unknown", "expired", "not_applicable")


def promo_refusal(reason: str, language: str, offer: Offer | None = None) -> str:
    """What a refused code's answer tells the customer, in English or Welsh.

    ``offer``: for ``not_applicable``, the offer the code needs.
    """
    if reason == "unknown":
        return in_language(
            language, "We don't recognise this code.", "Nid ydym yn adnabod y cod hwn."
        )
    if reason == "expired":
        return in_language(language, "This code has expired.", "Mae'r cod hwn wedi dod i ben.")
    if offer is not None:
        return in_language(
            language,
            f"This code needs {offer.name} in your subscription.",
            f"Mae angen {offer.name_in(WELSH)} yn eich tanysgrifiad i ddefnyddio'r cod hwn.",
        )
    return in_language(
        language,
        "This code does not apply to this change.",
        "Nid yw'r cod hwn yn berthnasol i'r newid hwn.",
    )


LOAD = range(1, 33)
#: the role the checkout's ops page will ask for in a token's ``roles`` claim
OPERATOR_ROLE = "checkout-operator"
CUSTOMERS: dict[str, Customer] = {
    c.id: c
    for c in (
        Customer("alice", "Alice Example", "SUB-1001"),
        Customer("bob", "Bob Example", "SUB-2002"),
        Customer("carol", "Carol Example", "SUB-3003"),
        # dave's provider account has no profile claims; erin's has only an email address.
        Customer("dave", "Dave Example", "SUB-4004", profile=()),
        Customer("erin", "Erin Example", "SUB-5005", profile=(("email", "erin@example.com"),)),
        # For `make bench`: one customer per load connection, never locked by an order.
        *(Customer(f"load-{n:02d}", f"Load {n}", f"SUB-L{n:02d}", listed=False) for n in LOAD),
        # For the ops page: an operator, not a customer, so no subscription of her own.
        Customer("olivia", "Olivia Operator", None, roles=(OPERATOR_ROLE,)),
    )
}


def demo_subscriptions() -> dict[str, Subscription]:
    """The demo data of the contract (section 5), fresh each time."""
    like_alice = ["OFFER-HD", "OFFER-SPORTS", "OFFER-KIDS", "OFFER-CINEMA"]
    subscriptions = [
        Subscription("SUB-1001", "alice", STANDARD.id, ["OFFER-HD"], list(like_alice)),
        Subscription(
            "SUB-2002",
            "bob",
            PREMIUM.id,
            ["OFFER-HD"],
            ["OFFER-HD", "OFFER-SPORTS"],
            PendingChange(
                "ORD-B0B02002",
                "Downgrade to Standard",
                first_of_next_month(),
                STANDARD.price + OFFERS["OFFER-HD"].price,
                welsh_description="Symud i lawr i Safonol",
            ),
        ),
        Subscription("SUB-3003", "carol", BASIC.id, [], ["OFFER-SPORTS", "OFFER-HD"]),
        Subscription("SUB-4004", "dave", STANDARD.id, ["OFFER-HD"], list(like_alice)),
        Subscription("SUB-5005", "erin", STANDARD.id, ["OFFER-HD"], list(like_alice)),
        *(
            Subscription(
                f"SUB-L{n:02d}",
                f"load-{n:02d}",
                STANDARD.id,
                ["OFFER-HD"],
                list(like_alice),
                locks_on_order=False,
            )
            for n in LOAD
        ),
    ]
    return {s.id: s for s in subscriptions}
