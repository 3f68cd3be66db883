"""The app factory: configuration order and the production guard."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError
from app.web.services import services

PRODUCTION = {
    "ENV": "production",
    "TRUSTED_HOSTS": ["checkout.partner.example"],
    "SECRET_KEY": "k" * 48,
    "OAUTH_CLIENT_SECRET": "real-client-secret",
    "RECAPTCHA_SECRET_KEY": "real-recaptcha-secret",
    "SUBSCRIPTION_API_TOKEN": "real-backend-token",
    "SUBSCRIPTION_API_URL": "https://subscriptions.partner.example/v1",
    "OAUTH_ISSUER": "https://login.partner.example",
    "RECAPTCHA_VERIFY_URL": "https://www.google.com/recaptcha/api/siteverify",
    "RECAPTCHA_SCRIPT_URL": "https://www.google.com/recaptcha/api.js",
    "METRICS_TOKEN": "m" * 32,
    "WEBHOOK_URL": "https://events.partner.example/checkout",
    "WEBHOOK_SECRET": "whsec_cmVhbC1wYXJ0bmVyLWV2ZW50cy1zZWNyZXQ=",
}


def test_development_defaults_point_at_the_sandbox(app):
    assert app.config["SUBSCRIPTION_API_URL"] == "http://127.0.0.1:5001/backend/v1"
    assert app.config["BASKET_TTL_SECONDS"] == 1800
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_environment_variables_override_defaults(monkeypatch):
    monkeypatch.setenv("CHECKOUT_BASKET_TTL_SECONDS", "60")
    monkeypatch.setenv("CHECKOUT_RECAPTCHA_HOSTNAMES", "shop.example, www.shop.example")
    app = create_app()
    assert app.config["BASKET_TTL_SECONDS"] == 60
    assert app.config["RECAPTCHA_HOSTNAMES"] == ["shop.example", "www.shop.example"]


def test_production_starts_with_real_settings():
    app = create_app(PRODUCTION)
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SECRET_KEY", "dev-only-secret-key-not-for-production"),
        ("SECRET_KEY", "short"),
        ("OAUTH_CLIENT_SECRET", "checkout-dev-secret"),
        ("SUBSCRIPTION_API_URL", "http://127.0.0.1:5001/backend/v1"),
        ("OAUTH_ISSUER", "http://localhost:5001"),
        ("RECAPTCHA_VERIFY_URL", "http://partner.example/siteverify"),
        ("SECRET_KEY_FALLBACKS", ["dev-only-secret-key-not-for-production"]),
        ("METRICS_TOKEN", ""),
        ("METRICS_TOKEN", "short"),
        ("TRUSTED_HOSTS", []),
        ("TRUSTED_HOSTS", "localhost,127.0.0.1"),
    ],
)
def test_production_refuses_development_settings_and_names_them(setting, value):
    with pytest.raises(ConfigError, match=f"CHECKOUT_{setting}"):
        create_app({**PRODUCTION, setting: value})


@pytest.mark.parametrize(
    "path", ["/signin", "/start?subscription=SUB-1001", "/api/v1/checkout/basket"]
)
def test_a_host_it_was_not_configured_for_gets_400_and_is_never_echoed(path):
    """Tried as an attacker would: the sign-in's redirect_uri comes from the Host, and a
    cache in front would keep an answer naming evil.example for everyone."""
    client = create_app(PRODUCTION).test_client()
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert b"evil.example" not in response.get_data()
    served = client.get("/healthz", headers={"Host": "checkout.partner.example:443"})
    assert served.status_code == 200  # its own name, whatever the port


def test_the_api_says_which_host_in_problem_json(client):
    response = client.get("/api/v1/checkout/basket", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"


def test_security_headers_and_request_id_on_every_answer(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert len(headers["X-Request-ID"]) == 32


def test_every_answer_writes_one_access_log_line_through_the_logger(client, caplog):
    import json
    import logging

    with caplog.at_level(logging.INFO, logger="checkout.access"):
        response = client.get("/no-such-page?code=secret", headers={"X-Request-ID": "req-12345678"})
    [record] = [r for r in caplog.records if r.name == "checkout.access"]
    assert record.levelno == logging.INFO
    line = json.loads(record.getMessage())
    assert line["requestId"] == response.headers["X-Request-ID"] == "req-12345678"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/no-such-page", 404)
    assert "secret" not in record.getMessage()
    logging.getLogger("checkout.access").addFilter(refuse := lambda _record: False)
    try:
        caplog.clear()
        client.get("/healthz")
        assert not [r for r in caplog.records if r.name == "checkout.access"]  # filters apply
    finally:
        logging.getLogger("checkout.access").removeFilter(refuse)


def test_the_api_description_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_outside_development_answers_carry_hsts_and_cookies_are_secure():
    from flask import Response

    from app.web import landing

    app = create_app(PRODUCTION)
    assert "max-age=" in app.test_client().get("/healthz").headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in create_app().test_client().get("/healthz").headers
    with app.test_request_context():
        response = Response()
        landing.issue(response, "basket-id")
        cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_landing_cookie_from_another_secret_or_salt_is_no_basket(app):
    from itsdangerous import TimestampSigner

    from app.web import landing

    good = TimestampSigner(app.config["SECRET_KEY"], salt="checkout.landing-state")
    for signer, expected in (
        (good, "basket-id"),
        (TimestampSigner("another-secret", salt="checkout.landing-state"), None),
        (TimestampSigner(app.config["SECRET_KEY"], salt="another-salt"), None),
    ):
        cookie = signer.sign("basket-id").decode()
        with app.test_request_context(headers={"Cookie": f"landing_state={cookie}"}):
            assert landing.read_basket_id() == expected


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"REDIS_SENTINELS": "127.0.0.1:26379", "REDIS_CLUSTER": True}, "CHECKOUT_REDIS_SENTINELS"),
    ],
)
def test_redis_settings_that_contradict_each_other_are_refused(settings, named):
    with pytest.raises(ConfigError, match=named):
        create_app(settings)


def test_sentinels_are_listed_as_host_port_and_the_client_asks_them_for_the_master():
    from redis.sentinel import SentinelConnectionPool

    app = create_app({"REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380"})
    assert app.config["REDIS_SENTINELS"] == ["10.0.0.1:26379", "[::1]:26380"]
    client = services(app).redis
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "checkout"
    addresses = [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in pool.sentinel_manager.sentinels
    ]
    assert addresses == [("10.0.0.1", 26379), ("::1", 26380)]


def test_a_sentinel_without_a_port_is_refused():
    with pytest.raises(ConfigError, match="host:port"):
        create_app({"REDIS_SENTINELS": "10.0.0.1"})


def test_metrics_label_requests_by_route_template_and_a_bounded_set_of_methods(client):
    client.get("/no-such-page/12345")
    client.open("/healthz", method="BREW")
    scraped = client.get("/metrics").get_data(as_text=True)
    assert "12345" not in scraped
    assert 'method="GET",route="(unmatched)",status="404"' in scraped
    assert 'method="other",route="(unmatched)",status="405"' in scraped
    assert "BREW" not in scraped


def test_an_order_placed_but_not_recorded_is_not_called_nothing_changed(app):
    """A failover between the backend's yes and the basket's record: the answer says so."""
    from app.checkout.errors import OrderNotRecorded

    def placed_not_recorded():
        raise OrderNotRecorded()

    app.add_url_rule("/review-test", view_func=placed_not_recorded)
    app.add_url_rule("/api/v1/review-test", "api_review_test", view_func=placed_not_recorded)
    client = app.test_client()
    page = client.get("/review-test")
    assert (page.status_code, page.headers["Retry-After"]) == (503, "2")
    text = page.get_data(as_text=True)
    assert "We placed your order" in text and "nothing was changed" not in text
    problem = client.get("/api/v1/review-test")
    assert problem.status_code == 503 and problem.json["code"] == "order_not_recorded"
    assert "never a second one" in problem.json["detail"]
