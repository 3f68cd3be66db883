"""OpenTelemetry traces (app/ops/tracing.py), as operators would see them: the app under
gunicorn exporting OTLP over HTTP to a collector, the sandbox as the partner.

The collector here is a few lines of `http.server` that decode what the exporter sends
(opentelemetry-proto's messages, the exporter's own dependency) and keep it. Each test
starts its own app process: the session's `app_server` runs with tracing off, as every
other test expects.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from sandbox.stack import Service, app_service, free_port, wait_for
from tests.conftest import Sandbox
from tests.integration.conftest import Partner, assert_problem

# version, trace id, parent (span) id, flags: sampled (01), and random (02) from SDK 1.4x.
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[13]$")
SERVER, CLIENT = ProtoSpan.SPAN_KIND_SERVER, ProtoSpan.SPAN_KIND_CLIENT


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(repr=False)

    def url(self) -> str:
        """The URL a client span called, under either semantic conventions' name."""
        return str(self.attributes.get("url.full") or self.attributes.get("http.url") or "")


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Collector:
    """An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) that keeps every span it gets."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def receive(self, request: Any) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    made = Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        resource=resource,
                    )
                    with self.lock:
                        self.spans.append(made)

    def of(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace, once its request's span has come: it ends after every
        other span of the request, and the export keeps the order spans end in."""

        def whole() -> list[Span]:
            spans = self.of(trace_id)
            ended = any(span.kind == SERVER and span.parent_id is None for span in spans)
            return spans if ended else []

        return wait_for(whole, f"the request span of trace {trace_id} at the collector", within=15)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@dataclass
class Running:
    service: Service
    log: Path

    @property
    def url(self) -> str:
        return self.service.url

    def log_line(self, request_id: str) -> dict[str, Any]:
        """The access-log line of one request (app/web/middleware.py)."""

        def found() -> dict[str, Any] | None:
            for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("{") and f'"requestId":"{request_id}"' in line:
                    return dict(json.loads(line))
            return None

        return wait_for(found, f"the log line of request {request_id}", within=5)


def start_app(env: dict[str, str], log: Path, *, workers: int = 1) -> Running:
    """The app with these settings and no OTEL_* variable from the test's own environment."""
    service = app_service(free_port(), env, workers=workers)
    for name in [n for n in service.env if n.startswith("OTEL_") and n not in env]:
        del service.env[name]
    return Running(service.start(log_path=log), log)


def traced_env(app_env: dict[str, str], collector: Collector, **more: str) -> dict[str, str]:
    return {
        **app_env,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms; the default is 5 s
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        **more,
    }


@pytest.fixture(scope="module")
def traced(
    app_env: dict[str, str], collector: Collector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The app under gunicorn, one worker, exporting OTLP to the collector."""
    running = start_app(
        traced_env(app_env, collector), tmp_path_factory.mktemp("traced") / "app.log"
    )
    yield running
    running.service.stop()


@pytest.fixture(scope="module")
def untraced(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The app as `make run` serves it, with no OTEL_* variable at all."""
    running = start_app(app_env, tmp_path_factory.mktemp("untraced") / "app.log", workers=0)
    yield running
    running.service.stop()


def test_a_change_is_one_trace_from_the_checkout_to_the_backend_and_siteverify(
    traced: Running, collector: Collector, sandbox: Sandbox
):
    alice = Partner(traced.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    before = len(sandbox.calls())
    response = alice.update({"addOffers": ["OFFER-SPORTS"]})
    assert response.status_code == 200, response.text

    trace_id = traced.log_line(response.headers["X-Request-ID"])["trace_id"]
    calls = sandbox.calls()[before:]
    assert {"siteverify", "quote"} <= {call["endpoint"] for call in calls}
    carried = [TRACEPARENT.match(call["traceparent"] or "") for call in calls]
    assert all(carried), [call["traceparent"] for call in calls]
    assert {found[1] for found in carried if found} == {trace_id}

    spans = collector.trace(trace_id)
    (root,) = [span for span in spans if span.parent_id is None]
    assert (root.kind, root.name) == (SERVER, "PUT /api/v1/checkout/basket")
    assert "checkout.problem.code" not in root.attributes
    ids = {span.span_id for span in spans}
    assert all(span.parent_id in ids for span in spans if span is not root)
    # Each call the sandbox saw came from one of the trace's client spans: siteverify's
    # too, though it runs on the fan-out pool beside the quote.
    clients = {span.span_id for span in spans if span.kind == CLIENT}
    assert {found[2] for found in carried if found} <= clients
    assert any(span.attributes.get("db.system") == "redis" for span in spans)
    assert root.resource["service.name"] == "partner-subscription-checkout"
    assert root.resource["deployment.environment"] == "test"


def test_a_pages_session_read_is_a_child_of_its_request(traced: Running, collector: Collector):
    """The session is read by the request's own hook, inside its span (app/web/sessions.py)."""
    browser = requests.Session()
    link = traced.url + "/start?subscription=SUB-1001&offer=OFFER-SPORTS"
    assert browser.get(link, timeout=5).status_code == 200
    assert browser.cookies.get("checkout_session")
    request_id = f"page-{uuid.uuid4().hex}"
    again = browser.get(link, headers={"X-Request-ID": request_id}, timeout=5)
    assert again.status_code == 200

    spans = collector.trace(traced.log_line(request_id)["trace_id"])
    (root,) = [span for span in spans if span.parent_id is None]
    assert (root.kind, root.name) == (SERVER, "GET /start")
    (read,) = [span for span in spans if span.name == "GETEX"]
    assert read.kind == CLIENT and read.parent_id == root.span_id
    # No Redis command of a page is a trace of its own.
    orphans = [s.name for s in collector.spans if s.parent_id is None and s.kind == CLIENT]
    assert orphans == []


def test_the_identity_providers_keys_are_fetched_inside_a_request(
    traced: Running, collector: Collector, sandbox: Sandbox
):
    """Tokens are checked against the provider's keys, fetched once per process by the
    first API request: a client span of that request's trace."""
    alice = Partner(traced.url, sandbox.token("alice"))
    assert alice.get().status_code in (200, 404)
    keys = wait_for(
        lambda: [s for s in collector.spans if s.url().endswith("/oauth/jwks")],
        "a span of the provider's keys",
        within=15,
    )
    fetch = keys[0]
    assert fetch.kind == CLIENT and fetch.parent_id is not None
    spans = collector.trace(fetch.trace_id)
    assert any(span.kind == SERVER and span.name.endswith("/checkout/basket") for span in spans)


def test_the_log_line_carries_the_trace_and_its_request_span_the_problem(
    traced: Running, collector: Collector, sandbox: Sandbox
):
    alice = Partner(traced.url, sandbox.token("alice"))
    alice.create()
    response = alice.update({"addOffers": "OFFER-SPORTS"})
    assert_problem(response, 400, "invalid_request")

    line = traced.log_line(response.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
    (root,) = [span for span in collector.trace(line["trace_id"]) if span.parent_id is None]
    assert root.attributes["checkout.problem.code"] == "invalid_request"
    status = root.attributes.get(
        "http.response.status_code", root.attributes.get("http.status_code")
    )
    assert status == 400


def test_with_tracing_off_nothing_reaches_the_partner_or_the_log(
    untraced: Running, sandbox: Sandbox
):
    alice = Partner(untraced.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    response = alice.update({"addOffers": ["OFFER-SPORTS"]})
    assert response.status_code == 200, response.text

    calls = sandbox.calls()
    assert {"siteverify", "quote"} <= {call["endpoint"] for call in calls}
    assert [call["traceparent"] for call in calls] == [None] * len(calls)
    line = untraced.log_line(response.headers["X-Request-ID"])
    assert line["status"] == 200 and "trace_id" not in line


def test_a_worker_sends_the_spans_it_holds_when_it_stops(
    app_env: dict[str, str], collector: Collector, tmp_path: Path
):
    """With a batch delay longer than the test, only the worker's exit sends its spans."""
    env = traced_env(app_env, collector, OTEL_BSP_SCHEDULE_DELAY="600000")
    running = start_app(env, tmp_path / "app.log")
    try:
        request_id = f"stopping-{uuid.uuid4().hex}"
        response = requests.get(
            running.url + "/healthz", headers={"X-Request-ID": request_id}, timeout=5
        )
        assert response.status_code == 200
        trace_id = running.log_line(request_id)["trace_id"]
        assert collector.of(trace_id) == []
    finally:
        running.service.stop()
    (span,) = collector.trace(trace_id)
    assert (span.kind, span.name) == (SERVER, "GET /healthz")
