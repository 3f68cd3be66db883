"""Schemathesis against our own OpenAPI description: no undocumented 5xx, every answer
matching the schema, over HTTP against the app, the sandbox and real Redis."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from app.api.openapi import build
from sandbox.stack import Service
from tests.conftest import Sandbox, recaptcha_token
from tests.integration.conftest import BASKET

schema = schemathesis.openapi.from_dict(build())
CHECKS = [
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
]


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_description(case, app_server: Service, sandbox: Sandbox) -> None:
    token = sandbox.token("alice")
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(
        app_server.url + BASKET,
        json={"subscriptionId": "SUB-1001"},
        headers={**auth, "X-Recaptcha-Token": recaptcha_token()},
        timeout=10,
    )
    # Half the cases run against a real basket, the rest with whatever cookie was generated.
    if created.status_code == 201 and hash(repr(case.body)) % 2 == 0:
        case.cookies = {"landing_state": created.cookies["landing_state"]}
    response = case.call(
        base_url=app_server.url,
        headers={**auth, "X-Recaptcha-Token": recaptcha_token()},
        timeout=15,
    )
    assert response.status_code < 500 or response.status_code == 502, response.text
    case.validate_response(response, checks=CHECKS)
