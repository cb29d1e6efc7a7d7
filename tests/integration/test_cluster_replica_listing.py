"""A cluster replica of a master that has had no write since it attached is listed in CLUSTER SLOTS (Redis's
cluster suite, 22-replica-in-sync). CLUSTER SLOTS leaves out replicas whose replication offset is still 0
(isReplicaAvailable); the keep-alive PING a master puts in its replication stream every
repl-ping-replica-period moves the offset of an idle master and its replicas, so the replica shows up within
one period. The same steps run on redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, reference_servers, wait_for
from tests.integration.test_cluster_multi import nodes_of

pytestmark = [pytest.mark.slow]
PING_PERIOD_S = 1


def _replica_listed(master: Any, replica: Any) -> None:
    mc = redis.Redis(port=master.port, socket_timeout=5)
    rc = redis.Redis(port=replica.port, socket_timeout=5)
    try:
        mc.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        mc.execute_command("DEBUG", "POPULATE", "100")  # written before any replica: offset 0 all the same
        master_id = mc.execute_command("CLUSTER", "MYID").decode()
        replica_id = rc.execute_command("CLUSTER", "MYID").decode()
        rc.execute_command("CLUSTER", "MEET", "127.0.0.1", str(master.port))
        wait_for(lambda: master_id in {w[0] for w in nodes_of(replica.port)}, 30, what="the replica to meet")
        rc.execute_command("CLUSTER", "REPLICATE", master_id)
        wait_for(lambda: rc.info("replication")["master_link_status"] == "up", 30, what="the replica to sync")

        def listed() -> bool:
            entries = mc.execute_command("CLUSTER", "SLOTS")
            return any(node[2].decode() == replica_id for entry in entries for node in entry[3:])

        wait_for(listed, PING_PERIOD_S * 10, what="the replica in its master's CLUSTER SLOTS")
        assert mc.info("replication")["master_repl_offset"] > 0
    finally:
        mc.close()
        rc.close()


def test_a_replica_of_an_idle_master_is_listed_in_cluster_slots(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    options = {
        "cluster_enabled": "yes",
        "repl_ping_replica_period": PING_PERIOD_S,
        "enable_debug_command": "yes",
    }
    _replica_listed(node_factory("m", **options), node_factory("r", **options))
    _replica_listed(*reference_servers(redis_servers, tmp_path, ("m", "r"), **options))
