"""Added upstream latency, so the checkout is measured against a partner that takes time.

On loopback every sandbox call answers in about a millisecond, which hides the cost of
calling the partner serially: a checkout that waits on reCAPTCHA, then the quote, then
the order looks as fast as one that overlaps them. A latency profile delays each
partner-facing endpoint by a sample from a long-tailed distribution.

Profiles:

``none``
    No added delay; the default.
``realistic``
    Per endpoint, a lognormal sample around the median below, with a long tail: the 99th
    percentile is 4x the median (sigma = ln 4 / 2.326, z of the 99th percentile) and no
    sample exceeds 10x the median, so one unlucky draw cannot stall a test run.
``slow``
    For demos: every median x5, same shape.

The medians are assumptions, not measurements: none of the partners (reCAPTCHA, the
billing vendors, the identity providers) publish latency figures. What users report:

=================  ======  ===================================================================
endpoint           median  what users report
=================  ======  ===================================================================
siteverify          80 ms  siteverify needing a timeout above 1 s (greggilbert/recaptcha#84)
getSubscription     60 ms  billing API reads 50-300 ms (stripe/stripe-java#570,
                           stripe/stripe-node#538)
quote              120 ms  writes and invoice previews 1-5 s (same Stripe issues)
order              250 ms  writes 1-5 s (same Stripe issues)
token              100 ms  one OIDC login's discovery + JWKS fetches adding 0.2-1 s
jwks                50 ms  (jellyfin-plugin-sso#247); the token call is a signed write
discovery           50 ms  on the same provider
=================  ======  ===================================================================

The medians sit toward the fast end of those reports on purpose: a latency target the
checkout meets against this sandbox is then not met by luck, because the real partner
will be slower, not faster. Everything else (the sign-in page, static files, the
reCAPTCHA script) is not delayed, and neither is anything under ``/_sandbox/``: a test
must always be able to inspect and reset the sandbox promptly. Nor is the webhook
receiver under ``/partner/``: there the checkout calls the partner from its deliverer,
off any customer's request, so its delay is not the one these profiles measure.

Samples are seeded (``SANDBOX_LATENCY_SEED``, default 1), one stream per endpoint, so a
benchmark run draws the same delays every time whatever order its calls interleave in.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, cast

from flask import current_app

from sandbox.faults import CONTROL_PREFIX
from sandbox.state import STAT_ROUTES, CallTimeline

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION_KEY = "sandbox.latency"
PROFILES = ("none", "realistic", "slow")
DEFAULT_PROFILE = "none"
DEFAULT_SEED = 1

#: the ``realistic`` median of each delayed endpoint, in milliseconds (sources above)
MEDIAN_MS: Mapping[str, int] = MappingProxyType(
    {
        "siteverify": 80,
        "getSubscription": 60,
        "quote": 120,
        "order": 250,
        "token": 100,
        "jwks": 50,
        "discovery": 50,
    }
)
#: each profile's medians as a multiple of the ``realistic`` ones
PROFILE_FACTOR: Mapping[str, int] = MappingProxyType({"none": 0, "realistic": 1, "slow": 5})
#: the lognormal's sigma that puts the 99th percentile at 4x the median
SIGMA = math.log(4) / 2.326
#: no sample is longer than this many medians
CAP = 10.0

#: method, path pattern and endpoint name of every delayed call; the partner's backend
#: and reCAPTCHA are named as the request counters name them
ENDPOINTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    *STAT_ROUTES,
    ("POST", re.compile(r"^/oauth/token$"), "token"),
    ("GET", re.compile(r"^/oauth/jwks$"), "jwks"),
    ("GET", re.compile(r"^/\.well-known/openid-configuration$"), "discovery"),
)


def check_profile(profile: object) -> str:
    """``profile`` if it names a profile; raises ValueError naming the allowed values."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"latency profile must be one of {', '.join(PROFILES)} (got {profile!r})")
    return profile


def endpoint_for(method: str, path: str) -> str | None:
    """The delayed endpoint a request is for, or None if it is never delayed."""
    if path.startswith(CONTROL_PREFIX):
        return None
    for route_method, pattern, name in ENDPOINTS:
        if method == route_method and pattern.match(path):
            return name
    return None


def medians_ms(profile: str) -> dict[str, int]:
    """Each endpoint's median delay under ``profile``, in milliseconds (0 for ``none``)."""
    factor = PROFILE_FACTOR[check_profile(profile)]
    return {name: median * factor for name, median in MEDIAN_MS.items()}


class Latency:
    """The current profile and its seeded samplers; switchable while serving.

    The switch exists so a benchmark can compare profiles in one run: the demo data
    lives in memory, and a restart would lose it. Each switch reseeds, so every run of
    a profile draws the same sequence of delays.
    """

    def __init__(self, profile: str = DEFAULT_PROFILE, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._profile = check_profile(profile)
        self._streams = self._fresh_streams()

    @property
    def profile(self) -> str:
        return self._profile

    def set_profile(self, profile: str) -> None:
        """Switch profiles (raises ValueError for an unknown one) and start the draws afresh."""
        check_profile(profile)
        with self._lock:
            self._profile = profile
            self._streams = self._fresh_streams()

    def medians_ms(self) -> dict[str, int]:
        return medians_ms(self._profile)

    def to_json(self) -> dict[str, object]:
        return {"profile": self._profile, "medianMs": self.medians_ms()}

    def sample(self, endpoint: str) -> float:
        """The next delay for ``endpoint`` under the current profile, in seconds."""
        with self._lock:
            factor = PROFILE_FACTOR[self._profile]
            if factor == 0:
                return 0.0
            # Drawn with median 1, capped, then scaled: "slow" keeps the same shape.
            draw = min(self._streams[endpoint].lognormvariate(0.0, SIGMA), CAP)
        return draw * MEDIAN_MS[endpoint] * factor / 1000

    def delay_for(self, method: str, path: str) -> float:
        """Seconds to hold this request before the app answers it (0 if never delayed)."""
        endpoint = endpoint_for(method, path)
        return 0.0 if endpoint is None else self.sample(endpoint)

    def _fresh_streams(self) -> dict[str, random.Random]:
        # One stream per endpoint: concurrent calls to other endpoints, which arrive in
        # whatever order the scheduler picks, do not shift this endpoint's draws.
        return {name: random.Random(f"{self.seed}/{name}") for name in MEDIAN_MS}


def get_latency() -> Latency:
    """The latency of the sandbox app handling the current request."""
    return cast(Latency, current_app.extensions[EXTENSION_KEY])


class LatencyMiddleware:
    """Records each call's arrival, delays it by the profile, then hands it on.

    It sits outside ``FaultMiddleware`` so that ``arrivedAt`` is stamped before either
    delay and ``answeredAt`` after both and the app: the timeline shows what the caller
    waited for. ``time.sleep`` is gevent's in the served sandbox, so a sleeping call
    leaves the worker free to answer the others.
    """

    def __init__(self, app: WSGIApplication, latency: Latency, timeline: CallTimeline) -> None:
        self.app = app
        self.latency = latency
        self.timeline = timeline

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        arrived_at = time.time()
        try:
            delay = self.latency.delay_for(method, path)
            if delay > 0:
                time.sleep(delay)
            return self.app(environ, start_response)
        finally:
            # Also when a fault drops the connection: the caller stopped waiting then.
            self.timeline.record(
                method, path, arrived_at, time.time(), environ.get("HTTP_TRACEPARENT")
            )
