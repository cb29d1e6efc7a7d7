"""A fleet of real Redis Sentinels (``redis-server --sentinel``) fails over redactor nodes.

Three sentinels watch a redactor master with two redactor replicas (each started from a config file, so the
sentinels' ``CONFIG REWRITE`` lands); the master is killed with SIGKILL; the sentinels promote a replica,
repoint the other one, and a redis-py ``Sentinel`` client writes again through the new master.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from tests.harness import NodeProcess, free_port, wait_for

pytestmark = pytest.mark.slow

MASTER_NAME = "mymaster"


class ConfiguredNode(NodeProcess):
    """A node started from a redis.conf of its own (what CONFIG REWRITE rewrites), plus the usual overrides."""

    def __init__(self, base_dir: Path, name: str, text: str = "", **directives: Any) -> None:
        super().__init__(base_dir, name, **directives)
        self.config_path = self.dir / "redis.conf"
        self.config_path.write_text(text)

    def argv(self) -> list[str]:
        args = super().argv()
        return [*args[:4], str(self.config_path), *args[4:]]


class SentinelProcess:
    def __init__(self, directory: Path, master_port: int) -> None:
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / f"sentinel-{self.port}.conf"
        self.config.write_text(
            f"port {self.port}\n"
            f"dir {directory}\n"
            f"logfile {directory / f'sentinel-{self.port}.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 2\n"
        )
        self.proc = subprocess.Popen(
            ["redis-server", str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.client = redis.Redis(port=self.port, socket_timeout=5)
        wait_for(lambda: bool(self.client.ping()), 15, what=f"sentinel {self.port} to answer PING")

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[list[ConfiguredNode], list[SentinelProcess]]]:
    nodes: list[ConfiguredNode] = []
    sentinels: list[SentinelProcess] = []
    try:
        master = ConfiguredNode(tmp_path, "n1", "# the master\n")
        nodes.append(master.start())
        for name in ("n2", "n3"):
            replica = ConfiguredNode(tmp_path, name, f"# a replica\nreplicaof 127.0.0.1 {master.port}\n")
            nodes.append(replica.start())
        for replica in nodes[1:]:
            wait_for(
                lambda r=replica: r.client().info("replication")["master_link_status"] == "up",
                30,
                what="replicas to sync",
            )
        for _ in range(3):
            sentinels.append(SentinelProcess(tmp_path / "sentinels", master.port))
        yield nodes, sentinels
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        for node in nodes:
            node.stop()


def test_real_sentinels_fail_over_a_killed_redactor_master(
    fleet: tuple[list[ConfiguredNode], list[SentinelProcess]],
) -> None:
    nodes, sentinels = fleet
    master, replicas = nodes[0], nodes[1:]
    master.client().set("before", "1")
    wait_for(
        lambda: all(r.client().get("before") == b"1" for r in replicas), 15, what="the write to replicate"
    )

    def sentinels_see_everyone() -> bool:
        for sentinel in sentinels:
            fields = sentinel.client.sentinel_master(MASTER_NAME)
            if int(fields["num-slaves"]) != 2 or int(fields["num-other-sentinels"]) != 2:
                return False
        return True

    wait_for(sentinels_see_everyone, 30, what="the sentinels to discover the replicas and each other")

    master.kill()
    started = time.monotonic()
    replica_ports = {r.port for r in replicas}

    def promoted() -> bool:
        addr = sentinels[0].client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(addr[1]) in replica_ports

    wait_for(promoted, 60, what="the sentinels to promote a replica")
    new_port = int(sentinels[0].client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)[1])
    new_master = next(r for r in replicas if r.port == new_port)
    other = next(r for r in replicas if r.port != new_port)
    wait_for(lambda: new_master.client().role()[0] == b"master", 30, what="the promoted node to be master")

    client = Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=5)
    writer = client.master_for(MASTER_NAME, socket_timeout=5)
    wait_for(lambda: bool(writer.set("after", "2")), 30, what="a write through the sentinel client")
    assert new_master.client().get("after") == b"2"
    # The other replica follows the new master, and its config file says so (the sentinels' CONFIG REWRITE).
    wait_for(
        lambda: (
            other.client().info("replication").get("master_port") == new_port
            and other.client().info("replication")["master_link_status"] == "up"
        ),
        60,
        what="the other replica to follow the new master",
    )
    wait_for(lambda: other.client().get("after") == b"2", 15, what="the new write to reach the other replica")
    assert f"replicaof 127.0.0.1 {new_port}" in other.config_path.read_text()
    assert "replicaof" not in new_master.config_path.read_text()
    print(f"failover took {time.monotonic() - started:.1f}s")
