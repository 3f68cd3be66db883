"""The checkout's domain: the basket, offers, the rules and their refusals.

Plain Python: no Flask, Redis or HTTP (import-linter keeps it so, `make lint`). The rules
(`Checkout`, rules.py) reach the outside only through the interfaces in ports.py, and
tell observers what happened through the events in events.py.
"""

from .basket import COMPLETED, COMPLETING, OPEN, Basket
from .rules import KEEP, MAX_ADD_OFFERS, Checkout, Keep, idempotency_key, refuse_if_locked

__all__ = [
    "COMPLETED",
    "COMPLETING",
    "KEEP",
    "MAX_ADD_OFFERS",
    "OPEN",
    "Basket",
    "Checkout",
    "Keep",
    "idempotency_key",
    "refuse_if_locked",
]
