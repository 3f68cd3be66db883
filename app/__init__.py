"""Partner Subscription Checkout: the app factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from . import (
    api,
    config,
    deadline,
    errors,
    fanout,
    funnel,
    health,
    landing,
    metrics,
    middleware,
    ops,
    overload,
    services,
    sessions,
    signin,
    views,
)
from .extensions import csrf

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
    app.config.from_object(config.Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("CHECKOUT")
    if test_config:
        app.config.from_mapping(test_config)
    config.normalise(app.config)
    config.check_redis(app.config)
    config.check_production(app.config)
    _configure_logging(app)

    middleware.init_app(app)
    metrics.init_app(app)  # before the in-flight bound: a request turned away is counted
    overload.init_app(app)
    deadline.init_app(app)
    services.init_app(app)
    funnel.init_app(app)
    fanout.init_app(app)
    landing.init_app(app)
    sessions.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(api.bp)  # Bearer tokens, not cookies, authenticate the JSON API
    csrf.exempt(health.bp)
    csrf.exempt(metrics.bp)
    ops.init_app(app)
    signin.init_app(app)
    views.init_app(app)
    errors.register_error_handlers(app)
    return app


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("checkout.access").setLevel(logging.INFO)
    # The development server's own request lines carry query strings (the sign-in
    # callback's code and state); our access log has the path only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
