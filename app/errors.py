"""Domain errors and the one mapping from them to problem+json or an error page.

Views raise `CheckoutError` subclasses; nothing else decides a status code or wording.
The `detail` strings are the seed's wording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
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
from werkzeug.exceptions import HTTPException

from .storage import UNAVAILABLE

if TYPE_CHECKING:
    from .baskets import Basket

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
DETAIL_CREATE_INVALID = "Invalid request body or missing required fields"
DETAIL_UPDATE_INVALID = "Invalid request or multiple add offers provided"
DETAIL_GET_NOT_FOUND = "No basket found in landing state"
DETAIL_UPDATE_NOT_FOUND = "Basket not found in landing state"
DETAIL_LOCKED = "Subscription has pending change, checkout locked"


class CheckoutError(Exception):
    """An expected failure with a stable code; `reason` says specifically what was wrong."""

    status = 500
    code = "internal_error"
    title = "Internal error"
    detail = "The request could not be completed."

    def __init__(self, reason: str | None = None, **extra: Any) -> None:
        super().__init__(reason or self.detail)
        self.reason = reason
        self.extra = extra

    def detail_for(self, method: str) -> str:
        return self.detail


class InvalidRequest(CheckoutError):
    status, code, title = 400, "invalid_request", "Invalid request"

    def detail_for(self, method: str) -> str:
        return DETAIL_UPDATE_INVALID if method == "PUT" else DETAIL_CREATE_INVALID


class MultipleAddOffers(InvalidRequest):
    code, title = "multiple_add_offers", "Multiple add offers"


class RecaptchaFailed(InvalidRequest):
    code, title = "recaptcha_failed", "Bot check failed"


class Unauthorized(CheckoutError):
    status, code, title, detail = 401, "unauthorized", "Unauthorized", DETAIL_UNAUTHORIZED


class Forbidden(CheckoutError):
    """Signed in, but not as someone allowed here (the ops pages need an operator)."""

    status, code, title = 403, "forbidden", "Forbidden"
    detail = "These credentials do not allow this."


class SignInRequired(Unauthorized):
    """A browser page needs a signed-in customer: a GET goes to sign in and comes back."""


class FormExpired(CheckoutError):
    """A browser form without a valid CSRF token: usually a page left open too long."""

    status, code, title = 400, "form_expired", "Form expired"
    detail = "The form could not be checked; nothing was changed."


class BasketNotFound(CheckoutError):
    status, code, title = 404, "basket_not_found", "Basket not found"

    def detail_for(self, method: str) -> str:
        return DETAIL_UPDATE_NOT_FOUND if method == "PUT" else DETAIL_GET_NOT_FOUND


class SubscriptionNotFound(CheckoutError):
    status, code, title = 404, "subscription_not_found", "Subscription not found"
    detail = "Subscription not found"


class SubscriptionLocked(CheckoutError):
    status, code, title, detail = 409, "subscription_locked", "Checkout locked", DETAIL_LOCKED


class BasketCompleted(CheckoutError):
    status, code, title = 409, "basket_completed", "Basket already completed"
    detail = "Basket is already completed and cannot be changed"


class PriceChanged(CheckoutError):
    """The backend's price for the change moved since the customer saw it: nothing was
    ordered, and the basket now holds the new quote for them to see and confirm."""

    status, code, title = 409, "price_changed", "Price changed"
    detail = (
        "The price of this change has changed since it was shown; nothing was ordered. "
        "Check the new price, then confirm again."
    )

    def __init__(self, *, before: Basket, after: Basket) -> None:
        super().__init__(previousTotals=_totals(before), totals=_totals(after))
        self.before = before
        self.after = after  # the basket as it is now, holding the new quote


def _totals(basket: Basket) -> dict[str, Any]:
    return {"current": basket.current_price.to_json(), "new": basket.new_price.to_json()}


class BasketChanged(CheckoutError):
    """An `If-Match` (API) or a form's basket version (pages) that is no longer current."""

    status, code, title = 412, "basket_changed", "Basket changed"
    detail = "The basket has changed since it was read; nothing was changed. Read it again."

    def __init__(self, reason: str | None = None, *, etag: str | None = None) -> None:
        super().__init__(reason)
        self.etag = etag


class CheckoutInProgress(CheckoutError):
    status, code, title = 409, "checkout_in_progress", "Checkout in progress"
    detail = "This basket is being submitted; retry the request in a moment"
    retry_after = 1


class TooManyRequests(CheckoutError):
    status, code, title = 429, "too_many_requests", "Too many requests"
    detail = "Too many requests; wait a minute, then try again"

    def __init__(self, reason: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UpstreamError(CheckoutError):
    status, code, title, detail = 502, "upstream_error", "Bad Gateway", DETAIL_UPSTREAM
    retry_after = 5


class ServiceUnavailable(CheckoutError):
    status, code, title = 503, "service_unavailable", "Service unavailable"
    detail = "The checkout is briefly unavailable; nothing was changed. Retry shortly."
    retry_after = 5


class OrderNotRecorded(ServiceUnavailable):
    """The backend accepted the order, then the basket could not be marked completed
    (Redis failing over): saying "nothing was changed" would be untrue."""

    code, title = "order_not_recorded", "Order placed, not yet recorded"
    detail = (
        "The order was placed, but the checkout could not record it yet. Retry shortly: "
        "the retry finds the same order, never a second one."
    )
    retry_after = 2


class ServerBusy(CheckoutError):
    """More requests in flight than the worker serves at once (app/overload.py)."""

    status, code, title = 503, "server_busy", "Busy"
    detail = "The checkout is very busy; nothing was changed. Retry in a moment."
    retry_after = 2


def _request_id() -> str:
    from .middleware import request_id  # middleware raises these errors: import late

    return request_id()


def problem(error: CheckoutError, method: str) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:problem:checkout:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail_for(method),
        "code": error.code,
        "requestId": _request_id(),
    }
    if error.reason:
        body["reason"] = error.reason
    body.update(error.extra)
    response = jsonify(body)
    response.status_code = error.status
    response.mimetype = "application/problem+json"
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="checkout", error="invalid_token"'
    return response


# Read by programs, not people: problems answer as problem+json there.
_MACHINE_PATHS = ("/api/", "/metrics", "/ops/funnel.csv")


def _wants_json() -> bool:
    return request.path.startswith(_MACHINE_PATHS)


# The browser's error page for each code, then for each status; templates/errors/<page>.html.
_PAGES = {
    "basket_not_found": "expired",
    "subscription_not_found": "not_found",
    "subscription_locked": "locked",
    "basket_completed": "locked",
    "basket_changed": "problem",
    "checkout_in_progress": "in_progress",
    "recaptcha_failed": "bot_check",
    "form_expired": "form_expired",
    "server_busy": "busy",
    "order_not_recorded": "order_not_recorded",
}
_PAGES_BY_STATUS = {
    401: "signed_out",
    403: "forbidden",
    404: "not_found",
    429: "too_many_requests",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}


def _back_url() -> str:
    """Where "try again" goes: this page for a GET, the page the form was on for a POST."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return "/"


def _page(error: CheckoutError) -> Response:
    if isinstance(error, SignInRequired) and request.method == "GET":
        return make_response(redirect(url_for("signin.begin", next=_back_url()), 303))
    page = _PAGES.get(error.code) or _PAGES_BY_STATUS.get(error.status)
    if page is None:
        page = "unexpected" if error.status >= 500 else "problem"
    html = render_template(
        f"errors/{page}.html",
        error=error,
        back_url=_back_url(),
        pending=error.extra.get("pendingChange") or None,
    )
    return Response(html, status=error.status, mimetype="text/html")


def _respond(error: CheckoutError) -> Response | tuple[str, int]:
    _count(error)
    response = problem(error, request.method) if _wants_json() else _page(error)
    etag = getattr(error, "etag", None)
    if etag:
        response.set_etag(etag)
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _count(error: CheckoutError) -> None:
    """The problem in the metrics, and where the funnel has an exit for it, there too."""
    from . import funnel
    from .metrics import metrics  # metrics imports these errors: import late

    metrics().problems.labels(str(error.status), error.code).inc()
    funnel.exit_for(error)


class _HTTPProblem(CheckoutError):
    """A plain HTTP error (404 route, 405, 413) in the same shape as the domain ones."""

    def __init__(self, exc: HTTPException) -> None:
        super().__init__()
        self.status = exc.code or 500
        self.code = (exc.name or "error").lower().replace(" ", "_")
        self.title = exc.name or "Error"
        self.detail = exc.description or self.title


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CheckoutError, _respond)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> Response | tuple[str, int]:
        return _respond(FormExpired(exc.description))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[str, int]:
        return _respond(_HTTPProblem(exc))

    def redis_down(exc: Exception) -> Response | tuple[str, int]:
        from .metrics import count_redis_error

        app.logger.warning("redis unavailable: %s", type(exc).__name__)
        count_redis_error(exc)
        return _respond(ServiceUnavailable())

    for failure in UNAVAILABLE:  # a failover or an outage: 503, retry shortly
        app.register_error_handler(failure, redis_down)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[str, int]:
        app.logger.exception("unexpected error")
        return _respond(CheckoutError())
