"""Server-side reCAPTCHA v3 verification: success, score, action, hostname, single use.

Single use is enforced here as well as by Google: the token's digest is claimed in Redis
(SET NX with a TTL) before it is verified, so a replayed token fails even if the
verification service would have accepted it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .errors import RecaptchaFailed, UpstreamError
from .storage import Batch, Direct, Keys
from .upstream import Unreachable, Upstream

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 4096
# Google's tokens are valid for two minutes; remember used ones for longer than that.
USED_TOKEN_TTL = 600


class RecaptchaVerifier:
    def __init__(self, config: dict[str, Any], direct: Direct, keys: Keys) -> None:
        self.url = config["RECAPTCHA_VERIFY_URL"]
        self.secret = config["RECAPTCHA_SECRET_KEY"]
        self.min_score = float(config["RECAPTCHA_MIN_SCORE"])
        self.action = config["RECAPTCHA_ACTION"]
        self.hostnames = frozenset(config["RECAPTCHA_HOSTNAMES"])
        self.timeout = float(config["RECAPTCHA_TIMEOUT"])
        self.direct = direct
        self.keys = keys
        self.http = Upstream(self.url, connect_timeout=self.timeout, read_timeout=self.timeout)

    def verify(self, token: str | None, remote_ip: str | None, *, claimed: bool = False) -> None:
        """Return quietly for a human; raise `RecaptchaFailed` otherwise.

        `claimed`: the caller already ran `queue_claim` for this token in its own batch
        (guards.py); otherwise the claim is made here first.
        """
        if not claimed:
            batch = self.direct.batch()
            self.queue_claim(batch, token)(iter(batch.execute()))
        assert token is not None
        form = {"secret": self.secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            status, result = self.http.request("POST", form=form)
        except Unreachable as exc:
            log.warning("reCAPTCHA verification unavailable: %s", exc)
            raise UpstreamError() from exc
        if not isinstance(result, dict) or status != 200:
            raise UpstreamError()
        self._judge(result)

    def queue_claim(self, pipe: Batch, token: str | None) -> Callable[[Iterator], None]:
        """Queue the single-use claim of `token`; the returned check raises on a replay."""
        if not token or len(token) > MAX_TOKEN_LENGTH:

            def missing(results: Iterator) -> None:
                raise RecaptchaFailed("reCAPTCHA token missing")

            return missing
        digest = hashlib.sha256(token.encode()).hexdigest()
        pipe.set(self.keys.recaptcha(digest), 1, nx=True, ex=USED_TOKEN_TTL)

        def check(results: Iterator) -> None:
            if not next(results):
                raise RecaptchaFailed("reCAPTCHA token already used")

        return check

    def _judge(self, result: dict[str, Any]) -> None:
        if result.get("success") is not True:
            codes = result.get("error-codes")
            if isinstance(codes, list) and "invalid-input-secret" in codes:
                log.error("reCAPTCHA rejected our secret key")
                raise UpstreamError()
            raise RecaptchaFailed("reCAPTCHA verification failed")
        score = result.get("score")
        if not isinstance(score, int | float) or score < self.min_score:
            raise RecaptchaFailed("reCAPTCHA score too low")
        if result.get("action") != self.action:
            raise RecaptchaFailed("reCAPTCHA action does not match")
        if result.get("hostname") not in self.hostnames:
            raise RecaptchaFailed("reCAPTCHA hostname not accepted")
