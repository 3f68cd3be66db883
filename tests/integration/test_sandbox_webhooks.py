"""The webhook receiver as ``python -m sandbox serve`` runs it: gunicorn, gevent, sockets.

The unit tests cover its rules in-process; this checks the served sandbox reads bodies
as its server hands them over (with a length or chunked) and takes ``--webhook-secret``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.integration.conftest import sandbox_process

pytestmark = pytest.mark.integration
SECRET = "whsec_" + base64.b64encode(b"integration-webhook-secret").decode()
BODY = json.dumps({"type": "checkout.abandoned", "timestamp": "x", "data": {}}).encode()


@pytest.fixture
def served(sandbox_env: dict[str, str]) -> Iterator[str]:
    """A sandbox process on a free port with its own webhook secret; yields its URL."""
    with sandbox_process(sandbox_env, "--webhook-secret", SECRET) as url:
        yield url


def signed(msg_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, now, BODY),
        "Content-Type": "application/json",
    }


def test_served_receiver_verifies_with_the_flag_secret(served: str) -> None:
    receiver = f"{served}/partner/webhooks"
    fault = {"mode": "error", "path": "/partner/", "count": 1, "status": 503}
    requests.post(f"{served}/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    assert requests.post(receiver, data=BODY, headers=signed("msg_a"), timeout=5).status_code == 503
    assert requests.post(receiver, data=BODY, headers=signed("msg_a"), timeout=5).status_code == 204
    chunks = iter([BODY[:7], BODY[7:]])  # no Content-Length: sent chunked
    chunked = requests.post(receiver, data=chunks, headers=signed("msg_b"), timeout=5)
    assert chunked.status_code == 204
    refused = requests.post(receiver, data=BODY + b" ", headers=signed("msg_c"), timeout=5)
    assert refused.status_code == 400
    records = requests.get(f"{served}/_sandbox/webhooks", timeout=5).json()["deliveries"]
    assert [(r["webhookId"], r["status"], r["verified"]) for r in records] == [
        ("msg_a", 503, True),
        ("msg_a", 204, True),
        ("msg_b", 204, True),
        ("msg_c", 400, False),
    ]
    assert {r["type"] for r in records} == {"checkout.abandoned"}
