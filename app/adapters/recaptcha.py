"""Server-side reCAPTCHA v3 verification: success, score, action, hostname, single use.

Single use is enforced here as well as by Google: the token's digest is claimed in Redis
(SET NX with a TTL) before it is verified, so a replayed token fails even if the
verification service would have accepted it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from ..checkout.errors import RecaptchaFailed, UpstreamError
from ..signals import recaptcha_checked
from .storage import Batch, Keys
from .upstream import Unreachable, Upstream

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 4096
# Google's tokens are valid for two minutes; remember used ones for longer than that.
USED_TOKEN_TTL = 600
_CLAIM = "recaptcha:claim"


def _count(outcome: str) -> None:
    """Announce one check's outcome: passed, missing, replayed, invalid, low_score,
    wrong_action, wrong_hostname or unavailable."""
    recaptcha_checked.send(outcome)


def _failed(outcome: str, reason: str) -> RecaptchaFailed:
    _count(outcome)
    return RecaptchaFailed(reason)


@dataclass(frozen=True, slots=True)
class Claim:
    """A token's single-use claim, queued on a batch; `check` judges it once the batch ran.

    The claim's value is a nonce of its own. redis-py sends a command again when the
    connection failed after it was sent (a failover), and the second SET NX then meets the
    first one's write: the nonce tells our own claim from another request's replay.
    """

    missing: bool
    key: str = ""
    nonce: str = ""
    client: Any = None

    def check(self, batch: Batch) -> None:
        if self.missing:
            raise _failed("missing", "reCAPTCHA token missing")
        if not batch.reply(_CLAIM) and not self._ours():
            raise _failed("replayed", "reCAPTCHA token already used")

    def _ours(self) -> bool:
        held = self.client.get(self.key)  # one more round trip, only for a refused claim
        return held is not None and held.decode() == self.nonce


class RecaptchaVerifier:
    def __init__(self, config: dict[str, Any], client: Any, keys: Keys) -> None:
        self.url = config["RECAPTCHA_VERIFY_URL"]
        self.secret = config["RECAPTCHA_SECRET_KEY"]
        self.min_score = float(config["RECAPTCHA_MIN_SCORE"])
        self.action = config["RECAPTCHA_ACTION"]
        self.hostnames = frozenset(config["RECAPTCHA_HOSTNAMES"])
        self.timeout = float(config["RECAPTCHA_TIMEOUT"])
        self.client = client
        self.keys = keys
        self.http = Upstream(
            self.url,
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            pool_size=int(config["THREADS"]),  # one connection per request at most
            service="siteverify",
        )

    def verify(self, token: str | None, remote_ip: str | None, *, claimed: bool = False) -> None:
        """Return quietly for a human; raise `RecaptchaFailed` otherwise.

        `claimed`: the caller already ran `queue_claim` for this token in its own batch
        (app/web/guards.py); otherwise the claim is made here first.
        """
        if not claimed:
            batch = Batch(self.client)
            claim = self.queue_claim(batch, token)
            batch.execute()
            claim.check(batch)
        assert token is not None
        form = {"secret": self.secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            status, result = self.http.request("POST", form=form)
        except Unreachable as exc:
            log.warning("reCAPTCHA verification unavailable: %s", exc)
            _count("unavailable")
            raise UpstreamError() from exc
        if not isinstance(result, dict) or status != 200:
            _count("unavailable")
            raise UpstreamError()
        self._judge(result)
        _count("passed")

    def queue_claim(self, batch: Batch, token: str | None) -> Claim:
        """Queue the single-use claim of `token` (SET NX with a TTL) on `batch`."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return Claim(missing=True)
        digest = hashlib.sha256(token.encode()).hexdigest()
        key, nonce = self.keys.recaptcha(digest), secrets.token_hex(8)
        batch.set(_CLAIM, key, nonce, nx=True, ex=USED_TOKEN_TTL)
        return Claim(missing=False, key=key, nonce=nonce, client=self.client)

    def _judge(self, result: dict[str, Any]) -> None:
        if result.get("success") is not True:
            codes = result.get("error-codes")
            if isinstance(codes, list) and "invalid-input-secret" in codes:
                log.error("reCAPTCHA rejected our secret key")
                _count("unavailable")
                raise UpstreamError()
            raise _failed("invalid", "reCAPTCHA verification failed")
        score = result.get("score")
        if not isinstance(score, int | float) or score < self.min_score:
            raise _failed("low_score", "reCAPTCHA score too low")
        if result.get("action") != self.action:
            raise _failed("wrong_action", "reCAPTCHA action does not match")
        if result.get("hostname") not in self.hostnames:
            raise _failed("wrong_hostname", "reCAPTCHA hostname not accepted")
