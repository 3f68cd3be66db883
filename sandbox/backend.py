"""The partner's subscription API (``/backend/v1``), spoken as the checkout's client expects.

Reads, quotes and orders name offers and plans in the language of the call's
``Accept-Language`` (``en`` or ``cy``), and say which (``Content-Language``, ``Vary``);
so do promotion lookups and the refusal of a promotion code, whose message is for the
customer.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.language import ENGLISH, LANGUAGES
from sandbox.settings import get_settings
from sandbox.state import get_state
from sandbox.subscriptions import BackendError

bp = Blueprint("backend", __name__, url_prefix="/backend/v1")

#: printable ASCII, 1 to 255 characters (RFC 9110 field value without obs-text)
MAX_IDEMPOTENCY_KEY = 255


@bp.before_request
def require_service_token() -> Response | None:
    """Every call must carry the partner's service credential, as the real backend demands."""
    if request.endpoint == "backend.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = get_settings().backend_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        response = _error(BackendError(401, "unauthorized", "A valid service token is required."))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


@bp.errorhandler(BackendError)
def _error(error: BackendError) -> Response:
    response = jsonify(error.to_json())
    response.status_code = error.status
    if error.language is not None:
        _in_language(response, error.language)
    return response


def _language() -> str:
    """The language the call asks for, of those the partner answers in; English by default."""
    return request.accept_languages.best_match(LANGUAGES, default=ENGLISH)


def _in_language(response: Response, language: str) -> Response:
    """Mark an answer that names things in ``language``, and that another would name otherwise."""
    response.headers["Content-Language"] = language
    response.vary.add("Accept-Language")
    return response


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise BackendError(400, "invalid_request", "The body must be JSON.")
    return body


@bp.get("/subscriptions/<subscription_id>")
def get_subscription(subscription_id: str) -> Response:
    language = _language()
    return _in_language(jsonify(get_state().subscriptions.get(subscription_id, language)), language)


@bp.get("/subscriptions/<subscription_id>/promotions/<code>")
def promotion(subscription_id: str, code: str) -> Response:
    """Check a campaign's code for a subscription, as a marketing link brings it."""
    language = _language()
    found = get_state().subscriptions.promotion(subscription_id, code, language)
    return _in_language(jsonify(found), language)


@bp.post("/subscriptions/<subscription_id>/quotes")
def quote(subscription_id: str) -> Response:
    language = _language()
    quoted = get_state().subscriptions.quote(subscription_id, _json_body(), language)
    return _in_language(jsonify(quoted), language)


@bp.post("/orders")
def order() -> tuple[Response, int]:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in key):
        raise BackendError(
            400, "invalid_request", "Idempotency-Key must be 1-255 printable characters."
        )
    language = _language()
    placed, created = get_state().subscriptions.place_order(key, _json_body(), language)
    return _in_language(jsonify(placed), language), 201 if created else 200


@bp.get("/openapi.json")
def openapi() -> Response:
    """The contract of this API, kept beside the code that implements it."""
    document = resources.files("sandbox").joinpath("openapi.json").read_bytes()
    return Response(document, mimetype="application/json")
