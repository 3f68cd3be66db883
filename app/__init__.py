"""Partner Subscription Checkout: the app factory.

Where a request goes, and which folder to open (docs/architecture.md has the whole map):

    checkout/   the rules, the basket and its refusals: plain Python
    adapters/   Redis, the subscription backend, reCAPTCHA, tokens: the outside world
    web/        what every request gets: ids, headers, session, CSRF, one answer per refusal
    pages/      the customer's journey, and signing in
    api/        the partners' JSON API and its OpenAPI description
    ops/        metrics, the marketing funnel, the ops pages, health: observing the rest
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from . import adapters, api, config, ops, pages, web
from .ops import tracing

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then instance/config.py, then CHECKOUT_* variables, then `test_config`."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config.load(app.config, test_config)
    _configure_logging()
    tracing.init_app(app)  # OpenTelemetry if OTEL_TRACES_EXPORTER says: first in, last out
    # Each layer is built on the ones before it; the order of the hooks each installs is
    # the order a request meets them.
    web.init_app(app, adapters.build(app.config))  # the outside world, then every request's
    api.init_app(app)  # the partners' three operations
    pages.init_app(app)  # the customer's journey and sign-in
    ops.init_app(app)  # metrics, funnel, ops pages, health: listening to all of the above
    return app


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("checkout.access").setLevel(logging.INFO)
    # The development server's own request lines carry query strings (the sign-in
    # callback's code and state); our access log has the path only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
