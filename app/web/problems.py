"""Every refusal's answer, decided once: status, title, wording, page, Retry-After.

`ANSWERS` maps each error class (the checkout's, app/checkout/errors.py, and the few that
only requests can meet, below) to how it is answered; a subclass without an entry of its
own answers as its parent. Machine routes (app/web/routes.py) get problem+json (RFC 9457:
`type`, `title`, `status`, `detail`, `code`, `requestId`), pages a page from
templates/errors/. The API's description is generated from the same table
(app/api/openapi.py), so what a partner reads is what the code answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError

from ..adapters.storage import UNAVAILABLE
from ..checkout.errors import (
    BasketChanged,
    BasketCompleted,
    BasketNotFound,
    CheckoutError,
    CheckoutInProgress,
    InvalidRequest,
    MultipleAddOffers,
    OrderNotRecorded,
    PriceChanged,
    PromoInvalid,
    RecaptchaFailed,
    ServiceUnavailable,
    SubscriptionLocked,
    SubscriptionNotFound,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
)
from ..signals import problem_answered, redis_failed
from .middleware import request_id
from .routes import kind_of

log = logging.getLogger(__name__)


class Forbidden(CheckoutError):
    """Signed in, but not as someone allowed here (the ops pages need an operator)."""

    code = "forbidden"


class SignInRequired(Unauthorized):
    """A browser page needs a signed-in customer: a GET goes to sign in and comes back."""


class FormExpired(CheckoutError):
    """A browser form without a valid CSRF token: usually a page left open too long."""

    code = "form_expired"


class ServerBusy(CheckoutError):
    """More requests in flight than the worker serves at once (app/web/overload.py)."""

    code = "server_busy"


class HTTPProblem(CheckoutError):
    """A plain HTTP error (an unknown route, 405, 413) in the same shape as ours."""

    def __init__(self, exc: HTTPException) -> None:
        super().__init__()
        self.code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        page, detail = _HTTP_ANSWERS.get(status, ("unexpected" if status >= 500 else "problem", ""))
        self.answer = Answer(
            status,
            exc.name or "Error",
            detail or exc.description or exc.name or "Error",
            page,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    title: str
    detail: str  # the seed's wording where it has one; `detail_put` for an update
    page: str  # templates/errors/<page>.html
    retry_after: int | None = None
    detail_put: str | None = None
    # The refusal's own reason is the detail (the seed's wording has none for it).
    detail_from_reason: bool = False

    def detail_for(self, method: str) -> str:
        return self.detail_put if method == "PUT" and self.detail_put else self.detail


DETAIL_UNAUTHORIZED = (
    "Unauthorized — the request lacks valid authentication credentials. "
    "Verify your Bearer token or API key is correct and has not expired."
)
DETAIL_UPSTREAM = (
    "Bad Gateway — an upstream service returned an unexpected response. This typically "
    "indicates an issue with the request payload (e.g. invalid field values, missing required "
    "fields) or a transient infrastructure error. Retry the request, and if the issue persists, "
    "verify the request body matches the expected schema."
)
DETAIL_INVALID = "Invalid request body or missing required fields"
DETAIL_INVALID_UPDATE = "Invalid request or multiple add offers provided"
_UNAVAILABLE = "The checkout is briefly unavailable; nothing was changed. Retry shortly."

ANSWERS: dict[type[CheckoutError], Answer] = {
    CheckoutError: Answer(
        500, "Internal error", "The request could not be completed.", "unexpected"
    ),
    InvalidRequest: Answer(
        400, "Invalid request", DETAIL_INVALID, "problem", detail_put=DETAIL_INVALID_UPDATE
    ),
    MultipleAddOffers: Answer(
        400, "Multiple add offers", DETAIL_INVALID, "problem", detail_put=DETAIL_INVALID_UPDATE
    ),
    RecaptchaFailed: Answer(
        400, "Bot check failed", DETAIL_INVALID, "bot_check", detail_put=DETAIL_INVALID_UPDATE
    ),
    PromoInvalid: Answer(
        400,
        "Promotion code not accepted",
        "The promotion code cannot be used: it is unknown, it has expired, or it does not "
        "apply to this subscription or these changes. Nothing was changed.",
        "problem",
        detail_from_reason=True,
    ),
    FormExpired: Answer(
        400, "Form expired", "The form could not be checked; nothing was changed.", "form_expired"
    ),
    Unauthorized: Answer(401, "Unauthorized", DETAIL_UNAUTHORIZED, "signed_out"),
    Forbidden: Answer(403, "Forbidden", "These credentials do not allow this.", "forbidden"),
    BasketNotFound: Answer(
        404,
        "Basket not found",
        "No basket found in landing state",
        "expired",
        detail_put="Basket not found in landing state",
    ),
    SubscriptionNotFound: Answer(
        404, "Subscription not found", "Subscription not found", "not_found"
    ),
    SubscriptionLocked: Answer(
        409, "Checkout locked", "Subscription has pending change, checkout locked", "locked"
    ),
    BasketCompleted: Answer(
        409,
        "Basket already completed",
        "Basket is already completed and cannot be changed",
        "locked",
    ),
    CheckoutInProgress: Answer(
        409,
        "Checkout in progress",
        "This basket is being submitted; retry the request in a moment",
        "in_progress",
        retry_after=1,
    ),
    PriceChanged: Answer(
        409,
        "Price changed",
        "The price of this change has changed since it was shown; nothing was ordered. "
        "Check the new price, then confirm again.",
        "problem",
    ),
    BasketChanged: Answer(
        412,
        "Basket changed",
        "The basket has changed since it was read; nothing was changed. Read it again.",
        "problem",
    ),
    TooManyRequests: Answer(
        429,
        "Too many requests",
        "Too many requests; wait a minute, then try again",
        "too_many_requests",
    ),
    UpstreamError: Answer(502, "Bad Gateway", DETAIL_UPSTREAM, "unavailable", retry_after=5),
    ServiceUnavailable: Answer(
        503, "Service unavailable", _UNAVAILABLE, "unavailable", retry_after=5
    ),
    OrderNotRecorded: Answer(
        503,
        "Order placed, not yet recorded",
        "The order was placed, but the checkout could not record it yet. Retry shortly: "
        "the retry finds the same order, never a second one.",
        "order_not_recorded",
        retry_after=2,
    ),
    ServerBusy: Answer(
        503,
        "Busy",
        "The checkout is very busy; nothing was changed. Retry in a moment.",
        "busy",
        retry_after=2,
    ),
}
# Plain HTTP errors, which have no class of ours: their page, and our wording where
# Werkzeug's ("The data value transmitted exceeds the capacity limit.") would not say.
_HTTP_ANSWERS = {
    404: ("not_found", ""),
    405: ("problem", ""),
    413: ("problem", "The request body is too large"),
}


def answer_for(kind: type[CheckoutError]) -> Answer:
    """The answer to a refusal of this class: its own, else its nearest parent's."""
    return next(ANSWERS[parent] for parent in kind.__mro__ if parent in ANSWERS)


def answer_of(error: CheckoutError) -> Answer:
    return error.answer if isinstance(error, HTTPProblem) else answer_for(type(error))


def problem_fields(code: str, answer: Answer, method: str, detail: str = "") -> dict[str, Any]:
    """A problem's standard members (RFC 9457) and its code, as answered and as described."""
    return {
        "type": f"urn:problem:checkout:{code}",
        "title": answer.title,
        "status": answer.status,
        "detail": detail or answer.detail_for(method),
        "code": code,
    }


def problem_body(error: CheckoutError, answer: Answer, method: str) -> dict[str, Any]:
    own = error.reason if answer.detail_from_reason else None
    body = problem_fields(error.code, answer, method, own or "")
    body["requestId"] = request_id()
    if error.reason:
        body["reason"] = error.reason
    body.update(error.extra)
    return body


def _problem(error: CheckoutError, answer: Answer) -> Response:
    response = jsonify(problem_body(error, answer, request.method))
    response.status_code = answer.status
    response.mimetype = "application/problem+json"
    if answer.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="checkout", error="invalid_token"'
    return response


def back_url() -> str:
    """Where "try again" goes: this page for a GET, the page the form was on for a POST."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return "/"


def _page(error: CheckoutError, answer: Answer) -> Response:
    if isinstance(error, SignInRequired) and request.method == "GET":
        return make_response(redirect(url_for("signin.begin", next=back_url()), 303))
    html = render_template(
        f"errors/{answer.page}.html",
        error=error,
        back_url=back_url(),
        pending=error.extra.get("pendingChange") or None,
    )
    return Response(html, status=answer.status, mimetype="text/html")


def respond(error: CheckoutError) -> Response:
    answer = answer_of(error)
    problem_answered.send(error, status=answer.status)
    machine = kind_of(request.path).machine
    response = _problem(error, answer) if machine else _page(error, answer)
    if isinstance(error, BasketChanged):
        response.set_etag(error.current.tag)
    retry_after = getattr(error, "retry_after", None) or answer.retry_after
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(CheckoutError, respond)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> Response:
        return respond(FormExpired(exc.description))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return respond(HTTPProblem(exc))

    @app.errorhandler(SecurityError)
    def host_not_served(exc: SecurityError) -> Response:
        """A Host the checkout was not configured for (TRUSTED_HOSTS): 400, naming no
        host. No page is rendered: pages build their links from the Host."""
        if kind_of(request.path).machine:
            return respond(InvalidRequest("this server does not serve that host"))
        text = "Bad request: this server does not serve that host.\n"
        return Response(text, status=400, mimetype="text/plain")

    def redis_down(exc: Exception) -> Response:
        log.warning("redis unavailable: %s", type(exc).__name__)
        redis_failed.send(exc)
        return respond(ServiceUnavailable())

    for failure in UNAVAILABLE:  # a failover or an outage: 503, retry shortly
        app.register_error_handler(failure, redis_down)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return respond(CheckoutError())
