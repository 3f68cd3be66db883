"""What every request gets: a request id, the client's address, security headers, one log line.

The log line carries no query string, header or cookie value: tokens and codes travel
there, and logs are read by more people than should see them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, request
from opentelemetry import trace
from werkzeug.middleware.proxy_fix import ProxyFix

from ..checkout.errors import InvalidRequest
from .routes import kind_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

access_log = logging.getLogger("checkout.access")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
_ENV_REQUEST_ID = "checkout.request_id"
_ENV_NONCE = "checkout.csp_nonce"


def client_ip() -> str | None:
    """The customer's address: `X-Client-IP` from a partner, else the connection's peer.

    `request.remote_addr` already went through `ProxyFix` with the configured number of
    trusted proxies, so a forged X-Forwarded-For beyond them is ignored.
    """
    given = request.headers.get("X-Client-IP")
    if given is not None:
        try:
            return str(ipaddress.ip_address(given.strip()))
        except ValueError as exc:
            raise InvalidRequest("X-Client-IP is not an IP address") from exc
    return request.remote_addr


def request_id() -> str:
    """This request's id: the caller's `X-Request-ID` when well-formed, else a new one."""
    return str(request.environ.get(_ENV_REQUEST_ID, ""))


def csp_nonce() -> str:
    """A nonce for this page's scripts, made on first use; the policy header names it."""
    environ = request.environ
    nonce = environ.get(_ENV_NONCE)
    if nonce is None:
        nonce = environ[_ENV_NONCE] = secrets.token_urlsafe(16)
    return str(nonce)


def _content_security_policy(app: Flask, nonce: str | None) -> str:
    from urllib.parse import urlsplit

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    script = origin(app.config["RECAPTCHA_SCRIPT_URL"])
    issuer = origin(app.config["OAUTH_ISSUER"])
    scripts = f"'self' 'nonce-{nonce}' {script}" if nonce else f"'self' {script}"
    return (
        "default-src 'self'; "
        f"script-src {scripts}; "
        "style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {script}; frame-src {script}; "
        f"form-action 'self' {issuer}; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )


class Envelope:
    """The WSGI layer around the app: request id, security headers, one access-log line.

    As WSGI middleware it covers every answer, whichever part of the stack made it
    (Flask's own error pages and the static files included).
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app
        self.fixed = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if app.config["ENV"] != "development":
            self.fixed.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
        self.page_csp = _content_security_policy(app, "{nonce}")
        self.page_csp_no_script = _content_security_policy(app, None)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if _REQUEST_ID.match(given) else secrets.token_hex(16)
        environ[_ENV_REQUEST_ID] = rid
        path = environ.get("PATH_INFO", "")
        kind = kind_of(path)
        status = ""
        trace_id = 0

        def start(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            nonlocal status, trace_id
            status = status_line
            # The request's span is current until its teardown, which runs after this
            # (app/ops/tracing.py); with tracing off the span is invalid, its id 0.
            trace_id = trace.get_current_span().get_span_context().trace_id
            headers.extend(self.fixed)
            headers.append(("X-Request-ID", rid))
            if kind.machine:
                csp = _API_CSP  # JSON, CSV, text: nothing to run or frame
            elif (nonce := environ.get(_ENV_NONCE)) is not None:
                csp = self.page_csp.replace("{nonce}", nonce)
            else:
                csp = self.page_csp_no_script
            headers.append(("Content-Security-Policy", csp))
            if not kind.cached and not any(name.lower() == "cache-control" for name, _ in headers):
                headers.append(("Cache-Control", "no-store"))
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            elapsed = time.perf_counter() - started
            code = status[:3] if status[:3].isdigit() else "500"
            if access_log.isEnabledFor(logging.INFO):
                record = {
                    "event": "request",
                    "requestId": rid,
                    "method": environ.get("REQUEST_METHOD", ""),
                    "path": path[:200],
                    "status": int(code),
                    "durationMs": round(elapsed * 1000, 1),
                }
                if trace_id:
                    record["trace_id"] = format(trace_id, "032x")
                access_log.info(json.dumps(record, separators=(",", ":")))


def init_app(app: Flask) -> None:
    proxies = int(app.config["TRUSTED_PROXIES"])
    wsgi_app = app.wsgi_app
    if proxies > 0:
        wsgi_app = ProxyFix(wsgi_app, x_for=proxies, x_proto=proxies)
    app.wsgi_app = Envelope(app, wsgi_app)  # type: ignore[method-assign]
    # Every page, ours and the error pages alike, names its request and its scripts' nonce.
    app.add_template_global(csp_nonce)
    app.add_template_global(request_id)
