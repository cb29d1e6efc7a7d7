"""A cluster replica taking a full sync shows as loading (Redis's cluster suite, 22-replica-in-sync and
28-cluster-shards).

While a replica takes a full sync it announces replication offset 0, as Redis's replicationGetSlaveOffset
gives (its old master state is gone, the new one is not loaded yet). So its master's CLUSTER SHARDS says
``health loading`` and CLUSTER SLOTS leaves it out until the load ends; the replica itself is loading (INFO
``loading:1``, -LOADING), as Redis's replica loading the RDB it received. ``key-load-delay`` (Redis's hidden
test knob) stretches the replica's load so the tests can see it, and CONFIG SET of 0 ends the wait. The same
steps run on redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.harness import NodeProcess, RedisServer, reference_servers, wait_for
from tests.integration.test_cluster_announce import as_map, raw_client

pytestmark = [pytest.mark.slow]
TIMEOUT_MS = 2000
KEYS = 1000
LOAD_DELAY_US = 10_000  # 11 s for the whole load: the test ends it sooner


def _replica_health(master: redis.Redis, replica_id: bytes) -> bytes:
    for shard in master.execute_command("CLUSTER", "SHARDS"):
        for node in as_map(shard)[b"nodes"]:
            details = as_map(node)
            if details[b"id"] == replica_id:
                return bytes(details[b"health"])
    return b""


def _listed(master: redis.Redis, replica_id: bytes) -> bool:
    return any(
        node[2] == replica_id for entry in master.execute_command("CLUSTER", "SLOTS") for node in entry[3:]
    )


def _loading_seen(master_node: Any, replica_node: Any) -> None:
    master, replica = raw_client(master_node.port), raw_client(replica_node.port)
    try:
        master.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        master_id = master.execute_command("CLUSTER", "MYID")
        replica_id = replica.execute_command("CLUSTER", "MYID")
        replica.execute_command("CLUSTER", "MEET", "127.0.0.1", str(master_node.port))
        wait_for(
            lambda: master_id in replica.execute_command("CLUSTER", "NODES"), 30, what="the nodes to meet"
        )
        master.execute_command("DEBUG", "POPULATE", str(KEYS))  # (not propagated: the first sync brings them)
        replica.execute_command("CLUSTER", "REPLICATE", master_id.decode())
        wait_for(lambda: replica.dbsize() == KEYS, 30, what="the first sync")
        wait_for(lambda: _replica_health(master, replica_id) == b"online", 30, what="the replica online")
        wait_for(lambda: _listed(master, replica_id), 30, what="the replica in CLUSTER SLOTS")

        wait_for(
            lambda: b"cluster_state:ok" in master.execute_command("CLUSTER", "INFO"), 30, what="the state ok"
        )
        # A resync the backlog cannot serve: a full sync, whose load key-load-delay stretches.
        replica.config_set("key-load-delay", LOAD_DELAY_US)
        # (Redis's loading replica serves its event loop, cluster bus included, only every this many bytes.)
        replica.config_set("loading-process-events-interval-bytes", 1024)
        master.config_set("repl-backlog-size", 16384)
        with master.pipeline(transaction=True) as pipe:
            pipe.execute_command("CLIENT", "KILL", "TYPE", "replica")
            for n in range(100):
                pipe.set(f"{{x}}{n}", "A" * 1024)
            pipe.execute()
        wait_for(lambda: _replica_health(master, replica_id) == b"loading", 30, what="the replica loading")
        assert not _listed(master, replica_id)
        assert replica.info("replication")["master_sync_in_progress"] == 1
        assert replica.info("persistence")["loading"] == 1  # Redis's disk-based load: the node is loading
        with redis.Redis(port=replica_node.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)) as once:
            with pytest.raises(redis.exceptions.BusyLoadingError):  # (redis-py retries -LOADING by default)
                once.dbsize()

        replica.config_set("key-load-delay", 0)
        wait_for(
            lambda: _replica_health(master, replica_id) == b"online", 30, what="the replica online again"
        )
        wait_for(lambda: _listed(master, replica_id), 30, what="the replica in CLUSTER SLOTS again")
        assert replica.dbsize() == KEYS + 100
        # CLIENT KILL TYPE replica: the replica is gone from INFO at once (22-replica-in-sync reads it next).
        assert master.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
        assert master.info("replication")["connected_slaves"] == 0
    finally:
        master.close()
        replica.close()


def test_a_replica_in_a_full_sync_is_loading(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    options = {
        "cluster_enabled": "yes",
        "enable_debug_command": "yes",
        "cluster_node_timeout": TIMEOUT_MS,
        "repl_diskless_sync_delay": 0,  # (the full syncs start at once)
        "repl_ping_replica_period": 1,  # (an idle master's offset moves: its replica is listed sooner)
    }
    _loading_seen(node_factory("m", **options), node_factory("r", **options))
    _loading_seen(*reference_servers(redis_servers, tmp_path, ("m", "r"), **options))
