"""The layout every page shares: its scripts' CSP nonce, its static files' URLs."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.unit


def test_every_script_carries_the_nonce_its_answer_names_and_each_answer_a_new_one(client):
    seen = set()
    for _ in range(2):
        response = client.get("/")
        assert response.status_code == 200
        nonces = set(re.findall(r'<script[^>]* nonce="([^"]+)"', response.text))
        assert len(nonces) == 1
        nonce = nonces.pop()
        assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
        seen.add(nonce)
    assert len(seen) == 2


def test_static_files_are_linked_under_the_mount_point_the_request_came_through(client):
    at_root = client.get("/").text
    mounted = client.get("/", base_url="http://localhost/shop").text  # SCRIPT_NAME=/shop
    again_at_root = client.get("/").text
    for name in ("favicon.svg", "checkout.css", "checkout.js"):
        assert f'"/static/{name}"' in at_root
        assert f'"/shop/static/{name}"' in mounted
        assert f'"/static/{name}"' in again_at_root
