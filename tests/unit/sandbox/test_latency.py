"""The sandbox's latency profiles and call timeline, in-process (Flask's test client).

Samples are checked as numbers, not by timing requests; the few requests that do sleep
check a lower bound only (the delay happened), never how fast anything was.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox import Settings, create_app
from sandbox.latency import (
    CAP,
    MEDIAN_MS,
    PROFILES,
    Latency,
    endpoint_for,
    medians_ms,
)
from sandbox.state import CallTimeline
from tests.unit.sandbox.backend_calls import BACKEND

pytestmark = pytest.mark.unit

SITEVERIFY = "/recaptcha/api/siteverify"


def verify(client: FlaskClient) -> None:
    body = {"secret": "sandbox-recaptcha-secret", "response": "pass-latency"}
    assert client.post(SITEVERIFY, data=body).status_code == 200


def calls(client: FlaskClient) -> list[dict[str, Any]]:
    body: dict[str, Any] = client.get("/_sandbox/calls").get_json()
    return list(body["calls"])


# --- which calls are delayed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("POST", SITEVERIFY, "siteverify"),
        ("GET", "/backend/v1/subscriptions/SUB-1001", "getSubscription"),
        ("POST", "/backend/v1/subscriptions/SUB-1001/quotes", "quote"),
        ("POST", "/backend/v1/orders", "order"),
        ("POST", "/oauth/token", "token"),
        ("GET", "/oauth/jwks", "jwks"),
        ("GET", "/.well-known/openid-configuration", "discovery"),
        # never delayed: other methods, pages, scripts, static files, the controls
        ("GET", SITEVERIFY, None),
        ("POST", "/backend/v1/subscriptions/SUB-1001", None),
        ("GET", "/backend/v1/orders", None),
        ("GET", "/backend/v1/subscriptions/SUB-1001/quotes/extra", None),
        ("GET", "/oauth/authorize", None),
        ("POST", "/oauth/authorize", None),
        ("GET", "/recaptcha/api.js", None),
        ("GET", "/static/sandbox.css", None),
        ("GET", "/_sandbox/stats", None),
        ("POST", "/_sandbox/reset", None),
        # the checkout calling the partner's webhook receiver: not the partner's API
        ("POST", "/partner/webhooks", None),
    ],
)
def test_paths_and_methods_map_to_endpoints(method: str, path: str, endpoint: str | None) -> None:
    assert endpoint_for(method, path) == endpoint


def test_control_paths_and_the_none_profile_add_nothing() -> None:
    latency = Latency("realistic")
    assert latency.delay_for("GET", "/_sandbox/calls") == 0.0
    assert latency.delay_for("GET", "/oauth/authorize") == 0.0
    assert latency.delay_for("POST", SITEVERIFY) > 0.0
    assert Latency("slow").delay_for("POST", "/partner/webhooks") == 0.0
    quiet = Latency("none")
    assert {quiet.sample(name) for name in MEDIAN_MS} == {0.0}
    assert quiet.delay_for("POST", "/backend/v1/orders") == 0.0


def test_medians_per_profile() -> None:
    assert medians_ms("realistic") == {
        "siteverify": 80,
        "getSubscription": 60,
        "quote": 120,
        "order": 250,
        "token": 100,
        "jwks": 50,
        "discovery": 50,
    }
    assert medians_ms("slow") == {name: 5 * ms for name, ms in MEDIAN_MS.items()}
    assert set(medians_ms("none").values()) == {0}


# --- the samples -----------------------------------------------------------------------


def test_seeded_samples_are_reproducible() -> None:
    def draws(latency: Latency) -> list[float]:
        return [latency.sample(name) for name in MEDIAN_MS for _ in range(20)]

    assert draws(Latency("realistic", seed=7)) == draws(Latency("realistic", seed=7))
    assert draws(Latency("realistic", seed=7)) != draws(Latency("realistic", seed=8))
    latency = Latency("realistic", seed=7)
    first = draws(latency)
    latency.set_profile("realistic")  # every switch starts the draws afresh
    assert draws(latency) == first


def test_an_endpoints_draws_do_not_depend_on_other_endpoints_calls() -> None:
    alone, mixed = Latency("realistic"), Latency("realistic")
    expected = [alone.sample("quote") for _ in range(10)]
    got = []
    for _ in range(10):
        mixed.sample("siteverify")
        got.append(mixed.sample("quote"))
    assert got == expected


@pytest.mark.parametrize("profile", ["realistic", "slow"])
@pytest.mark.parametrize("endpoint", ["siteverify", "order"])
def test_samples_have_the_median_and_a_long_capped_tail(profile: str, endpoint: str) -> None:
    latency = Latency(profile)
    samples = sorted(latency.sample(endpoint) for _ in range(20_000))
    median = medians_ms(profile)[endpoint] / 1000
    observed = statistics.median(samples)
    assert math.isclose(observed, median, rel_tol=0.10)
    p99 = samples[int(len(samples) * 0.99)]
    assert 3 <= p99 / observed <= 5
    assert samples[-1] <= CAP * median + 1e-9
    assert samples[0] > 0


def test_slow_is_realistic_times_five() -> None:
    realistic, slow = Latency("realistic"), Latency("slow")
    for _ in range(50):
        assert math.isclose(slow.sample("token"), 5 * realistic.sample("token"))


# --- configuration ---------------------------------------------------------------------


def test_settings_take_the_profile_and_seed_from_the_environment() -> None:
    assert Settings().latency == "none"
    settings = Settings.from_env({"SANDBOX_LATENCY": "realistic", "SANDBOX_LATENCY_SEED": "5"})
    assert (settings.latency, settings.latency_seed) == ("realistic", 5)
    # The --latency flag wins over the variable.
    assert Settings.from_env({"SANDBOX_LATENCY": "realistic"}, latency="slow").latency == "slow"


@pytest.mark.parametrize("bad", ["bogus", "Realistic", "fast"])
def test_settings_refuse_unknown_profiles(bad: str) -> None:
    message = "latency profile must be one of none, realistic, slow"
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"SANDBOX_LATENCY": bad})
    with pytest.raises(ValueError, match=message):
        Settings(latency=bad)


def test_app_starts_with_the_configured_profile(key_file: Path) -> None:
    client = create_app(Settings(signing_key_file=key_file, latency="slow")).test_client()
    assert client.get("/_sandbox/latency").get_json() == {
        "profile": "slow",
        "medianMs": medians_ms("slow"),
    }


def test_profile_switches_at_runtime_and_survives_a_reset(client: FlaskClient) -> None:
    assert client.get("/_sandbox/latency").get_json()["profile"] == "none"
    response = client.put("/_sandbox/latency", json={"profile": "realistic"})
    assert response.status_code == 200
    assert response.get_json() == {"profile": "realistic", "medianMs": dict(MEDIAN_MS)}
    assert client.post("/_sandbox/reset").status_code == 204
    assert client.get("/_sandbox/latency").get_json()["profile"] == "realistic"


@pytest.mark.parametrize(
    "body", [{"profile": "bogus"}, {"profile": None}, {"profile": 1}, {}, ["slow"], None]
)
def test_bad_profile_switches_are_refused(client: FlaskClient, body: Any) -> None:
    response = client.put("/_sandbox/latency", json=body)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_request",
        "message": f"profile must be one of {', '.join(PROFILES)}",
    }
    assert client.get("/_sandbox/latency").get_json()["profile"] == "none"


# --- the call timeline -----------------------------------------------------------------


def test_timeline_records_counted_calls_in_order_and_reset_clears_it(
    client: FlaskClient,
) -> None:
    verify(client)
    assert client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND).status_code == 200
    client.get("/oauth/jwks")  # delayed by a profile, but not a counted call
    client.get("/_sandbox/stats")
    recorded = calls(client)
    assert [(c["endpoint"], c["method"], c["path"]) for c in recorded] == [
        ("siteverify", "POST", SITEVERIFY),
        ("getSubscription", "GET", "/backend/v1/subscriptions/SUB-1001"),
    ]
    assert all(c["arrivedAt"] <= c["answeredAt"] for c in recorded)
    assert recorded[0]["arrivedAt"] <= recorded[1]["arrivedAt"]
    assert client.post("/_sandbox/reset").status_code == 204
    assert calls(client) == []


def test_timeline_spans_the_latency_and_a_slow_fault(client: FlaskClient) -> None:
    """Latency and faults add up, and the timeline covers both."""
    client.put("/_sandbox/latency", json={"profile": "realistic"})
    expected = Latency("realistic").sample("siteverify")  # the same seed, the same first draw
    fault = {"mode": "slow", "delaySeconds": 0.05, "path": "/recaptcha/", "count": 1}
    assert client.post("/_sandbox/faults", json=fault).status_code == 201
    verify(client)
    (call,) = calls(client)
    # time.sleep waits at least as long as asked; 1 ms spares the wall clock's slewing.
    assert call["answeredAt"] - call["arrivedAt"] >= expected + 0.05 - 0.001


def test_timeline_is_bounded() -> None:
    timeline = CallTimeline(maxlen=3)
    for second in range(5):
        timeline.record("POST", "/backend/v1/orders", float(second), second + 0.5)
    assert [c["arrivedAt"] for c in timeline.to_json()] == [2.0, 3.0, 4.0]
