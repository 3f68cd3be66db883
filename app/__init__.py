"""Partner Subscription Checkout: the app factory."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from . import api, config, errors, health, landing, middleware, services, sessions, signin, views
from .extensions import csrf
from .fastjson import OrjsonProvider
from .templating import Environment

ROOT = Path(__file__).resolve().parent.parent


class CheckoutApp(Flask):
    """Flask, rendering with our Jinja environment (templating.py), and remembering
    which of its functions are async."""

    jinja_environment = Environment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._async: dict[Callable[..., Any], bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's, with the answer remembered per function.

        Flask asks for every hook, context processor and view on every request, and
        `inspect.iscoroutinefunction` answering afresh was 2 % of a GET's instructions.
        The functions asked about are the ones registered with this app: a fixed few.
        """
        is_async = self._async.get(func)
        if is_async is None:
            is_async = self._async[func] = inspect.iscoroutinefunction(func)
        return self.async_to_sync(func) if is_async else func


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then instance/config.py, then CHECKOUT_* variables, then `test_config`."""
    app = CheckoutApp(
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
    config.check_production(app.config)
    app.json = OrjsonProvider(app)
    _configure_logging(app)

    middleware.init_app(app)
    services.init_app(app)
    landing.init_app(app)
    sessions.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(api.bp)  # Bearer tokens, not cookies, authenticate the JSON API
    csrf.exempt(health.bp)
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
