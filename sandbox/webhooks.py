"""The partner's webhook receiver: where the checkout delivers its partner events.

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com) and are verified
with its reference library, as a partner would verify them: the ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` headers, an HMAC over the raw body, a
timestamp within five minutes of now, and any one of the space-separated signatures
matching (during a rotation the checkout signs with both secrets).

Every attempt is recorded for ``GET /_sandbox/webhooks``, including refused ones and the
ones the fault switch answered: a test of the checkout's retries needs to see the
attempts a fault turned away. The fault switch answers below Flask, so the recording is
WSGI middleware outside it (``WebhookRecorder``), not the view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.wsgi import get_input_stream

from sandbox.settings import get_settings
from sandbox.state import DeliveryLog

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

RECEIVER_PATH = "/partner/webhooks"
#: where an attempt's body and verification are kept in the WSGI environ, so the
#: recorder and the view read the body and verify it once between them
ENVIRON_KEY = "sandbox.webhook_attempt"

bp = Blueprint("webhooks", __name__)


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as it arrived, and whether its signature holds."""

    webhook_id: str | None
    webhook_timestamp: str | None
    #: how many space-separated signatures ``webhook-signature`` carried
    signatures: int
    verified: bool
    #: the library's reason for refusing it, or None when verified
    error: str | None
    #: what the body parses to as JSON, or None if it is not JSON
    payload: Any

    @property
    def event_type(self) -> str | None:
        event_type = self.payload.get("type") if isinstance(self.payload, dict) else None
        return event_type if isinstance(event_type, str) else None

    def record(self, received_at: datetime, status: int | None) -> dict[str, Any]:
        """What ``GET /_sandbox/webhooks`` lists for it; ``status`` None if never answered."""
        return {
            "webhookId": self.webhook_id,
            "webhookTimestamp": self.webhook_timestamp,
            "type": self.event_type,
            "verified": self.verified,
            "error": self.error,
            "signatures": self.signatures,
            "receivedAt": received_at.isoformat(timespec="milliseconds"),
            "status": status,
            "body": self.payload,
        }


def read_body(environ: WSGIEnvironment) -> bytes:
    """The request body, read once and put back so whatever runs next can read it too.

    werkzeug's ``get_input_stream`` honours Content-Length and the server's
    ``wsgi.input_terminated`` (a chunked body), so this reads what Flask would read.
    """
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input_terminated"] = True
    return body


def attempt_for(environ: WSGIEnvironment, secret: str) -> Attempt:
    """The attempt this request is, read and verified on first asking."""
    cached = environ.get(ENVIRON_KEY)
    if isinstance(cached, Attempt):
        return cached
    body = read_body(environ)
    headers = {
        name: environ[key]
        for name, key in (
            ("webhook-id", "HTTP_WEBHOOK_ID"),
            ("webhook-timestamp", "HTTP_WEBHOOK_TIMESTAMP"),
            ("webhook-signature", "HTTP_WEBHOOK_SIGNATURE"),
        )
        if key in environ
    }
    try:
        # Parsed below, not by the library: a signed body that is not JSON still verifies.
        Webhook(secret).verify(body, headers, json_parse=False)
        error = None
    except WebhookVerificationError as refused:
        error = str(refused) or "Invalid signature"
    try:
        payload = json.loads(body)
    except ValueError:  # not UTF-8, or not JSON
        payload = None
    attempt = Attempt(
        webhook_id=headers.get("webhook-id"),
        webhook_timestamp=headers.get("webhook-timestamp"),
        signatures=len(headers.get("webhook-signature", "").split()),
        verified=error is None,
        error=error,
        payload=payload,
    )
    environ[ENVIRON_KEY] = attempt
    return attempt


@bp.post(RECEIVER_PATH)
def receive() -> ResponseReturnValue:
    """204 for a verified delivery; 400 for a bad signature or a payload that is no event."""
    attempt = attempt_for(request.environ, get_settings().webhook_secret)
    if not attempt.verified:
        message = f"The webhook signature does not verify: {attempt.error}."
        return jsonify({"error": "invalid_signature", "message": message}), 400
    if not isinstance(attempt.payload, dict):
        message = "The payload must be a JSON object (Standard Webhooks: type, timestamp, data)."
        return jsonify({"error": "invalid_payload", "message": message}), 400
    return "", 204


class WebhookRecorder:
    """Records every POST to the receiver with the status it was answered with.

    It sits outside ``FaultMiddleware``, so a faulted attempt is recorded with the fault's
    status; one whose connection a fault dropped has status None (no answer reached the
    caller). The signature is verified for every attempt, faulted or not.
    """

    def __init__(self, app: WSGIApplication, deliveries: DeliveryLog, secret: str) -> None:
        self.app = app
        self.deliveries = deliveries
        self.secret = secret

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        is_delivery = (
            environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == RECEIVER_PATH
        )
        if not is_delivery:
            return self.app(environ, start_response)
        arrival = self.deliveries.arrival()
        received_at = datetime.now(UTC)
        attempt = attempt_for(environ, self.secret)
        status: int | None = None

        def recording_start_response(
            status_line: str,
            headers: list[tuple[str, str]],
            exc_info: OptExcInfo | None = None,
        ) -> Any:
            nonlocal status
            status = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        try:
            # Flask and the faults both start the response before handing back the body.
            return self.app(environ, recording_start_response)
        finally:
            self.deliveries.record(arrival, attempt.record(received_at, status))
