"""Replica migration: a replica of a master with replicas to spare moves to an orphaned master (loop thread).

Redis 7.0's clusterHandleSlaveMigration and the part of clusterCron that decides to call it, run by the
facade's cron after the failover's:

- an orphaned master serves slots, is not FAIL, has no replica left that is not FAIL, and is a migration
  target (``ClusterNode.migrate_to``, Redis's CLUSTER_NODE_MIGRATE_TO: it had replicas, or took over from a
  master that had, or got its first slot while other masters had replicas): masters never meant to have
  replicas get none;
- only replicas of the masters with the most working (not FAIL) replicas look, and only when that most is 2
  or more, there is an orphaned master, and ``cluster-allow-replica-migration`` is yes;
- then the replica moves only if the cluster is ok, its master keeps more than ``cluster-migration-barrier``
  replicas that are neither FAIL nor PFAIL (itself included: it counts the replica it would take away), and it
  has the smallest node id among the replicas of all the masters with the most working replicas (Redis
  compares every replica of those masters, failed ones too: a failed smallest-id replica holds the migration
  back until it is reachable again and loses its FAIL);
- and only once the target has been orphaned for 5 s as this replica sees it (Redis's
  CLUSTER_SLAVE_MIGRATION_DELAY), so that the natural replicas of a master that just failed over have time to
  say they follow the new one. The move is CLUSTER REPLICATE's (``Cluster.replicate``), logged with Redis's
  "Migrating to orphaned master <id>".

The target is the orphaned master with the smallest node id (Redis takes the first its node dict yields, an
order that differs from node to node: here every candidate replica would pick the same one).

``cluster-allow-replica-migration no`` also keeps a node whose master lost all its slots from following the
new owner, unless that owner took every slot it has from our master (a failover): gossip.update_slots and
CLUSTER SETSLOT NODE (admin.py) read it there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from actors.cluster.state import ClusterHealth

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster
    from actors.cluster.state import ClusterNode, ClusterState

log = structlog.get_logger("redactor.cluster")

# Redis's CLUSTER_SLAVE_MIGRATION_DELAY: how long a master stays orphaned before a replica moves to it.
MIGRATION_DELAY_MS = 5000


@dataclass
class Census:
    """What clusterCron counts over the other nodes for a replica: masters without a working replica, the most
    working replicas any master has, and how many ours has."""

    orphaned_masters: int = 0
    max_replicas: int = 0
    my_master_replicas: int = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def working_replicas(state: ClusterState, master: ClusterNode) -> int:
    """Redis's clusterCountNonFailingSlaves: the master's replicas not flagged FAIL (PFAIL ones count)."""
    return sum(1 for r in master.replicas if r in state.nodes and not state.nodes[r].failed)


def _orphaned(state: ClusterState, node: ClusterNode) -> bool:
    """A working master meant to have replicas with none working (its slots are checked by the callers)."""
    return node.is_master and not node.failed and node.migrate_to and working_replicas(state, node) == 0


def census(state: ClusterState) -> Census:
    myself = state.myself
    found = Census()
    for node in state.nodes.values():
        if node is myself or {"handshake", "noaddr"} & node.flags:
            continue
        if not node.is_master or node.failed:
            continue
        working = working_replicas(state, node)
        if node.slot_count and _orphaned(state, node):
            found.orphaned_masters += 1
        found.max_replicas = max(found.max_replicas, working)
        if myself.master_id == node.id:
            found.my_master_replicas = working
    return found


def cron(cluster: Cluster) -> None:
    """clusterCron's call: only a replica of a master among those with the most working replicas (2 or more)
    looks any further, and only while some master is orphaned."""
    state = cluster.state
    if state.myself.is_master or not cluster.config["cluster-allow-replica-migration"]:
        return
    found = census(state)
    if found.orphaned_masters and found.max_replicas >= 2 and found.my_master_replicas == found.max_replicas:
        target = choose_target(state, int(cluster.config["cluster-migration-barrier"]), found.max_replicas)
        if target is not None:
            log.warning(
                "cluster_migrated_to_orphaned_master",
                master=target.id,
                message=f"Migrating to orphaned master {target.id}",
            )
            cluster.replicate(target)


def choose_target(
    state: ClusterState, barrier: int, max_replicas: int, now_ms: int | None = None
) -> ClusterNode | None:
    """clusterHandleSlaveMigration's decision: the orphaned master this replica moves to now, or None. Keeps
    each master's ``orphaned_ms`` (when it was first seen orphaned) as it goes."""
    now = _now_ms() if now_ms is None else now_ms
    myself = state.myself
    if state.health is not ClusterHealth.OK:
        return None
    master = state.nodes.get(myself.master_id or "")
    if master is None:
        return None
    # Our master must keep more than the barrier's replicas after we leave: we count ourselves among them.
    siblings = [state.nodes[r] for r in master.replicas if r in state.nodes]
    if sum(1 for r in siblings if not (r.failed or r.pfailed)) <= barrier:
        return None
    target: ClusterNode | None = None
    candidate = myself
    for node in sorted(state.nodes.values(), key=lambda n: n.id):
        if _orphaned(state, node):
            if target is None and node.slot_count:
                target = node
            if not node.orphaned_ms:
                node.orphaned_ms = now
        else:
            node.orphaned_ms = 0
        # The candidate: the smallest id among every replica of the masters with the most working replicas.
        if node.is_master and working_replicas(state, node) == max_replicas:
            for replica_id in node.replicas:
                if replica_id in state.nodes and replica_id < candidate.id:
                    candidate = state.nodes[replica_id]
    if target is None or candidate is not myself:
        return None
    if now - target.orphaned_ms <= MIGRATION_DELAY_MS:
        return None
    return target
