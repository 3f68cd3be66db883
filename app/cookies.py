"""Our signed cookies: the landing state's basket id and the browser session's id.

Both keep itsdangerous's format, so a cookie already in a browser stays valid and a test
can forge one with itsdangerous:

    value.signature               (like `itsdangerous.Signer`)
    value.timestamp.signature     (like `itsdangerous.TimestampSigner`)

where the signature is base64url(HMAC-SHA1(key, everything before it)) without padding,
and key = SHA1(salt + "signer" + secret), itsdangerous's default derivation.

Why not itsdangerous itself: every request of the API and every page reads one of these,
and itsdangerous derives the key again on each call, goes through Python's `hmac` object
and builds a datetime; with Werkzeug's parser, which splits every cookie of the header
into a MultiDict to find one, reading the landing cookie took a sixth of a basket `GET`.
The same checks written out here cost a fraction of that (the commit gives the figures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any


def from_header(environ: Mapping[str, Any], name: str) -> str | None:
    """The value of the first cookie called `name` in the request's Cookie header.

    Values are taken as they are: we never set a quoted one, so a quoted value is a
    value we did not sign and fails its check like any other.
    """
    header = environ.get("HTTP_COOKIE")
    if not header or name not in header:
        return None
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


class SignedValue:
    """Signs and checks one kind of value; `timed` adds when it was signed."""

    def __init__(self, secret: str, salt: str, *, timed: bool, max_length: int) -> None:
        key = hashlib.sha1(salt.encode() + b"signer" + secret.encode()).digest()
        # Keyed once; each signature starts from a copy. hmac.digest() keys OpenSSL's
        # HMAC afresh on every call, looking the algorithm up again each time.
        self._keyed = hmac.new(key, digestmod=hashlib.sha1)
        self._timed = timed
        self._max_length = max_length

    def sign(self, value: str) -> str:
        head = f"{value}.{_encode_int(int(time.time()))}" if self._timed else value
        return f"{head}.{self._signature(head).decode()}"

    def unsign(self, signed: str | None, max_age: float | None = None) -> tuple[str, int] | None:
        """The value and when it was signed (0 when not `timed`); None unless the
        signature is ours and, with `max_age`, the value is not older than that."""
        if not signed or len(signed) > self._max_length:
            return None
        head, _, signature = signed.rpartition(".")
        if not head or not hmac.compare_digest(self._signature(head), signature.encode()):
            return None
        if not self._timed:
            return head, 0
        value, _, stamp = head.rpartition(".")
        try:
            signed_at = int.from_bytes(base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4)))
        except (binascii.Error, ValueError):
            return None
        if max_age is not None and not 0 <= int(time.time()) - signed_at <= max_age:
            return None
        return value, signed_at

    def _signature(self, head: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(head.encode())
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")


def _encode_int(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
