"""Integration fixtures: a partner's HTTP client for the API of the running app, and the
sandbox as an operator starts it (`python -m sandbox serve`)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from app.adapters.storage import connect
from app.api.openapi import documented
from app.api.schemas import BasketAnswer
from sandbox.stack import ROOT, Service
from tests.conftest import Sandbox, recaptcha_token

BASKET = "/api/v1/checkout/basket"


class Partner:
    """One customer's device as a partner server drives it: a token and a cookie jar."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.token = token

    def headers(self, recaptcha: str | None = "pass", **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if recaptcha is not None:
            headers["X-Recaptcha-Token"] = recaptcha_token(recaptcha)
        return headers

    def get(self, **headers: str) -> requests.Response:
        return as_documented(
            self.http.get(self.base_url + BASKET, headers=self.headers(None, **headers))
        )

    def create(
        self, subscription: str = "SUB-1001", recaptcha: str | None = "pass", **body: Any
    ) -> requests.Response:
        return as_documented(
            self.http.post(
                self.base_url + BASKET,
                json={"subscriptionId": subscription, **body},
                headers=self.headers(recaptcha),
            )
        )

    def update(
        self, body: Any, recaptcha: str | None = "pass", **headers: str
    ) -> requests.Response:
        return as_documented(
            self.http.put(
                self.base_url + BASKET, json=body, headers=self.headers(recaptcha, **headers)
            )
        )


def as_documented(response: requests.Response) -> requests.Response:
    """Fail a test whose answer is not as the API's description says: a basket that does
    not match its model, or a problem not listed for its operation and status
    (app/api/schemas.py, app/api/openapi.py)."""
    if response.status_code in (200, 201):
        BasketAnswer.model_validate(response.json())
    if response.headers.get("Content-Type") == "application/problem+json":
        method, status = response.request.method or "", response.status_code
        code = response.json().get("code", "")
        assert code in documented(method).get(status, set()), (
            f"{method} answered {status} {code}, which its description does not list"
        )
    return response


@pytest.fixture(scope="session")
def app_redis(app_env: dict[str, str]) -> Any:
    """A client for the app's Redis as the app makes it: a single server or a cluster."""
    client = connect(
        {
            "REDIS_URL": app_env["CHECKOUT_REDIS_URL"],
            "REDIS_CLUSTER": app_env["CHECKOUT_REDIS_CLUSTER"] == "true",
            "REDIS_SOCKET_TIMEOUT": 2,
        }
    )
    yield client
    client.close()


@pytest.fixture
def partner(app_server: Service, sandbox: Sandbox):
    """Make a Partner for a customer: `partner("alice")`."""

    def make(customer: str | None = "alice", **token_options: Any) -> Partner:
        token = sandbox.token(customer, **token_options) if customer else None
        return Partner(app_server.url, token)

    return make


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert {"type", "title", "detail"} <= body.keys()
    return body


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str]:
    """This environment less any SANDBOX_* setting, with a signing key of the test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    return {**clean, "SANDBOX_SIGNING_KEY_FILE": str(tmp_path / "signing-key.json")}


@contextmanager
def sandbox_process(env: dict[str, str], *flags: str) -> Iterator[str]:
    """`python -m sandbox serve --port 0 [flags]`, as an operator runs it; yields the URL
    it announced, and stops it afterwards."""
    command = [sys.executable, "-m", "sandbox", "serve", "--port", "0", *flags]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        line = process.stdout.readline().strip() if ready else ""
        try:
            assert line.startswith("sandbox listening on http://127.0.0.1:"), line
            yield line.removeprefix("sandbox listening on ")
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def served(sandbox_env: dict[str, str]) -> Iterator[str]:
    """A sandbox process on a free port; yields the URL it announced."""
    with sandbox_process(sandbox_env) as url:
        yield url
