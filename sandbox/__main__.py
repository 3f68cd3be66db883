"""Command line: ``python -m sandbox serve`` and ``python -m sandbox token CUSTOMER``."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from sandbox import create_app
from sandbox.data import CUSTOMERS
from sandbox.keys import load_signing_key
from sandbox.latency import PROFILES
from sandbox.settings import DEFAULT_PORT, Settings
from sandbox.tokens import mint_access_token


class SandboxServer(BaseApplication):
    """gunicorn, one process, gevent, HTTP/1.1 keep-alive: the checkout's pooled
    connections are reused as they would be with a real backend.

    One process because the demo data lives in its memory. gevent rather than threads:
    on the bench's two cores the sandbox shares the machine with the checkout, and
    gunicorn's thread worker spent more CPU per call handing connections between its
    poller and its threads than the sandbox spent answering. (werkzeug's development
    server closes every connection after one answer, which cost each upstream call a new
    TCP connection and a new server thread.)
    """

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        super().__init__()

    def load_config(self) -> None:
        settings: dict[str, Any] = {
            "bind": [f"fd://{self.sock.fileno()}"],
            "workers": 1,
            "worker_class": "gevent",
            # The checkout keeps up to ~256 pooled connections in benchmarks, and with a
            # latency profile each call holds its connection for the delay.
            "worker_connections": 1000,
            "keepalive": 30,
            "timeout": 120,  # the "slow" fault and the latency sleep inside a request
            "graceful_timeout": 2,
            "accesslog": None,
            "loglevel": "warning",
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Built in the worker, after gevent has patched the standard library, so the
        # demo data's locks are gevent's.
        return create_app(self.settings)


def serve(
    host: str,
    port: int,
    issuer: str | None,
    latency: str | None = None,
    webhook_secret: str | None = None,
) -> int:
    """Serve until interrupted; demo data is fresh at every start.

    ``latency`` and ``webhook_secret`` (the ``--latency`` and ``--webhook-secret`` flags)
    win over ``SANDBOX_LATENCY`` and ``SANDBOX_WEBHOOK_SECRET``.
    """
    # Bind first, so port 0 works and "listening" is only printed once it is true. The
    # backlog absorbs a benchmark opening all of its pooled connections at once.
    sock = socket.create_server((host, port), backlog=1024)
    actual_port = sock.getsockname()[1]
    try:
        settings = Settings.from_env(
            port=actual_port, issuer=issuer, latency=latency, webhook_secret=webhook_secret
        )
    except ValueError as error:
        sock.close()
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    print(f"sandbox listening on http://{host}:{actual_port}", flush=True)
    SandboxServer(settings, sock).run()
    return 0


def token(customer: str, expires_in: int | None, issuer: str | None, audience: str | None) -> int:
    """Print an access token signed with the server's key file, for curl and API tests.

    An operator's token carries her roles, as the token endpoint's would.
    """
    if customer not in CUSTOMERS:
        print(
            f"unknown customer {customer!r}; choose one of: {', '.join(CUSTOMERS)}",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env(issuer=issuer, audience=audience)
    access_token = mint_access_token(
        load_signing_key(settings.signing_key_file),
        subject=customer,
        issuer=settings.issuer,
        audience=settings.audience,
        client_id=settings.client_id,
        expires_in=settings.access_token_ttl if expires_in is None else expires_in,
        roles=CUSTOMERS[customer].roles,
    )
    print(access_token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Stand-in for the partner's systems."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve the sandbox (threaded, no reloader)")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    serve_cmd.add_argument("--issuer", help="OAuth issuer URL (default: SANDBOX_ISSUER or own URL)")
    serve_cmd.add_argument(
        "--latency",
        help=f"added upstream latency, one of {', '.join(PROFILES)} "
        "(default: SANDBOX_LATENCY or none)",
    )
    serve_cmd.add_argument(
        "--webhook-secret",
        help="whsec_… secret the webhook receiver verifies with "
        "(default: SANDBOX_WEBHOOK_SECRET or the development secret)",
    )

    token_cmd = commands.add_parser(
        "token", help="print an access token for a demo customer or operator"
    )
    token_cmd.add_argument("customer", help=f"one of: {', '.join(CUSTOMERS)}")
    token_cmd.add_argument("--expires-in", type=int, help="seconds; negative for an expired token")
    token_cmd.add_argument("--issuer", help="default: SANDBOX_ISSUER or http://127.0.0.1:5001")
    token_cmd.add_argument("--audience", help="default: SANDBOX_AUDIENCE or checkout-api")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port, args.issuer, args.latency, args.webhook_secret)
    return token(args.customer, args.expires_in, args.issuer, args.audience)


if __name__ == "__main__":
    sys.exit(main())
