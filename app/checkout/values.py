"""Typed values the checkout passes around: money, offers, the backend's answers.

Each `parse` is strict: anything not of the expected shape raises `ValueError`, which the
backend client turns into one `UpstreamError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Subscription, offer and order ids: short, printable, no markup or separators. The API's
# description and its validation use this same pattern (app/api/schemas.py).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(ID_PATTERN)


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def _require(data: object, key: str, kind: type) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object holding {key!r}")
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{key!r} is not a {kind.__name__}")
    return value


def _id(data: object, key: str) -> str:
    value = _require(data, key, str)
    if not is_id(value):
        raise ValueError(f"{key!r} is not an id")
    return str(value)


def _date(data: object, key: str) -> str:
    value = _require(data, key, str)
    date.fromisoformat(value)
    return str(value)


def _instant(data: object, key: str) -> float:
    """An ISO 8601 time with its offset (`Z` or `+00:00`), as seconds since the epoch."""
    moment = datetime.fromisoformat(_require(data, key, str))
    if moment.tzinfo is None:
        raise ValueError(f"{key!r} has no time zone")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def to_json(self) -> dict[str, str]:
        return {"amount": f"{self.amount:.2f}", "currency": self.currency}

    @classmethod
    def parse(cls, data: object) -> Money:
        currency = _require(data, "currency", str)
        if not _CURRENCY.match(currency):
            raise ValueError("currency is not ISO 4217")
        try:
            amount = Decimal(_require(data, "amount", str))
        except InvalidOperation as exc:
            raise ValueError("amount is not a decimal") from exc
        if not amount.is_finite() or amount < 0:
            raise ValueError("amount is out of range")
        return cls(amount, currency)


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    name: str
    price: Money
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "price": self.price.to_json(),
        }

    @classmethod
    def parse(cls, data: object) -> Offer:
        description = data.get("description", "") if isinstance(data, dict) else ""
        return cls(
            id=_id(data, "id"),
            name=_require(data, "name", str),
            price=Money.parse(_require(data, "price", dict)),
            description=description if isinstance(description, str) else "",
        )


def _offers(data: object, key: str) -> tuple[Offer, ...]:
    return tuple(Offer.parse(item) for item in _require(data, key, list))


@dataclass(frozen=True, slots=True)
class PendingChange:
    description: str
    effective_date: str

    def to_json(self) -> dict[str, str]:
        return {"description": self.description, "effectiveDate": self.effective_date}

    @classmethod
    def parse(cls, data: object) -> PendingChange:
        return cls(_require(data, "description", str), _date(data, "effectiveDate"))


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    customer_id: str
    plan: Offer
    active_offers: tuple[Offer, ...]
    eligible_offers: tuple[Offer, ...]
    recurring_price: Money
    next_billing_date: str
    pending_change: PendingChange | None

    @classmethod
    def parse(cls, data: object) -> Subscription:
        pending = data.get("pendingChange") if isinstance(data, dict) else None
        return cls(
            id=_id(data, "id"),
            customer_id=_require(data, "customerId", str),
            plan=Offer.parse(_require(data, "plan", dict)),
            active_offers=_offers(data, "activeOffers"),
            eligible_offers=_offers(data, "eligibleOffers"),
            recurring_price=Money.parse(_require(data, "recurringPrice", dict)),
            next_billing_date=_date(data, "nextBillingDate"),
            pending_change=PendingChange.parse(pending) if pending is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """The backend's price for a change; an order names it, and the price it agreed to."""

    quote_id: str
    expires_at: float
    current_price: Money
    new_price: Money
    effective_date: str

    @classmethod
    def parse(cls, data: object) -> Quote:
        return cls(
            quote_id=_id(data, "quoteId"),
            expires_at=_instant(data, "expiresAt"),
            current_price=Money.parse(_require(data, "currentPrice", dict)),
            new_price=Money.parse(_require(data, "newPrice", dict)),
            effective_date=_date(data, "effectiveDate"),
        )


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    effective_date: str
    new_price: Money

    def to_json(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "effectiveDate": self.effective_date,
            "newPrice": self.new_price.to_json(),
        }

    @classmethod
    def parse(cls, data: object) -> Order:
        return cls(
            order_id=_id(data, "orderId"),
            effective_date=_date(data, "effectiveDate"),
            new_price=Money.parse(_require(data, "newPrice", dict)),
        )
