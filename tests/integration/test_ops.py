"""What operators and marketers see: the funnel per campaign (page and CSV), who may see it,
the Prometheus metrics under several gunicorn workers, and readiness."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import redis
import requests

from sandbox.stack import Service, app_service, free_port
from tests.conftest import Sandbox, recaptcha_token, subscription_of
from tests.integration.conftest import Partner, assert_problem
from tests.journey import form_of, offer_form, sign_in_at, signed_in_browser

pytestmark = pytest.mark.integration

STEPS = ("opened", "started", "signed_in", "changed", "reviewed", "confirmed")
EXITS = ("locked", "not_found", "expired", "bot_check_failed", "upstream_error", "shed")
METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"


def _campaign() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def funnel_rows(url: str, token: str) -> dict[str, dict[str, str]]:
    """The CSV's rows by campaign, fetched as an operator's program would."""
    response = requests.get(
        f"{url}/ops/funnel.csv", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == (
        "campaign",
        "source",
        "medium",
        "promo_code",
        *STEPS,
        *EXITS,
    )
    return {row["campaign"]: row for row in reader}


def counts(row: dict[str, str]) -> dict[str, int]:
    return {event: int(row[event]) for event in (*STEPS, *EXITS) if int(row[event])}


def _walk_the_pages(
    url: str, campaign: str, *, customer: str = "alice", more: str = ""
) -> requests.Session:
    """Marketing link (with `more` query) → sign-in → add an offer → review (twice) →
    confirm, over HTTP."""
    link = (
        "/start?subscription=SUB-1001&offer=OFFER-SPORTS"
        f"&utm_campaign={campaign}&utm_source=newsletter&utm_medium=email{more}"
    )
    http = signed_in_browser(url, link, customer)
    assert http is not None
    http.get(url + link, timeout=10)  # a reload of the link is not a second "opened"
    basket = http.get(url + "/basket", timeout=10)
    action, fields = offer_form(basket.text, "OFFER-KIDS")
    fields["recaptcha_token"] = recaptcha_token()
    changed = http.post(requests.compat.urljoin(basket.url, action), data=fields, timeout=10)
    assert changed.status_code == 200 and "/basket" in changed.url
    review = http.get(url + "/review", timeout=10)
    assert review.status_code == 200
    http.get(url + "/review", timeout=10)  # a reload is not a second "reviewed"
    form = form_of(review.text[review.text.index('action="/review"') - 40 :])  # not sign-out
    assert form is not None
    action, fields = form
    fields["recaptcha_token"] = recaptcha_token()
    confirmed = http.post(requests.compat.urljoin(review.url, action), data=fields, timeout=10)
    assert confirmed.status_code == 200 and "/confirmation" in confirmed.url
    return http


def test_a_journey_through_the_pages_counts_each_step_once_under_its_campaign(
    app_server: Service, sandbox: Sandbox
):
    campaign = _campaign()
    _walk_the_pages(app_server.url, campaign)

    row = funnel_rows(app_server.url, sandbox.token("olivia"))[campaign]
    assert (row["source"], row["medium"]) == ("newsletter", "email")
    assert counts(row) == {step: 1 for step in STEPS}


def test_a_deal_counts_under_its_code_from_the_link_or_the_basket(
    app_server: Service, sandbox: Sandbox
):
    """Marketers see which deals convert: the link's code, even one the customer could
    not use, or else the code a partner's basket carries."""
    linked, sent = _campaign(), _campaign()
    _walk_the_pages(app_server.url, linked, more="&promo=sportshalf")
    carol = Partner(app_server.url, sandbox.token("carol"))
    assert carol.create("SUB-3003", tracking={"utm_campaign": sent}, promoCode="WELCOME5").ok

    rows = funnel_rows(app_server.url, sandbox.token("olivia"))
    assert rows[linked]["promo_code"] == "SPORTSHALF"
    assert counts(rows[linked]) == {step: 1 for step in STEPS}
    assert (rows[sent]["promo_code"], rows[sent]["started"]) == ("WELCOME5", "1")
    page = sign_in_at(requests.Session(), f"{app_server.url}/ops/funnel", "olivia").text
    assert "promotion code SPORTSHALF" in page


def test_a_journey_through_the_api_counts_its_steps_and_exits(
    app_server: Service, sandbox: Sandbox
):
    campaign = _campaign()
    alice = Partner(app_server.url, sandbox.token("alice"))
    tracking = {"utm_campaign": campaign, "utm_source": "partner-app"}
    assert alice.create(tracking=tracking).status_code == 201
    assert alice.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200
    assert alice.update({"addOffers": ["OFFER-KIDS"]}).status_code == 200  # not a first change
    assert_problem(alice.update({"addOffers": ["OFFER-HD"]}, "bot"), 400, "recaptcha_failed")
    assert alice.update({"complete": True}).status_code == 200
    assert alice.update({"complete": True}).status_code == 200  # the same order, not counted
    bob = Partner(app_server.url, sandbox.token("bob"))
    assert_problem(bob.create("SUB-2002", tracking=tracking), 409, "subscription_locked")

    row = funnel_rows(app_server.url, sandbox.token("olivia"))[campaign]
    assert (row["source"], row["medium"]) == ("partner-app", "(none)")
    assert counts(row) == {
        "started": 1,
        "changed": 1,
        "confirmed": 1,
        "bot_check_failed": 1,
        "locked": 1,
    }


def test_a_link_from_another_site_without_utm_counts_that_site_as_a_referral(
    app_server: Service, sandbox: Sandbox
):
    campaign = _campaign()
    alice = Partner(app_server.url, sandbox.token("alice"))
    created = alice.create(
        tracking={"utm_campaign": campaign}, referrer="https://deals.example/week?id=7"
    )
    assert created.status_code == 201
    row = funnel_rows(app_server.url, sandbox.token("olivia"))[campaign]
    assert (row["source"], row["medium"], row["started"]) == ("deals.example", "referral", "1")


@pytest.fixture(scope="module")
def two_instances(app_env: dict[str, str]) -> Iterator[tuple[Service, Service]]:
    """Two instances as in production, each gunicorn with two workers, one Redis."""
    env = {**app_env, "CHECKOUT_METRICS_TOKEN": METRICS_TOKEN}
    first = app_service(free_port(), env, workers=2).start(quiet=True)
    second = app_service(free_port(), env, workers=2).start(quiet=True)
    yield first, second
    first.stop()
    second.stop()


def test_counts_from_two_instances_and_their_workers_add_up(
    two_instances: tuple[Service, Service], sandbox: Sandbox
):
    first, second = two_instances
    campaign = _campaign()
    for n in range(6):  # three customers' baskets on each instance, any worker
        url = (first, second)[n % 2].url
        customer = ("alice", "carol", "dave")[n % 3]
        subscription = subscription_of(customer)
        partner = Partner(url, sandbox.token(customer))
        assert partner.create(subscription, tracking={"utm_campaign": campaign}).status_code == 201

    for instance in (first, second):
        row = funnel_rows(instance.url, sandbox.token("olivia"))[campaign]
        assert counts(row) == {"started": 6}


def _scrape(url: str) -> str:
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def _sample(text: str, name: str, **labels: str) -> float:
    """A sample's value, 0 when absent; labels must match exactly those given."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_the_metrics_of_every_worker_add_up_in_one_scrape(
    two_instances: tuple[Service, Service], sandbox: Sandbox
):
    first, _ = two_instances
    route = {"route": "/api/v1/checkout/basket", "method": "GET", "status": "401"}
    before = _sample(_scrape(first.url), "checkout_requests_total", **route)
    answers = [requests.get(first.url + "/api/v1/checkout/basket", timeout=10) for _ in range(40)]
    assert {answer.status_code for answer in answers} == {401}

    scraped = _scrape(first.url)  # by whichever worker: the sum of both
    assert _sample(scraped, "checkout_requests_total", **route) == before + 40
    assert _sample(scraped, "checkout_problems_total", status="401", code="unauthorized") >= 40
    assert "# TYPE checkout_requests_in_flight gauge" in scraped

    alice = Partner(first.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    assert_problem(alice.update({"addOffers": ["OFFER-KIDS"]}, "bot"), 400, "recaptcha_failed")
    scraped = _scrape(first.url)
    assert _sample(scraped, "checkout_baskets_created_total", channel="api") >= 1
    assert _sample(scraped, "checkout_recaptcha_outcomes_total", outcome="low_score") >= 1
    assert _sample(scraped, "checkout_upstream_calls_total", service="backend", outcome="2xx") >= 1
    assert _sample(scraped, "checkout_upstream_duration_seconds_count", service="siteverify") >= 2

    secret_path = f"/no-such-page-{uuid.uuid4().hex}"
    assert requests.get(first.url + secret_path, timeout=10).status_code == 404
    scraped = _scrape(first.url)
    assert secret_path not in scraped  # routes by template, never the raw path
    unmatched = {"route": "(unmatched)", "method": "GET", "status": "404"}
    assert _sample(scraped, "checkout_requests_total", **unmatched) >= 1


def test_metrics_need_the_token_when_one_is_set(two_instances: tuple[Service, Service]):
    first, _ = two_instances
    missing = requests.get(f"{first.url}/metrics", timeout=10)
    assert_problem(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = requests.get(
        f"{first.url}/metrics", headers={"Authorization": "Bearer not-it"}, timeout=10
    )
    assert_problem(wrong, 403, "forbidden")


def test_the_csv_needs_an_operator(app_server: Service, sandbox: Sandbox):
    url = f"{app_server.url}/ops/funnel.csv"
    assert_problem(requests.get(url, timeout=10), 401, "unauthorized")
    customer = {"Authorization": f"Bearer {sandbox.token('alice')}"}
    assert_problem(requests.get(url, headers=customer, timeout=10), 403, "forbidden")
    forged = {"Authorization": "Bearer not.a.token"}
    assert_problem(requests.get(url, headers=forged, timeout=10), 401, "unauthorized")
    bad_range = {"from": "2026-12-05", "to": "2026-12-01"}
    operator = {"Authorization": f"Bearer {sandbox.token('olivia')}"}
    refused = requests.get(url, params=bad_range, headers=operator, timeout=10)
    assert_problem(refused, 400, "invalid_request")


def test_the_page_sends_a_stranger_to_sign_in_and_refuses_a_customer(
    app_server: Service, sandbox: Sandbox
):
    page = f"{app_server.url}/ops/funnel"
    stranger = requests.get(page, allow_redirects=False, timeout=10)
    assert stranger.status_code == 303
    assert stranger.headers["Location"].startswith("/signin?next=/ops/funnel")

    customer = sign_in_at(requests.Session(), page, "alice")
    assert customer.status_code == 403
    assert "You cannot see this page" in customer.text

    operator = requests.Session()
    shown = sign_in_at(operator, page, "olivia")
    assert shown.status_code == 200, shown.text
    assert "<h1" in shown.text and "Checkout funnel" in shown.text
    as_csv = operator.get(f"{app_server.url}/ops/funnel.csv", timeout=10)  # the page's link
    assert as_csv.status_code == 200 and as_csv.text.startswith("campaign,source,medium,promo_code")


def test_the_page_shows_a_campaigns_counts_and_conversions(app_server: Service, sandbox: Sandbox):
    campaign = _campaign()
    _walk_the_pages(app_server.url, campaign)
    operator = requests.Session()
    shown = sign_in_at(operator, f"{app_server.url}/ops/funnel", "olivia")
    assert shown.status_code == 200
    section = shown.text.split(f">{campaign}</h3>", 1)[1].split("</section>", 1)[0]
    assert re.search(r"Confirmed</th><td[^>]*>1</td><td[^>]*>100 %</td>", section)
    assert re.search(r"Link opened</th><td[^>]*>1</td>", section)

    refused = operator.get(f"{app_server.url}/ops/funnel?from=yesterday", timeout=10)
    assert refused.status_code == 400
    assert "The dates could not be used" in refused.text


def test_a_campaign_name_cannot_become_a_spreadsheet_formula_or_markup(
    app_server: Service, sandbox: Sandbox
):
    campaign = f"=HYPERLINK(1)<b>{uuid.uuid4().hex[:6]}"
    alice = Partner(app_server.url, sandbox.token("alice"))
    assert alice.create(tracking={"utm_campaign": campaign}).status_code == 201
    rows = funnel_rows(app_server.url, sandbox.token("olivia"))
    assert rows["'" + campaign]["started"] == "1"
    page = sign_in_at(requests.Session(), f"{app_server.url}/ops/funnel", "olivia").text
    assert "&lt;b&gt;" in page and "<b>" not in page


def test_readiness_names_each_part(app_server: Service):
    response = requests.get(f"{app_server.url}/readyz", timeout=10)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body == {
        "status": "ready",
        "checks": {"redis": {"ready": True}, "backend": {"ready": True, "circuit": "closed"}},
    }


def test_a_full_day_counts_new_campaigns_as_other_and_every_day_expires(app_env: dict[str, str]):
    """Campaign names come from links anyone writes: a day's hash stops growing."""
    from app.adapters.storage import Keys, connect
    from app.ops.funnel import FunnelStore, Touch

    client = connect(
        {
            "REDIS_URL": app_env["CHECKOUT_REDIS_URL"],
            "REDIS_CLUSTER": app_env["CHECKOUT_REDIS_CLUSTER"] == "true",
            "REDIS_SOCKET_TIMEOUT": 2,
        }
    )
    keys, day = Keys(f"test-funnel-{uuid.uuid4().hex[:8]}"), date(2026, 12, 2)
    key = keys.funnel(day.isoformat())
    store = FunnelStore(client, keys, ttl_days=90, max_fields=2)
    try:
        pipe = client.pipeline(transaction=False)
        store.queue(pipe, day, {(Touch("a"), "started"): 1, (Touch("b"), "started"): 1})
        store.queue(pipe, day, {(Touch("c"), "started"): 1, (Touch("a"), "started"): 2})
        pipe.execute()
        stored = {f.decode(): int(n) for f, n in client.hgetall(key).items()}
        assert stored == {
            "a\t(none)\t(none)\t(none)\tstarted": 3,  # known already: still counted as itself
            "b\t(none)\t(none)\t(none)\tstarted": 1,
            "(other)\t(other)\t(other)\t(other)\tstarted": 1,
        }
        # A field written before codes were counted reads as no code.
        client.hset(key, "a\t(none)\t(none)\tconfirmed", 1)
        (row,) = [row for row in store.report([day]).rows if row.touch.campaign == "a"]
        assert row.touch == Touch("a") and row["confirmed"] == 1 and row["started"] == 3
        assert 89 * 86400 < client.ttl(key) <= 90 * 86400
    finally:
        client.delete(key)
        client.close()


def test_readiness_says_not_ready_while_redis_refuses_writes_and_ready_once_it_takes_them(
    app_env: dict[str, str],
):
    """A primary demoted by a failover turns read-only: this instance must leave the pool."""
    from sandbox.stack import EmbeddedRedis

    node = EmbeddedRedis().start()
    env = {**app_env, "CHECKOUT_REDIS_URL": node.url, "CHECKOUT_REDIS_CLUSTER": "false"}
    app = app_service(free_port(), env).start(quiet=True)
    client = redis.Redis(port=node.port)
    try:
        assert requests.get(f"{app.url}/readyz", timeout=10).status_code == 200
        client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # nobody there
        refused = requests.get(f"{app.url}/readyz", timeout=10)
        assert refused.status_code == 503
        assert refused.json()["checks"]["redis"] == {"ready": False, "error": "ReadOnlyError"}
        assert refused.json()["checks"]["backend"]["ready"] is True
        client.execute_command("REPLICAOF", "NO", "ONE")
        assert requests.get(f"{app.url}/readyz", timeout=10).status_code == 200
    finally:
        client.close()
        app.stop()
        node.stop()
