"""A replica with replicas of its own that is pointed at another master: Redis 7.0 keeps its sub-replicas.

REPLICAOF on a replica does not disconnect the replicas it serves (Redis's replicationSetMaster): they may go
on partially. They are disconnected only when this node's history changes: a partial resync with a master of
another replication id, or a full sync reaching its load (replicationAttachToNewMaster). A full sync that fails
before that leaves everything as it was, including what this node PSYNCs with, so going back to its former
master is a partial resync. The steps are Redis's integration/replication test ("Don't disconnect with replicas
before loading transferred RDB when full sync", "Discard cache master before loading transferred RDB when full
sync"), run on redactor nodes and on redis-servers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import PROBE_RETRY, NodeProcess, RedisServer, reference_servers, wait_for

NAMES = ("master1", "master2", "sub", "replica")
FAST = {"repl_diskless_sync_delay": 0}  # (Redis's default waits 5 s for more replicas before a full sync)


def _servers(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> list[Any]:
    if kind == "redactor":
        return [node_factory(name, **FAST) for name in NAMES]
    servers: list[RedisServer] = reference_servers(redis_servers, tmp_path, NAMES, **FAST)
    return servers


def _client(server: Any) -> redis.Redis:
    return server.client() if isinstance(server, NodeProcess) else server.client


def _repl(client: redis.Redis) -> dict[str, Any]:
    return client.info("replication")  # type: ignore[no-any-return]


def _stats(client: redis.Redis) -> dict[str, Any]:
    return client.info("stats")  # type: ignore[no-any-return]


def _synced(client: redis.Redis) -> bool:
    state = _repl(client)
    return state.get("master_link_status") == "up" and not state.get("master_sync_in_progress")


def _chain(master: redis.Redis, replica: redis.Redis, sub: redis.Redis) -> None:
    """master <- replica <- sub, each sync done."""
    replica.execute_command("REPLICAOF", "127.0.0.1", master.connection_pool.connection_kwargs["port"])
    wait_for(lambda: _synced(replica), 15, what="the replica's sync with its master")
    sub.execute_command("REPLICAOF", "127.0.0.1", replica.connection_pool.connection_kwargs["port"])
    wait_for(lambda: _synced(sub), 15, what="the sub-replica's sync with the replica")


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_failed_full_sync_keeps_sub_replicas_and_the_way_back(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    m1, m2, sub, rep = (_client(server) for server in _servers(kind, node_factory, redis_servers, tmp_path))
    m1.set("a", "b")
    m2.execute_command("DEBUG", "POPULATE", 10, "master2", 10)
    m2.config_set("rdb-key-save-delay", 1_000_000)  # a second per key: its snapshot never ends in this test
    m1_port = m1.connection_pool.connection_kwargs["port"]
    _chain(m1, rep, sub)
    assert rep.get("a") == sub.get("a") == b"b"

    # A full sync with master2, which dies before its snapshot is sent.
    rep.execute_command("REPLICAOF", "127.0.0.1", m2.connection_pool.connection_kwargs["port"])
    wait_for(
        lambda: _stats(m2)["sync_full"] == 1 and _repl(rep)["master_sync_in_progress"] == 1,
        15,
        what="the full sync with master2 to start",
    )
    # Its stream is still empty (offset 0), so SHUTDOWN does not wait for the replica being synced (Redis's
    # isReadyToShutdown: a replica acknowledged nothing yet; shutdown-timeout would be 10 s): the connection
    # closes at once, well within this client's 3 s.
    quick = redis.Redis(
        port=m2.connection_pool.connection_kwargs["port"], socket_timeout=3, retry=PROBE_RETRY
    )
    with pytest.raises(redis.ConnectionError):
        quick.execute_command("SHUTDOWN", "NOSAVE")
    quick.close()
    # The sub-replica was never disconnected, and the replication id is the same down the chain.
    assert _repl(rep)["connected_slaves"] == 1
    assert _repl(sub)["master_link_status"] == "up"
    assert _repl(rep)["master_replid"] == _repl(m1)["master_replid"] == _repl(sub)["master_replid"]

    # Back to master1: a partial resync, and still nothing for the sub-replica to notice.
    full, partial = _stats(m1)["sync_full"], _stats(m1)["sync_partial_ok"]
    rep.execute_command("REPLICAOF", "127.0.0.1", m1_port)
    wait_for(lambda: _synced(rep), 15, what="the replica back with master1")
    assert (_stats(m1)["sync_full"], _stats(m1)["sync_partial_ok"]) == (full, partial + 1)
    assert _repl(rep)["master_replid"] == _repl(m1)["master_replid"] == _repl(sub)["master_replid"]
    served = _stats(rep)
    assert (served["sync_full"], served["sync_partial_ok"]) == (1, 0)  # the sub-replica's one full sync
    m1.set("after", "1")
    wait_for(lambda: sub.get("after") == b"1", 10, what="master1's writes to reach the sub-replica")


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_full_sync_with_another_master_resyncs_the_sub_replicas(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    m1, m2, sub, rep = (_client(server) for server in _servers(kind, node_factory, redis_servers, tmp_path))
    m1.set("a", "from master1")
    m2.set("b", "from master2")
    _chain(m1, rep, sub)

    rep.execute_command("REPLICAOF", "127.0.0.1", m2.connection_pool.connection_kwargs["port"])
    # Another history: the replica loads master2's data, and its sub-replica must follow it there in full.
    wait_for(
        lambda: _repl(sub).get("master_replid") == _repl(m2)["master_replid"] and _synced(sub),
        15,
        what="the sub-replica to take master2's history",
    )
    assert (sub.get("a"), sub.get("b")) == (None, b"from master2")
    assert _stats(rep)["sync_full"] == 2  # the sub-replica's first full sync, and the one the new data forced
    m2.set("c", "3")
    wait_for(lambda: sub.get("c") == b"3", 10, what="master2's writes to reach the sub-replica")


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_master_turned_replica_of_its_promoted_replica_keeps_its_replicas_partial(
    kind: str, node_factory: Callable[..., NodeProcess], redis_servers: Any, tmp_path: Path
) -> None:
    """psync2's step: a replica is promoted and written to at once; the old master follows it, partially, with
    a new replication id, so its own replicas are disconnected at that moment, before a byte of the new history
    reaches them, and resync with it partially (through the old id, its replid2)."""
    old, promoted, r1, r2 = (
        _client(server) for server in _servers(kind, node_factory, redis_servers, tmp_path)
    )
    old_port = old.connection_pool.connection_kwargs["port"]
    for replica in (promoted, r1, r2):
        replica.execute_command("REPLICAOF", "127.0.0.1", old_port)
    old.set("before", "1")
    wait_for(
        lambda: all(_synced(r) and r.get("before") == b"1" for r in (promoted, r1, r2)),
        15,
        what="three replicas",
    )
    full_before = _stats(old)["sync_full"]
    promoted.execute_command("REPLICAOF", "NO", "ONE")
    pipe = promoted.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"after:{i}", i)
    pipe.execute()  # the new history has bytes for the old master to take at once
    old.execute_command("REPLICAOF", "127.0.0.1", promoted.connection_pool.connection_kwargs["port"])
    wait_for(
        lambda: all(_synced(r) and r.get("after:199") == b"199" for r in (old, r1, r2)),
        20,
        what="the old master and its replicas to follow the promoted one",
    )
    assert _stats(promoted)["sync_full"] == 0  # the old master continued partially
    assert _stats(old)["sync_full"] == full_before  # and so did its replicas, with it
    assert _repl(r1)["master_replid"] == _repl(r2)["master_replid"] == _repl(promoted)["master_replid"]
