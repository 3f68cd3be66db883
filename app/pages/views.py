"""The browser journey: start → sign in → basket → review → confirmation.

Every page is server-rendered; every form is a POST that answers 303 to a GET
(post/redirect/get), carries a CSRF token and, where it changes something, a reCAPTCHA
token. The rules are `Checkout`'s, the same ones the JSON API uses; this module only
translates between forms, sessions and pages. Errors are raised, and answered by
app/web/problems.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.wrappers import Response

from ..checkout import KEEP, OPEN, Basket, Keep, refuse_if_locked
from ..checkout.errors import (
    BasketChanged,
    BasketCompleted,
    InvalidRequest,
    NothingToConfirm,
    PriceChanged,
    PromoInvalid,
    RecaptchaFailed,
    SubscriptionNotFound,
)
from ..checkout.tracking import capture, clean_referrer
from ..checkout.values import Money, Offer, Promotion, QuoteLine, is_id, is_promo_code
from ..signals import journey_step
from ..web import landing
from ..web.guards import admit, verifying
from ..web.language import local_time, long_date, money
from ..web.services import services
from ..web.sessions import FIRST_TOUCH, first_touch_link
from .forms import ConfirmForm, OfferForm, PromoForm, StartForm, ValidationError
from .signin import customer_name, customer_or_none, require_customer, signed_in

bp = Blueprint("journey", __name__)

START_INTENT = "start_intent"  # a verified "Continue to checkout", waiting for sign-in
_REVIEWED = "reviewed_basket"  # the basket whose review page the funnel has counted
_INTENT_MAX_AGE = 900
_MAX_LINK = 2048


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(_page_context)
    app.add_template_filter(line_text, "line")
    config = app.config
    app.jinja_env.globals.update(
        recaptcha_site_key=config["RECAPTCHA_SITE_KEY"],
        recaptcha_action=config["RECAPTCHA_ACTION"],
        recaptcha_script_src=(
            f"{config['RECAPTCHA_SCRIPT_URL']}?render={quote(config['RECAPTCHA_SITE_KEY'])}"
        ),
    )


def line_text(line: QuoteLine) -> str:
    """One line of the price, as the customer reads it: what, how much a month, for how
    long, from when."""
    price = money(Money(abs(line.amount.amount), line.amount.currency))
    day = long_date(line.starts_on)
    name = line.description
    if line.kind == "add":
        return _(
            "Add %(name)s: %(price)s a month more, from %(date)s", name=name, price=price, date=day
        )
    if line.kind == "remove":
        return _(
            "Remove %(name)s: %(price)s a month less, from %(date)s",
            name=name,
            price=price,
            date=day,
        )
    if line.months:
        return ngettext(
            "%(name)s: %(price)s a month off for %(num)d month, from %(date)s",
            "%(name)s: %(price)s a month off for %(num)d months, from %(date)s",
            line.months,
            name=name,
            price=price,
            date=day,
        )
    return _("%(name)s: %(price)s a month off, from %(date)s", name=name, price=price, date=day)


def _page_context() -> dict[str, Any]:
    """What every page's layout shows: who is signed in and the link to start again."""
    return {
        "signed_in": signed_in(),
        "customer_name": customer_name(),
        "start_again_url": first_touch_link(),
    }


# -- landing -------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    return render_template("checkout/home.html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    return send_from_directory(current_app.static_folder or "static", "favicon.svg")


@bp.get("/start")
def start() -> str:
    """The marketing link. Changes nothing (mail scanners open links): it only remembers."""
    subscription_id = request.args.get("subscription", "")
    if not is_id(subscription_id):
        raise SubscriptionNotFound("the link names no subscription")
    offer_id = request.args.get("offer", "")
    new_visit = _remember_first_touch(subscription_id)
    promotion_of = _promotion_of_link(subscription_id)  # asked beside the subscription
    subscription = services().checkout.subscription_of(customer_or_none(), subscription_id)
    refuse_if_locked(subscription.pending_change)
    if new_visit:  # once per link followed, not per reload
        journey_step.send("opened")
    offer = next((o for o in subscription.eligible_offers if o.id == offer_id), None)
    promotion, refused = promotion_of()
    form = StartForm(
        subscription=subscription_id,
        offer=offer.id if offer else "",
        promo=promotion.code if promotion else "",
    )
    return render_template(
        "checkout/start.html",
        form=form,
        offer=offer,
        promotion=promotion,
        refused=refused,
    )


def _promotion_of_link(
    subscription_id: str,
) -> Callable[[], tuple[Promotion | None, PromoInvalid | None]]:
    """The deal the link's `promo=` names, or why it cannot be used (the customer then
    carries on without it): asked of the backend at once, on the fan-out pool, so that it
    waits beside the subscription's read; the call returned gives it."""
    code = request.args.get("promo", "").strip()
    if not code:
        return lambda: (None, None)
    if not is_promo_code(code):
        unknown = PromoInvalid(_("That code is not one we know."), why="unknown")
        return lambda: (None, unknown)
    asked = services().fanout.start(services().checkout.promotion, subscription_id, code)

    def answer() -> tuple[Promotion | None, PromoInvalid | None]:
        try:
            return asked.result(), None
        except PromoInvalid as refused:
            return None, refused

    return answer


def _remember_first_touch(subscription_id: str) -> bool:
    """The link's tracking and referrer, first touch: a later visit keeps the first one's.
    Whether this is a new first touch (a link followed, not a reload)."""
    referrer = clean_referrer(request.headers.get("Referer"))
    if referrer and urlsplit(referrer).netloc == request.host:
        referrer = None  # our own pages are not a referrer
    link = request.full_path.rstrip("?")
    current = {
        "subscription": subscription_id,
        "tracking": capture(request.args.items(multi=True)),
        "referrer": referrer,
        "link": link if len(link) <= _MAX_LINK else url_for(".start", subscription=subscription_id),
    }
    previous = session.get(FIRST_TOUCH)
    if isinstance(previous, dict) and previous.get("subscription") == subscription_id:
        if (
            previous.get("tracking")
            or previous.get("referrer")
            or not (current["tracking"] or current["referrer"])
        ):
            return False
    session[FIRST_TOUCH] = current
    return True


@bp.post("/start")
def start_checkout() -> Response:
    form = StartForm()
    if not form.validate():
        raise InvalidRequest("the start form was altered")
    subscription_id, offer_id = form.subscription.data, form.offer.data or None
    promo_code = form.promo.data or None
    customer = customer_or_none()
    admit("create", customer, form.recaptcha_token.data).raise_refusal()
    services().recaptcha.verify(form.recaptcha_token.data, request.remote_addr, claimed=True)
    if customer is None:
        session[START_INTENT] = {
            "subscription": subscription_id,
            "offer": offer_id,
            "promo": promo_code,
            "at": time.time(),
        }
        return redirect(url_for("signin.begin", next=url_for(".resume")), 303)
    return _create_basket(customer, subscription_id, offer_id, promo_code)


@bp.get("/start/continue")
def resume() -> Response:
    """Back from sign-in: the verified intent, used once, creates the basket."""
    customer = require_customer()
    intent = session.pop(START_INTENT, None)
    if not isinstance(intent, dict) or time.time() - float(intent.get("at", 0)) > _INTENT_MAX_AGE:
        return redirect(first_touch_link() or url_for(".home"), 303)
    return _create_basket(
        customer, str(intent["subscription"]), intent.get("offer"), intent.get("promo")
    )


def _create_basket(
    customer: str, subscription_id: str, offer_id: str | None, promo_code: str | None = None
) -> Response:
    first_touch = session.get(FIRST_TOUCH)
    if not isinstance(first_touch, dict) or first_touch.get("subscription") != subscription_id:
        first_touch = {}
    options: dict[str, Any] = {
        "referrer": first_touch.get("referrer"),
        "tracking": first_touch.get("tracking") or {},
        "suggested_offer": offer_id,
    }
    checkout = services().checkout
    try:
        basket = checkout.create(customer, subscription_id, promo_code=promo_code, **options)
    except PromoInvalid as refused:  # no longer usable since the start page: carry on without
        flash(
            _("The code %(code)s cannot be used: %(why)s", code=promo_code, why=refused.reason),
            "warning",
        )
        basket = checkout.create(customer, subscription_id, **options)
    response = make_response(redirect(url_for(".basket"), 303))
    landing.issue(response, basket.basket_id)
    return response


# -- basket --------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRow:
    offer: Offer
    chosen: bool  # being removed (active offers) or being added (eligible offers)
    suggested: bool = False


def _open_basket(customer: str) -> Basket:
    # A language just chosen: the offers' names again, from the backend, in it.
    renamed = "lang" in request.args
    basket = services().checkout.load(customer, landing.read_basket_id(), fresh=renamed)
    if not basket.completed:
        refuse_if_locked(basket.pending_change)
    return basket


def _render_basket(
    basket: Basket,
    form: OfferForm | PromoForm | None = None,
    status: int = 200,
    *,
    section: str = "offers",
) -> Any:
    """The basket page; a refused `form` shows its error in the section it came from: the
    offers to add (`offers`), the offers on the plan (`your-offers`) or the code (`promo`)."""
    removing = {o.id for o in basket.remove_offers}
    adding = {o.id for o in basket.add_offers}
    active = [OfferRow(o, o.id in removing) for o in basket.active_offers]
    suggested = basket.suggested_offer
    eligible = sorted(
        (OfferRow(o, o.id in adding, o.id == suggested) for o in basket.eligible_offers),
        key=lambda row: not row.suggested,  # the offer the link suggested comes first
    )
    html = render_template(
        "checkout/basket.html",
        basket=basket,
        active=active,
        eligible=eligible,
        errors=(form.code.errors if isinstance(form, PromoForm) else form.offer.errors)
        if form
        else [],
        error_section=section,
        typed=form.code.data if isinstance(form, PromoForm) else "",
        expires=local_time(basket.expires_at),
    )
    return html, status


@bp.get("/basket")
def basket() -> Any:
    customer = require_customer()
    current = _open_basket(customer)
    if current.completed:
        return redirect(url_for(".confirmation"), 303)
    return _render_basket(current)


@bp.post("/basket/add")
def add_offer() -> Any:
    return _change(add=True)


@bp.post("/basket/remove")
def remove_offer() -> Any:
    return _change(add=False)


def _change(*, add: bool) -> Any:
    customer = require_customer()
    form = OfferForm()
    section = "offers" if add else "your-offers"
    if not form.validate():
        return _render_basket(_open_basket(customer), form, 400, section=section)
    offer_id = str(form.offer.data)
    try:
        applied = _apply(customer, form, *(([offer_id], []) if add else ([], [offer_id])))
    except RecaptchaFailed:
        raise  # the bot check's own page, not a wrong offer
    except InvalidRequest:
        form.offer.errors = [_("That offer cannot be chosen now; choose another offer")]
        return _render_basket(_open_basket(customer), form, 400, section=section)
    if isinstance(applied, Response):
        return applied
    before, after = applied
    flash(_what_changed(before, after, offer_id), "success")
    return _back_to_basket(after)


@bp.post("/basket/promo")
def promo() -> Any:
    """Apply a promotion code to the basket, or take its code away."""
    customer = require_customer()
    form = PromoForm()
    try:
        if not form.validate():
            raise ValidationError(form.code.errors[0] if form.code.errors else "")
        wanted = form.wanted()
        applied = _apply(customer, form, [], [], wanted)
    except (ValidationError, PromoInvalid) as refused:
        why = refused.reason if isinstance(refused, PromoInvalid) else str(refused)
        form.code.errors = [why or _("That code cannot be used")]
        return _render_basket(_open_basket(customer), form, 400, section="promo-code")
    if isinstance(applied, Response):
        return applied
    after = applied[1]
    if after.promotion is not None:
        deal = after.promotion.description
        flash(
            _("Code %(code)s applied: %(deal)s.", code=after.promotion.code, deal=deal), "success"
        )
    else:
        flash(_("The code was removed."), "success")
    return _back_to_basket(after)


def _apply(
    customer: str,
    form: OfferForm | PromoForm,
    add: list[str],
    remove: list[str],
    promo_code: str | None | Keep = KEEP,
) -> tuple[Basket, Basket] | Response:
    """A basket form's change, made as every basket form makes it: admitted (rate limit,
    bot check), for the version of the basket the page showed, saved once verified.

    The basket before and after; or where the customer goes instead: the confirmation
    (the basket was completed meanwhile), or the basket as another window left it. The
    backend's refusal of the change itself (`InvalidRequest`) is the caller's to show.
    """
    basket_id = landing.read_basket_id()
    checkout = services().checkout
    admission = admit("update", customer, form.recaptcha_token.data, basket_id)
    before = checkout.owned(customer, admission.basket)
    if before.status != OPEN:
        return redirect(url_for(".confirmation"), 303)
    admission.raise_refusal()
    shown = form.shown_version()
    if shown is not None and shown != before.version:
        if checkout.asks_nothing_new(before, add, remove, promo_code):
            return redirect(url_for(".basket"), 303)  # a second press of the same button
        return _changed_elsewhere()
    try:
        with verifying(form.recaptcha_token.data, request.remote_addr) as verified:
            after = checkout.change(
                customer,
                basket_id,
                add,
                remove,
                promo_code=promo_code,
                current=before,
                expected_version=shown,
                before_save=verified,
            )
    except BasketCompleted:
        return redirect(url_for(".confirmation"), 303)
    except BasketChanged:
        return _changed_elsewhere()
    return before, after


def _back_to_basket(after: Basket) -> Response:
    response = redirect(url_for(".basket"), 303)
    landing.renew(response, after.basket_id)
    return response


def _changed_elsewhere() -> Response:
    """A form from a page another window has overtaken: nothing changes, and the customer
    sees the basket as it is now."""
    flash(_("Your basket was changed in another window. Here it is now."), "warning")
    return redirect(url_for(".basket"), 303)


def _what_changed(before: Basket, after: Basket, offer_id: str) -> str:
    offer = after.offer(offer_id)
    name = offer.name if offer else offer_id
    if any(o.id == offer_id for o in after.add_offers):
        replaced = [o.name for o in before.add_offers if o.id != offer_id]
        if replaced:
            return _(
                "%(name)s will be added to your plan, instead of %(replaced)s.",
                name=name,
                replaced=replaced[0],
            )
        return _("%(name)s will be added to your plan.", name=name)
    if any(o.id == offer_id for o in after.remove_offers):
        return _("%(name)s will be removed from your plan.", name=name)
    return _("%(name)s is no longer part of your changes.", name=name)


# -- review and confirmation ---------------------------------------------------------


@bp.get("/review")
def review() -> Any:
    customer = require_customer()
    current = _open_basket(customer)
    if current.completed:
        return redirect(url_for(".confirmation"), 303)  # the back button after confirming
    if not current.has_changes:
        flash(_("Choose an offer to add or remove first."), "info")
        return redirect(url_for(".basket"), 303)
    if session.get(_REVIEWED) != current.basket_id:  # a basket's first review, not reloads
        session[_REVIEWED] = current.basket_id
        journey_step.send("reviewed")
    return render_template("checkout/review.html", basket=current, form=ConfirmForm())


@bp.post("/review")
def confirm() -> Any:
    customer = require_customer()
    basket_id = landing.read_basket_id()
    form = ConfirmForm()
    admission = admit("update", customer, form.recaptcha_token.data, basket_id)
    before = services().checkout.owned(customer, admission.basket)
    if before.completed:
        return redirect(url_for(".confirmation"), 303)
    admission.raise_refusal()
    shown = form.shown_version()
    if shown is not None and shown != before.version:
        return _changed_elsewhere()
    services().recaptcha.verify(form.recaptcha_token.data, request.remote_addr, claimed=True)
    try:
        completed = services().checkout.complete(customer, basket_id, expected_version=shown)
    except BasketChanged:
        return _changed_elsewhere()
    except PriceChanged as changed:
        # Nothing was ordered; the basket holds the new price. Show it, and ask again.
        html = render_template(
            "checkout/review.html",
            basket=changed.after,
            form=ConfirmForm(),
            previous=changed.before,
        )
        return make_response(html, 409)
    except NothingToConfirm:
        return redirect(url_for(".basket"), 303)
    response = redirect(url_for(".confirmation"), 303)
    landing.renew(response, completed.basket_id)
    return response


@bp.get("/confirmation")
def confirmation() -> Any:
    """Rendered from the stored basket and its order, so refresh and bookmarks work."""
    customer = require_customer()
    current = services().checkout.load(customer, landing.read_basket_id(), refresh=False)
    if not current.completed or current.order is None:
        return redirect(url_for(".review" if current.has_changes else ".basket"), 303)
    return render_template("checkout/confirmation.html", basket=current, order=current.order)
