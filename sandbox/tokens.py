"""Access tokens: one minting function for the token endpoint, the CLI and the test helper."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import RSAKey

from sandbox.keys import ALGORITHM

DEFAULT_SCOPE = "openid profile"


def mint_access_token(
    key: RSAKey,
    *,
    subject: str,
    issuer: str,
    audience: str,
    client_id: str,
    expires_in: int,
    scope: str = DEFAULT_SCOPE,
    now: int | None = None,
) -> str:
    """An RS256 JWT access token as the checkout expects it (RFC 9068 claims).

    ``expires_in`` may be negative so tests can hold an already expired token.
    """
    issued_at = int(time.time()) if now is None else now
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "jti": secrets.token_urlsafe(16),
        "scope": scope,
        "client_id": client_id,
    }
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])
