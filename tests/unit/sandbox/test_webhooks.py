"""The partner's webhook receiver, in-process: verification, the record, faults, reset.

Deliveries are signed with the Standard Webhooks reference library, as the checkout
signs them, so these tests check the sandbox against the standard, not against itself.
"""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook
from werkzeug.test import TestResponse

import sandbox.__main__ as cli
from sandbox import Settings, create_app
from sandbox.faults import ConnectionDropped
from sandbox.settings import DEV_WEBHOOK_SECRET
from sandbox.state import EXTENSION_KEY as STATE_EXTENSION
from sandbox.state import DeliveryLog, SandboxState

pytestmark = pytest.mark.unit

RECEIVER = "/partner/webhooks"
OTHER_SECRET = "whsec_" + base64.b64encode(b"the-secret-being-rotated-out").decode()
EVENT: dict[str, Any] = {
    "type": "checkout.completed",
    "timestamp": "2025-01-01T12:00:00Z",
    "data": {"subscriptionId": "SUB-1001", "orderId": "ORD-1"},
}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def signed(
    body: bytes,
    msg_id: str = "msg_1",
    *,
    secrets: tuple[str, ...] = (DEV_WEBHOOK_SECRET,),
    at: datetime | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret."""
    timestamp = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets
        ),
    }


def deliver(client: FlaskClient, body: bytes, headers: dict[str, str]) -> TestResponse:
    return client.post(RECEIVER, data=body, headers={**headers, "Content-Type": "application/json"})


def deliveries(client: FlaskClient) -> list[dict[str, Any]]:
    answer = client.get("/_sandbox/webhooks")
    assert answer.status_code == 200
    records: list[dict[str, Any]] = answer.get_json()["deliveries"]
    return records


def add_fault(client: FlaskClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/_sandbox/faults", json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    fault: dict[str, Any] = answer.get_json()
    return fault


# --- verification and the record -------------------------------------------------------


def test_signed_delivery_is_accepted_and_recorded(client: FlaskClient) -> None:
    body = encode(EVENT)
    headers = signed(body, "msg_2mZ9a")
    before = datetime.now(UTC)
    answer = deliver(client, body, headers)
    assert (answer.status_code, answer.get_data()) == (204, b"")
    (record,) = deliveries(client)
    received_at = datetime.fromisoformat(record.pop("receivedAt"))
    assert before - timedelta(seconds=1) <= received_at <= datetime.now(UTC)
    assert record == {
        "webhookId": "msg_2mZ9a",
        "webhookTimestamp": headers["webhook-timestamp"],
        "type": "checkout.completed",
        "verified": True,
        "error": None,
        "signatures": 1,
        "status": 204,
        "body": EVENT,
    }


def test_tampered_body_is_refused_and_recorded_unverified(client: FlaskClient) -> None:
    headers = signed(encode(EVENT))
    tampered = {**EVENT, "data": {"subscriptionId": "SUB-2002", "orderId": "ORD-1"}}
    answer = deliver(client, encode(tampered), headers)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_signature"
    assert "No matching signature found" in answer.get_json()["message"]
    (record,) = deliveries(client)
    assert record["verified"] is False
    assert record["error"] == "No matching signature found"
    assert (record["status"], record["type"], record["body"]) == (
        400,
        "checkout.completed",
        tampered,
    )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(client: FlaskClient, missing: str) -> None:
    body = encode(EVENT)
    headers = signed(body)
    del headers[missing]
    answer = deliver(client, body, headers)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_signature"
    (record,) = deliveries(client)
    assert (record["verified"], record["error"]) == (False, "Missing required headers")
    assert record["signatures"] == (0 if missing == "webhook-signature" else 1)
    assert record["webhookId"] == (None if missing == "webhook-id" else "msg_1")


def test_unsigned_garbage_is_recorded_with_what_can_be_read(client: FlaskClient) -> None:
    answer = client.post(RECEIVER, data=b"\xff not json")
    assert answer.status_code == 400
    (record,) = deliveries(client)
    assert {key: record[key] for key in ("webhookId", "type", "body", "signatures")} == {
        "webhookId": None,
        "type": None,
        "body": None,
        "signatures": 0,
    }


@pytest.mark.parametrize(
    ("secrets", "verifies"),
    [
        ((DEV_WEBHOOK_SECRET, OTHER_SECRET), True),
        ((OTHER_SECRET, DEV_WEBHOOK_SECRET), True),
        ((OTHER_SECRET, OTHER_SECRET), False),
    ],
)
def test_any_matching_signature_verifies(
    client: FlaskClient, secrets: tuple[str, ...], verifies: bool
) -> None:
    """During a rotation the checkout signs with both secrets; one match is enough."""
    body = encode(EVENT)
    answer = deliver(client, body, signed(body, secrets=secrets))
    assert answer.status_code == (204 if verifies else 400)
    (record,) = deliveries(client)
    assert (record["verified"], record["signatures"]) == (verifies, 2)


@pytest.mark.parametrize(
    ("shift", "error"),
    [(timedelta(minutes=-6), "Message timestamp too old"), (timedelta(minutes=6), "too new")],
)
def test_timestamps_outside_five_minutes_are_refused(
    client: FlaskClient, shift: timedelta, error: str
) -> None:
    body = encode(EVENT)
    answer = deliver(client, body, signed(body, at=datetime.now(UTC) + shift))
    assert answer.status_code == 400
    (record,) = deliveries(client)
    assert record["verified"] is False and error in record["error"]


def test_signed_body_that_is_not_an_event_is_refused(client: FlaskClient) -> None:
    for body in (b"not json", encode(["a", "list"])):
        answer = deliver(client, body, signed(body))
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "invalid_payload"
    first, second = deliveries(client)
    # The signature held: what was wrong is the payload, which the status says.
    assert (first["verified"], first["body"], first["type"]) == (True, None, None)
    assert (second["verified"], second["body"]) == (True, ["a", "list"])


def test_the_secret_is_a_setting(key_file: Path) -> None:
    app = create_app(Settings(signing_key_file=key_file, webhook_secret=OTHER_SECRET))
    client = app.test_client()
    body = encode(EVENT)
    assert deliver(client, body, signed(body)).status_code == 400
    assert deliver(client, body, signed(body, secrets=(OTHER_SECRET,))).status_code == 204


def test_only_posts_to_the_receiver_are_recorded(client: FlaskClient) -> None:
    assert client.get(RECEIVER).status_code == 405
    assert client.post("/partner/other", data=b"{}").status_code == 404
    assert deliveries(client) == []


# --- settings --------------------------------------------------------------------------


def test_secret_defaults_to_the_development_one_and_comes_from_the_environment() -> None:
    assert DEV_WEBHOOK_SECRET == "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC1kZXYtb25seQ=="
    assert Settings.from_env({}).webhook_secret == DEV_WEBHOOK_SECRET
    assert Settings.from_env({"SANDBOX_WEBHOOK_SECRET": ""}).webhook_secret == DEV_WEBHOOK_SECRET
    env = {"SANDBOX_WEBHOOK_SECRET": OTHER_SECRET}
    assert Settings.from_env(env).webhook_secret == OTHER_SECRET
    flag = Settings.from_env(env, webhook_secret=DEV_WEBHOOK_SECRET)
    assert flag.webhook_secret == DEV_WEBHOOK_SECRET


@pytest.mark.parametrize("secret", ["whsec_", "whsec_a"])
def test_unusable_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        Settings.from_env({"SANDBOX_WEBHOOK_SECRET": secret})


def test_serve_takes_the_secret_from_its_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: list[Settings] = []

    class Server:
        def __init__(self, settings: Settings, sock: socket.socket) -> None:
            served.append(settings)
            sock.close()

        def run(self) -> None:
            pass

    monkeypatch.setattr(cli, "SandboxServer", Server)
    monkeypatch.setenv("SANDBOX_SIGNING_KEY_FILE", str(tmp_path / "key.json"))
    monkeypatch.setenv("SANDBOX_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    argv = ["serve", "--port", "0", "--webhook-secret", OTHER_SECRET]
    assert cli.main(argv) == 0
    assert served[0].webhook_secret == OTHER_SECRET


# --- faults ----------------------------------------------------------------------------


def test_fault_503_twice_then_accepted_records_three_attempts(client: FlaskClient) -> None:
    fault = add_fault(client, mode="error", path="/partner/", count=2, status=503)
    assert fault == {
        "mode": "error",
        "path": "/partner/",
        "count": 2,
        "delaySeconds": 3.0,
        "status": 503,
    }
    body = encode(EVENT)
    statuses = []
    for _ in range(3):  # a retry re-signs: same webhook-id, fresh timestamp and signature
        answer = deliver(client, body, signed(body, "msg_retried"))
        statuses.append(answer.status_code)
        if answer.status_code == 503:
            assert answer.get_json() == {
                "error": "internal_error",
                "message": "Injected fault: server error.",
            }
    assert statuses == [503, 503, 204]
    records = deliveries(client)
    assert [(r["webhookId"], r["status"], r["verified"]) for r in records] == [
        ("msg_retried", 503, True),
        ("msg_retried", 503, True),
        ("msg_retried", 204, True),
    ]
    assert client.get("/_sandbox/faults").get_json() == {"faults": []}


def test_faulted_attempt_with_a_bad_signature_is_recorded_unverified(
    client: FlaskClient,
) -> None:
    add_fault(client, mode="error", path=RECEIVER, status=503)
    answer = deliver(client, encode(EVENT), signed(b"something else"))
    assert answer.status_code == 503
    (record,) = deliveries(client)
    assert (record["status"], record["verified"]) == (503, False)
    assert record["error"] == "No matching signature found"


def test_dropped_attempt_is_recorded_without_a_status(client: FlaskClient) -> None:
    add_fault(client, mode="drop", path="/partner/")
    body = encode(EVENT)
    with pytest.raises(ConnectionDropped):
        deliver(client, body, signed(body))
    (record,) = deliveries(client)
    assert (record["status"], record["verified"]) == (None, True)


def test_other_fault_modes_answer_the_receiver_too(client: FlaskClient) -> None:
    add_fault(client, mode="malformed", path="/partner/")
    add_fault(client, mode="slow", path="/partner/", delaySeconds=0)
    body = encode(EVENT)
    assert deliver(client, body, signed(body)).status_code == 200
    assert deliver(client, body, signed(body)).status_code == 204
    assert [r["status"] for r in deliveries(client)] == [200, 204]


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "error", "status": 399},
        {"mode": "error", "status": 600},
        {"mode": "error", "status": "503"},
        {"mode": "error", "status": True},
        {"mode": "drop", "status": 503},
    ],
)
def test_fault_status_is_checked(client: FlaskClient, body: dict[str, Any]) -> None:
    answer = client.post("/_sandbox/faults", json=body)
    assert answer.status_code == 400
    assert "status" in answer.get_json()["message"]


def test_error_fault_still_answers_500_by_default(client: FlaskClient) -> None:
    assert add_fault(client, mode="error", path="/partner/")["status"] == 500
    body = encode(EVENT)
    assert deliver(client, body, signed(body)).status_code == 500


# --- the log ---------------------------------------------------------------------------


def test_deliveries_are_cleared_by_delete_and_by_reset(client: FlaskClient) -> None:
    body = encode(EVENT)
    deliver(client, body, signed(body))
    assert len(deliveries(client)) == 1
    assert client.delete("/_sandbox/webhooks").status_code == 204
    assert deliveries(client) == []
    deliver(client, body, signed(body))
    assert client.post("/_sandbox/reset").status_code == 204
    assert deliveries(client) == []


def test_only_the_last_attempts_are_kept(app: Flask, client: FlaskClient) -> None:
    log = app.extensions[STATE_EXTENSION]
    assert isinstance(log, SandboxState)
    kept = DeliveryLog.KEPT
    for number in range(kept):
        log.webhooks.record(log.webhooks.arrival(), {"webhookId": f"msg_{number}"})
    body = encode(EVENT)
    deliver(client, body, signed(body, "msg_last"))
    records = deliveries(client)
    assert len(records) == kept
    assert (records[0]["webhookId"], records[-1]["webhookId"]) == ("msg_1", "msg_last")


# --- over a real socket ----------------------------------------------------------------


def test_chunked_body_is_read_whole(client: FlaskClient, live_url: str) -> None:
    """No Content-Length: the recorder reads the body as the server ends it, once."""
    body = encode(EVENT)
    answer = requests.post(
        live_url + RECEIVER,
        data=iter([body[:10], body[10:]]),  # a generator body goes out chunked
        headers=signed(body),
        timeout=5,
    )
    assert answer.status_code == 204
    (record,) = deliveries(client)
    assert (record["verified"], record["body"]) == (True, EVENT)
