"""A Hypothesis state machine: the basket rules over HTTP against a model of them.

Create, add, remove, complete and expire in any order; after every step the basket the
API returns must be the model's, prices included.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from app.adapters.storage import Keys
from tests.conftest import Sandbox
from tests.integration.conftest import Partner

PLAN_AND_ACTIVE = Decimal("24.00")  # alice: Standard 20.00 + HD 4.00
PRICES = {
    "OFFER-HD": Decimal("4.00"),
    "OFFER-SPORTS": Decimal("8.00"),
    "OFFER-KIDS": Decimal("3.00"),
    "OFFER-CINEMA": Decimal("6.50"),
}
ACTIVE = {"OFFER-HD"}
ELIGIBLE = {"OFFER-SPORTS", "OFFER-KIDS", "OFFER-CINEMA"}
OFFERS = st.sampled_from([*PRICES, "OFFER-NOPE"])


class BasketRules(RuleBasedStateMachine):
    client: Partner
    sandbox: Sandbox
    redis: redis.Redis
    keys: Keys

    def __init__(self) -> None:
        super().__init__()
        self.sandbox.reset()
        self.client.http.cookies.clear()
        self.basket_id: str | None = None
        self.completed = False
        self.locked = False
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.order_id: str | None = None

    @rule()
    def create(self) -> None:
        response = self.client.create()
        if self.locked:
            assert response.status_code == 409
            assert response.json()["code"] == "subscription_locked"
            return
        assert response.status_code == 201, response.text
        self.basket_id = response.json()["basket"]["basketId"]
        self.completed, self.adds, self.removes, self.order_id = False, [], [], None

    @rule(offer=OFFERS)
    def add(self, offer: str) -> None:
        response = self.client.update({"addOffers": [offer]})
        if self._refused(response):
            return
        if offer in self.removes:
            self.removes.remove(offer)
        elif offer in ELIGIBLE:
            self.adds = [offer]
        elif offer not in ACTIVE:
            assert response.status_code == 400, response.text
            return
        assert response.status_code == 200, response.text

    @rule(offer=OFFERS)
    def remove(self, offer: str) -> None:
        response = self.client.update({"removeOffers": [offer]})
        if self._refused(response):
            return
        if offer in self.adds:
            self.adds.remove(offer)
        elif offer in ACTIVE:
            if offer not in self.removes:
                self.removes.append(offer)
        else:
            assert response.status_code == 400, response.text
            return
        assert response.status_code == 200, response.text

    @rule()
    def complete(self) -> None:
        response = self.client.update({"complete": True})
        if self.basket_id is None:
            assert response.status_code == 404
        elif self.completed:
            assert response.status_code == 200
            assert response.json()["basket"]["order"]["orderId"] == self.order_id
        elif not (self.adds or self.removes):
            assert response.status_code == 400
        else:
            assert response.status_code == 200, response.text
            self.completed = self.locked = True
            self.order_id = response.json()["basket"]["order"]["orderId"]

    @rule()
    def expire(self) -> None:
        if self.basket_id is not None:
            self.redis.delete(self.keys.basket(self.basket_id))
            self.basket_id = None

    def _refused(self, response) -> bool:
        """The answers that come before any rule about offers."""
        if self.basket_id is None:
            assert response.status_code == 404, response.text
            return True
        if self.completed:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "basket_completed"
            return True
        return False

    @invariant()
    def the_api_shows_the_model(self) -> None:
        response = self.client.get()
        if self.basket_id is None:
            assert response.status_code == 404
            return
        basket = response.json()["basket"]
        assert [o["id"] for o in basket["addOffers"]] == self.adds
        assert [o["id"] for o in basket["removeOffers"]] == self.removes
        assert basket["checkoutCompleted"] is self.completed
        expected = (
            PLAN_AND_ACTIVE
            + sum(PRICES[o] for o in self.adds)
            - sum((PRICES[o] for o in self.removes), Decimal(0))
        )
        assert Decimal(basket["totals"]["new"]["amount"]) == expected
        if self.completed:
            (order,) = self.sandbox.orders()
            assert order["orderId"] == self.order_id


def test_the_basket_rules_hold_in_any_order(partner, sandbox, redis_url, key_prefix):
    BasketRules.client = partner("alice")
    BasketRules.sandbox = sandbox
    BasketRules.redis = redis.Redis.from_url(redis_url)
    BasketRules.keys = Keys(key_prefix)
    run_state_machine_as_test(
        BasketRules,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.fixture(autouse=True)
def _close_redis():
    yield
    if hasattr(BasketRules, "redis"):
        BasketRules.redis.close()
