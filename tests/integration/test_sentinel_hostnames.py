"""Sentinels with hostnames (``sentinel resolve-hostnames yes`` / ``announce-hostnames yes``), as Kubernetes
deployments run them: the master is monitored by name, the replicas announce a name (replica-announce-ip), and
the sentinels report, publish, persist and hand out names; with announce-hostnames no they report the addresses
those names resolve to. The same checks run against Redis's redis-sentinel over the same nodes, then a
failover with ours: the promoted replica's name is what clients and the other replica are given.

The name is ``localhost`` (it resolves to 127.0.0.1 or ::1 on any machine; both listen: the nodes bind both).
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, start_nodes, wait_for
from tests.sentinel_harness import (
    MASTER_NAME,
    SentinelProcess,
    start_sentinels,
    stop_sentinels,
    wait_discovered,
)

HOST = "localhost"
HOSTNAME_LINES = "sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n"


def _announced(sentinel: SentinelProcess) -> tuple[str, list[str]]:
    """(the master's address as GET-MASTER-ADDR-BY-NAME gives it, the replicas' ``ip`` fields)."""
    client = sentinel.client(decode_responses=True)
    host, _ = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
    return host, sorted(r["ip"] for r in client.sentinel_slaves(MASTER_NAME))


def _nodes(node_factory: Callable[..., NodeProcess]) -> tuple[NodeProcess, list[NodeProcess]]:
    binds = "127.0.0.1 -::1"  # (localhost may resolve to either)
    master = node_factory("m", bind=binds, replica_announce_ip=HOST)
    replicas = [
        node_factory(
            f"r{i}", start=False, bind=binds, replicaof=f"{HOST} {master.port}", replica_announce_ip=HOST
        )
        for i in range(2)
    ]
    start_nodes(replicas)
    return master, replicas


@pytest.mark.parametrize("real", [False, True], ids=["redactor", "redis-sentinel"])
def test_sentinels_monitor_and_announce_hostnames(
    node_factory: Callable[..., NodeProcess], tmp_path: Path, real: bool
) -> None:
    if real and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    master, _ = _nodes(node_factory)
    sentinels = start_sentinels(tmp_path / "s", master.port, real=real, host=HOST, prelude=HOSTNAME_LINES)
    try:
        wait_discovered(sentinels, 2)
        for sentinel in sentinels:
            assert _announced(sentinel) == (HOST, [HOST, HOST])
            master_map = sentinel.master()
            assert master_map["ip"] == HOST
        for sentinel in sentinels:
            assert sentinel.client().execute_command("SENTINEL", "CONFIG", "SET", "announce-hostnames", "no")
        for sentinel in sentinels:
            host, replicas = _announced(sentinel)
            assert host in ("127.0.0.1", "::1") and replicas == [host, host], (host, replicas)
        config = (
            sentinels[0]
            .client(decode_responses=True)
            .execute_command("SENTINEL", "CONFIG", "GET", "*-hostnames")
        )
        if isinstance(config, list):
            config = dict(zip(config[::2], config[1::2], strict=True))
        assert config == {
            "resolve-hostnames": "yes",
            "announce-hostnames": "no",
        }
    finally:
        stop_sentinels(sentinels)


def test_a_failover_hands_out_the_promoted_replica_s_name(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    master, replicas = _nodes(node_factory)
    sentinels = start_sentinels(tmp_path / "s", master.port, host=HOST, prelude=HOSTNAME_LINES)
    try:
        wait_discovered(sentinels, 2)
        master.signal(signal.SIGKILL)
        ports = {r.port for r in replicas}

        def switched() -> bool:
            return all(
                s.client(decode_responses=True).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
                )
                in ([HOST, str(port)] for port in ports)
                for s in sentinels
            )

        wait_for(switched, 30, interval_s=0.1, what="every sentinel to name a promoted replica")
        new_port = int(
            sentinels[0].client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)[1]
        )
        (other,) = [r for r in replicas if r.port != new_port]

        def follows() -> bool:
            info = other.client().info("replication")
            return info["master_host"] == HOST and info["master_port"] == new_port

        wait_for(follows, 30, interval_s=0.1, what="the other replica to be told the new master's name")
        # sentinel.conf keeps the names (rewritten after the switch).
        wait_for(
            lambda: f"sentinel monitor {MASTER_NAME} {HOST} {new_port} 2" in sentinels[0].conf.read_text(),
            10,
            what="the rewritten monitor line",
        )
        assert "sentinel resolve-hostnames yes" in sentinels[0].conf.read_text()
    finally:
        stop_sentinels(sentinels)
