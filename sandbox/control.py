"""Test-only control endpoints under ``/_sandbox/``: reset, inspect, inject faults, mint tokens.

Also the levers a real backend has but does not expose: set a price, expire the quotes,
expire a promotion code, and set the date (a test clock).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.data import CUSTOMERS, money
from sandbox.faults import Fault
from sandbox.keys import get_signing_key
from sandbox.latency import PROFILES, get_latency
from sandbox.settings import get_settings
from sandbox.state import get_state
from sandbox.tokens import mint_access_token

bp = Blueprint("control", __name__, url_prefix="/_sandbox")

#: a price as ``/_sandbox/prices`` takes it: non-negative, at most two decimal places
PRICE = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
#: a day as ``/_sandbox/today`` takes it
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": "invalid_request", "message": message}), 400


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    get_state().reset()
    return "", 204


@bp.post("/unlock")
def unlock() -> ResponseReturnValue:
    """Let a subscription take another order (soak tests); its orders stay on record."""
    body = request.get_json(silent=True)
    subscription_id = body.get("subscriptionId") if isinstance(body, dict) else None
    if not isinstance(subscription_id, str):
        return _bad_request("subscriptionId is required")
    get_state().subscriptions.unlock(subscription_id)
    return "", 204


@bp.post("/prices")
def set_price() -> ResponseReturnValue:
    """Change an offer's or a plan's monthly price from now on, until the next reset."""
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    ids = [name for name in ("offerId", "planId") if name in body]
    if len(ids) != 1 or not isinstance(body[ids[0]], str):
        return _bad_request("give exactly one of offerId and planId, as a string")
    price = body.get("price")
    if not isinstance(price, str) or not PRICE.fullmatch(price):
        return _bad_request('price must be a decimal string >= 0, at most 2 places: "9.00"')
    store = get_state().subscriptions
    try:
        if ids[0] == "offerId":
            item_id = store.set_offer_price(body["offerId"], Decimal(price)).id
        else:
            item_id = store.set_plan_price(body["planId"], Decimal(price)).id
    except ValueError as error:
        return _bad_request(str(error))
    return jsonify({ids[0]: item_id, "price": money(Decimal(price))})


@bp.post("/quotes/expire")
def expire_quotes() -> ResponseReturnValue:
    """End every quote handed out so far, so a test need not wait out their ten minutes."""
    return jsonify({"expired": get_state().subscriptions.expire_quotes()})


@bp.get("/promotions")
def promotions() -> ResponseReturnValue:
    """The demo promotion codes, and whether each is expired now."""
    return jsonify({"promotions": get_state().subscriptions.promotions()})


@bp.post("/promotions/expire")
def expire_promotion() -> ResponseReturnValue:
    """Refuse a code as expired from now on, until the next reset: a campaign that ended."""
    body = request.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str):
        return _bad_request("code is required")
    try:
        promotion = get_state().subscriptions.expire_promotion(code)
    except ValueError as error:
        return _bad_request(str(error))
    return jsonify({"code": promotion.code, "expired": True})


def _today() -> Response:
    day, fixed = get_state().subscriptions.clock_state()
    return jsonify({"today": day.isoformat(), "fixed": fixed})


@bp.get("/today")
def today() -> ResponseReturnValue:
    """The sandbox's today, and whether a test set it."""
    return _today()


@bp.put("/today")
def set_today() -> ResponseReturnValue:
    """Set the sandbox's today (``{"date": "2027-02-27"}``), until DELETE or a reset."""
    body = request.get_json(silent=True)
    value = body.get("date") if isinstance(body, dict) else None
    try:
        if not isinstance(value, str) or not DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        return _bad_request('date must be a day as YYYY-MM-DD: "2027-02-27"')
    get_state().subscriptions.set_today(day)
    return _today()


@bp.delete("/today")
def real_today() -> ResponseReturnValue:
    """Back to the real date."""
    get_state().subscriptions.set_today(None)
    return _today()


@bp.get("/orders")
def orders() -> ResponseReturnValue:
    return jsonify({"orders": get_state().subscriptions.order_records()})


@bp.get("/stats")
def stats() -> ResponseReturnValue:
    return jsonify(get_state().stats.to_json())


@bp.get("/faults")
def list_faults() -> ResponseReturnValue:
    return jsonify({"faults": get_state().faults.pending()})


@bp.post("/faults")
def add_fault() -> ResponseReturnValue:
    try:
        fault = Fault.parse(request.get_json(silent=True))
    except ValueError as error:
        return _bad_request(str(error))
    get_state().faults.add(fault)
    return jsonify(fault.to_json()), 201


@bp.delete("/faults")
def clear_faults() -> ResponseReturnValue:
    get_state().faults.clear()
    return "", 204


@bp.get("/calls")
def calls() -> ResponseReturnValue:
    """When each counted call arrived and was answered, so a test can see overlap."""
    return jsonify({"calls": get_state().calls.to_json()})


@bp.get("/webhooks")
def webhooks() -> ResponseReturnValue:
    """Every attempt at the webhook receiver, in arrival order (sandbox/webhooks.py)."""
    return jsonify({"deliveries": get_state().webhooks.to_json()})


@bp.delete("/webhooks")
def clear_webhooks() -> ResponseReturnValue:
    get_state().webhooks.reset()
    return "", 204


@bp.get("/latency")
def latency() -> ResponseReturnValue:
    return jsonify(get_latency().to_json())


@bp.put("/latency")
def set_latency() -> ResponseReturnValue:
    """Switch the latency profile without a restart, which would lose the demo data."""
    body = request.get_json(silent=True)
    profile = body.get("profile") if isinstance(body, dict) else None
    if not isinstance(profile, str) or profile not in PROFILES:
        return _bad_request(f"profile must be one of {', '.join(PROFILES)}")
    get_latency().set_profile(profile)
    return jsonify(get_latency().to_json())


@bp.post("/token")
def token() -> ResponseReturnValue:
    """An access token without the browser dance, for API tests (also expired or foreign)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("sub") not in CUSTOMERS:
        return _bad_request(f"sub must be one of {', '.join(CUSTOMERS)}")
    settings = get_settings()
    expires_in = body.get("expiresIn", settings.access_token_ttl)
    issuer = body.get("issuer") or settings.issuer
    audience = body.get("audience") or settings.audience
    if not isinstance(expires_in, int) or isinstance(expires_in, bool):
        return _bad_request("expiresIn must be an integer number of seconds")
    if not isinstance(issuer, str) or not isinstance(audience, str):
        return _bad_request("issuer and audience must be strings")
    access_token = mint_access_token(
        get_signing_key(),
        subject=body["sub"],
        issuer=issuer,
        audience=audience,
        client_id=settings.client_id,
        expires_in=expires_in,
        roles=CUSTOMERS[body["sub"]].roles,
    )
    return jsonify({"access_token": access_token, "token_type": "Bearer"})
