"""Fixed-window rate limits in Redis, per client IP and per customer.

One INCR + EXPIRE per subject, queued on the caller's batch (app/web/guards.py) so the
limits share a round trip with the request's other first checks; the key carries the
window number so it expires by itself. Fixed windows allow a burst of twice the limit
across a window edge, which is fine for throttling bots on basket creation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..checkout.errors import TooManyRequests
from .storage import Batch, Keys


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'10/60' means ten per sixty seconds."""
        count, _, seconds = str(text).partition("/")
        return cls(int(count), int(seconds or 60))


@dataclass(frozen=True, slots=True)
class Counting:
    """The counts one request queued; `check` judges them once the batch has run."""

    limit: Limit
    names: tuple[str, ...]

    def check(self, batch: Batch) -> None:
        if any(batch.reply(name) > self.limit.count for name in self.names):
            seconds = self.limit.seconds
            raise TooManyRequests(retry_after=max(seconds - int(time.time()) % seconds, 1))


class RateLimiter:
    def __init__(self, keys: Keys, limits: dict[str, Limit]) -> None:
        self.keys = keys
        self.limits = limits

    def queue(self, batch: Batch, scope: str, **subjects: str | None) -> Counting:
        """Queue the counting for each named subject (ip=..., customer=...) on `batch`."""
        limit = self.limits[scope]
        window = int(time.time() // limit.seconds)
        names = []
        for kind, value in subjects.items():
            if not value:
                continue
            key = f"{self.keys.rate_limit(f'{scope}:{kind}', value)}:{window}"
            name = f"rate-limit:{kind}"
            batch.incr(name, key)
            batch.expire(f"{name}:expiry", key, limit.seconds + 1)
            names.append(name)
        return Counting(limit, tuple(names))
