"""The partners' JSON API: the seed's three operations on `/api/v1/checkout/basket`.

Each handler follows the same steps: authenticate, parse (app/api/schemas.py), find the
basket, check the bot token, apply the rule. Errors are raised, never answered here:
app/web/problems.py answers them, as problem+json.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Blueprint, Response, current_app, jsonify, request

from ..checkout import KEEP, OPEN, Basket
from ..checkout.errors import BasketChanged, BasketCompleted, InvalidRequest, MultipleAddOffers
from ..checkout.tracking import capture, clean_referrer
from ..signals import campaign_seen
from ..web import landing
from ..web.guards import admit, verifying
from ..web.middleware import client_ip
from ..web.services import services
from .openapi import document
from .schemas import CreateBasket, UpdateBasket, ValidationError, answer

bp = Blueprint("api", __name__, url_prefix="/api/v1")
Body = TypeVar("Body", CreateBasket, UpdateBasket)


def _customer() -> str:
    return services().tokens.validate(request.headers.get("Authorization")).subject


def _body(model: type[Body]) -> Body:
    """The request's JSON body as `model`, or the first thing wrong with it."""
    given = request.get_json(silent=True)
    if not isinstance(given, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        if error["loc"][:1] == ("addOffers",) and error["type"] == "too_long":
            raise MultipleAddOffers(f"{where}: {error['msg']}") from None
        raise InvalidRequest(f"{where}: {error['msg']}") from None


@bp.get("/checkout/basket")
def get_basket() -> Response:
    customer = _customer()
    basket = services().checkout.load(customer, landing.read_basket_id())
    response = _basket_response(basket, "Basket retrieved successfully")
    # If-None-Match: 304 when the partner holds this version already (Werkzeug's check).
    response.make_conditional(request)
    return response


@bp.post("/checkout/basket")
def create_basket() -> tuple[Response, int]:
    customer = _customer()
    body = _body(CreateBasket)
    referrer = _referrer(body.referrer)
    tracking = capture((body.tracking or {}).items())
    campaign_seen.send(None, tracking=tracking, referrer=referrer)
    token = request.headers.get("X-Recaptcha-Token")
    admit("create", customer, token).raise_refusal()
    with verifying(token, client_ip()) as verified:
        basket = services().checkout.create(
            customer,
            body.subscriptionId,
            referrer=referrer,
            tracking=tracking,
            promo_code=body.promoCode,
            before_save=verified,
        )
    response = _basket_response(basket, "Checkout basket created successfully")
    landing.issue(response, basket.basket_id)
    return response, 201


@bp.put("/checkout/basket")
def update_basket() -> Response:
    customer = _customer()
    body = _body(UpdateBasket)
    add, remove = body.addOffers, body.removeOffers
    checkout = services().checkout
    checkout.refuse_unacceptable(add, remove)  # before the bot token is spent
    basket_id = landing.read_basket_id()
    token = request.headers.get("X-Recaptcha-Token")
    admission = admit("update", customer, token, basket_id)
    basket = checkout.owned(customer, admission.basket)
    if basket.status != OPEN and (add or remove or "promoCode" in body.model_fields_set):
        raise BasketCompleted()
    # A completion already made (or being made) is answered as it is, whatever the tag.
    expected = _if_match(basket) if basket.status == OPEN else None
    admission.raise_refusal()
    promo = body.promoCode if "promoCode" in body.model_fields_set else KEEP
    with verifying(token, client_ip()) as verified:  # the quote is asked for meanwhile
        if add or remove or promo is not KEEP:
            basket = checkout.change(
                customer,
                basket_id,
                add,
                remove,
                promo_code=promo,
                current=basket,
                expected_version=expected,
                before_save=verified,
            )
            expected = None  # the change just made is the version the completion is for
    if body.complete:  # only once verified: an order is never sent unverified
        basket = checkout.complete(customer, basket_id, expected_version=expected)
    response = _basket_response(basket, "Basket updated successfully")
    landing.renew(response, basket.basket_id)
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(document(current_app.config["MAX_REMOVE_OFFERS"]), mimetype="application/json")


def _basket_response(basket: Basket, message: str) -> Response:
    response = jsonify(answer(basket, message))
    response.set_etag(basket.tag)
    return response


def _if_match(basket: Basket) -> int | None:
    """The version `If-Match` asks the change to apply to: the basket's own when the tag
    (or `*`) matches, so the write is checked against it; else `BasketChanged` at once."""
    if not request.if_match:
        return None  # no If-Match: the change applies to whatever the basket is now
    if not request.if_match.contains(basket.tag):
        raise BasketChanged(basket)
    return basket.version


def _referrer(given: str | None) -> str | None:
    if given is None:
        return clean_referrer(request.headers.get("Referer"))
    referrer = clean_referrer(given)
    if referrer is None:
        raise InvalidRequest("referrer must be an absolute http(s) URL")
    return referrer
