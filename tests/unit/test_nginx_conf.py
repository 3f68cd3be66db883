"""deploy/nginx.conf says some things the app says too: they must agree."""

from __future__ import annotations

import re

import pytest

from app.config import Defaults
from app.web.middleware import _REQUEST_ID
from sandbox.stack import ROOT

pytestmark = pytest.mark.unit

CONF = (ROOT / "deploy" / "nginx.conf").read_text()


def _directive(name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", CONF, re.MULTILINE)


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def test_the_body_limit_is_the_apps():
    (size,) = _directive("client_max_body_size")
    assert int(size.removesuffix("k")) * 1024 == Defaults.MAX_CONTENT_LENGTH


def test_a_clients_request_id_is_kept_when_the_app_would_keep_it():
    (pattern,) = re.findall(r'"~(\^[^"]+\$)" \$http_x_request_id', CONF)
    assert pattern == _REQUEST_ID.pattern


def test_nginx_waits_for_the_app_longer_than_its_deadline_and_no_longer_than_a_worker_lives():
    from app import gunicorn_config

    (read,) = _directive("proxy_read_timeout")
    assert Defaults.REQUEST_DEADLINE_SECONDS * 2 < _seconds(read) < gunicorn_config.timeout


def test_it_serves_the_hosts_the_app_trusts_and_refuses_the_rest():
    names = [name.split() for name in _directive("server_name")]
    assert ["_"] in names  # the default server: `return 400`
    served = next(n for n in names if n != ["_"])
    assert set(served) == set(Defaults.TRUSTED_HOSTS)
    assert re.search(r"default_server;\s*server_name _;\s*return 400;", CONF)


def test_an_idle_upstream_connection_is_closed_by_nginx_before_gunicorn_closes_it():
    from app import gunicorn_config

    block = re.search(r"upstream checkout \{([^}]*)\}", CONF)
    assert block is not None
    (idle,) = re.findall(r"keepalive_timeout\s+([^;]+);", block.group(1))
    assert _seconds(idle) < gunicorn_config.keepalive
