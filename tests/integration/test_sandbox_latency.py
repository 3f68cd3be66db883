"""The served sandbox's latency: one sleeping call does not hold up the others.

The sandbox runs one gevent worker; its latency sleeps with ``time.sleep``, which gevent
patches. Were the sleep to block the worker, calls would be answered one after another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Sandbox

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALLERS = 8


@pytest.fixture
def slow_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox with the ``slow`` profile, put back to ``none`` afterwards.

    Switching reseeds the draws: with the default seed the shortest of the first eight
    siteverify delays is about 150 ms, well above the ~10 ms over which they arrive.
    """
    sandbox.set_latency("slow")
    try:
        yield sandbox
    finally:
        sandbox.set_latency("none")


def verify_together(url: str, callers: int) -> list[int]:
    """``callers`` siteverify calls released at once, each on a connection opened first."""
    sessions = [requests.Session() for _ in range(callers)]
    for session in sessions:  # connect now, so connecting does not spread the arrivals
        session.get(f"{url}/recaptcha/api.js", timeout=5).raise_for_status()
    start = threading.Barrier(callers)
    statuses: list[int] = []

    def call(session: requests.Session) -> None:
        body = {"secret": "sandbox-recaptcha-secret", "response": f"pass-{uuid.uuid4().hex}"}
        start.wait(timeout=10)
        response = session.post(f"{url}/recaptcha/api/siteverify", data=body, timeout=30)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=call, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for session in sessions:
        session.close()
    return statuses


def test_delayed_calls_overlap(slow_sandbox: Sandbox) -> None:
    assert verify_together(slow_sandbox.url, CALLERS) == [200] * CALLERS
    calls = [c for c in slow_sandbox.calls() if c["endpoint"] == "siteverify"]
    assert len(calls) == CALLERS
    assert all(c["arrivedAt"] <= c["answeredAt"] for c in calls)
    # Every call had arrived before any was answered: all were waiting at once.
    assert max(c["arrivedAt"] for c in calls) < min(c["answeredAt"] for c in calls)


def test_latency_endpoint_reports_the_profile(slow_sandbox: Sandbox) -> None:
    body = requests.get(f"{slow_sandbox.url}/_sandbox/latency", timeout=5).json()
    assert body["profile"] == "slow"
    assert body["medianMs"]["siteverify"] == 400
    bad = requests.put(f"{slow_sandbox.url}/_sandbox/latency", json={"profile": "x"}, timeout=5)
    assert bad.status_code == 400
    assert "none, realistic, slow" in bad.json()["message"]


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--latency", "bogus"], {}), ([], {"SANDBOX_LATENCY": "bogus"})],
    ids=["flag", "variable"],
)
def test_serve_refuses_an_unknown_profile(args: list[str], env: dict[str, str]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "latency profile must be one of none, realistic, slow" in result.stderr
    assert "'bogus'" in result.stderr
    assert "listening" not in result.stdout
