"""The partners' JSON API: the seed's three operations on `/api/v1/checkout/basket`.

Each handler follows the same steps: authenticate, parse, find the basket, check the bot
token, apply the rule. Errors are raised, never answered here (see errors.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import funnel, landing
from .baskets import COMPLETED, OPEN, Basket
from .checkout import etag
from .errors import BasketChanged, BasketCompleted, InvalidRequest, MultipleAddOffers
from .guards import admit, verifying
from .middleware import client_ip
from .models import is_id
from .services import checkout, tokens
from .tracking import MAX_KEYS, MAX_VALUE, capture, clean_referrer

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_REMOVE_OFFERS = 20


def basket_json(stored: dict[str, Any]) -> dict[str, Any]:
    """The basket as partners see it, from its stored form (`Basket.as_dict`): money as
    decimal strings with a currency."""
    completed = stored["status"] == COMPLETED
    return {
        "basketId": stored["basketId"],
        "subscriptionId": stored["subscriptionId"],
        "status": "completed" if completed else "open",
        "checkoutCompleted": completed,
        "currentPlan": stored["plan"],
        "activeOffers": stored["activeOffers"],
        "availableOffers": stored["eligibleOffers"],
        "suggestedOffer": stored["suggestedOffer"],
        "addOffers": stored["addOffers"],
        "removeOffers": stored["removeOffers"],
        "totals": {
            "current": stored["currentPrice"],
            "new": stored["newPrice"],
            "effectiveDate": stored["effectiveDate"],
        },
        "pendingChange": stored["pendingChange"],
        "tracking": {"referrer": stored["referrer"], "params": stored["tracking"]},
        "expiresAt": _iso(stored["expiresAt"]),
        "order": stored["order"],
        "quote": {"quoteId": stored["quoteId"], "expiresAt": _iso(stored["quoteExpiresAt"])}
        if stored.get("quoteId")
        else None,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _customer() -> str:
    return tokens().validate(request.headers.get("Authorization")).subject


@bp.get("/checkout/basket")
def get_basket() -> Response:
    customer = _customer()
    basket = checkout().load(customer, landing.read_basket_id())
    response = _basket_response(basket, "Basket retrieved successfully")
    # If-None-Match: 304 when the partner holds this version already (Werkzeug's check).
    response.make_conditional(request)
    return response


@bp.post("/checkout/basket")
def create_basket() -> tuple[Response, int]:
    customer = _customer()
    body = _json_body()
    subscription_id = body.get("subscriptionId")
    if not isinstance(subscription_id, str) or not is_id(subscription_id):
        raise InvalidRequest("subscriptionId is required")
    referrer = _referrer(body)
    tracking = _tracking(body.get("tracking"))
    funnel.set_touch(funnel.Touch.of(tracking, referrer))
    token = request.headers.get("X-Recaptcha-Token")
    admit("create", customer, token).raise_refusal()
    with verifying(token, client_ip()) as verified:
        basket = checkout().create(
            customer, subscription_id, referrer=referrer, tracking=tracking, before_save=verified
        )
    response = _basket_response(basket, "Checkout basket created successfully")
    landing.issue(response, basket.basket_id)
    return response, 201


@bp.put("/checkout/basket")
def update_basket() -> Response:
    customer = _customer()
    body = _json_body()
    add = _offer_ids(body, "addOffers", limit=1)
    remove = _offer_ids(body, "removeOffers", limit=MAX_REMOVE_OFFERS)
    complete = body.get("complete", False)
    if not isinstance(complete, bool):
        raise InvalidRequest("complete must be true or false")
    basket_id = landing.read_basket_id()
    token = request.headers.get("X-Recaptcha-Token")
    admission = admit("update", customer, token, basket_id)
    basket = checkout().owned(customer, admission.basket)
    if basket.status != OPEN and (add or remove):
        raise BasketCompleted()
    # A completion already made (or being made) is answered as it is, whatever the tag.
    expected = _if_match(basket) if basket.status == OPEN else None
    admission.raise_refusal()
    with verifying(token, client_ip()) as verified:  # the quote is asked for meanwhile
        if add or remove:
            basket = checkout().change(
                customer,
                basket_id,
                add,
                remove,
                current=basket,
                expected_version=expected,
                before_save=verified,
            )
            expected = None  # the change just made is the version the completion is for
    if complete:  # only once verified: an order is never sent unverified
        basket = checkout().complete(customer, basket_id, expected_version=expected)
    response = _basket_response(basket, "Basket updated successfully")
    landing.renew(response, basket.basket_id)
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(_openapi_document(), mimetype="application/json")


@cache
def _openapi_document() -> str:
    return resources.files("app").joinpath("openapi.json").read_text(encoding="utf-8")


def _basket_response(basket: Basket, message: str) -> Response:
    response = jsonify({"message": message, "basket": basket_json(basket.as_dict())})
    response.set_etag(etag(basket))
    return response


def _if_match(basket: Basket) -> int | None:
    """The version `If-Match` asks the change to apply to: the basket's own when the tag
    (or `*`) matches, so the write is checked against it; else `BasketChanged` at once."""
    if not request.if_match:
        return None  # no If-Match: the change applies to whatever the basket is now
    if not request.if_match.contains(etag(basket)):
        raise BasketChanged(etag=etag(basket))
    return basket.version


def _offer_ids(body: dict[str, Any], key: str, *, limit: int) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(is_id(item) for item in value):
        raise InvalidRequest(f"{key} must be a list of offer ids")
    if key == "addOffers" and len(value) > limit:
        raise MultipleAddOffers("addOffers holds at most one offer id")
    if len(value) > limit or len(set(value)) != len(value):
        raise InvalidRequest(f"{key} holds at most {limit} distinct offer ids")
    return list(value)


def _referrer(body: dict[str, Any]) -> str | None:
    given = body.get("referrer")
    if given is None:
        return clean_referrer(request.headers.get("Referer"))
    referrer = clean_referrer(given) if isinstance(given, str) else None
    if referrer is None:
        raise InvalidRequest("referrer must be an absolute http(s) URL")
    return referrer


def _tracking(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_KEYS * 2:
        raise InvalidRequest(f"tracking must be a flat object of at most {MAX_KEYS} strings")
    if not all(isinstance(v, str) and len(v) <= MAX_VALUE * 4 for v in value.values()):
        raise InvalidRequest("tracking values must be strings")
    return capture(value.items())
