"""Configuration: every setting's default, and the checks that stop a production start on
development settings.

Order of precedence (lowest first): `Defaults`, `instance/config.py`, `CHECKOUT_*`
environment variables, then the mapping a test passes to `create_app`; `Fixed` last. Every
setting in `Defaults` is documented in docs/operators/configuration.md, and a test fails
when one is not (tests/unit/test_docs.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
DEV_OAUTH_CLIENT_SECRET = "checkout-dev-secret"
DEV_RECAPTCHA_SECRET_KEY = "sandbox-recaptcha-secret"
DEV_SUBSCRIPTION_API_TOKEN = "sandbox-backend-token"
# The sandbox's partner receiver verifies with the same (sandbox/settings.py).
DEV_WEBHOOK_SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC1kZXYtb25seQ=="
SANDBOX = "http://127.0.0.1:5001"


class Defaults:
    """Development defaults: everything points at the local sandbox."""

    ENV = "development"
    SECRET_KEY = DEV_SECRET_KEY
    # Keys that signed cookies before the current one: still read, never used to sign.
    SECRET_KEY_FALLBACKS: list[str] = []

    REDIS_URL = "redis://127.0.0.1:6379/0"
    REDIS_CLUSTER = False
    REDIS_KEY_PREFIX = "checkout"
    REDIS_SOCKET_TIMEOUT = 1.0
    # Sentinel: "host:port" of each sentinel (comma separated); the master's name; the
    # sentinels' password. REDIS_PASSWORD is the data nodes' (any topology).
    REDIS_SENTINELS: list[str] = []
    REDIS_SENTINEL_SERVICE = "checkout"
    REDIS_SENTINEL_PASSWORD = ""
    REDIS_PASSWORD = ""
    # A basket write is answered once this many replicas have it too (WAIT), or after
    # REDIS_MIN_REPLICAS_TIMEOUT_MS without them (logged and counted, the answer unchanged).
    REDIS_MIN_REPLICAS = 0
    REDIS_MIN_REPLICAS_TIMEOUT_MS = 100
    # Connections per process (per node on a cluster); 0: two per request in flight.
    REDIS_MAX_CONNECTIONS = 0

    SUBSCRIPTION_API_URL = f"{SANDBOX}/backend/v1"
    SUBSCRIPTION_API_TOKEN = DEV_SUBSCRIPTION_API_TOKEN
    SUBSCRIPTION_API_CONNECT_TIMEOUT = 1.0
    SUBSCRIPTION_API_READ_TIMEOUT = 4.0
    SUBSCRIPTION_API_READ_RETRIES = 2
    # Consecutive failures that open the circuit, and how long it stays open.
    SUBSCRIPTION_API_BREAKER_THRESHOLD = 5
    SUBSCRIPTION_API_BREAKER_COOLDOWN = 5.0

    OAUTH_ISSUER = SANDBOX
    OAUTH_CLIENT_ID = "checkout-dev"
    OAUTH_CLIENT_SECRET = DEV_OAUTH_CLIENT_SECRET
    OAUTH_AUDIENCE = "checkout-api"
    # `profile` and `email` name the customer in the header (name, username or email).
    OAUTH_SCOPE = "openid profile email"
    OAUTH_JWKS_CACHE_SECONDS = 600
    OAUTH_LEEWAY_SECONDS = 30

    RECAPTCHA_SITE_KEY = "sandbox-site-key"
    RECAPTCHA_SECRET_KEY = DEV_RECAPTCHA_SECRET_KEY
    RECAPTCHA_VERIFY_URL = f"{SANDBOX}/recaptcha/api/siteverify"
    RECAPTCHA_SCRIPT_URL = f"{SANDBOX}/recaptcha/api.js"
    RECAPTCHA_MIN_SCORE = 0.5
    RECAPTCHA_ACTION = "checkout"
    RECAPTCHA_HOSTNAMES = ["localhost", "127.0.0.1"]
    RECAPTCHA_TIMEOUT = 3.0

    # Threads per worker (gunicorn's gthread): the upstream connection pools and the
    # fan-out pool are this large.
    THREADS = 96
    # Beyond this many requests in flight a worker answers 503 at once (app/web/overload.py);
    # fewer than THREADS, so a request beyond it still finds a thread to be told on.
    MAX_IN_FLIGHT = 64
    # No request waits on its upstreams, all its calls together, longer than this.
    REQUEST_DEADLINE_SECONDS = 5.0

    # `/metrics` needs `Authorization: Bearer <this>` when set; production requires one.
    METRICS_TOKEN = ""
    # The `roles` claim value that opens the ops pages (/ops/funnel) to an operator.
    OPERATOR_ROLE = "checkout-operator"
    # The funnel's per-day counts are kept this long, and a day holds at most this many
    # campaign × step fields (campaign names come from links anyone can write).
    FUNNEL_TTL_DAYS = 90
    FUNNEL_MAX_FIELDS = 12000

    # Offers one change may remove (the API's removeOffers, a page's Remove): a bound on
    # what one request may ask of the backend's quote.
    MAX_REMOVE_OFFERS = 20

    # Partner events (Standard Webhooks): where they go ('' for nowhere), signed with the
    # secret (whsec_…) and, during a rotation, the previous one too.
    WEBHOOK_URL = f"{SANDBOX}/partner/webhooks"
    WEBHOOK_SECRET = DEV_WEBHOOK_SECRET
    WEBHOOK_SECRET_PREVIOUS = ""
    # Seconds between attempts (the specification's suggestion); the event fails after the
    # last, and is kept for operators to send again.
    WEBHOOK_RETRY_SCHEDULE: list[str] = ["5", "300", "1800", "7200", "18000", "36000", "36000"]
    WEBHOOK_TIMEOUT_SECONDS = 5.0
    # Loopback and private addresses: allowed in development (the sandbox), refused
    # otherwise unless this says so.
    WEBHOOK_ALLOW_PRIVATE = ""
    WEBHOOK_RETENTION_DAYS = 7
    # A deliverer that holds an attempt this long is taken to have died: another takes over.
    WEBHOOK_LEASE_SECONDS = 60.0
    # Attempts one deliverer makes at once, and how often it looks for expired baskets.
    WEBHOOK_CONCURRENCY = 8
    WEBHOOK_SWEEP_SECONDS = 10.0

    BASKET_TTL_SECONDS = 1800
    # A basket's copy of the subscription is trusted for reads this long; changes and
    # completion always ask the backend.
    BASKET_SNAPSHOT_MAX_AGE_SECONDS = 300

    # Per client IP and per customer: "count/seconds".
    RATE_LIMIT_CREATE = "20/60"
    RATE_LIMIT_UPDATE = "120/60"

    # How many proxies in front of the app may set X-Forwarded-For (0: trust none).
    TRUSTED_PROXIES = 0
    # The host names the app answers for (Flask's TRUSTED_HOSTS; a leading dot takes the
    # subdomains too). Any other Host gets 400: the sign-in's redirect_uri and every other
    # absolute URL is built from the Host, so an untrusted one must never be echoed.
    TRUSTED_HOSTS: list[str] = ["localhost", "127.0.0.1"]
    MAX_CONTENT_LENGTH = 16 * 1024

    # The browser's server-side session (sign-in tokens, landing data) idles out after this.
    SESSION_TTL_SECONDS = 7200
    OAUTH_TIMEOUT_SECONDS = 5.0
    # Times on the pages (when a basket expires) are shown in the customers' time zone.
    DISPLAY_TIMEZONE = "Europe/London"
    # The languages the pages offer (app/web/language.py; each but English needs its
    # catalogue in translations/), and the one for a browser that asks for none of them.
    LANGUAGES: list[str] = ["en", "cy"]
    DEFAULT_LANGUAGE = "en"


def load(config: Any, test_config: dict[str, Any] | None = None) -> None:
    """Fill Flask's `config`: these defaults, instance/config.py, the CHECKOUT_* variables,
    then `test_config`; normalised, then checked."""
    config.from_object(Defaults)
    config.from_pyfile("config.py", silent=True)
    config.from_prefixed_env("CHECKOUT")
    if test_config:
        config.from_mapping(test_config)
    config.from_object(Fixed)
    normalise(config)
    check_redis(config)
    check_production(config)


class Fixed:
    """Not settings: the contract and the security of every deployment rest on them, so
    they are applied after everything else."""

    LANDING_COOKIE_NAME = "landing_state"
    SESSION_COOKIE_NAME = "checkout_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the CSRF token lives as long as the signed session


class ConfigError(RuntimeError):
    """A setting that must not reach production; the message names it."""


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_URL_SETTINGS = (
    "SUBSCRIPTION_API_URL",
    "OAUTH_ISSUER",
    "RECAPTCHA_VERIFY_URL",
    "RECAPTCHA_SCRIPT_URL",
)
_DEV_SECRETS = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "OAUTH_CLIENT_SECRET": DEV_OAUTH_CLIENT_SECRET,
    "RECAPTCHA_SECRET_KEY": DEV_RECAPTCHA_SECRET_KEY,
    "SUBSCRIPTION_API_TOKEN": DEV_SUBSCRIPTION_API_TOKEN,
    "WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
}


def normalise(config: dict[str, Any]) -> None:
    """Accept the forms an operator naturally writes in an environment variable."""
    for key in (
        "SECRET_KEY_FALLBACKS",
        "RECAPTCHA_HOSTNAMES",
        "REDIS_SENTINELS",
        "WEBHOOK_RETRY_SCHEDULE",
        "LANGUAGES",
        "TRUSTED_HOSTS",
    ):
        config[key] = _listed(config.get(key) or [])
    config["WEBHOOK_RETRY_SCHEDULE"] = [_seconds(s) for s in config["WEBHOOK_RETRY_SCHEDULE"]]
    allow = str(config.get("WEBHOOK_ALLOW_PRIVATE") or "").strip().lower()
    config["WEBHOOK_ALLOW_PRIVATE"] = allow in ("1", "true", "yes") or (
        allow == "" and config["ENV"] == "development"
    )
    for key in ("SUBSCRIPTION_API_URL", "OAUTH_ISSUER"):
        config[key] = str(config[key]).rstrip("/")
    config["SESSION_COOKIE_SECURE"] = config["ENV"] != "development"


def _listed(value: str | list[str]) -> list[str]:
    """A list setting, given as a list (a JSON one too) or comma separated."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86400 * 7:
        raise ConfigError(f"CHECKOUT_WEBHOOK_RETRY_SCHEDULE: {text!r} is not a number of seconds")
    return seconds


def secret_keys(config: dict[str, Any]) -> list[str]:
    """The keys itsdangerous checks signatures with: the fallbacks, then the current key,
    which it signs with (it takes the last as the newest)."""
    return [*config["SECRET_KEY_FALLBACKS"], str(config["SECRET_KEY"])]


def check_languages(config: dict[str, Any], available: set[str]) -> None:
    """Offer only languages the pages are written in, and default to one of them."""
    for language in config["LANGUAGES"]:
        if language not in available:
            raise ConfigError(f"CHECKOUT_LANGUAGES: no pages in {language!r}")
    if config["DEFAULT_LANGUAGE"] not in config["LANGUAGES"]:
        raise ConfigError("CHECKOUT_DEFAULT_LANGUAGE is not one of CHECKOUT_LANGUAGES")


def check_redis(config: dict[str, Any]) -> None:
    """Settings that contradict each other, in any environment."""
    if config["REDIS_SENTINELS"] and config["REDIS_CLUSTER"]:
        raise ConfigError("CHECKOUT_REDIS_SENTINELS and CHECKOUT_REDIS_CLUSTER: choose one")


def check_production(config: dict[str, Any]) -> None:
    """Refuse development secrets and sandbox URLs when CHECKOUT_ENV=production."""
    if config["ENV"] != "production":
        return
    for key, dev_value in _DEV_SECRETS.items():
        if key == "WEBHOOK_SECRET" and not config.get("WEBHOOK_URL"):
            continue  # no partner events: no secret to sign them with
        value = config.get(key) or ""
        if value == dev_value:
            raise ConfigError(f"CHECKOUT_{key} is the development value; set a real secret")
        if key == "SECRET_KEY" and len(value) < 32:
            raise ConfigError("CHECKOUT_SECRET_KEY is too short; use at least 32 random characters")
    if not set(config["TRUSTED_HOSTS"]) - _LOOPBACK:
        raise ConfigError("CHECKOUT_TRUSTED_HOSTS names no public host: set the checkout's own")
    if len(str(config.get("METRICS_TOKEN") or "")) < 16:
        raise ConfigError("CHECKOUT_METRICS_TOKEN is not set (16+ characters): /metrics needs one")
    if DEV_SECRET_KEY in config["SECRET_KEY_FALLBACKS"]:
        raise ConfigError("CHECKOUT_SECRET_KEY_FALLBACKS holds the development secret key")
    for secret in ("WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"):
        value = str(config.get(secret) or "")
        if value and not value.startswith("whsec_"):
            raise ConfigError(f"CHECKOUT_{secret} is not a whsec_ secret")
    for key in _URL_SETTINGS + (("WEBHOOK_URL",) if config.get("WEBHOOK_URL") else ()):
        url = urlsplit(str(config.get(key) or ""))
        if url.scheme != "https" or (url.hostname or "") in _LOOPBACK:
            raise ConfigError(
                f"CHECKOUT_{key} points at the sandbox or is not https: {config.get(key)!r}"
            )
