"""OpenTelemetry traces of each request and of the calls it makes; off unless configured.

Only the standard variables configure it (docs/operators/tracing.md): `OTEL_TRACES_EXPORTER`
names the exporters, `console` or `otlp` (OTLP over HTTP with protobuf), and the SDK reads
the rest itself: `OTEL_EXPORTER_OTLP_*` the exporter, `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` the resource, `OTEL_TRACES_SAMPLER[_ARG]` the sampler, `OTEL_BSP_*`
the batching. Unset or `none`, or with `OTEL_SDK_DISABLED=true`, nothing is patched and no
SDK object is made: `init_app` returns at once.

When on, the first app made in a process makes the process's `TracerProvider` (one batch
processor, with its thread, per exporter) and instruments `requests` and redis-py for the
whole process: every upstream call (the backend, siteverify, the identity provider, Authlib's
sign-in included) is a client span that sends W3C `traceparent`, and every Redis command or
pipeline is a span. Each app made gets a server span per request (Flask instrumentation),
which carries the problem code when a problem is answered (`signals.problem_answered`).

Under gunicorn the app is made in each worker, after the fork (no preload), so each worker
has its own provider and thread; `worker_exit` in app/gunicorn_config.py calls `shutdown`
so the spans a worker holds are sent before it goes. Elsewhere (tests, `make run`, the
deliverer) the SDK flushes them when the process exits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask
from opentelemetry import trace

from .. import signals
from ..checkout.errors import CheckoutError
from ..config import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXPORTERS = ("console", "otlp")
OTLP_PROTOCOL = "http/protobuf"
# The request span's attribute that names the problem answered (app/web/problems.py).
PROBLEM = "checkout.problem.code"
# Where the instrumentation writes the request's query string: `http.target` and
# `http.url` by default, `url.query` with OTEL_SEMCONV_STABILITY_OPT_IN=http.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.query")
# service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES gives one.
SERVICE_NAME = "partner-subscription-checkout"

_made: list[TracerProvider] = []  # this process's provider, once made
_lock = threading.Lock()


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names: none when it is unset or `none`, or when
    `OTEL_SDK_DISABLED` is `true`. An exporter this checkout does not ship, or OTLP over
    another protocol than HTTP with protobuf, is a `ConfigError` naming the variable."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    given = environ.get("OTEL_TRACES_EXPORTER", "")
    names = [name.strip().lower() for name in given.split(",") if name.strip()]
    names = [name for name in names if name != "none"]
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={given}: {', '.join(unknown)} is not an exporter this"
            f" checkout has; use {' or '.join(EXPORTERS)}, or none"
        )
    if "otlp" in names:
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = environ.get(variable, "").strip()
            if protocol:
                if protocol != OTLP_PROTOCOL:
                    raise ConfigError(
                        f"{variable}={protocol}: this checkout exports OTLP over"
                        f" {OTLP_PROTOCOL} only"
                    )
                break
    return list(dict.fromkeys(names))


def provider() -> TracerProvider | None:
    """This process's tracer provider; None while tracing is off."""
    return _made[0] if _made else None


def init_app(app: Flask) -> None:
    """Give `app` a span per request when tracing is configured; else do nothing.

    Called first in `create_app`: the span opens before every other `before_request` hook
    and closes after the last teardown, so the session's read (app/web/sessions.py), the
    guards' round trip and the funnel's write are inside it.
    """
    made = _process_provider()
    if made is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    FlaskInstrumentor.instrument_app(
        app,
        tracer_provider=made,
        response_hook=_redact_query,
        # Metrics stay Prometheus' (app/ops/metrics.py); there is no SQL to comment.
        meter_provider=NoOpMeterProvider(),
        enable_commenter=False,
    )


def shutdown() -> None:
    """Send the spans still held and stop the export threads (a gunicorn worker's exit)."""
    made = provider()
    if made is not None:
        made.shutdown()


def _process_provider() -> TracerProvider | None:
    """The process's provider, made with the instrumentation on first use; None when off."""
    if _made:
        return _made[0]
    names = exporter_names(os.environ)
    if not names:
        return None
    with _lock:
        if not _made:
            _made.append(_instrument(names))
    return _made[0]


def _instrument(names: list[str]) -> TracerProvider:
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    made = TracerProvider(resource=_resource())  # the sampler from OTEL_TRACES_SAMPLER
    for name in names:
        made.add_span_processor(BatchSpanProcessor(_exporter(name)))  # OTEL_BSP_*
    trace.set_tracer_provider(made)
    RequestsInstrumentor().instrument(tracer_provider=made, meter_provider=NoOpMeterProvider())
    RedisInstrumentor().instrument(tracer_provider=made)
    signals.problem_answered.connect(_problem_answered, weak=False)
    return made


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT…


def _resource() -> Resource:
    """The SDK's resource from the environment, named after the checkout unless it says."""
    from opentelemetry.sdk.resources import SERVICE_NAME as NAME
    from opentelemetry.sdk.resources import Resource

    found = Resource.create()
    if str(found.attributes.get(NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({NAME: SERVICE_NAME}))
    return found


def _redact_query(span: trace.Span, status: str, headers: list[tuple[str, str]]) -> None:
    """The request's query string stays out of its span as it stays out of the log line:
    the sign-in callback's code travels there. Its names stay, each value `REDACTED` (the
    semantic conventions' placeholder), written when the answer starts over what the
    instrumentation wrote when the request began (the SDK's span is readable)."""
    written = getattr(span, "attributes", None)
    if not written or not span.is_recording():
        return
    for key in _URL_ATTRIBUTES:
        value = written.get(key)
        if isinstance(value, str) and value:
            if key == "url.query":  # the query alone, without its `?`
                span.set_attribute(key, redacted("?" + value)[1:])
            else:
                span.set_attribute(key, redacted(value))


def redacted(url: str) -> str:
    """`/auth/callback?code=x&state=y` as `/auth/callback?code=REDACTED&state=REDACTED`."""
    head, mark, query = url.partition("?")
    if not mark:
        return url
    names = [part.split("=", 1)[0] for part in query.split("&") if part]
    return head + "?" + "&".join(f"{name}=REDACTED" for name in names)


def _problem_answered(error: CheckoutError, **_: Any) -> None:
    """The request's span says which problem it answered."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(PROBLEM, error.code)
