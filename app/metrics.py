"""Prometheus metrics at `/metrics`, through `prometheus_client`.

Under gunicorn every worker is its own process, so the counters live in prometheus_client's
multiprocess mode: each process writes its values to files in `PROMETHEUS_MULTIPROC_DIR`,
and a scrape, whichever worker answers it, sums them all. app/gunicorn_config.py makes
that directory fresh when gunicorn starts and tells it when a worker dies. Without the
variable (the development server, the in-process tests) each app counts in memory, in a
registry of its own.

`prometheus_client` picks its storage when it is first imported, so it is imported here
when the app is made, never when `app` is: gunicorn's master imports `app` (for its
settings) before it has set the directory.

What is measured, and where:
- requests by route template (never the raw path), method and status, and latency by
  route (app/middleware.py);
- upstream calls by service (backend, siteverify, identity), outcome and latency
  (app/upstream.py, app/signin.py);
- workers whose circuit to the backend is open (app/backend.py);
- Redis errors by class (app/errors.py, app/sessions.py);
- reCAPTCHA outcomes (app/recaptcha.py);
- baskets created and orders submitted by channel (app/checkout.py), and problem answers
  by status and code: the 409s and 503s among them (app/errors.py);
- requests in flight and requests shed (app/overload.py).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    has_app_context,
    has_request_context,
    request,
)

from .errors import Forbidden, Unauthorized

EXTENSION = "checkout.metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "(unmatched)"
ROUTE = "checkout.route"  # the environ key of the matched route template
# Seconds: from a cached read to a request that waited out its whole deadline.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

bp = Blueprint("metrics", __name__)


class Metrics:
    """The app's instruments; in multiprocess mode their values are shared through files."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        # Multiprocess: values go to the files, and a scrape reads them all (`exposition`).
        self.registry: Any = None if self.multiprocess else CollectorRegistry()
        kw: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "checkout_requests", "Requests answered", ["route", "method", "status"], **kw
        )
        self.request_seconds = Histogram(
            "checkout_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=_REQUEST_BUCKETS,
            **kw,
        )
        self.upstream_calls = Counter(
            "checkout_upstream_calls", "Calls to other services", ["service", "outcome"], **kw
        )
        self.upstream_seconds = Histogram(
            "checkout_upstream_duration_seconds",
            "Time a call to another service took",
            ["service"],
            buckets=_UPSTREAM_BUCKETS,
            **kw,
        )
        self.circuit_open = Gauge(
            "checkout_circuit_breaker_open",
            "Workers whose circuit to the service is open (0: closed everywhere)",
            ["service"],
            multiprocess_mode="livesum",
            **kw,
        )
        self.redis_errors = Counter(
            "checkout_redis_errors", "Redis commands that failed", ["error"], **kw
        )
        self.unreplicated = Counter(
            "checkout_redis_unreplicated_writes",
            "Basket writes answered before CHECKOUT_REDIS_MIN_REPLICAS replicas had them",
            **kw,
        )
        self.recaptcha = Counter(
            "checkout_recaptcha_outcomes", "reCAPTCHA checks by outcome", ["outcome"], **kw
        )
        self.baskets_created = Counter(
            "checkout_baskets_created", "Baskets created", ["channel"], **kw
        )
        self.orders_submitted = Counter(
            "checkout_orders_submitted", "Orders the backend accepted", ["channel"], **kw
        )
        self.problems = Counter(
            "checkout_problems", "Problem answers by status and code", ["status", "code"], **kw
        )
        self.in_flight = Gauge(
            "checkout_requests_in_flight",
            "Requests being served (the in-flight bound applies to these)",
            multiprocess_mode="livesum",
            **kw,
        )
        self.shed = Counter(
            "checkout_requests_shed", "Requests turned away at the in-flight bound", **kw
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text format: in multiprocess mode, every process's values summed."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = self.registry
        if registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @contextmanager
    def upstream(self, service: str) -> Iterator[dict[str, str]]:
        """Time one call to `service`. The block may name its outcome
        (`outcome["outcome"] = "5xx"`); else it is `ok`, or `error` if the block raised."""
        started = time.perf_counter()
        outcome = {"outcome": ""}
        try:
            yield outcome
        except BaseException:
            outcome["outcome"] = outcome["outcome"] or "error"
            raise
        finally:
            self.upstream_seconds.labels(service).observe(time.perf_counter() - started)
            self.upstream_calls.labels(service, outcome["outcome"] or "ok").inc()


def upstream_call(service: str) -> AbstractContextManager[dict[str, str]]:
    """`Metrics.upstream` for this app, or nothing to count into outside one."""
    return metrics().upstream(service) if has_app_context() else nullcontext({"outcome": ""})


def status_class(status: int) -> str:
    """An upstream answer's outcome: `2xx`, `4xx`, `5xx`…"""
    return f"{status // 100}xx"


def metrics() -> Metrics:
    found: Metrics = current_app.extensions[EXTENSION]
    return found


def count_redis_error(exc: BaseException) -> None:
    if has_app_context():
        metrics().redis_errors.labels(type(exc).__name__).inc()


def count_basket_created() -> None:
    if has_app_context():
        metrics().baskets_created.labels(channel()).inc()


def count_order_submitted() -> None:
    if has_app_context():
        metrics().orders_submitted.labels(channel()).inc()


def channel() -> str:
    """`api` for the JSON API, `browser` for the pages."""
    if has_request_context() and request.blueprint == "api":
        return "api"
    return "browser"


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Metrics()

    @app.before_request
    def _route() -> None:
        """Noted first, so that a request turned away later is counted by its route too."""
        rule = request.url_rule
        request.environ[ROUTE] = rule.rule if rule is not None else UNMATCHED

    app.register_blueprint(bp)


@bp.get("/metrics")
def scrape() -> Response:
    """Open in development; with `METRICS_TOKEN` set, `Authorization: Bearer <token>`."""
    expected = str(current_app.config["METRICS_TOKEN"] or "")
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Unauthorized("metrics need a Bearer token")
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise Forbidden("not the metrics token")
    body, content_type = metrics().exposition()
    return Response(body, content_type=content_type)
