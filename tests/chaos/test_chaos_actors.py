"""Chaos inside a node: the persistence and replication actors crash under write load on a master with one
replica. The node keeps serving RESP the whole time, INFO actors counts every restart, no acknowledged write
is lost (appendfsync always; also after the master's process is killed and restarted), and the replica
converges (equal DEBUG DIGEST).

Seeded: the ``seed`` fixture drives the crash order and how much load runs between crashes.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable

import pytest
import redis

from tests.chaos.conftest import (
    Launched,
    NodeDef,
    WriteLoad,
    actor_restarts,
    actor_states,
    assert_no_lost_writes,
    wait_converged,
)
from tests.harness import wait_for

pytestmark = pytest.mark.chaos

Launch = Callable[[str, list[NodeDef]], Launched]
LoadFactory = Callable[..., WriteLoad]
CRASH_REASON = "CrashRequested:DEBUG_CRASH-ACTOR"


def crash_and_wait_restart(r: redis.Redis, name: str) -> None:
    """DEBUG CRASH-ACTOR ``name``, then wait until INFO actors shows it restarted and running."""
    wait_for(lambda: actor_states(r)[name] == "running", 10, what=f"{name} running before the crash")
    before = actor_restarts(r)[name]
    assert r.execute_command("DEBUG", "CRASH-ACTOR", name) == b"OK"
    wait_for(
        lambda: actor_restarts(r)[name] == before + 1 and actor_states(r)[name] == "running",
        10,
        what=f"INFO actors to show {name} restarted",
    )
    line = r.info("actors")[name]
    assert line == {"state": "running", "restarts": before + 1, "last_failure": CRASH_REASON}


def test_crashed_persistence_and_replication_actors_lose_no_write_and_the_replica_converges(
    launch: Launch, write_load: LoadFactory, seed: int
) -> None:
    rng = random.Random(seed)
    topology = launch(
        "actors",
        [
            NodeDef("n1", 7001, config={"appendonly": "yes", "appendfsync": "always"}),
            NodeDef("n2", 7002, replicaof="n1"),
        ],
    )
    master, replica = topology.client("n1"), topology.client("n2")
    wait_converged(master, [replica])
    assert {"persistence", "replication"} <= set(actor_states(master))

    load = write_load(topology.ports["n1"], seed, threads=2)
    load.wait_acks(rng.randint(50, 300))
    # Each actor of the master at least once, in a seeded order, with a few seeded repeats (the supervisor's
    # default intensity, 5 restarts in 60 s, leaves room for four).
    crashes = ["persistence", "replication"] + [rng.choice(["persistence", "replication"]) for _ in range(2)]
    rng.shuffle(crashes)
    print(f"crashing on the master, in order: {crashes}")
    started_s = time.monotonic()
    for name in crashes:
        crash_and_wait_restart(master, name)
        load.wait_acks(rng.randint(50, 300))
    # The replica's own replication actor too: its link to the master must come back by itself.
    crash_and_wait_restart(replica, "replication")
    load.wait_acks(rng.randint(50, 300))
    load.stop()
    errors = load.errors_since(started_s)
    assert not errors, f"the master stopped serving while its actors restarted: {errors[:5]}"
    assert topology.pid("n1") is not None and topology.state()["n1"]["restarts"] == 0
    print(f"{load.count()} writes acknowledged")

    assert_no_lost_writes(master, load, "after the actor crashes")
    wait_converged(master, [replica])

    # The process too: SIGKILL the master; the launcher restarts it and it recovers from its AOF. A longer AOF
    # first, so the replica asks to resync while the master is still loading it (it must be told LOADING, not
    # handed a snapshot of half the data).
    bulk = rng.randint(60_000, 100_000)
    pipe = master.pipeline(transaction=False)
    for n in range(bulk):
        pipe.set(f"bulk:{n}", n)
    pipe.execute()
    converged = wait_converged(master, [replica])
    old_pid = topology.signal("n1", signal.SIGKILL)
    topology.wait_restarted("n1", old_pid)
    restarted = topology.client("n1")
    assert_no_lost_writes(restarted, load, "after the master's process was killed and restarted")
    assert wait_converged(restarted, [replica]) == converged
