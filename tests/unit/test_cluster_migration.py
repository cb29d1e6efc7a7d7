"""actors/cluster/migration.py's decision (Redis 7.0's clusterHandleSlaveMigration and clusterCron's census),
the migrate_to bookkeeping it relies on (state.py), and cluster-allow-replica-migration's other half: a node
whose master lost its last slot follows the new owner (gossip.update_slots) only when allowed or when the new
owner took just our master's slots."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from actors.cluster import failover, gossip, migration
from actors.cluster.state import SLOTS, ClusterHealth, ClusterNode, ClusterState

# Node ids whose order the rules depend on (the smallest-id replica is the one that moves).
A, B, C = "a" * 40, "b" * 40, "c" * 40
R1, R2, RB, RC = "1" * 40, "2" * 40, "3" * 40, "4" * 40
LONG_AGO_MS = 1


class FakeCluster:
    """What migration.cron and gossip.update_slots use of the facade."""

    def __init__(self, state: ClusterState, **config: Any) -> None:
        self.state = state
        self.config: dict[str, Any] = {
            "cluster-migration-barrier": 1,
            "cluster-allow-replica-migration": True,
            **config,
        }
        self.replicated: list[str] = []

    def replicate(self, master: ClusterNode) -> None:
        self.replicated.append(master.id)
        self.state.set_master_of(self.state.myself, master.id)

    def changed(self, durable: bool = True) -> None:
        pass


def _cluster(me: str = R1) -> ClusterState:
    """Masters A (replicas R1, R2), B (RB), C (RC, FAIL): C is orphaned. ``me`` is the node we are."""
    myself = ClusterNode(me, "127.0.0.1", 7000, 17000, flags={"myself", "master"})
    state = ClusterState(myself)
    for node_id in (A, B, C, R1, R2, RB, RC):
        if node_id != me:
            state.add(ClusterNode(node_id, "127.0.0.1", 7001, 17001, flags={"master"}))
    for replica, master in ((R1, A), (R2, A), (RB, B), (RC, C)):
        state.set_master_of(state.nodes[replica], master)
    third = SLOTS // 3
    for slot in range(SLOTS):
        state.assign(slot, (A, B, C)[min(slot // third, 2)])
    state.nodes[RC].flags.add("fail")
    state.health = ClusterHealth.OK
    return state


def _target(state: ClusterState, barrier: int = 1, now_ms: int = 10_000_000) -> ClusterNode | None:
    found = migration.census(state)
    return migration.choose_target(state, barrier, found.max_replicas, now_ms)


def test_census_finds_the_orphan_and_the_richest_master() -> None:
    found = migration.census(_cluster())
    assert (found.orphaned_masters, found.max_replicas, found.my_master_replicas) == (1, 2, 2)
    assert migration.census(_cluster(RB)).my_master_replicas == 1  # B's replica is not among the richest


def test_the_smallest_id_replica_moves_after_the_orphan_waited() -> None:
    state = _cluster()
    assert _target(state, now_ms=1_000_000) is None  # orphaned since now: Redis's 5 s delay first
    assert state.nodes[C].orphaned_ms == 1_000_000
    assert _target(state, now_ms=1_000_000 + migration.MIGRATION_DELAY_MS) is None
    target = _target(state, now_ms=1_000_001 + migration.MIGRATION_DELAY_MS)
    assert target is not None and target.id == C
    # R2 is not the smallest id among A's replicas: it stays.
    other = _cluster(R2)
    other.nodes[C].orphaned_ms = LONG_AGO_MS
    assert _target(other) is None


def test_no_move_below_the_barrier_or_when_the_cluster_is_down() -> None:
    state = _cluster()
    state.nodes[C].orphaned_ms = LONG_AGO_MS
    assert _target(state, barrier=2) is None  # A keeps 2 working replicas, itself included: not more than 2
    state.nodes[R2].flags.add("fail?")  # a PFAIL sibling does not count as working here
    assert _target(state, barrier=1) is None
    state.nodes[R2].flags.discard("fail?")
    state.health = ClusterHealth.FAIL
    assert _target(state) is None
    state.health = ClusterHealth.OK
    assert _target(state) is state.nodes[C]


def test_a_failed_smaller_id_replica_of_a_richest_master_holds_the_move_back() -> None:
    """Redis compares every replica of the masters with the most working replicas, failed ones too."""
    state = _cluster()
    state.nodes[C].orphaned_ms = LONG_AGO_MS
    extra = ClusterNode("0" * 40, "127.0.0.1", 7002, 17002, flags={"master"})
    state.add(extra)
    state.set_master_of(extra, A)
    extra.flags.add("fail")  # A: 000... (FAIL), R1 (me), R2: still 2 working, and 000... the smallest id
    assert migration.census(state).max_replicas == 2
    assert _target(state) is None
    state.remove(extra.id)  # forgotten: R1 is the smallest again
    assert _target(state) is state.nodes[C]


def test_only_masters_meant_to_have_replicas_are_targets() -> None:
    state = _cluster()
    state.set_master_of(state.nodes[RC], B)  # C's replica moved away: C had one, and has none now
    assert not state.nodes[C].migrate_to
    assert migration.census(state).orphaned_masters == 0
    # A replica promoted is a target (it took over a master that had one), as is a master's first slot
    # while some master has replicas.
    state.set_master_of(state.nodes[RC], None)
    assert state.nodes[RC].migrate_to
    fresh = ClusterNode("5" * 40, "127.0.0.1", 7003, 17003, flags={"master"})
    state.add(fresh)
    state.assign(0, fresh.id)
    assert fresh.migrate_to
    # A master turned replica is not.
    state.set_master_of(state.nodes[RC], A)
    assert not state.nodes[RC].migrate_to


def test_a_replica_heard_before_its_master_is_counted_once_the_master_arrives() -> None:
    """Gossip brings nodes in any order: C's replica can say "my master is C" before we have met C. C must
    count it when C arrives (added, or a handshake node renamed to C's id), or C is never an orphan."""
    for arrives_by_handshake in (False, True):
        state = _cluster()
        state.remove(C)
        assert state.nodes[RC].master_id == C  # the name is kept, as the header gave it
        if arrives_by_handshake:
            state.add(ClusterNode("9" * 40, "127.0.0.1", 7002, 17002, flags={"handshake"}))
            state.rename("9" * 40, C)
        else:
            state.add(ClusterNode(C, "127.0.0.1", 7002, 17002, flags={"master"}))
        master = state.nodes[C]
        assert master.replicas == {RC}
        assert master.migrate_to
        master.flags -= {"handshake"}
        master.flags.add("master")
        for slot in range(SLOTS - 10, SLOTS):
            state.assign(slot, C)
        assert migration.census(state).orphaned_masters == 1  # RC is FAIL: C is orphaned


def test_cron_moves_only_when_allowed() -> None:
    state = _cluster()
    state.nodes[C].orphaned_ms = LONG_AGO_MS
    cluster = FakeCluster(state, **{"cluster-allow-replica-migration": False})
    migration.cron(cluster)  # type: ignore[arg-type]
    assert cluster.replicated == []
    cluster.config["cluster-allow-replica-migration"] = True
    migration.cron(cluster)  # type: ignore[arg-type]
    assert cluster.replicated == [C]
    assert state.myself.master_id == C and R1 in state.nodes[C].replicas


def _bitmap(slots: range) -> bytes:
    bits = bytearray(SLOTS // 8)
    for slot in slots:
        bits[slot >> 3] |= 1 << (slot & 7)
    return bytes(bits)


def test_following_a_new_owner_of_our_masters_last_slots() -> None:
    third = SLOTS // 3
    for allowed, claim, follows in (
        (True, range(0, 2 * third), True),  # B took A's slots on top of its own (a reshard): followed
        (False, range(0, 2 * third), False),  # ... not with replica migration off
        (False, range(0, third), True),  # B's claim is exactly A's slots (as after a failover): followed
    ):
        state = _cluster()
        cluster = FakeCluster(state, **{"cluster-allow-replica-migration": allowed})
        if claim.stop == third:  # B as A's replica promoted: it claims only A's slots
            for slot in range(third, 2 * third):
                state.assign(slot, None)
        state.nodes[B].config_epoch = 5
        assert gossip.update_slots(cluster, state.nodes[B], 5, _bitmap(claim))  # type: ignore[arg-type]
        assert state.nodes[A].slot_count == 0
        assert cluster.replicated == ([B] if follows else []), (allowed, claim)


def test_a_sub_replica_moves_to_its_grandmaster() -> None:
    # A gave its slots away and became B's replica; we (R1, A's replica) were told not to follow B: on the next
    # slot update we replicate B ourselves (Redis's "I'm a sub-replica!"), not stay a replica of a replica.
    third = SLOTS // 3
    state = _cluster()
    cluster = FakeCluster(state, **{"cluster-allow-replica-migration": False})
    state.nodes[B].config_epoch = 5
    assert gossip.update_slots(cluster, state.nodes[B], 5, _bitmap(range(0, 2 * third)))  # type: ignore[arg-type]
    assert cluster.replicated == []
    state.set_master_of(state.nodes[A], B)
    state.nodes[C].config_epoch = 6
    # C claims one of B's slots on top of its own: a slot update reaches us.
    claim = _bitmap(range(2 * third - 1, SLOTS))
    assert gossip.update_slots(cluster, state.nodes[C], 6, claim)  # type: ignore[arg-type]
    assert cluster.replicated == [B]
    assert state.myself.master_id == B


class FakeElectionCluster(FakeCluster):
    """What failover.cron uses of the facade, for a replica whose master is FAIL."""

    def __init__(self, state: ClusterState, offset: int) -> None:
        super().__init__(
            state, **{"cluster-replica-validity-factor": 0, "cluster-replica-no-failover": False}
        )
        self.election = failover.Election()
        self.server = SimpleNamespace(repl_offset=offset, replication=None)
        self.master = SimpleNamespace(loop=None)
        self.rng = random.Random(1)
        self.node_timeout_ms = 1000
        self.sent: list[str] = []

    def broadcast(self, msg: Any, kind: str) -> None:
        self.sent.append(kind)

    def repl_offset(self) -> int:
        return int(self.server.repl_offset)


def test_a_replica_waiting_for_its_election_is_pushed_back_by_a_sibling_with_more_data() -> None:
    """Redis's clusterHandleSlaveFailover: the rank, and so the delay, is updated until the vote requests
    leave, so the sibling that turns out to have more data asks first."""
    state = _cluster()  # we are R1, A's replica, next to R2
    state.nodes[A].flags.add("fail")
    state.nodes[R2].repl_offset = 50
    cluster = FakeElectionCluster(state, offset=100)
    failover.cron(cluster)  # type: ignore[arg-type]
    election = cluster.election
    assert (election.phase, election.rank) == (failover.Phase.WAITING, 0)
    scheduled_ms = election.start_ms
    state.nodes[R2].repl_offset = 150  # R2 has more than we do: one rank down, one second later
    failover.cron(cluster)  # type: ignore[arg-type]
    assert (election.rank, election.start_ms) == (1, scheduled_ms + failover.RANK_DELAY_MS)
    state.nodes[R2].repl_offset = 50  # the rank never goes back up while we wait
    failover.cron(cluster)  # type: ignore[arg-type]
    assert (election.rank, election.start_ms) == (1, scheduled_ms + failover.RANK_DELAY_MS)
    assert cluster.sent == []
