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
import uuid

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import InvalidRequest

access_log = logging.getLogger("checkout.access")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


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


def csp_nonce() -> str:
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return str(nonce)


def _content_security_policy(app: Flask) -> str:
    from urllib.parse import urlsplit

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    script = origin(app.config["RECAPTCHA_SCRIPT_URL"])
    issuer = origin(app.config["OAUTH_ISSUER"])
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{{nonce}}' {script}; "
        "style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {script}; frame-src {script}; "
        f"form-action 'self' {issuer}; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )


def init_app(app: Flask) -> None:
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    csp = _content_security_policy(app)
    production = app.config["ENV"] != "development"

    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    # The same on every answer: added in one call, which matters on the hot path.
    fixed = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if production:
        fixed.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))

    @app.after_request
    def finish(response: Response) -> Response:
        path = request.path
        request_id = g.get("request_id", "")
        headers = response.headers
        headers.extend(fixed)
        headers["X-Request-ID"] = request_id
        if path.startswith("/api/"):
            headers["Content-Security-Policy"] = _API_CSP  # JSON: nothing to run or frame
        else:
            headers["Content-Security-Policy"] = csp.replace("{nonce}", csp_nonce())
        if "Cache-Control" not in headers and not path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        started = g.get("started")
        duration = (time.perf_counter() - started) * 1000 if started else 0.0
        record = {
            "event": "request",
            "requestId": request_id,
            "method": request.method,
            "path": path[:200],
            "status": response.status_code,
            "durationMs": round(duration, 1),
        }
        access_log.info(json.dumps(record))
        return response
