"""Partner events end to end: the app writes them, the deliverer (its own process) sends
them to the sandbox's receiver, which verifies each with the `standardwebhooks` library.
Real Redis, real HTTP, nothing mocked."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from app.config import DEV_WEBHOOK_SECRET
from sandbox.stack import app_service, deliverer_service, free_port, wait_for
from tests.conftest import Sandbox, subscription_of
from tests.integration.conftest import Partner, assert_problem

NEW_SECRET = "whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg=="
FAST = {
    # Attempts a fifth of a second apart, a lease of two seconds, a sweep every half.
    "CHECKOUT_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
    "CHECKOUT_WEBHOOK_LEASE_SECONDS": "2",
    "CHECKOUT_WEBHOOK_SWEEP_SECONDS": "0.5",
    "CHECKOUT_WEBHOOK_TIMEOUT_SECONDS": "3",
}
WITHIN = 15  # seconds for the deliverer's attempts to reach the receiver


class Events:
    """An app and its deliverer with settings of their own, and their own keys."""

    def __init__(self, app_env: dict[str, str], **settings: str) -> None:
        prefix = f"{app_env['CHECKOUT_REDIS_KEY_PREFIX']}-ev{uuid.uuid4().hex[:6]}"
        self.env = {**app_env, **FAST, "CHECKOUT_REDIS_KEY_PREFIX": prefix, **settings}
        self.app = app_service(free_port(), self.env)
        self.deliverer = deliverer_service(self.env)

    def __enter__(self) -> Events:
        self.app.start(quiet=True)
        self.deliverer.start(quiet=True)
        return self

    def __exit__(self, *_: object) -> None:
        self.deliverer.stop()
        self.app.stop()


@pytest.fixture
def events(app_env: dict[str, str], sandbox: Sandbox) -> Iterator[Callable[..., Events]]:
    made: list[Events] = []

    def make(**settings: str) -> Events:
        started = Events(app_env, **settings).__enter__()
        made.append(started)
        return started

    yield make
    for each in made:
        each.__exit__()


def received(sandbox: Sandbox, **wanted: Any) -> list[dict[str, Any]]:
    response = requests.get(f"{sandbox.url}/_sandbox/webhooks", timeout=5)
    response.raise_for_status()
    return [
        delivery
        for delivery in response.json()["deliveries"]
        if all(delivery.get(key) == value for key, value in wanted.items())
    ]


def confirmed(
    partner: Partner, add: str = "OFFER-SPORTS", subscription: str = "SUB-1001"
) -> dict[str, Any]:
    assert partner.create(subscription).status_code == 201
    changed = partner.update({"addOffers": [add], "complete": True})
    assert changed.status_code == 200, changed.text
    basket: dict[str, Any] = changed.json()["basket"]
    return basket


def completed_for(sandbox: Sandbox, basket_id: str) -> list[dict[str, Any]]:
    return [
        d
        for d in received(sandbox, type="checkout.completed")
        if d["body"] and d["body"]["data"]["basketId"] == basket_id
    ]


def test_a_confirmation_arrives_signed_with_one_id_across_its_attempts(events, sandbox):
    """The receiver answers 503 twice, then 204: three attempts, one webhook-id."""
    started = events()
    sandbox.fault("error", count=2, path="/partner/", status=503)
    basket = confirmed(Partner(started.app.url, sandbox.token("alice")))
    attempts = wait_for(
        lambda: (
            (found := completed_for(sandbox, basket["basketId"]))
            and found[-1]["status"] == 204
            and found
        ),
        "the event's attempts, the last one accepted",
        within=WITHIN,
    )
    assert [a["status"] for a in attempts] == [503, 503, 204]
    assert len({a["webhookId"] for a in attempts}) == 1
    assert all(a["verified"] and a["signatures"] == 1 for a in attempts)
    data = attempts[-1]["body"]["data"]
    assert data["order"]["orderId"] == basket["order"]["orderId"]
    assert (data["subscriptionId"], data["customer"]) == ("SUB-1001", "alice")
    assert [o["id"] for o in data["addOffers"]] == ["OFFER-SPORTS"]


def test_twelve_parallel_completions_are_one_event(events, sandbox):
    started = events()
    partner = Partner(started.app.url, sandbox.token("alice"))
    assert partner.create().status_code == 201
    assert partner.update({"addOffers": ["OFFER-KIDS"]}).status_code == 200
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: partner.update({"complete": True}), range(12)))
    assert {answer.status_code for answer in answers} == {200}
    basket_id = answers[0].json()["basket"]["basketId"]
    wait_for(lambda: completed_for(sandbox, basket_id), "the completed event", within=WITHIN)
    time.sleep(1.0)  # time enough for a second event to arrive, if there were one
    assert len(completed_for(sandbox, basket_id)) == 1


def test_during_a_rotation_every_attempt_carries_both_signatures(events, sandbox):
    """The receiver still knows only the previous secret; either signature will do."""
    started = events(
        CHECKOUT_WEBHOOK_SECRET=NEW_SECRET, CHECKOUT_WEBHOOK_SECRET_PREVIOUS=DEV_WEBHOOK_SECRET
    )
    basket = confirmed(Partner(started.app.url, sandbox.token("alice")))
    (delivery,) = wait_for(
        lambda: completed_for(sandbox, basket["basketId"]), "the completed event", within=WITHIN
    )
    assert (delivery["verified"], delivery["signatures"], delivery["status"]) == (True, 2, 204)


def test_a_basket_left_with_a_change_is_abandoned_once_and_a_completed_one_never(events, sandbox):
    started = events(CHECKOUT_BASKET_TTL_SECONDS="2")
    left = Partner(started.app.url, sandbox.token("alice"))
    assert left.create().status_code == 201
    chosen = left.update({"addOffers": ["OFFER-CINEMA"]})
    assert chosen.status_code == 200
    left_id = chosen.json()["basket"]["basketId"]
    done = confirmed(
        Partner(started.app.url, sandbox.token("dave")), subscription=subscription_of("dave")
    )

    def abandoned() -> list[dict[str, Any]]:
        return received(sandbox, type="checkout.abandoned")

    (event,) = wait_for(abandoned, "the abandoned event", within=2 + 60)  # its TTL and a minute
    data = event["body"]["data"]
    assert (data["basketId"], event["verified"], event["status"]) == (left_id, True, 204)
    assert [o["id"] for o in data["addOffers"]] == ["OFFER-CINEMA"]
    assert data["expiredAt"].endswith("Z")
    time.sleep(3)  # the completed basket expires too, and sweeps come and go
    assert [e["body"]["data"]["basketId"] for e in abandoned()] == [left_id]
    assert len(completed_for(sandbox, done["basketId"])) == 1


def test_a_deliverer_killed_mid_delivery_delivers_after_its_restart(events, sandbox):
    started = events()
    sandbox.fault("slow", count=1, path="/partner/", delaySeconds=3)
    basket = confirmed(Partner(started.app.url, sandbox.token("alice")))
    sandbox.wait_faults_taken()  # the attempt is on its way, held by the slow receiver
    assert started.deliverer.process is not None
    os.kill(started.deliverer.pid, signal.SIGKILL)
    started.deliverer.process.wait()
    started.deliverer.start(quiet=True)  # a new deliverer: the lease of the dead one ends
    attempts = wait_for(
        lambda: found if len(found := completed_for(sandbox, basket["basketId"])) >= 2 else [],
        "a second attempt, by the new deliverer",
        within=WITHIN,
    )
    assert len({a["webhookId"] for a in attempts}) == 1
    assert attempts[-1]["status"] == 204 and attempts[-1]["verified"]


def test_an_event_that_never_gets_through_is_kept_as_failed_and_can_be_sent_again(
    events, sandbox, app_redis
):
    from app.adapters.outbox import Outbox
    from app.adapters.storage import Keys

    started = events()
    sandbox.fault("error", count=4, path="/partner/", status=500)  # every attempt of four
    basket = confirmed(Partner(started.app.url, sandbox.token("alice")))
    wait_for(
        lambda: len(completed_for(sandbox, basket["basketId"])) == 4, "four attempts", within=WITHIN
    )
    prefix = started.env["CHECKOUT_REDIS_KEY_PREFIX"]
    outbox = Outbox(app_redis, Keys(prefix), schedule=[0.2] * 3, lease=2, retention=600)
    (failed,) = wait_for(outbox.failed, "the event kept as failed", within=WITHIN)
    assert (failed["attempts"], failed["lastStatus"], failed["type"]) == (
        4,
        500,
        "checkout.completed",
    )
    assert "internal_error" in failed["lastExcerpt"]
    metrics = requests.get(f"{started.app.url}/metrics", timeout=5).text
    assert (
        'checkout_webhook_deliveries_total{outcome="failed",type="checkout.completed"} 1.0'
        in metrics
    )
    assert "checkout_webhook_failed_events 1.0" in metrics

    assert outbox.resend(failed["shard"], failed["id"])
    wait_for(
        lambda: completed_for(sandbox, basket["basketId"])[-1]["status"] == 204,
        "the event sent again to be accepted",
        within=WITHIN,
    )
    assert outbox.failed() == []
    assert not outbox.resend(failed["shard"], failed["id"])  # no longer failed


def test_events_are_never_written_for_a_change_that_did_not_happen(events, sandbox):
    """A refused confirmation (price changed) sends nothing; its confirmation does."""
    started = events()
    partner = Partner(started.app.url, sandbox.token("alice"))
    assert partner.create().status_code == 201
    assert partner.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200
    sandbox.set_price("9.50", offer="OFFER-SPORTS")
    refused = partner.update({"complete": True})
    assert_problem(refused, 409, "price_changed")
    basket_id = partner.get().json()["basket"]["basketId"]
    time.sleep(1.0)
    assert completed_for(sandbox, basket_id) == []
    assert partner.update({"complete": True}).status_code == 200
    (delivery,) = wait_for(
        lambda: completed_for(sandbox, basket_id), "the confirmation's event", within=WITHIN
    )
    assert delivery["body"]["data"]["order"]["newPrice"]["amount"] == "33.50"


def test_a_basket_stored_by_the_release_before_the_shards_is_moved_when_first_read(
    partner, app_redis, app_env: dict[str, str]
):
    """A deploy keeps the baskets customers are filling: one under its old key is found,
    moved to its shard's key, and changes as any other."""
    from app.adapters.storage import Keys

    alice = partner("alice")
    created = alice.create()
    assert created.status_code == 201
    basket_id = created.json()["basket"]["basketId"]
    keys, client = Keys(app_env["CHECKOUT_REDIS_KEY_PREFIX"]), app_redis
    raw = client.get(keys.basket(basket_id))
    client.delete(keys.basket(basket_id))
    client.set(keys.legacy_basket(basket_id), raw, ex=600)  # where the release before kept it

    assert alice.get().status_code == 200
    assert client.get(keys.legacy_basket(basket_id)) is None
    assert 0 < client.ttl(keys.basket(basket_id)) <= 600
    changed = alice.update({"addOffers": ["OFFER-KIDS"]})
    assert changed.status_code == 200 and changed.json()["basket"]["basketId"] == basket_id
