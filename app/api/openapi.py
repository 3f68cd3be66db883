"""The API's OpenAPI 3.1 description, made from the code: the request and answer models
(schemas.py), and for each operation the refusals it can answer, each worded and given
its status by the one table of answers (app/web/problems.py).

`OPERATIONS` is where an operation's possible refusals are declared. The tests hold the
code to it: every problem the API answers in the integration tests must be listed here
for its operation and status (tests/integration/conftest.py), and every refusal the API
can meet is listed somewhere (tests/unit/test_openapi.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

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
from ..config import Defaults
from ..web.problems import Answer, HTTPProblem, ServerBusy, answer_for, problem_fields
from .schemas import BasketAnswer, CreateBasket, Problem, UpdateBasket

PATH = "/api/v1/checkout/basket"
VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A problem an operation can answer: one of ours, or one of HTTP's own."""

    code: str
    answer: Answer

    @classmethod
    def of(cls, error: type[CheckoutError]) -> Refusal:
        return cls(error.code, answer_for(error))

    @classmethod
    def of_http(cls, exc: HTTPException) -> Refusal:
        """One of HTTP's own errors, answered as app/web/problems.py answers it."""
        made = HTTPProblem(exc)
        return cls(made.code, made.answer)


# A body over CHECKOUT_MAX_CONTENT_LENGTH.
TOO_LARGE = Refusal.of_http(RequestEntityTooLarge())
# What any call can meet, whatever it asks.
_EVERY_CALL = (Unauthorized, UpstreamError, ServiceUnavailable, ServerBusy)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    operation_id: str
    summary: str
    description: str
    status: int
    message: str  # the answer's `message`, the seed's wording
    refusals: tuple[Refusal, ...]
    body: type[BaseModel] | None = None
    parameters: tuple[str, ...] = ()
    cookie: bool = True  # needs the landing_state cookie
    extra_answers: dict[str, Any] = field(default_factory=dict)


def _refusals(*errors: type[CheckoutError] | Refusal) -> tuple[Refusal, ...]:
    every = (*errors, *_EVERY_CALL)
    return tuple(e if isinstance(e, Refusal) else Refusal.of(e) for e in every)


OPERATIONS = (
    Operation(
        "get",
        "getBasket",
        "Retrieve the basket",
        "The basket the landing_state cookie names, as its customer sees it. With "
        "If-None-Match naming the current version, 304 and no body.",
        200,
        "Basket retrieved successfully",
        _refusals(BasketNotFound),
        parameters=("LandingState", "IfNoneMatch"),
        extra_answers={
            "304": {
                "description": "Not modified: the basket is still at the version If-None-Match "
                "names",
                "headers": {
                    "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
                    "ETag": {"$ref": "#/components/headers/ETag"},
                },
            }
        },
    ),
    Operation(
        "post",
        "createBasket",
        "Create a checkout basket",
        "A basket for the customer's subscription, holding its plan, its offers and the "
        "referrer and tracking the partner captured. Sets the landing_state cookie that "
        "names it.",
        201,
        "Checkout basket created successfully",
        _refusals(
            InvalidRequest,
            RecaptchaFailed,
            PromoInvalid,
            SubscriptionNotFound,
            SubscriptionLocked,
            CheckoutInProgress,
            TooManyRequests,
            TOO_LARGE,
        ),
        body=CreateBasket,
        parameters=("RecaptchaToken", "ClientIp", "Referer"),
        cookie=False,
    ),
    Operation(
        "put",
        "updateBasket",
        "Update the basket",
        "Add one offer, remove offers, or complete: `complete: true` submits the change to "
        "the subscription backend exactly once, whatever the retries. With If-Match, only the "
        "version it names is changed.",
        200,
        "Basket updated successfully",
        _refusals(
            InvalidRequest,
            MultipleAddOffers,
            RecaptchaFailed,
            PromoInvalid,
            BasketNotFound,
            SubscriptionLocked,
            BasketCompleted,
            CheckoutInProgress,
            PriceChanged,
            BasketChanged,
            TooManyRequests,
            OrderNotRecorded,
            TOO_LARGE,
        ),
        body=UpdateBasket,
        parameters=("RecaptchaToken", "LandingState", "IfMatch"),
    ),
)


def documented(method: str) -> dict[int, set[str]]:
    """The problem codes each status of `method`'s operation may carry."""
    operation = next(op for op in OPERATIONS if op.method == method.lower())
    codes: dict[int, set[str]] = defaultdict(set)
    for refusal in operation.refusals:
        codes[refusal.answer.status].add(refusal.code)
    return dict(codes)


@cache
def document(max_remove_offers: int) -> str:
    """The description, as served at /api/v1/openapi.json."""
    return json.dumps(build(max_remove_offers), indent=1)


def build(max_remove_offers: int = Defaults.MAX_REMOVE_OFFERS) -> dict[str, Any]:
    """The description, for an app whose CHECKOUT_MAX_REMOVE_OFFERS is as given."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in (CreateBasket, UpdateBasket)]
        + [(model, "serialization") for model in (BasketAnswer, Problem)],
        ref_template="#/components/schemas/{model}",
    )
    schemas["$defs"]["UpdateBasket"]["properties"]["removeOffers"]["maxItems"] = max_remove_offers
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Partner Subscription Checkout API",
            "version": VERSION,
            "summary": "Change an existing subscription: add an offer, remove offers, confirm.",
            "description": "Create a checkout basket for a customer's subscription, add one "
            "offer or remove offers, and complete the change. Errors are RFC 9457 problem "
            "details with a stable `code`; their `detail` and `title` are in English.",
            "contact": {"name": "Partner Subscription Checkout", "url": "https://example.com"},
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": "Basket", "description": "The customer's checkout basket"}],
        "paths": {PATH: {op.method: _operation(op) for op in OPERATIONS}},
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": _SECURITY,
            "parameters": _PARAMETERS,
            "headers": _HEADERS,
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    security: dict[str, list[str]] = {"bearerAuth": []}
    if op.cookie:
        security["landingState"] = []
    headers: dict[str, Any] = {
        "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
        "ETag": {"$ref": "#/components/headers/ETag"},
    }
    if op.status == 201:
        headers["Set-Cookie"] = {
            "description": "landing_state: the signed basket id",
            "schema": {"type": "string"},
        }
    answers: dict[str, Any] = {
        str(op.status): {
            "description": op.message,
            "headers": headers,
            "content": {"application/json": {"schema": _ref("BasketAnswer")}},
        },
        **op.extra_answers,
    }
    by_status: dict[int, list[Refusal]] = defaultdict(list)
    for refusal in op.refusals:
        by_status[refusal.answer.status].append(refusal)
    for status, refusals in sorted(by_status.items()):
        answers[str(status)] = _refusal_answer(op.method.upper(), status, refusals)
    described: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": ["Basket"],
        "security": [security],
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in op.parameters],
        "responses": dict(sorted(answers.items())),
    }
    if op.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body.__name__)}},
        }
    return described


def _refusal_answer(method: str, status: int, refusals: list[Refusal]) -> dict[str, Any]:
    examples = {
        refusal.code: {
            "summary": refusal.answer.title,
            "value": {
                **problem_fields(refusal.code, refusal.answer, method),
                "requestId": "6f1c0e0e6a3b4b1f9f0f4a8c2d1e3f40",
            },
        }
        for refusal in refusals
    }
    headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}
    if status == 401:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
    if status == 412:
        headers["ETag"] = {"$ref": "#/components/headers/ETag"}
    if status == 429 or any(r.answer.retry_after for r in refusals):
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    lines = [f"`{r.code}`: {r.answer.detail_for(method)}" for r in refusals]
    return {
        "description": "\n\n".join(lines),
        "headers": headers,
        "content": {"application/problem+json": {"schema": _ref("Problem"), "examples": examples}},
        "x-codes": [refusal.code for refusal in refusals],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_SECURITY = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The customer's OAuth 2.0 access token from the partner's identity "
        "provider: Authorization: Bearer <token>",
    },
    "landingState": {
        "type": "apiKey",
        "in": "cookie",
        "name": "landing_state",
        "description": "The signed cookie that names the basket (set by createBasket)",
    },
}
_PARAMETERS = {
    "RecaptchaToken": {
        "name": "X-Recaptcha-Token",
        "in": "header",
        "required": True,
        "description": "A fresh reCAPTCHA v3 token (action `checkout`); each verifies once",
        "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
    },
    "LandingState": {
        "name": "landing_state",
        "in": "cookie",
        "required": False,
        "description": "The signed basket id",
        "schema": {"type": "string", "maxLength": 512},
    },
    "IfMatch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "The ETag of the version this change is for; another version: 412",
        "schema": {"type": "string", "maxLength": 256},
    },
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "The ETag the caller holds: 304 while it is still current",
        "schema": {"type": "string", "maxLength": 256},
    },
    "ClientIp": {
        "name": "X-Client-IP",
        "in": "header",
        "required": False,
        "description": "The customer's IP address (default: the connection's, through "
        "trusted proxies)",
        "schema": {"type": "string", "maxLength": 45},
    },
    "Referer": {
        "name": "Referer",
        "in": "header",
        "required": False,
        "description": "Referrer URL for journey tracking",
        "schema": {"type": "string", "maxLength": 2048},
    },
}
_HEADERS = {
    "RequestId": {
        "description": "The request id, echoed when the request sent a sane one",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "The basket's version, as an entity tag: send it back in If-Match to "
        "change only that version, or in If-None-Match to be told it is unchanged (304)",
        "schema": {"type": "string"},
    },
    "RetryAfter": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string"},
    },
}


def errors_table() -> str:
    """The partners' table of every problem each operation can answer, in Markdown
    (docs/partners/errors.md holds it; `make docs` writes it, a test checks it)."""
    rows = ["| operation | status | code | detail |", "|---|---|---|---|"]
    for op in OPERATIONS:
        refusals = sorted(op.refusals, key=lambda r: (r.answer.status, r.code))
        for refusal in refusals:
            answer = refusal.answer
            detail = answer.detail_for(op.method.upper()).replace("|", "\\|")
            retry = f" (`Retry-After`: {answer.retry_after} s)" if answer.retry_after else ""
            rows.append(
                f"| `{op.method.upper()}` {op.summary.lower()} | {answer.status} "
                f"| `{refusal.code}` | {detail}{retry} |"
            )
    return "\n".join(rows) + "\n"
