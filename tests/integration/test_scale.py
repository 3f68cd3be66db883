"""Scale out: any request on any instance, all state in Redis (single server or Cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from app.adapters.storage import Batch, Keys, connect
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


def test_a_basket_shares_its_slot_with_its_shards_partner_events():
    """One script writes a basket and the event its change is: on a cluster, one slot."""
    keys = Keys("checkout")
    slots = set()
    for n in range(200):
        basket_id = f"q0Zx-example-basket-{n}"
        shard = keys.shard(basket_id)
        slot = key_slot(keys.basket(basket_id).encode())
        assert (
            slot == key_slot(keys.outbox(shard).encode()) == key_slot(keys.expiring(shard).encode())
        )
        slots.add(slot)
    assert len(slots) == len(keys.shards)  # spread over every shard


def _connect(app_env: dict[str, str], **settings: Any) -> Any:
    """A client for the suite's Redis: a single server or, with the cluster suite, a cluster."""
    return connect(
        {
            "REDIS_URL": app_env["CHECKOUT_REDIS_URL"],
            "REDIS_CLUSTER": app_env["CHECKOUT_REDIS_CLUSTER"] == "true",
            "REDIS_SOCKET_TIMEOUT": 2,
            **settings,
        }
    )


@pytest.fixture
def redis_client(app_env: dict[str, str]) -> Iterator[Any]:
    client = _connect(app_env)
    yield client
    client.close()


def test_a_busy_pool_makes_a_thread_wait_for_a_connection_rather_than_fail(app_env):
    """Three threads at once on a pool of one connection: each command waits its turn
    (each holds the connection 0.3 s, within the 2 s the pool waits) and none errors."""
    client = _connect(app_env, REDIS_MAX_CONNECTIONS=1)
    key = f"test-scale-{uuid.uuid4().hex[:8]}:empty-list"
    try:
        with ThreadPoolExecutor(3) as pool:
            waits = [pool.submit(client.blpop, [key], 0.3) for _ in range(3)]
            assert [wait.result() for wait in waits] == [None, None, None]
        pools = (
            [node.redis_connection.connection_pool for node in client.get_nodes()]
            if app_env["CHECKOUT_REDIS_CLUSTER"] == "true"
            else [client.connection_pool]
        )
        assert {type(pool) for pool in pools} == {redis.BlockingConnectionPool}
        assert all(pool.max_connections == 1 for pool in pools)
    finally:
        client.close()


def test_the_admission_batch_answers_the_same_on_either_kind_of_redis(redis_client):
    """`storage.Batch`: counts, a claim and a read in one round trip, keys in different
    slots on a cluster, each reply under its own name and of the same type either way."""
    client = redis_client
    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    counter, claim, basket = keys.rate_limit("update", "ip"), keys.recaptcha("t"), keys.basket("b")
    client.set(basket, b"a basket", ex=600)
    empty = Batch(client)
    empty.execute()
    with pytest.raises(KeyError):
        empty.reply("basket")

    def admission() -> Batch:
        batch = Batch(client)
        batch.get("basket", basket)
        batch.incr("count", counter)
        batch.expire("count-expiry", counter, 61)
        batch.set("claim", claim, 1, nx=True, ex=120)
        batch.get("missing", keys.basket("no-such-basket"))
        batch.execute()
        return batch

    first, second = admission(), admission()
    assert (first.reply("basket"), first.reply("count"), first.reply("claim")) == (
        b"a basket",
        1,
        True,  # the claim is taken
    )
    assert (second.reply("count"), second.reply("claim")) == (2, None)  # and not twice
    assert first.reply("missing") is None
    assert 0 < client.ttl(counter) <= 61 and 60 < client.ttl(claim) <= 120


def test_a_batch_refuses_two_commands_of_one_name(redis_client):
    batch = Batch(redis_client)
    batch.get("basket", "a")
    with pytest.raises(ValueError, match="basket"):
        batch.get("basket", "b")


def test_a_wrong_type_reply_raises_and_leaves_the_client_usable(redis_client):
    client = redis_client
    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    basket = keys.basket("basket-two")
    client.set(basket, b"a basket", ex=600)
    client.rpush(keys.signin("listed"), b"x")
    client.expire(keys.signin("listed"), 600)
    batch = Batch(client)
    batch.get("listed", keys.signin("listed"))
    batch.get("basket", basket)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        batch.execute()
    assert client.get(basket) == b"a basket"


def test_the_baskets_compare_and_set_script_runs_again_after_the_server_lost_it(redis_client):
    """redis-py's registered script falls back from EVALSHA to EVAL (after a restart)."""
    from app.adapters.baskets import RedisBasketStore as BasketStore
    from tests.unit.test_rules import basket as make_basket

    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    store = BasketStore(redis_client, keys, 600)
    first = store.save(make_basket())
    assert first is not None and first.version == 1
    redis_client.script_flush()
    second = store.save(first)
    assert second is not None and second.version == 2
    assert store.save(first) is None  # a stale version loses, whichever way the script ran
    assert 0 < redis_client.ttl(keys.basket(first.basket_id)) <= 600


def test_a_claim_sent_again_after_a_lost_reply_is_still_its_own(redis_client):
    """redis-py sends a command again when the connection failed after sending it (a
    failover): the second SET NX meets the first's write, which must not read as a replay."""
    from app.adapters.recaptcha import _CLAIM, RecaptchaVerifier
    from app.checkout.errors import RecaptchaFailed
    from app.config import Defaults

    config = {name: getattr(Defaults, name) for name in dir(Defaults) if name.isupper()}
    keys = Keys(f"test-scale-{uuid.uuid4().hex[:8]}")
    verifier = RecaptchaVerifier(config, redis_client, keys)
    token = f"pass-{uuid.uuid4().hex}"

    first = Batch(redis_client)
    claim = verifier.queue_claim(first, token)
    first.execute()
    claim.check(first)

    again = Batch(redis_client)  # the very same command, as redis-py's retry sends it
    again.set(_CLAIM, claim.key, claim.nonce, nx=True, ex=600)
    again.execute()
    claim.check(again)

    replay = Batch(redis_client)  # another request with the same token
    other = verifier.queue_claim(replay, token)
    replay.execute()
    with pytest.raises(RecaptchaFailed, match="already used"):
        other.check(replay)
