"""The cheap checks a change passes before any real work, in one Redis round trip.

Creating or updating a basket first counts the rate limits, claims the reCAPTCHA token
(single use) and, for an update, reads the basket. Sent together (`storage.Batch`) they
cost one round trip instead of three; each check reads its own replies by name. The
verdicts are then given in the order a client expects: no basket (404) before too many
requests (429) before a replayed token (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import request

from ..adapters.storage import Batch
from ..checkout.basket import Basket
from ..checkout.errors import CheckoutError
from .services import services

_BASKET = "basket"


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
    found = services()
    store = found.store
    batch = Batch(found.redis)
    if basket_id:
        store.queue_get(batch, _BASKET, basket_id)
    counting = found.limiter.queue(batch, scope, ip=request.remote_addr, customer=customer)
    claim = found.recaptcha.queue_claim(batch, token)
    batch.execute()
    basket = store.read(batch, _BASKET, basket_id) if basket_id else None
    try:
        counting.check(batch)
        claim.check(batch)
    except CheckoutError as refusal:
        return Admission(basket, refusal)
    return Admission(basket, None)


@contextmanager
def verifying(token: str | None, remote_ip: str | None) -> Iterator[Callable[[], None]]:
    """Verify an admitted reCAPTCHA token in another thread while the block makes its own
    upstream call; the block gets the wait, to call before it writes anything.

    The verification is the answer whenever it fails, whatever the block raised meanwhile
    (a bot is told it failed the check, not that its offer was invalid), and the block's
    work counts only once the verification has passed, even if the block wrote nothing.
    """
    found = services()
    pending = found.fanout.start(found.recaptcha.verify, token, remote_ip, claimed=True)
    try:
        yield pending.result
    except Exception:
        pending.result()  # raises the failed check in place of the block's error
        raise
    pending.result()
