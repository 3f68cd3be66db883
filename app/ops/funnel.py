"""The marketing funnel: each step of a checkout, and each way out, counted per campaign.

A customer's steps (`STEPS`) and exits (`EXITS`) are counted per day (UTC) under the
campaign that brought them: the first touch's `utm_campaign`, `utm_source` and
`utm_medium` (a link without `utm_source` that came from another site is that site, by
`referral`, as analytics tools count it; `(none)` where nothing says), and its deal: the
link's `promo` code, else the code the basket carries (one entered on the basket page or
sent by a partner), so marketers see which deals convert. Nothing personal
is counted: no customer, basket or address, only the campaign and the step.

Storage: one Redis hash per day (`Keys.funnel(day)`), a field per campaign and step, with
a TTL (`FUNNEL_TTL_DAYS`), so every worker and instance counts into one place. A day holds
at most `FUNNEL_MAX_FIELDS` fields: campaign names come from links anyone can write, so
beyond that a new campaign counts as `(other)` instead of growing the hash.

Nothing counts into it directly: it listens (app/signals.py) to the checkout's events
(a basket created, its first change, its order recorded), the pages' own steps (a link
opened, a sign-in, a first review) and every problem answered (the exits). A request's
counts wait in a tally and go out in one pipelined write when it ends (`flush`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, has_request_context, session

from .. import signals
from ..adapters.storage import FAILURES, Keys
from ..checkout import Basket
from ..checkout.errors import (
    BasketNotFound,
    CheckoutError,
    OrderNotRecorded,
    RecaptchaFailed,
    ServiceUnavailable,
    SubscriptionLocked,
    SubscriptionNotFound,
    UpstreamError,
)
from ..checkout.events import BasketCreated, BasketFound, Event, FirstChange, OrderRecorded
from ..web.problems import ServerBusy
from ..web.services import services
from ..web.sessions import FIRST_TOUCH

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

STEPS = ("opened", "started", "signed_in", "changed", "reviewed", "confirmed")
EXITS = ("locked", "not_found", "expired", "bot_check_failed", "upstream_error", "shed")
EVENTS = STEPS + EXITS
NONE = "(none)"
OTHER = "(other)"
_MAX_TEXT = 100
_SEP = "\t"  # tracking values never hold one: control characters are stripped on capture
_TALLY = "checkout.funnel"
_TOUCH = "checkout.funnel_touch"
_EXTENSION = "checkout.funnel"
# The exit each problem is (a subclass counts as its parent unless it has its own line).
_EXITS: dict[type[CheckoutError], str | None] = {
    SubscriptionLocked: "locked",
    SubscriptionNotFound: "not_found",
    BasketNotFound: "expired",
    RecaptchaFailed: "bot_check_failed",
    UpstreamError: "upstream_error",
    ServiceUnavailable: "upstream_error",
    OrderNotRecorded: None,  # the order was placed: not a way out
    ServerBusy: "shed",
}
# The checkout's events that are steps of the funnel.
_STEPS: dict[type[Event], str] = {
    BasketCreated: "started",
    FirstChange: "changed",
    OrderRecorded: "confirmed",
}

# KEYS[1]: the day's hash. ARGV: TTL seconds, most fields, then (field, fallback, n)…
# A field not yet in a full hash counts under its fallback, the `(other)` campaign.
_COUNT = """
local key, most = KEYS[1], tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  local field = ARGV[i]
  if redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) >= most then
    field = ARGV[i + 1]
  end
  redis.call('HINCRBY', key, field, ARGV[i + 2])
end
redis.call('EXPIRE', key, ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Touch:
    """The campaign a customer came from."""

    campaign: str = NONE
    source: str = NONE
    medium: str = NONE
    code: str = NONE  # the campaign's promotion code, upper case as codes are matched

    @classmethod
    def of(
        cls, tracking: Mapping[str, str] | None, referrer: str | None, code: str | None = None
    ) -> Touch:
        tracking = tracking or {}
        host = (urlsplit(referrer).hostname or "") if referrer else ""
        source = tracking.get("utm_source") or host
        medium = tracking.get("utm_medium") or ("referral" if host and source == host else "")
        code = (tracking.get("promo") or code or "").upper()
        return cls(_text(tracking.get("utm_campaign")), _text(source), _text(medium), _text(code))

    @classmethod
    def of_basket(cls, basket: Basket) -> Touch:
        return cls.of(basket.tracking, basket.referrer, basket.promo_code)

    def field(self, event: str) -> str:
        return _SEP.join((self.campaign, self.source, self.medium, self.code, event))


_OTHER = Touch(OTHER, OTHER, OTHER, OTHER)


def _text(value: str | None) -> str:
    value = (value or "").strip()[:_MAX_TEXT]
    return value or NONE


@dataclass(frozen=True, slots=True)
class Row:
    """One campaign's counts over a range of days."""

    touch: Touch
    counts: Mapping[str, int]

    def __getitem__(self, event: str) -> int:
        return int(self.counts.get(event, 0))


@dataclass(frozen=True, slots=True)
class Report:
    start: date
    end: date
    rows: list[Row]
    daily: list[tuple[date, Counter[str]]]

    def total(self, event: str) -> int:
        return sum(row[event] for row in self.rows)

    def totals(self) -> dict[str, int]:
        return {event: self.total(event) for event in EVENTS}

    def per_day(self, event: str) -> list[tuple[date, int]]:
        return [(day, counts[event]) for day, counts in self.daily]


class FunnelStore:
    def __init__(self, client: Any, keys: Keys, ttl_days: int, max_fields: int) -> None:
        self.client = client
        self.keys = keys
        self.ttl = int(ttl_days) * 86400
        self.max_fields = int(max_fields)

    def queue(self, pipe: Any, day: date, counts: Mapping[tuple[Touch, str], int]) -> None:
        """Queue `counts` on `pipe` as one command: EVAL with the script's text, because a
        registered script on a pipeline makes redis-py ask the server whether it knows it
        first (a round trip of its own), and a cluster's pipeline has no `eval` method
        (it sends the command by its key's slot all the same)."""
        args: list[Any] = [self.ttl, self.max_fields]
        for (touch, event), n in counts.items():
            if n:
                args += [touch.field(event), _OTHER.field(event), n]
        if len(args) > 2:
            pipe.execute_command("EVAL", _COUNT, 1, self.keys.funnel(day.isoformat()), *args)

    def report(self, days: list[date]) -> Report:
        """Each campaign's counts summed over `days` (the most confirmations first), and
        each day's counts, all campaigns together: one pipelined read."""
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.keys.funnel(day.isoformat()))
        totals: dict[Touch, Counter[str]] = {}
        daily: list[tuple[date, Counter[str]]] = []
        for day, stored in zip(days, pipe.execute(), strict=True):
            that_day: Counter[str] = Counter()
            for raw_field, raw_count in stored.items():
                *parts, event = raw_field.decode("utf-8", "replace").split(_SEP)
                # Three parts: a field written before codes were counted, counted as no code.
                if not 3 <= len(parts) <= 4 or event not in EVENTS:
                    continue
                touch = Touch(*parts)
                totals.setdefault(touch, Counter())[event] += int(raw_count)
                that_day[event] += int(raw_count)
            daily.append((day, that_day))
        rows = [Row(touch, dict(counts)) for touch, counts in totals.items()]
        rows.sort(key=lambda row: (-row["confirmed"], -row["started"], row.touch.campaign))
        return Report(days[0], days[-1], rows, daily)


def init_app(app: Flask) -> None:
    found = services(app)
    app.extensions[_EXTENSION] = FunnelStore(
        found.redis, found.keys, app.config["FUNNEL_TTL_DAYS"], app.config["FUNNEL_MAX_FIELDS"]
    )
    app.teardown_request(flush)


def store() -> FunnelStore:
    found: FunnelStore = current_app.extensions[_EXTENSION]
    return found


def today() -> date:
    return datetime.now(UTC).date()


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


# -- what it hears, into the request's tally ------------------------------------------------


def _in_request(receive: Callable[..., None]) -> Callable[..., None]:
    """A receiver that counts only within a request of an app that has a funnel."""

    def receiver(sender: Any, **kw: Any) -> None:
        if has_request_context() and _EXTENSION in current_app.extensions:
            receive(sender, **kw)

    return receiver


def _event(event: Event, **_: Any) -> None:
    if isinstance(event, BasketFound | BasketCreated):
        set_touch(event.basket)  # the request's later exits count under its campaign
    step = _STEPS.get(type(event))
    if step is not None:
        count(step, Touch.of_basket(event.basket))


def _campaign(_: Any, *, tracking: Mapping[str, str], referrer: str | None) -> None:
    set_touch(Touch.of(tracking, referrer))


def _step(step: str, **_: Any) -> None:
    count(step)


def _exit(error: CheckoutError, **_: Any) -> None:
    """Count the exit a problem answer is, if it is one."""
    for kind in type(error).__mro__:
        if kind in _EXITS:
            event = _EXITS[kind]
            if event is not None:
                count(event)
            return


for _signal, _receive in (
    (signals.checkout_event, _event),
    (signals.campaign_seen, _campaign),
    (signals.journey_step, _step),
    (signals.problem_answered, _exit),
):
    _signal.connect(_in_request(_receive), weak=False)


def set_touch(touch: Touch | Basket) -> None:
    """The campaign this request's events count under: a basket's first touch (worked out
    only if the request counts anything), or one given."""
    setattr(g, _TOUCH, touch)


def current_touch() -> Touch:
    """The request's campaign: its basket's, else the browser's first touch, else none."""
    found = g.get(_TOUCH)
    if isinstance(found, Touch):
        return found
    if isinstance(found, Basket):
        return Touch.of_basket(found)
    first = session.get(FIRST_TOUCH)
    if isinstance(first, dict):
        return Touch.of(first.get("tracking"), first.get("referrer"))
    return Touch()


def count(event: str, touch: Touch | None = None) -> None:
    """Count `event` for this request; it goes out when the request ends."""
    if event not in EVENTS:
        raise ValueError(f"not a funnel event: {event}")
    tally: Counter[tuple[Touch, str]] = g.setdefault(_TALLY, Counter())
    tally[(touch or current_touch(), event)] += 1


def flush(_: BaseException | None = None) -> None:
    """Send the request's counts in one pipeline; a failure is logged, never raised."""
    tally: Counter[tuple[Touch, str]] | None = g.pop(_TALLY, None)
    if not tally:
        return
    try:
        pipe = services().redis.pipeline(transaction=False)
        store().queue(pipe, today(), tally)
        pipe.execute()
    except FAILURES as exc:
        log.warning("funnel counts lost: %s", type(exc).__name__)
        signals.redis_failed.send(exc)
