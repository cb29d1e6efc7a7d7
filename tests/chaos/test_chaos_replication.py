"""Chaos on the replication link: the master killed during a replica's full sync, a replica killed while it
streams under write load, and a replica paused past repl-timeout. Each time the replica converges (equal
DEBUG DIGEST); after the pause it catches up with a partial resync, not a full one.

Seeded: the ``seed`` fixture drives how much is written and when the kills land.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable

import pytest

from tests.chaos.conftest import (
    Launched,
    NodeDef,
    WriteLoad,
    assert_no_lost_writes,
    replication_stats,
    wait_converged,
)
from tests.harness import wait_for

pytestmark = pytest.mark.chaos

Launch = Callable[[str, list[NodeDef]], Launched]
LoadFactory = Callable[..., WriteLoad]
# Big enough that a full sync takes a moment (the snapshot of 200,000 keys), small enough to stay fast.
POPULATE_KEYS = 200_000
# repl-timeout for the pause test, and the ping period below it (Redis requires ping period < timeout, or
# an idle link times out).
REPL_TIMEOUT_S = 2
REPL_PING_PERIOD_S = 1


def test_the_master_killed_during_a_full_sync_is_restarted_and_the_replica_converges(
    launch: Launch, seed: int
) -> None:
    rng = random.Random(seed)
    topology = launch("fullsync", [NodeDef("n1", 7001), NodeDef("n2", 7002)])
    master, replica = topology.client("n1", socket_timeout=30), topology.client("n2", socket_timeout=30)
    assert master.execute_command("DEBUG", "POPULATE", POPULATE_KEYS) == b"OK"
    extra = rng.randint(1, 100)
    for n in range(extra):
        master.set(f"extra:{n}", rng.getrandbits(64))
    assert master.save() is True  # the restarted master reloads this snapshot
    expected = master.execute_command("DEBUG", "DIGEST")

    assert replica.replicaof("127.0.0.1", topology.ports["n1"]) == b"OK"

    def syncing() -> bool:
        return bool(
            replication_stats(master)[0] >= 1
            or replica.info("replication").get("master_sync_in_progress") == 1
        )

    wait_for(syncing, 20, interval_s=0.01, what="the full sync to start")
    link = replica.info("replication").get("master_link_status")
    assert link != "up", "the full sync was over before the kill: the dataset is too small to catch it"
    old_pid = topology.signal("n1", signal.SIGKILL)
    topology.wait_restarted("n1", old_pid, timeout_s=30)

    restarted = topology.client("n1", socket_timeout=30)
    assert restarted.dbsize() == POPULATE_KEYS + extra
    assert wait_converged(restarted, [replica], timeout_s=35) == expected
    assert replica.dbsize() == POPULATE_KEYS + extra


def test_a_replica_killed_while_streaming_under_load_comes_back_and_converges(
    launch: Launch, write_load: LoadFactory, seed: int
) -> None:
    rng = random.Random(seed)
    topology = launch("stream", [NodeDef("n1", 7001), NodeDef("n2", 7002, replicaof="n1")])
    master, replica = topology.client("n1"), topology.client("n2")
    wait_converged(master, [replica])
    full_before, partial_before = replication_stats(master)

    load = write_load(topology.ports["n1"], seed, threads=2)
    load.wait_acks(rng.randint(100, 800))
    old_pid = topology.signal("n2", signal.SIGKILL)
    topology.wait_restarted("n2", old_pid)
    load.wait_acks(rng.randint(100, 800))
    load.stop()
    assert not load.errors, f"the master stopped serving while its replica died: {load.errors[:5]}"

    replica = topology.client("n2")
    wait_converged(master, [replica])
    assert_no_lost_writes(replica, load, "on the restarted replica")
    full_after, partial_after = replication_stats(master)
    assert (full_after + partial_after) - (full_before + partial_before) >= 1, "the replica never resynced"


def test_a_replica_paused_past_repl_timeout_catches_up_with_a_partial_resync(
    launch: Launch, seed: int
) -> None:
    rng = random.Random(seed)
    settings = {"repl-timeout": REPL_TIMEOUT_S, "repl-ping-replica-period": REPL_PING_PERIOD_S}
    topology = launch(
        "pause", [NodeDef("n1", 7001, config=settings), NodeDef("n2", 7002, replicaof="n1", config=settings)]
    )
    master, replica = topology.client("n1"), topology.client("n2")
    for n in range(rng.randint(10, 200)):
        master.set(f"before:{n}", n)
    wait_converged(master, [replica])
    full_before, partial_before = replication_stats(master)

    topology.signal("n2", signal.SIGSTOP)
    try:
        written = rng.randint(10, 500)
        for n in range(written):
            master.set(f"paused:{n}", rng.getrandbits(64))
        # Past repl-timeout without an ACK, the master drops the replica (as Redis's replicationCron does).
        wait_for(
            lambda: master.info("replication")["connected_slaves"] == 0,
            REPL_TIMEOUT_S + 10,
            interval_s=0.1,
            what="the master to drop the paused replica",
        )
        for _ in range(rng.randint(1, 100)):
            master.incr("after-the-drop")
    finally:
        topology.signal("n2", signal.SIGCONT)

    wait_converged(master, [replica], timeout_s=20)
    full_after, partial_after = replication_stats(master)
    print(f"sync_full {full_before} -> {full_after}, sync_partial_ok {partial_before} -> {partial_after}")
    assert partial_after >= partial_before + 1, "the replica came back without a partial resync"
    assert full_after == full_before, "a full sync where a partial one should have done"
