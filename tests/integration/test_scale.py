"""Scale out: any request on any instance, all state in Redis (single server or Cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from app.storage import Direct, Keys, connect
from sandbox.stack import app_service, free_port
from tests.conftest import Sandbox
from tests.integration.conftest import Partner


def test_a_basket_walks_across_two_app_instances(app_server, app_env, sandbox: Sandbox):
    """The second instance runs as in production: gunicorn, its settings, two workers."""
    second = app_service(free_port(), app_env, workers=2).start(quiet=True)
    try:
        on_first = Partner(app_server.url, sandbox.token("alice"))
        on_second = Partner(second.url, on_first.token)
        on_second.http.cookies = on_first.http.cookies  # one browser, two instances

        assert on_first.create().status_code == 201
        assert on_second.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200
        assert on_first.update({"removeOffers": ["OFFER-HD"]}).status_code == 200
        basket = on_second.get().json()["basket"]
        assert [o["id"] for o in basket["addOffers"]] == ["OFFER-SPORTS"]
        assert [o["id"] for o in basket["removeOffers"]] == ["OFFER-HD"]
        done = on_second.update({"complete": True}).json()["basket"]
        assert on_first.get().json()["basket"]["order"] == done["order"]
        assert len(sandbox.orders()) == 1
    finally:
        second.stop()


def test_a_baskets_key_carries_its_hash_tag():
    keys = Keys("checkout")
    basket_id = "q0Zx-example-basket-id"
    assert key_slot(keys.basket(basket_id).encode()) == key_slot(basket_id.encode())


@pytest.fixture
def client(app_env: dict[str, str]) -> Iterator[Any]:
    """A client for the suite's Redis: a single server or, with the cluster suite, a cluster."""
    client = connect(
        {
            "REDIS_URL": app_env["CHECKOUT_REDIS_URL"],
            "REDIS_CLUSTER": app_env["CHECKOUT_REDIS_CLUSTER"] == "true",
            "REDIS_SOCKET_TIMEOUT": 2,
        }
    )
    yield client
    client.close()


def test_the_hot_read_path_answers_the_same_on_either_kind_of_redis(client):
    """`storage.Direct` on a single server or, with the cluster suite, across slots."""
    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    session, basket = keys.signin("session-one"), keys.basket("basket-two")
    client.set(session, b"signed in", ex=600)
    client.set(basket, b"a basket", ex=600)
    direct = Direct(client)
    replies = direct.run(("GETEX", session, "EX", 30), ("GET", basket), ("GET", keys.basket("x")))
    assert replies == [b"signed in", b"a basket", None]
    assert 0 < client.ttl(session) <= 30
    client.rpush(keys.signin("listed"), b"x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        direct.run(("GET", keys.signin("listed")), ("GET", basket))
    assert direct.get(basket) == b"a basket"


def test_the_admission_batch_counts_claims_and_reads_on_either_kind_of_redis(client):
    """`storage.Batch`: the pipeline methods the admission checks use, in one round trip;
    keys in different slots on a cluster."""
    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    counter, claim, basket = keys.rate_limit("update", "ip"), keys.recaptcha("t"), keys.basket("b")
    client.set(basket, b"a basket", ex=600)
    direct = Direct(client)
    assert direct.batch().execute() == []

    def admission() -> list:
        batch = direct.batch()
        batch.get(basket)
        batch.incr(counter)
        batch.expire(counter, 61)
        batch.set(claim, 1, nx=True, ex=120)
        return batch.execute()

    first, second = admission(), admission()
    assert first[:2] == [b"a basket", 1] and first[3]  # the claim is taken
    assert second[:2] == [b"a basket", 2] and second[3] is None  # and is not taken twice
    assert 0 < client.ttl(counter) <= 61 and 60 < client.ttl(claim) <= 120
