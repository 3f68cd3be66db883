"""Fixed-window rate limits in Redis, per client IP and per customer.

One INCR + EXPIRE per subject, queued on the caller's pipeline (app/guards.py) so the
limits share a round trip with the request's other first checks; the key
carries the window number so it expires by itself. Fixed windows allow a burst of twice
the limit across a window edge, which is fine for throttling bots on basket creation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import TooManyRequests
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


class RateLimiter:
    def __init__(self, keys: Keys, limits: dict[str, Limit]) -> None:
        self.keys = keys
        self.limits = limits

    def queue(self, pipe: Batch, scope: str, **subjects: str | None) -> Callable[[Iterator], None]:
        """Queue the counting on `pipe`; the returned check reads its results and judges."""
        limit = self.limits[scope]
        window = int(time.time() // limit.seconds)
        named = [(kind, value) for kind, value in subjects.items() if value]
        for kind, value in named:
            key = f"{self.keys.rate_limit(f'{scope}:{kind}', value)}:{window}"
            pipe.incr(key)
            pipe.expire(key, limit.seconds + 1)

        def check(results: Iterator) -> None:
            counts = [next(results) for _ in range(2 * len(named))][::2]
            if any(count > limit.count for count in counts):
                retry_after = limit.seconds - int(time.time()) % limit.seconds
                raise TooManyRequests(retry_after=max(retry_after, 1))

        return check
