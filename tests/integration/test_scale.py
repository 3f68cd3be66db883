"""Scale out: any request on any instance, all state in Redis (single server or Cluster)."""

from __future__ import annotations

from redis.crc import key_slot

from app.storage import Keys
from sandbox.stack import app_service, free_port
from tests.conftest import Sandbox
from tests.integration.conftest import Partner


def test_a_basket_walks_across_two_app_instances(app_server, app_env, sandbox: Sandbox):
    second = app_service(free_port(), app_env).start(quiet=True)
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
