"""The sandbox's configuration, read once from ``SANDBOX_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from flask import current_app
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from sandbox.latency import DEFAULT_PROFILE, DEFAULT_SEED, check_profile

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 5001
EXTENSION_KEY = "sandbox.settings"
#: the secret the partner's webhook receiver verifies with unless SANDBOX_WEBHOOK_SECRET
#: says otherwise; the checkout's development default is the same literal
DEV_WEBHOOK_SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC1kZXYtb25seQ=="


@dataclass(frozen=True)
class Settings:
    """Everything that differs between a developer's sandbox and a test's sandbox."""

    issuer: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    audience: str = "checkout-api"
    client_id: str = "checkout-dev"
    client_secret: str = "checkout-dev-secret"
    recaptcha_secret: str = "sandbox-recaptcha-secret"
    backend_token: str = "sandbox-backend-token"
    access_token_ttl: int = 900
    #: how long a quote's price holds for an order
    quote_ttl_seconds: int = 600
    signing_key_file: Path = REPO_ROOT / "instance" / "sandbox-signing-key.json"
    redirect_uris: tuple[str, ...] = ()
    #: added upstream latency: none, realistic or slow (sandbox/latency.py)
    latency: str = DEFAULT_PROFILE
    #: seeds the latency samples, so a benchmark draws the same delays each run
    latency_seed: int = DEFAULT_SEED
    #: Standard Webhooks secret (``whsec_`` + base64) the webhook receiver verifies with
    webhook_secret: str = DEV_WEBHOOK_SECRET

    def __post_init__(self) -> None:
        # Refused at start, so a typo does not quietly serve with no latency at all.
        check_profile(self.latency)
        # Likewise a secret the library cannot use: every delivery would be refused.
        try:
            Webhook(self.webhook_secret)
        except (ValueError, EmptyWebhookSecretError) as error:
            raise ValueError(f"webhook secret must be whsec_ + base64 ({error})") from error

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, port: int = DEFAULT_PORT, **overrides: Any
    ) -> Settings:
        """Build settings from the environment; explicit ``overrides`` (e.g. CLI flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"issuer": f"http://127.0.0.1:{port}"}
        for field in dataclasses.fields(cls):
            raw = env.get(f"SANDBOX_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            if field.name in ("access_token_ttl", "quote_ttl_seconds", "latency_seed"):
                values[field.name] = int(raw)
            elif field.name == "signing_key_file":
                values[field.name] = Path(raw)
            elif field.name == "redirect_uris":
                values[field.name] = tuple(raw.split())
            else:
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["issuer"] = str(values["issuer"]).rstrip("/")
        return cls(**values)


def get_settings() -> Settings:
    """The settings of the sandbox app handling the current request."""
    return cast(Settings, current_app.extensions[EXTENSION_KEY])
