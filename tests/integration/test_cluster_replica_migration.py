"""Replica migration (Redis 7.0's clusterHandleSlaveMigration): a master left without a working replica gets
one from the master with the most, under cluster-migration-barrier.

Three masters: A with two replicas, B and C with one each. C's replica is stopped, so C, which had a
replica, is orphaned once its replica is FAIL. With cluster-allow-replica-migration no (set at run time), A's
replicas stay where they are for longer than the migration would take (5 s after the orphan is seen, Redis's
CLUSTER_SLAVE_MIGRATION_DELAY; cluster-migration-barrier's rule is checked in tests/unit/test_cluster_migration.py,
without the wait); with it back to yes, A's replica with the smallest node id moves to C:
CLUSTER NODES shows it as C's replica everywhere, its INFO replication shows C as its master, and its log has
Redis's "Migrating to orphaned master <id>". The other replica of A stays A's.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.harness import NodeProcess, WaitTimeout, start_nodes, wait_for
from tests.integration.test_cluster_multi import create, nodes_of, wait_ok

pytestmark = [pytest.mark.slow]
NODE_TIMEOUT_MS = 1000
# How long a replica that would migrate waits after it sees the orphan (Redis's 5 s delay), with room for the
# cron period and a loaded machine: the no-migration window must comfortably cover it.
WOULD_HAVE_MIGRATED_S = 5 + 2.5


def _master_of(port: int, node_id: str) -> str:
    """``node_id``'s master ("-" for a master) as the node on ``port`` sees it."""
    for words in nodes_of(port):
        if words[0] == node_id:
            return words[3]
    raise AssertionError(f"{port} does not know {node_id}")


def _knows(port: int, node_id: str) -> bool:
    return node_id in {w[0] for w in nodes_of(port)}


def _is_failed(port: int, node_id: str) -> bool:
    return any(w[0] == node_id and "fail" in w[2].split(",") for w in nodes_of(port))


@pytest.mark.timeout(120)
def test_a_spare_replica_migrates_to_an_orphaned_master(node_factory: Callable[..., NodeProcess]) -> None:
    def make(name: str) -> NodeProcess:
        return node_factory(name, start=False, cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS)

    masters = [make(name) for name in ("a", "b", "c")]
    replicas = {name: make(name) for name in ("a1", "a2", "b1", "c1")}
    everyone = [*masters, *replicas.values()]
    start_nodes(everyone)
    create([m.port for m in masters], "redactor", replicas=0)
    a_id, b_id, c_id = (m.client().execute_command("CLUSTER", "MYID").decode() for m in masters)
    master_ids = {"a1": a_id, "a2": a_id, "b1": b_id, "c1": c_id}
    for replica in replicas.values():
        replica.client().execute_command("CLUSTER", "MEET", "127.0.0.1", str(masters[0].port))
    for name, replica in replicas.items():
        wait_for(lambda: _knows(replica.port, master_ids[name]), 30, what=f"{name} to meet")  # noqa: B023
        replica.client().execute_command("CLUSTER", "REPLICATE", master_ids[name])
    ports = [n.port for n in everyone]
    wait_ok(ports, len(everyone), timeout_s=60)
    ids = {
        name: replica.client().execute_command("CLUSTER", "MYID").decode()
        for name, replica in replicas.items()
    }
    mover, stayer = sorted(("a1", "a2"), key=lambda name: ids[name])  # the smallest id is the one that moves
    spare = [replicas["a1"], replicas["a2"]]

    def no_migration(why: str) -> None:
        with pytest.raises(WaitTimeout):
            wait_for(
                lambda: any(
                    _master_of(r.port, ids[n]) == c_id for r, n in zip(spare, ("a1", "a2"), strict=True)
                ),
                WOULD_HAVE_MIGRATED_S,
                interval_s=0.2,
                what=f"no migration with {why}",
            )
        assert "Migrating to orphaned master" not in replicas[mover].log()

    for replica in spare:
        assert replica.client().config_get("cluster-allow-replica-migration") == {
            "cluster-allow-replica-migration": "yes"
        }
        replica.client().config_set("cluster-allow-replica-migration", "no")
        # C counts as a master meant to have a replica only once this node has heard C's replica say so (a
        # handshake's first PONG names a node's role, not its master, as in Redis): wait for that.
        wait_for(
            lambda: _master_of(replica.port, ids["c1"]) == c_id,  # noqa: B023 (called before the loop moves on)
            30,
            what="A's replicas to know C's replica as C's",
        )
    replicas["c1"].stop()
    for replica in spare:
        wait_for(
            lambda: _is_failed(replica.port, ids["c1"]),  # noqa: B023 (called before the loop moves on)
            30,
            what="A's replicas to see C's replica FAIL",
        )
    no_migration("cluster-allow-replica-migration no")

    for replica in spare:
        assert replica.client().config_get("cluster-migration-barrier") == {"cluster-migration-barrier": "1"}
        replica.client().config_set("cluster-allow-replica-migration", "yes")
    moved = replicas[mover]
    live = [p for p in ports if p != replicas["c1"].port]
    wait_for(
        lambda: all(_master_of(p, ids[mover]) == c_id for p in live),
        30,
        interval_s=0.1,
        what=f"{mover} to be C's replica in every node's CLUSTER NODES",
    )
    wait_for(
        lambda: (
            moved.client().info("replication")["master_port"] == masters[2].port
            and moved.client().info("replication")["master_link_status"] == "up"
        ),
        30,
        what=f"{mover} to replicate from C",
    )
    assert f"Migrating to orphaned master {c_id}" in moved.log()
    assert _master_of(masters[0].port, ids[stayer]) == a_id  # A keeps its other replica
    assert "Migrating to orphaned master" not in replicas[stayer].log()
    assert "myself,slave" in nodes_of(moved.port)[0][2]
