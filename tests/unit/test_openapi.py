"""The API's description is made from the code; these hold the code to what it must say.

Every refusal in the table of answers (app/web/problems.py) is either declared for an
operation or named here as one the API cannot meet. The integration tests check the other
direction: every problem the API answers is declared for its operation and status
(tests/integration/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from app.api.openapi import OPERATIONS, PATH, build, documented, errors_table
from app.checkout import MAX_ADD_OFFERS
from app.checkout.errors import CheckoutError
from app.checkout.values import ID_PATTERN
from app.config import Defaults
from app.web.problems import ANSWERS, Forbidden, FormExpired, HTTPProblem

# Refusals of the pages and the ops pages: the API is exempt from CSRF (Bearer tokens) and
# has no roles; an unexpected error (500) is a bug, never a documented answer.
NOT_THE_APIS = {FormExpired, Forbidden, CheckoutError}
DOCUMENT = build()
ROOT = Path(__file__).resolve().parents[2]


def test_the_description_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def test_what_partners_linters_ask_for_is_there():
    info = DOCUMENT["info"]
    assert info["license"]["name"] and info["contact"]["name"]
    for method, operation in DOCUMENT["paths"][PATH].items():
        assert operation["description"] and operation["summary"], method
        assert operation["tags"] == ["Basket"], method
        assert operation["operationId"], method


def _refusals(kind: type[CheckoutError] = CheckoutError) -> set[type[CheckoutError]]:
    """Every refusal class there is, however deep (HTTP's own errors have their codes)."""
    found = {kind} if kind is not HTTPProblem else set()
    for sub in kind.__subclasses__():
        found |= _refusals(sub)
    return found


def test_every_refusal_the_api_can_meet_is_declared_for_an_operation():
    declared = {refusal.code for op in OPERATIONS for refusal in op.refusals}
    assert set(ANSWERS) <= _refusals()
    not_the_apis = {error.code for error in NOT_THE_APIS}
    for error in _refusals():
        if error.code in not_the_apis:
            assert error.code not in declared, error
        else:
            assert error.code in declared, f"{error.__name__} ({error.code}) is not documented"


@pytest.mark.parametrize(
    ("method", "status", "code"),
    [
        ("POST", 429, "too_many_requests"),
        ("PUT", 429, "too_many_requests"),
        ("GET", 503, "server_busy"),
        ("POST", 503, "server_busy"),
        ("PUT", 503, "server_busy"),
        ("PUT", 503, "order_not_recorded"),
        ("PUT", 412, "basket_changed"),
        ("PUT", 409, "price_changed"),
        ("POST", 413, "request_entity_too_large"),
    ],
)
def test_the_answers_once_missing_are_documented(method: str, status: int, code: str):
    assert code in documented(method)[status]
    answer = DOCUMENT["paths"][PATH][method.lower()]["responses"][str(status)]
    assert code in answer["x-codes"]
    assert code in answer["content"]["application/problem+json"]["examples"]


def test_each_documented_status_and_wording_is_the_answers_own():
    for op in OPERATIONS:
        for refusal in op.refusals:
            described = DOCUMENT["paths"][PATH][op.method]["responses"][str(refusal.answer.status)]
            example = described["content"]["application/problem+json"]["examples"][refusal.code]
            assert example["value"]["detail"] == refusal.answer.detail_for(op.method.upper())


def test_the_limits_described_are_the_rules_own():
    schemas = DOCUMENT["components"]["schemas"]
    update = schemas["UpdateBasket"]["properties"]
    assert update["addOffers"]["maxItems"] == MAX_ADD_OFFERS
    assert update["addOffers"]["items"]["pattern"] == ID_PATTERN
    assert update["removeOffers"]["uniqueItems"] is True
    assert update["removeOffers"]["maxItems"] == Defaults.MAX_REMOVE_OFFERS
    assert (
        build(3)["components"]["schemas"]["UpdateBasket"]["properties"]["removeOffers"]["maxItems"]
        == 3
    )  # the app's own setting
    assert schemas["CreateBasket"]["properties"]["subscriptionId"]["pattern"] == ID_PATTERN


def test_the_partners_error_table_is_the_codes_own():
    """docs/partners/errors.md holds errors_table() between its markers (`make docs`)."""
    text = (ROOT / "docs" / "partners" / "errors.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- errors:start -->\n(.*?)<!-- errors:end -->", text, re.S)
    assert found, "docs/partners/errors.md lost its errors:start/end markers"
    assert found[1] == errors_table(), "docs/partners/errors.md is stale: run `make docs`"
