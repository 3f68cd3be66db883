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

What is measured: nothing here is called by the parts it measures. They announce what
happens (app/signals.py) and the receivers below count it into the current app's
instruments; the requests themselves are timed by a WSGI wrapper around the whole app.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    has_app_context,
    has_request_context,
    request,
)

from .. import signals
from ..adapters.outbox import Outbox
from ..adapters.storage import FAILURES
from ..checkout.errors import CheckoutError, Unauthorized
from ..checkout.events import BasketCreated, Event, OrderPlaced
from ..web.problems import Forbidden, ServerBusy
from ..web.services import services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION = "checkout.metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "(unmatched)"
_ROUTE = "checkout.route"  # the environ key of the matched route's template
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
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
            "Requests being served (probes and static files too, which the bound lets be)",
            multiprocess_mode="livesum",
            **kw,
        )
        self.shed = Counter(
            "checkout_requests_shed", "Requests turned away at the in-flight bound", **kw
        )

    def exposition(self, outbox: Outbox) -> tuple[bytes, str]:
        """The text format: in multiprocess mode, every process's values summed; and the
        partner events' figures, read from Redis, where every deliverer keeps them."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        if self.registry is None:
            MultiProcessCollector(registry)
        else:
            registry.register(self.registry)  # a registry collects like any collector
        registry.register(_Deliveries(outbox))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Deliveries:
    """The partner events' deliveries, as the deliverers recorded them in Redis."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            counts = self.outbox.counts()
            depth, oldest = self.outbox.backlog()
            failed = self.outbox.failed_count()
        except FAILURES as exc:
            signals.redis_failed.send(exc)
            return
        attempts = CounterMetricFamily(
            "checkout_webhook_attempts",
            "Attempts to deliver partner events, by type and outcome (delivered, retry, failed)",
            labels=["type", "outcome"],
        )
        deliveries = CounterMetricFamily(
            "checkout_webhook_deliveries",
            "Partner events delivered, or given up on after the last attempt, by type",
            labels=["type", "outcome"],
        )
        for (kind, outcome), n in sorted(counts.items()):
            attempts.add_metric([kind, outcome], n)
            if outcome != "retry":
                deliveries.add_metric([kind, outcome], n)
        yield attempts
        yield deliveries
        yield GaugeMetricFamily(
            "checkout_webhook_queue_depth", "Partner events not yet delivered", value=depth
        )
        yield GaugeMetricFamily(
            "checkout_webhook_oldest_undelivered_seconds",
            "Age of the oldest partner event not yet delivered (0: none waiting)",
            value=oldest or 0.0,
        )
        yield GaugeMetricFamily(
            "checkout_webhook_failed_events",
            "Partner events kept after their last attempt failed, for operators to send again",
            value=failed,
        )


class Measured:
    """Every request, whichever part of the stack answers it: counted by route template
    (never the raw path), method and status, timed, and in flight meanwhile."""

    def __init__(self, wsgi_app: WSGIApplication, measured: Metrics) -> None:
        self.wsgi_app = wsgi_app
        self.measured = measured

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ""

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            status = status_line
            return start_response(status_line, headers, exc_info)

        self.measured.in_flight.inc()
        try:
            return self.wsgi_app(environ, start)
        finally:
            self.measured.in_flight.dec()
            code = status[:3] if status[:3].isdigit() else "500"
            route = _route(environ)
            method = environ.get("REQUEST_METHOD", "")
            method = method if method in _METHODS else "other"  # a label set we bound
            self.measured.requests.labels(route, method, code).inc()
            self.measured.request_seconds.labels(route).observe(time.perf_counter() - started)


def _route(environ: WSGIEnvironment) -> str:
    return str(environ.get(_ROUTE, UNMATCHED))


def _note_route(_: BaseException | None) -> None:
    """The template of the route Flask matched, kept for `Measured` once the request's
    context is gone (a teardown runs for every request, one turned away included)."""
    rule = request.url_rule
    request.environ[_ROUTE] = rule.rule if rule is not None else UNMATCHED


def metrics() -> Metrics | None:
    """The current app's instruments; None outside an app."""
    return current_app.extensions.get(EXTENSION) if has_app_context() else None


def _counting(receive: Callable[..., None]) -> Callable[..., None]:
    """A receiver that counts into the current app's instruments, if there is an app."""

    def receiver(sender: Any, **kw: Any) -> None:
        measured = metrics()
        if measured is not None:
            receive(measured, sender, **kw)

    return receiver


def channel() -> str:
    """`api` for the JSON API, `browser` for the pages."""
    if has_request_context() and request.blueprint == "api":
        return "api"
    return "browser"


def _event(measured: Metrics, event: Event) -> None:
    if isinstance(event, BasketCreated):
        measured.baskets_created.labels(channel()).inc()
    elif isinstance(event, OrderPlaced):
        measured.orders_submitted.labels(channel()).inc()


def _upstream(measured: Metrics, service: str, *, outcome: str, seconds: float) -> None:
    measured.upstream_seconds.labels(service).observe(seconds)
    measured.upstream_calls.labels(service, outcome).inc()


def _problem(measured: Metrics, error: CheckoutError, *, status: int) -> None:
    measured.problems.labels(str(status), error.code).inc()
    if isinstance(error, ServerBusy):
        measured.shed.inc()


# Connected once, for every app: each counts into its own app's instruments.
_RECEIVERS: dict[Any, Callable[..., None]] = {
    signals.checkout_event: _event,
    signals.upstream_called: _upstream,
    signals.problem_answered: _problem,
    signals.circuit_changed: lambda m, service, is_open: m.circuit_open.labels(service).set(
        1 if is_open else 0
    ),
    signals.redis_failed: lambda m, exc: m.redis_errors.labels(type(exc).__name__).inc(),
    signals.write_unreplicated: lambda m, _: m.unreplicated.inc(),
    signals.recaptcha_checked: lambda m, outcome: m.recaptcha.labels(outcome).inc(),
}
for _signal, _receive in _RECEIVERS.items():
    _signal.connect(_counting(_receive), weak=False)


def init_app(app: Flask) -> None:
    measured = app.extensions[EXTENSION] = Metrics()
    app.wsgi_app = Measured(app.wsgi_app, measured)  # type: ignore[method-assign]
    app.teardown_request(_note_route)
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
    measured = metrics()
    assert measured is not None
    body, content_type = measured.exposition(services().outbox)
    return Response(body, content_type=content_type)
