"""A full sync's snapshot: when it starts, and when it is given up.

repl-diskless-sync-delay and repl-diskless-sync-max-replicas: a full sync waits for more replicas to share it.

With ``repl-diskless-sync yes`` (the default) a master that has to make a snapshot for a replica waits
repl-diskless-sync-delay seconds first (Redis logs "Delay next BGSAVE for diskless SYNC"), so that replicas
arriving meanwhile share the one transfer; it starts as soon as repl-diskless-sync-max-replicas replicas wait,
if that is set. Meanwhile the replica is in the handshake (ROLE says so) and the master lists it as
wait_bgsave. With ``repl-diskless-sync no`` there is no wait.

A snapshot child whose last replica left is killed (Redis 7.0), unless the sync is disk-based and save points
are set (Redis's child writes dump.rdb then). Each test runs on nodes and on redis-servers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, reference_servers, wait_for

DELAYED = "Delay next BGSAVE for diskless SYNC"


def _servers(
    kind: str,
    names: tuple[str, ...],
    node_factory: Callable[..., NodeProcess],
    redis_servers: Any,
    tmp_path: Path,
) -> list[tuple[redis.Redis, Callable[[], str]]]:
    """(client, a reader of its log) for each name."""
    if kind == "redactor":
        nodes = [node_factory(name) for name in names]
        return [(node.client(), node.log) for node in nodes]
    servers: list[RedisServer] = reference_servers(redis_servers, tmp_path, names)
    return [
        (server.client, lambda server=server: server.log_path.read_text(errors="replace"))
        for server in servers
    ]


def _port(client: redis.Redis) -> int:
    return int(client.connection_pool.connection_kwargs["port"])


def _link_up(client: redis.Redis) -> bool:
    state = client.info("replication")
    return state.get("master_link_status") == "up" and not state.get("master_sync_in_progress")


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_full_sync_waits_for_the_delay_or_enough_replicas(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    (master, master_log), (first, _), (second, _) = _servers(
        kind, ("master", "first", "second"), node_factory, redis_servers, tmp_path
    )
    master.set("k", "v")
    master.config_set("repl-diskless-sync-delay", 60)  # far longer than the test may take
    master.config_set("repl-diskless-sync-max-replicas", 2)
    first.execute_command("REPLICAOF", "127.0.0.1", _port(master))
    wait_for(lambda: DELAYED in master_log(), 10, what="the master to delay the snapshot")
    wait_for(
        lambda: first.execute_command("ROLE")[3] == b"handshake", 10, what="the first replica's handshake"
    )
    assert master.info("replication")["slave0"]["state"] == "wait_bgsave"
    assert master.info("stats")["sync_full"] == 1

    # A second replica makes two, repl-diskless-sync-max-replicas: the sync starts for both, long before 60 s.
    second.execute_command("REPLICAOF", "127.0.0.1", _port(master))
    wait_for(lambda: _link_up(first) and _link_up(second), 20, what="both replicas to be in sync")
    assert first.get("k") == second.get("k") == b"v"
    assert master.info("stats")["sync_full"] == 2


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_no_delay_without_diskless_sync(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    (master, master_log), (replica, _) = _servers(
        kind, ("master", "replica"), node_factory, redis_servers, tmp_path
    )
    master.set("k", "v")
    master.config_set("repl-diskless-sync", "no")
    master.config_set("repl-diskless-sync-delay", 60)
    replica.execute_command("REPLICAOF", "127.0.0.1", _port(master))
    wait_for(lambda: _link_up(replica), 20, what="the replica to be in sync")
    assert replica.get("k") == b"v"
    assert DELAYED not in master_log()


def _waiting_for_snapshot(master: redis.Redis, replicas: int) -> bool:
    state = master.info("replication")
    listed = [state.get(f"slave{i}", {}).get("state") for i in range(replicas)]
    return bool(master.info("persistence")["rdb_bgsave_in_progress"]) and listed == ["wait_bgsave"] * replicas


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_snapshot_child_whose_replicas_all_left_is_killed(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    """Redis's "Kill rdb child process if its dumping RDB is not useful", and its diskless counterpart."""
    (master, _), (first, _), (second, _) = _servers(
        kind, ("master", "first", "second"), node_factory, redis_servers, tmp_path
    )
    # Ten keys of 100 kB, a second each: the snapshot takes ten seconds, far longer than the waits, and its data
    # keeps flowing (a diskless Redis notices its replicas are gone when it reads the child's next bytes).
    master.execute_command("DEBUG", "POPULATE", 10, "key", 100_000)
    master.config_set("rdbcompression", "no")
    master.config_set("rdb-key-save-delay", 1_000_000)
    port = _port(master)

    def both_sync_then_leave(leave_one_first: bool) -> None:
        for replica in (first, second):
            replica.execute_command("REPLICAOF", "127.0.0.1", port)
        wait_for(lambda: _waiting_for_snapshot(master, 2), 10, what="one child for both replicas")
        if leave_one_first:
            first.execute_command("REPLICAOF", "NO", "ONE")
            wait_for(lambda: master.info("replication")["connected_slaves"] == 1, 10, what="one replica gone")
            assert master.info("persistence")["rdb_bgsave_in_progress"] == 1  # another still waits for it
            second.execute_command("REPLICAOF", "NO", "ONE")
        else:
            for replica in (first, second):
                replica.execute_command("REPLICAOF", "NO", "ONE")
        wait_for(lambda: master.info("replication")["connected_slaves"] == 0, 10, what="both replicas gone")

    def child_running() -> bool:
        return bool(master.info("persistence")["rdb_bgsave_in_progress"])

    # Disk-based, no save points: the child is killed once its last replica has gone.
    master.config_set("repl-diskless-sync", "no")
    master.config_set("save", "")
    both_sync_then_leave(leave_one_first=True)
    wait_for(lambda: not child_running(), 5, what="the useless child to be killed")

    # Diskless: killed too, save points or not.
    master.config_set("repl-diskless-sync", "yes")
    master.config_set("save", "900 1")
    both_sync_then_leave(leave_one_first=False)
    wait_for(lambda: not child_running(), 5, what="the diskless child to be killed")

    # Disk-based with save points: Redis's child writes dump.rdb, so it goes on.
    master.config_set("repl-diskless-sync", "no")
    both_sync_then_leave(leave_one_first=False)
    assert child_running()
    master.config_set("save", "")  # (no final save at the stop, which ends the child)
