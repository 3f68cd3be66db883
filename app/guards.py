"""The cheap checks a change passes before any real work, in one Redis round trip.

Creating or updating a basket first counts the rate limits, claims the reCAPTCHA token
(single use) and, for an update, reads the basket. Sent together (`storage.Batch`) they
cost one round trip instead of three; the verdicts are then given in the order a client
expects: no basket (404) before too many requests (429) before a replayed token (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import request

from .baskets import Basket
from .errors import CheckoutError
from .services import checkout, limiter, recaptcha
from .storage import get_direct


@dataclass(frozen=True, slots=True)
class Admission:
    basket: Basket | None
    refusal: CheckoutError | None

    def raise_refusal(self) -> None:
        if self.refusal is not None:
            raise self.refusal


def admit(
    scope: str, customer: str | None, token: str | None, basket_id: str | None = None
) -> Admission:
    pipe = get_direct().batch()
    read_basket = checkout().store.queue_get(pipe, basket_id) if basket_id else None
    checks = [
        limiter().queue(pipe, scope, ip=request.remote_addr, customer=customer),
        recaptcha().queue_claim(pipe, token),
    ]
    results = iter(pipe.execute())
    basket = read_basket(results) if read_basket else None
    refusals = [_refusal(check, results) for check in checks]
    return Admission(basket, next((r for r in refusals if r is not None), None))


def _refusal(check: Callable[[Iterator], None], results: Iterator) -> CheckoutError | None:
    try:
        check(results)
    except CheckoutError as refusal:
        return refusal
    return None
