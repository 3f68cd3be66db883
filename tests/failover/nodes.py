"""Redis topologies to kill nodes in: a primary, a replica and three sentinels, all from the
redis-server binary the embedded package ships."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from sandbox.stack import EmbeddedRedis, free_port, redis_server_binary, wait_for

SERVICE = "checkout"


class SentinelSet:
    """One primary, one replica and three sentinels on loopback. The sentinels call the
    primary down after 1 s without an answer and agree (quorum 2) to promote the replica."""

    def __init__(self) -> None:
        self.primary = EmbeddedRedis()
        self.replica = EmbeddedRedis(
            extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)]
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="checkout-sentinels-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        """CHECKOUT_REDIS_SENTINELS for this set."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelSet:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SentinelSet:
        self.primary.start()
        self.replica.start()
        wait_for(lambda: _role(self.replica.port) == "slave", "the replica to follow")
        for port in self.sentinel_ports:
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            command = [redis_server_binary(), str(config), "--sentinel", "--loglevel", "warning"]
            self.sentinels.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        # Ready once every sentinel knows the replica and the other two sentinels.
        wait_for(self._sentinels_agree, "the sentinels to find each other")
        return self

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
                known = len(list(client.execute_command("SENTINEL SENTINELS", SERVICE)))
                replicas = len(list(client.execute_command("SENTINEL REPLICAS", SERVICE)))
                client.close()
            except redis.RedisError:
                return False
            if known < 2 or replicas < 1:
                return False
        return True

    def master_port(self) -> int | None:
        """The port the sentinels name as the master now, None when none answers."""
        for port in self.sentinel_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=0.5)
                found = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
                client.close()
            except redis.RedisError:
                continue
            if found:
                return int(found[1])
        return None

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait()
        self.replica.stop()
        self.primary.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def kill(node: EmbeddedRedis) -> None:
    """SIGKILL: no goodbye to the replica, no last write flushed."""
    assert node.process is not None
    node.process.kill()
    node.process.wait()


def _role(port: int) -> str | None:
    try:
        client = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
        role = str(client.info("replication")["role"])
        client.close()
        return role
    except redis.RedisError:
        return None
