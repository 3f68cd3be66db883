"""One instance stopped with SIGTERM while it holds a slow request: /readyz says "stopping"
at once (to a balancer asking over a connection it already had), the request in flight is
answered in full, nothing new is taken, and the instance exits within its graceful timeout.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.stack import Service, free_port, gunicorn_service
from tests.conftest import Sandbox
from tests.integration.conftest import Partner

GRACEFUL_TIMEOUT = 10
SLOW = 3.0  # the backend's quote, held this long by the sandbox


@pytest.fixture
def instance(app_env: dict[str, str]) -> Iterator[Service]:
    env = {**app_env, "CHECKOUT_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT)}
    service = gunicorn_service("app", "wsgi:app", free_port(), env, "/healthz", workers=1)
    service.start(quiet=True)
    yield service
    service.stop()


def test_sigterm_drains_then_exits_and_cuts_no_request(instance: Service, sandbox: Sandbox):
    alice = Partner(instance.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    sandbox.fault("slow", 1, delaySeconds=SLOW)
    held: dict[str, Any] = {}

    def change() -> None:
        held["answer"] = alice.update({"addOffers": ["OFFER-SPORTS"]})

    in_flight = threading.Thread(target=change)
    in_flight.start()
    sandbox.wait_faults_taken()  # the change now waits on the backend
    balancer = requests.Session()
    assert balancer.get(instance.url + "/readyz", timeout=5).status_code == 200

    assert instance.process is not None
    instance.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    time.sleep(0.1)
    asked = balancer.get(instance.url + "/readyz", timeout=5)  # its kept-alive connection
    assert (asked.status_code, asked.json()) == (503, {"status": "stopping"})
    # Nothing new is taken: a new connection waits in the listen backlog, unanswered, and
    # is reset when the worker exits (so a balancer must stop sending first: the docs).
    with pytest.raises((requests.ConnectionError, requests.Timeout)):
        requests.get(instance.url + "/healthz", timeout=1)

    in_flight.join(timeout=SLOW + 5)
    assert held["answer"].status_code == 200, held["answer"].text  # answered in full
    assert held["answer"].json()["basket"]["addOffers"][0]["id"] == "OFFER-SPORTS"
    instance.process.wait(timeout=GRACEFUL_TIMEOUT + 5)
    assert time.monotonic() - stopped_at < GRACEFUL_TIMEOUT
