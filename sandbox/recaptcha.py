"""A stand-in for Google reCAPTCHA v3: ``siteverify`` and the widget script.

The token itself says how it verifies, so a test picks the outcome by the token it sends:
``pass…`` (score 0.9), ``bot…`` (score 0.1), ``pass-action-<ACTION>-…`` and
``pass-host-<HOST>-…`` (a different action or hostname); anything else is invalid.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.settings import get_settings
from sandbox.state import get_state

bp = Blueprint("recaptcha", __name__, url_prefix="/recaptcha")

DEFAULT_ACTION = "checkout"
DEFAULT_HOSTNAME = "localhost"
#: ``pass-host-my-host.example-abc123``: the value runs to the last hyphen
OVERRIDE = re.compile(r"^(?:pass|bot)-(action|host)-(.+)-[^-]*$")


def verify(secret: str | None, token: str | None) -> dict[str, Any]:
    """Google's siteverify answer for ``token``; spends the token if it could verify."""
    expected = get_settings().recaptcha_secret
    if not secret or not hmac.compare_digest(secret.encode(), expected.encode()):
        return _failure("invalid-input-secret")
    if not token:
        return _failure("missing-input-response")
    if token.startswith("pass"):
        score = 0.9
    elif token.startswith("bot"):
        score = 0.1
    else:
        return _failure("invalid-input-response")
    if not get_state().recaptcha_tokens.spend(token):
        return _failure("timeout-or-duplicate")
    result: dict[str, Any] = {
        "success": True,
        "score": score,
        "action": DEFAULT_ACTION,
        "hostname": DEFAULT_HOSTNAME,
        "challenge_ts": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "error-codes": [],
    }
    if match := OVERRIDE.match(token):
        result["action" if match[1] == "action" else "hostname"] = match[2]
    return result


def _failure(code: str) -> dict[str, Any]:
    """Google answers a failed verification with only these two fields."""
    return {"success": False, "error-codes": [code]}


@bp.post("/api/siteverify")
def siteverify() -> Response:
    return jsonify(verify(request.form.get("secret"), request.form.get("response")))


WIDGET_SCRIPT = """\
/* Sandbox stand-in for https://www.google.com/recaptcha/api.js (reCAPTCHA v3). */
(function () {
  "use strict";
  function randomPart() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  window.grecaptcha = {
    ready: function (callback) { window.setTimeout(callback, 0); },
    execute: function (siteKey, options) {
      return Promise.resolve("pass-" + randomPart());
    }
  };
})();
"""


@bp.get("/api.js")
def widget_script() -> Response:
    """The widget: hands out ``pass-…`` tokens, whatever the site key and action."""
    response = Response(WIDGET_SCRIPT, mimetype="application/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response
