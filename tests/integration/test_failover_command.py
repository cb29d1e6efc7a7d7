"""FAILOVER (actors/replication/failover.py): a coordinated switch of roles between a master and a replica, its
errors as redis-server answers them, the wait with writes held, TIMEOUT, ABORT, FORCE, and a handover to a
redis-server replica (a mixed fleet)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.shared import error_of


def replication(client: redis.Redis) -> dict[str, Any]:
    return dict(client.info("replication"))


def online(client: redis.Redis, count: int) -> bool:
    return int(replication(client)["connected_slaves"]) == count


@pytest.fixture
def trio(node_factory: Callable[..., NodeProcess]) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    """A master and two replicas, online; stopped replicas are continued at the end."""
    master = node_factory("master")
    r1 = node_factory("r1", replicaof=f"127.0.0.1 {master.port}")
    r2 = node_factory("r2", replicaof=f"127.0.0.1 {master.port}")
    wait_for(lambda: online(master.client(), 2), 20, what="two replicas online")
    yield master, r1, r2
    for replica in (r1, r2):
        replica.signal(signal.SIGCONT)


def test_failover_errors_are_redis_servers(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    theirs = redis_servers(tmp_path)
    ours = node_factory("master")
    reference, client = redis.Redis(port=theirs.port), ours.client()
    cases = [
        (),
        ("ABORT",),
        ("TO", "127.0.0.1", "1"),
        ("TO", "127.0.0.1", "1", "FORCE"),
        ("TIMEOUT", "-1"),
        ("TIMEOUT", "0"),
        ("TIMEOUT", "abc"),
        ("TO", "127.0.0.1"),
        ("TO", "127.0.0.1", "abc"),
        ("TIMEOUT", "100", "TIMEOUT", "200"),
        ("bogus",),
        ("ABORT", "TIMEOUT", "5"),
        ("FORCE", "FORCE"),
    ]
    for args in cases:
        assert error_of(client.execute_command, "FAILOVER", *args) == error_of(
            reference.execute_command, "FAILOVER", *args
        ), args
    # With a replica each: a target that is not one, FORCE without TO and TIMEOUT, a replica asked.
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    their_replica = redis_servers(replica_dir, "--replicaof", "127.0.0.1", str(theirs.port))
    our_replica = node_factory("replica", replicaof=f"127.0.0.1 {ours.port}")
    wait_for(lambda: online(reference, 1) and online(client, 1), 20, what="both replicas")
    for args in (("TO", "127.0.0.1", "1"), ("FORCE",), ("TIMEOUT", "10", "FORCE")):
        assert error_of(client.execute_command, "FAILOVER", *args) == error_of(
            reference.execute_command, "FAILOVER", *args
        ), args
    assert error_of(our_replica.client().execute_command, "FAILOVER") == error_of(
        redis.Redis(port=their_replica.port).execute_command, "FAILOVER"
    )


def test_failover_to_a_replica_switches_roles_and_keeps_every_write(
    trio: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    master, r1, r2 = trio
    m = master.client()
    for index in range(200):
        m.set(f"k{index}", index)
    assert m.execute_command("FAILOVER", "TO", "127.0.0.1", r1.port) == b"OK"
    new = r1.client()
    wait_for(
        lambda: replication(new)["role"] == "master" and replication(m)["role"] == "slave", 15, what="roles"
    )
    assert replication(m)["master_port"] == r1.port
    assert replication(m)["master_failover_state"] == "no-failover"
    assert new.get("k199") == b"199"
    new.set("after", "1")
    # The old master follows the new one; the other replica follows the old master (chained), as in Redis.
    wait_for(lambda: m.get("after") == b"1" and r2.client().get("after") == b"1", 15, what="the new stream")
    with pytest.raises(redis.ReadOnlyError):
        m.set("x", "1")
    assert '"event": "failover_done"' in master.log()


def test_failover_waits_with_writes_held_then_times_out_or_is_aborted(
    trio: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    master, r1, _r2 = trio
    m = master.client()
    r1.signal(signal.SIGSTOP)  # connected, acknowledging nothing
    m.set("k", "v")
    assert m.execute_command("FAILOVER", "TO", "127.0.0.1", r1.port, "TIMEOUT", 1500) == b"OK"
    assert replication(m)["master_failover_state"] == "waiting-for-sync"
    assert error_of(m.execute_command, "FAILOVER") == "FAILOVER already in progress."
    result: dict[str, Any] = {}
    writer = threading.Thread(target=lambda: result.setdefault("set", master.client().set("w", "1")))
    writer.start()
    wait_for(lambda: int(m.info("clients")["blocked_clients"]) == 1, what="the write held")
    assert m.get("k") == b"v" and "set" not in result  # reads are served, the write waits
    wait_for(lambda: replication(m)["master_failover_state"] == "no-failover", 10, what="the timeout")
    writer.join(10)
    assert result["set"] is True and replication(m)["role"] == "master"
    # Again, ended by hand this time.
    assert m.execute_command("FAILOVER", "TIMEOUT", 60000) == b"OK"
    assert m.execute_command("FAILOVER", "ABORT") == b"OK"
    assert replication(m)["master_failover_state"] == "no-failover" and m.set("after-abort", "1")
    assert '"reason": "Replica never caught up before timeout"' in master.log()


def test_failover_force_hands_over_after_the_timeout(
    trio: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    master, r1, _r2 = trio
    m = master.client()
    r1.signal(signal.SIGSTOP)
    m.set("k", "v")
    assert m.execute_command("FAILOVER", "TO", "127.0.0.1", r1.port, "TIMEOUT", 300, "FORCE") == b"OK"
    wait_for(
        lambda: replication(m)["master_failover_state"] == "failover-in-progress",
        10,
        what="the forced handover",
    )
    r1.signal(signal.SIGCONT)  # it answers the promotion now
    wait_for(lambda: replication(m)["role"] == "slave", 15, what="the old master following the target")
    assert replication(r1.client())["role"] == "master"


def test_failover_without_to_picks_a_caught_up_replica(
    trio: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    master, r1, r2 = trio
    m = master.client()
    r2.signal(signal.SIGSTOP)  # only r1 can catch up
    m.set("k", "v")
    assert m.execute_command("FAILOVER") == b"OK"
    wait_for(lambda: replication(m)["role"] == "slave", 15, what="the switch")
    assert replication(m)["master_port"] == r1.port and r1.client().get("k") == b"v"


def test_failover_to_a_redis_server_replica(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    master = node_factory("master")
    theirs = redis_servers(tmp_path, "--replicaof", "127.0.0.1", str(master.port))
    m = master.client()
    wait_for(lambda: online(m, 1), 20, what="redis-server online as a replica")
    for index in range(100):
        m.set(f"k{index}", index)
    assert m.execute_command("FAILOVER", "TO", "127.0.0.1", theirs.port) == b"OK"
    wait_for(lambda: replication(m)["role"] == "slave", 15, what="the node following redis-server")
    assert theirs.client.info("replication")["role"] == "master"
    theirs.client.set("from-redis", "1")
    wait_for(lambda: m.get("from-redis") == b"1", 15, what="redis-server's stream on the node")
    assert m.get("k99") == b"99"
