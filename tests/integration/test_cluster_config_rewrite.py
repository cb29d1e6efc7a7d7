"""CONFIG REWRITE on a cluster replica (Redis's cluster suite, 14-consistency-check and 17-diskless-load-swapdb,
restart replicas after it): the file gets no replicaof line, since a cluster node's master is in nodes.conf and
replicaof is refused at start in cluster mode. The replica restarts from the rewritten file as the same master's
replica, keeping the keys that expired while it was down for its master's DELs. redis-server, given the same
steps, writes no replicaof either.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RedisServer, wait_for
from tests.integration.test_cluster_multi import nodes_of
from tests.integration.test_sentinel_failover import ConfiguredNode
from tests.integration.test_sentinel_node_side import _redis_with_file

pytestmark = [pytest.mark.slow]
KEYS = 20


def _now_ms(client: Any) -> int:
    seconds, microseconds = client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def _pair(start: Callable[[str], Any], client_of: Callable[[Any], Any]) -> tuple[Any, Any, str]:
    """A master with every slot and its replica, started by ``start``; returns (master, replica, master id)."""
    master, replica = start("m"), start("r")
    mc, rc = client_of(master), client_of(replica)
    mc.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    master_id = mc.execute_command("CLUSTER", "MYID").decode()
    rc.execute_command("CLUSTER", "MEET", "127.0.0.1", str(master.port))
    wait_for(lambda: master_id in {w[0] for w in nodes_of(replica.port)}, 30, what="the replica to meet")
    rc.execute_command("CLUSTER", "REPLICATE", master_id)
    wait_for(lambda: rc.info("replication")["master_link_status"] == "up", 30, what="the replica to sync")
    return master, replica, master_id


def test_config_rewrite_on_a_cluster_replica_writes_no_replicaof(tmp_path: Path) -> None:
    ours: list[ConfiguredNode] = []
    theirs: list[RedisServer] = []
    try:

        def start_ours(name: str) -> ConfiguredNode:
            node = ConfiguredNode(tmp_path / "ours", name, "# cluster node\n", cluster_enabled="yes")
            ours.append(node)
            return node.start()

        def start_theirs(name: str) -> RedisServer:
            server = _redis_with_file(tmp_path / "theirs" / name, "cluster-enabled yes\n")
            theirs.append(server)
            return server

        master, replica, master_id = _pair(start_ours, lambda n: n.client())
        _, reference, _ = _pair(start_theirs, lambda s: s.client)
        assert replica.client().config_rewrite()
        assert reference.client.config_rewrite()
        for text in (replica.config_path.read_text(), (tmp_path / "theirs" / "r" / "redis.conf").read_text()):
            assert "cluster-enabled yes" in text
            assert "replicaof" not in text and "slaveof" not in text, text

        # Keys that expire while the replica is down are kept by its start-up load (it is a replica by
        # nodes.conf, which Redis reads before the data) until its master's DELs remove them (Redis's cluster
        # suite, 14-consistency-check). The master's active expiry is off meanwhile, so no DEL comes early.
        mc = master.client()
        mc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        deadline_ms = _now_ms(mc) + 1500
        for i in range(KEYS):
            mc.set(f"k{i}", "v", pxat=deadline_ms)
        wait_for(lambda: replica.client().dbsize() == KEYS, 10, what="the replica to get the keys")
        assert replica.client().save()
        replica.stop()
        wait_for(lambda: _now_ms(mc) > deadline_ms, 10, what="the keys' deadline to pass")
        # The master is stopped while the replica loads, so what the replica has is its load's, not a sync's.
        master.signal(signal.SIGSTOP)
        try:
            replica.start()
            assert replica.client().dbsize() == KEYS
        finally:
            master.signal(signal.SIGCONT)
        wait_for(
            lambda: (
                nodes_of(replica.port)[0][2:4] == ["myself,slave", master_id]
                and replica.client().info("replication")["master_link_status"] == "up"
            ),
            30,
            what="the replica to come back as the same master's replica",
        )
        assert replica.client().dbsize() == KEYS
        mc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        wait_for(lambda: replica.client().dbsize() == 0, 20, what="the master's DELs to reach the replica")
    finally:
        for node in ours:
            node.stop()
        for server in theirs:
            server.stop()
