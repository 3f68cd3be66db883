"""The sandbox: a stand-in for the partner's systems, for development, demos and tests.

It is its own Flask app and is never imported by ``app/``: the checkout reaches it only
over HTTP, exactly as it would reach the real subscription backend, OAuth provider,
reCAPTCHA and webhook receiver.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from sandbox import backend, control, oauth, recaptcha, webhooks
from sandbox.faults import FaultMiddleware
from sandbox.keys import EXTENSION_KEY as KEY_EXTENSION
from sandbox.keys import load_signing_key
from sandbox.latency import EXTENSION_KEY as LATENCY_EXTENSION
from sandbox.latency import Latency, LatencyMiddleware
from sandbox.settings import EXTENSION_KEY as SETTINGS_EXTENSION
from sandbox.settings import Settings
from sandbox.state import EXTENSION_KEY as STATE_EXTENSION
from sandbox.state import SandboxState
from sandbox.subscriptions import SubscriptionStore
from sandbox.webhooks import WebhookRecorder

__all__ = ["create_app", "Settings"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build a sandbox with fresh demo data; ``settings`` default to the environment."""
    app = Flask(__name__)
    settings = settings or Settings.from_env()
    state = SandboxState(
        subscriptions=SubscriptionStore(quote_ttl=timedelta(seconds=settings.quote_ttl_seconds))
    )
    app.extensions[SETTINGS_EXTENSION] = settings
    app.extensions[KEY_EXTENSION] = load_signing_key(settings.signing_key_file)
    app.extensions[STATE_EXTENSION] = state
    # Beside the state, not in it: a reset brings back the demo data, not the settings.
    latency = Latency(settings.latency, settings.latency_seed)
    app.extensions[LATENCY_EXTENSION] = latency
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order

    app.register_blueprint(backend.bp)
    app.register_blueprint(recaptcha.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(webhooks.bp)
    oauth.init_app(app)
    app.register_error_handler(HTTPException, _http_error)

    app.wsgi_app = FaultMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, state.faults, state.stats.record
    )
    # Outside the faults, so a webhook attempt a fault answered is recorded with its status.
    app.wsgi_app = WebhookRecorder(  # type: ignore[method-assign]
        app.wsgi_app, state.webhooks, settings.webhook_secret
    )
    # Outermost, so a call's timeline spans the added latency, any slow fault and the app.
    app.wsgi_app = LatencyMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, latency, state.calls
    )
    return app


def _http_error(error: HTTPException) -> Response:
    """Routing and method errors answer JSON, like the rest of the machine-facing API."""
    code = (error.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": code, "message": error.description})
    response.status_code = error.code or 500
    return response
