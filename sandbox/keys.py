"""The RS256 signing key, shared by the server and the ``token`` command through one file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

from flask import current_app
from joserfc.jwk import RSAKey

EXTENSION_KEY = "sandbox.signing_key"
ALGORITHM = "RS256"


def load_signing_key(path: Path) -> RSAKey:
    """Read the key at ``path``, creating it first if missing.

    The key is written to a private temporary file and hard-linked into place, so two
    processes starting at once both end up using whichever key was linked first.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, private=True)
    data = dict(key.as_dict(private=True), kid=key.thumbprint(), alg=ALGORITHM, use="sig")
    fd, tmp_name = tempfile.mkstemp(prefix=".sandbox-key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            json.dump(data, tmp)
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        os.unlink(tmp_name)
    return _read_key(path)


def _read_key(path: Path) -> RSAKey:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    key = RSAKey.import_key(data)
    if not key.kid:
        # A hand-made key file without "kid": derive the stable RFC 7638 thumbprint.
        key = RSAKey.import_key(dict(data, kid=key.thumbprint()))
    return key


def public_jwks(key: RSAKey) -> dict[str, list[dict[str, Any]]]:
    """The JWKS document: only the public half, with ``kid``, ``alg`` and ``use``."""
    public: dict[str, Any] = dict(key.as_dict(private=False))
    public.update(kid=key.kid, alg=ALGORITHM, use="sig")
    return {"keys": [public]}


def get_signing_key() -> RSAKey:
    """The signing key of the sandbox app handling the current request."""
    return cast(RSAKey, current_app.extensions[EXTENSION_KEY])
