"""`storage.Direct`, the hot path's round trips, against a real Redis server.

Single-server behaviour: connections, reconnection, forks, threads. The replies
themselves (their order, a TTL renewed, an error reply that leaves nothing behind) are
checked in `test_scale.py`, on both a single server and, in `make test-cluster`, a
Redis Cluster, where the client's own pipeline carries them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.storage import Direct, connect


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = connect({"REDIS_URL": redis_url, "REDIS_CLUSTER": False, "REDIS_SOCKET_TIMEOUT": 2})
    yield client
    client.close()


def key(name: str) -> str:
    return f"test-direct:{uuid.uuid4().hex}:{{{name}}}"


def test_one_connection_serves_one_thread_round_trip_after_round_trip(client):
    direct = Direct(client)
    assert direct.run(("CLIENT", "ID")) == direct.run(("CLIENT", "ID"))
    assert len(direct._idle) == 1


def test_a_connection_the_server_dropped_is_opened_again_and_the_read_resent(client):
    stored = key("dropped")
    client.set(stored, b"still here")
    direct = Direct(client)
    [before] = direct.run(("CLIENT", "ID"))
    client.client_kill_filter(_id=before)
    assert direct.get(stored) == b"still here"
    [after] = direct.run(("CLIENT", "ID"))
    assert after != before


def test_after_a_fork_the_parents_connections_are_not_used(client):
    direct = Direct(client)
    [parents] = direct.run(("CLIENT", "ID"))
    direct._pid = -1  # as in a child of a fork: os.getpid() differs from the creator's
    [childs] = direct.run(("CLIENT", "ID"))
    assert childs != parents


def test_threads_never_share_a_connection(client):
    direct = Direct(client)
    names = [key(f"t{n}") for n in range(8)]
    for name in names:
        client.set(name, name.encode())
    wrong: list[bytes | None] = []

    def read(name: str) -> None:
        for _ in range(200):
            got = direct.run(("GET", name), ("GET", names[0]))
            if got != [name.encode(), names[0].encode()]:
                wrong.append(got[0])

    threads = [threading.Thread(target=read, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert 1 <= len(direct._idle) <= len(names)


def test_a_script_runs_by_its_sha_and_by_its_source_once_the_server_has_lost_it(client):
    direct = Direct(client)
    script = client.register_script("return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])")
    counter = key("script")
    assert direct.script(script, [counter], [10]) == 11
    client.script_flush()  # as after a restart: EVALSHA would answer NOSCRIPT
    assert direct.script(script, [counter], [10]) == 12
    assert client.script_exists(script.sha) == [True]  # EVAL cached it again
    assert direct.script(script, [counter], [10]) == 13
