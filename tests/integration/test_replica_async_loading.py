"""A replica with ``repl-diskless-load swapdb`` serves its old data while it loads a full sync, and keeps it when
the sync fails (Redis's async loading; Redis's cluster suite, 17-diskless-load-swapdb).

The replica's snapshot is parsed as it arrives and swapped in only once it has loaded, so a replica can always
serve the old dataset meanwhile; ``swapdb`` is what says it should (INFO ``async_loading:1``), where Redis's
default (disk-based) load answers -LOADING once the snapshot is in. The master's ``rdb-key-save-delay`` slows
its snapshot so the test sees the load, then the master is killed mid-transfer. The same steps run on
redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.harness import NodeProcess, RedisServer, reference_servers, wait_for

pytestmark = [pytest.mark.slow]
KEYS = 2000
SAVE_DELAY_US = 10_000  # 20 s for the master's snapshot: the test kills the master long before it ends


def _old_data_kept(
    master_port: int, replica_port: int, kill_master: Callable[[], None], refusals: bool = True
) -> None:
    master = redis.Redis(port=master_port, socket_timeout=5)
    replica = redis.Redis(port=replica_port, socket_timeout=10)
    try:
        master.set("k", "old")
        master.config_set("repl-diskless-sync", "yes")
        master.config_set("repl-diskless-sync-delay", 0)
        replica.replicaof("127.0.0.1", master_port)
        wait_for(lambda: replica.get("k") == b"old", 30, what="the first sync")
        replica.config_set("repl-diskless-load", "swapdb")
        # (Redis's loading replica serves its clients only every this many bytes of the snapshot.)
        replica.config_set("loading-process-events-interval-bytes", 1024)
        master.config_set("repl-backlog-size", 16384)
        # 1 KB values (not propagated: the snapshot brings them): the snapshot then comes in chunks a few keys
        # apart, and a loading redis-server answers between two chunks.
        master.execute_command("DEBUG", "POPULATE", str(KEYS), "key", "1024")
        master.config_set("rdb-key-save-delay", SAVE_DELAY_US)
        # A resync the backlog cannot serve: a full sync, whose snapshot the save delay slows.
        with master.pipeline(transaction=True) as pipe:
            pipe.execute_command("CLIENT", "KILL", "TYPE", "replica")
            for n in range(100):
                pipe.set(f"big{n}", "A" * 1024)
            pipe.execute()
        wait_for(lambda: replica.info("persistence")["async_loading"] == 1, 30, what="the async load")
        assert replica.info("persistence")["loading"] == 0
        assert replica.get("k") == b"old"  # the old data, served meanwhile
        assert replica.dbsize() == 1
        # What Redis refuses while it async-loads: no_async_loading commands and DENY_LOADING_CONFIG settings.
        # (Checked on nodes only: a loading redis-server answers a command only every few seconds here, when a
        # chunk of the snapshot comes in; Redis's own suite checks the same on it, integration/replication.)
        if refusals:
            with redis.Redis(port=replica_port, socket_timeout=10, retry=Retry(NoBackoff(), 0)) as once:
                with pytest.raises(
                    redis.exceptions.BusyLoadingError
                ):  # (redis-py retries -LOADING by default)
                    once.config_set("appendonly", "no")
                with pytest.raises(redis.exceptions.BusyLoadingError):
                    once.replicaof("no", "one")
        kill_master()
        wait_for(
            lambda: replica.info("persistence")["async_loading"] == 0, 30, what="the load to be abandoned"
        )
        assert replica.get("k") == b"old"
        assert replica.dbsize() == 1
    finally:
        master.close()
        replica.close()


def test_a_swapdb_replica_serves_and_keeps_its_old_data(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    ours = node_factory("m", enable_debug_command="yes"), node_factory("r", enable_debug_command="yes")
    _old_data_kept(ours[0].port, ours[1].port, ours[0].kill)
    servers = reference_servers(redis_servers, tmp_path, ("m", "r"))

    def kill_redis_master() -> None:
        servers[0].proc.kill()
        servers[0].proc.wait(10)

    _old_data_kept(servers[0].port, servers[1].port, kill_redis_master, refusals=False)


def test_an_empty_on_empty_db_replica_is_loading_from_the_transfer_s_start(
    node_factory: Callable[..., NodeProcess],
) -> None:
    """``repl-diskless-load on-empty-db`` with no keys: Redis loads the snapshot from the socket, loading
    throughout. (Nodes only: a loading redis-server answers INFO only between chunks of the snapshot.)"""
    master = node_factory("m", enable_debug_command="yes").client()
    replica = node_factory("r", repl_diskless_load="on-empty-db").client()
    master.execute_command("DEBUG", "POPULATE", str(KEYS), "key", "1024")
    master.config_set("rdb-key-save-delay", 1000)  # 2 s for the snapshot (its child keeps the value it had)
    replica.replicaof("127.0.0.1", master.connection_pool.connection_kwargs["port"])
    wait_for(lambda: replica.info("replication")["master_sync_in_progress"] == 1, 30, what="the full sync")
    info = replica.info("persistence")
    assert (info["loading"], info["async_loading"]) == (1, 0)
    wait_for(lambda: replica.info("persistence")["loading"] == 0, 30, what="the load's end")
    assert replica.dbsize() == KEYS
