"""Tracing's switch and what the request layer reads of it (app/ops/tracing.py).

Nothing here turns tracing on: instrumentation is for the whole process, and these tests
share theirs with every other. tests/integration/test_tracing.py runs the app with it on.
"""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from app import create_app, gunicorn_config
from app.config import ConfigError
from app.ops import tracing


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell running the tests exports, each test says what it sets."""
    import os

    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": ""},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": " TRUE "},
    ],
)
def test_off_unless_an_exporter_is_named(environ: dict[str, str]):
    assert tracing.exporter_names(environ) == []


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("console", ["console"]),
        (" OTLP ", ["otlp"]),
        ("otlp,console", ["otlp", "console"]),
        ("console,none,console", ["console"]),
    ],
)
def test_the_exporters_are_the_ones_named(given: str, names: list[str]):
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": given}) == names


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
    ],
)
def test_an_exporter_the_checkout_does_not_have_is_refused(environ: dict[str, str], named: str):
    """Better no start than traces an operator waits for and never gets."""
    with pytest.raises(ConfigError, match=named):
        tracing.exporter_names(environ)


def test_the_traces_protocol_is_read_before_the_general_one():
    environ = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",  # for the other signals
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert tracing.exporter_names(environ) == ["otlp"]


def test_a_refused_exporter_stops_the_app_before_it_serves(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER=jaeger"):
        create_app()


def test_with_tracing_off_nothing_is_instrumented_and_the_log_has_no_trace_id(
    caplog: pytest.LogCaptureFixture,
):
    app = create_app()
    with caplog.at_level(logging.INFO, logger="checkout.access"):
        assert app.test_client().get("/healthz").status_code == 200
    [record] = [r for r in caplog.records if r.name == "checkout.access"]
    assert "trace_id" not in json.loads(record.getMessage())
    assert tracing.provider() is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # the API's own
    assert not RequestsInstrumentor().is_instrumented_by_opentelemetry
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry
    gunicorn_config.worker_exit(None, None)  # nothing to flush, and no error


def test_the_log_line_names_the_trace_of_the_current_span(caplog: pytest.LogCaptureFixture):
    """The access log reads the trace id through the API alone: any current span's."""
    app = create_app()
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with caplog.at_level(logging.INFO, logger="checkout.access"):
        with trace.use_span(NonRecordingSpan(context)):
            app.test_client().get("/healthz")
    [record] = [r for r in caplog.records if r.name == "checkout.access"]
    assert json.loads(record.getMessage())["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("/auth/callback?code=c0de&state=s7", "/auth/callback?code=REDACTED&state=REDACTED"),
        ("/start?subscription=SUB-1001&lang", "/start?subscription=REDACTED&lang=REDACTED"),
        ("/healthz", "/healthz"),
        ("http://shop.example/basket?", "http://shop.example/basket?"),
    ],
)
def test_a_spans_url_keeps_the_query_names_only(url: str, redacted: str):
    assert tracing.redacted(url) == redacted
