"""Access tokens: one minting function for the token endpoint, the CLI and the test helper."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

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
    roles: Sequence[str] = (),
) -> str:
    """An RS256 JWT access token as the checkout expects it (RFC 9068 claims).

    ``expires_in`` may be negative so tests can hold an already expired token. ``roles``
    (an operator's) become a ``roles`` list claim; without any there is no such claim, so a
    customer's token keeps the shape it always had.
    """
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "jti": secrets.token_urlsafe(16),
        "scope": scope,
        "client_id": client_id,
    }
    if roles:
        claims["roles"] = list(roles)
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])
