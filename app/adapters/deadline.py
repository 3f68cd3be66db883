"""One deadline per request across all its upstream calls.

Each call's timeouts are what is left of the request's deadline, not a fresh allowance:
a request whose upstreams together take too long ends at its deadline with a 502, and no
request holds a worker much longer than `REQUEST_DEADLINE_SECONDS`. The deadline lives in
a `ContextVar`, set when a request starts and reset when it ends; tasks started on
the fan-out pool (fanout.py) run in a copy of the context, so they share their request's
deadline. The request layer sets it (app/web/__init__.py).
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

_deadline: ContextVar[float | None] = ContextVar("checkout_request_deadline", default=None)
# Less than this left, and a call is not started: it could not finish in time.
MIN_CALL_SECONDS = 0.05


class DeadlinePassed(Exception):
    """The request's deadline leaves no time for another upstream call."""


def start(seconds: float) -> Token[float | None]:
    return _deadline.set(time.monotonic() + seconds)


def end(token: Token[float | None]) -> None:
    _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the request's deadline; None outside a request."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def timeouts(connect: float, read: float) -> tuple[float, float]:
    """A call's connect and read timeouts, cut to what is left of the deadline."""
    left = remaining()
    if left is None:
        return connect, read
    if left < MIN_CALL_SECONDS:
        raise DeadlinePassed()
    return min(connect, left), min(read, left)
