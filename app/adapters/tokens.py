"""Bearer access tokens: RS256 JWTs from the configured issuer, checked against its JWKS.

The JWKS is cached in the process and fetched again when a token names a key id we do not
know (the provider rotated its keys), at most once per `_REFRESH_GAP` seconds so a stream
of forged key ids cannot make us hammer the provider.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..checkout.errors import Unauthorized, UpstreamError
from .upstream import Unreachable, Upstream

log = logging.getLogger(__name__)

_REFRESH_GAP = 30.0
_MAX_TOKEN_LENGTH = 8192
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessToken:
    subject: str
    claims: dict[str, Any]


class TokenValidator:
    def __init__(
        self, issuer: str, audience: str, *, cache_seconds: float, leeway: int, timeout: float
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.cache_seconds = cache_seconds
        self.leeway = leeway
        # Discovery and JWKS: read-only GETs, so a failed connect or a gateway error is
        # tried again (upstream.py's policy).
        self.http = Upstream(
            issuer, connect_timeout=timeout, read_timeout=timeout, retries=1, service="identity"
        )
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._jwks_uri: str | None = None
        self._verified: dict[str, AccessToken] = {}

    def validate(self, header: str | None) -> AccessToken:
        if not header or not header.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        token = header[len("Bearer ") :].strip()
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise Unauthorized("malformed bearer token")
        # A partner repeats one token for a customer's whole visit: verify its signature once.
        cached = self._verified.get(token)
        if cached is not None and cached.claims["exp"] + self.leeway > time.time():
            return cached
        access = self._verify(token)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = access
        return access

    def _verify(self, token: str) -> AccessToken:
        try:
            kid = jws.extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError) as exc:
            raise Unauthorized("malformed bearer token") from exc
        keys = self._key_set(str(kid) if kid else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
            registry = jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise Unauthorized(f"invalid token: {type(exc).__name__}") from exc
        subject = decoded.claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("token has no subject")
        if not isinstance(decoded.claims.get("exp"), int | float):
            raise Unauthorized("token has no expiry")
        return AccessToken(subject, decoded.claims)

    def _key_set(self, kid: str | None) -> KeySet:
        now = time.monotonic()
        keys = self._keys
        stale = keys is None or now - self._fetched_at > self.cache_seconds
        unknown = keys is not None and kid is not None and not _has_kid(keys, kid)
        if stale or (unknown and now - self._fetched_at > _REFRESH_GAP):
            with self._lock:
                if keys is self._keys:  # nobody refreshed while we waited
                    self._keys = self._fetch()
                    self._fetched_at = time.monotonic()
                keys = self._keys
        assert keys is not None
        return keys

    def _fetch(self) -> KeySet:
        try:
            if self._jwks_uri is None:
                meta = self._get_json("/.well-known/openid-configuration")
                self._jwks_uri = str(meta["jwks_uri"])
            return KeySet.import_key_set(self._get_json(self._jwks_uri))
        except (Unreachable, ValueError, KeyError, TypeError, JoseError) as exc:
            log.warning("identity provider keys unavailable: %s", type(exc).__name__)
            if self._keys is not None:
                return self._keys
            raise UpstreamError() from exc

    def _get_json(self, path: str) -> Any:
        status, data = self.http.request("GET", path)
        if status != 200 or not isinstance(data, dict):
            raise ValueError(f"the identity provider answered {status}")
        return data


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
