"""Chaos through the launcher: a node process killed under write load, and a node whose actors crash past the
supervisor's restart intensity, both come back as new processes that the launcher started, with every
acknowledged write (appendonly yes, appendfsync always) still there.

Seeded: the ``seed`` fixture drives when and what is killed; every test kills its topology's process group
when it ends (the ``launch`` fixture), also on failure.
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
    actor_restarts,
    actor_states,
    answers_ping,
    assert_no_lost_writes,
)
from tests.harness import wait_for

pytestmark = pytest.mark.chaos

Launch = Callable[[str, list[NodeDef]], Launched]
LoadFactory = Callable[..., WriteLoad]
DURABLE = {"appendonly": "yes", "appendfsync": "always"}


def test_a_node_killed_under_write_load_is_restarted_with_every_acknowledged_write(
    launch: Launch, write_load: LoadFactory, seed: int
) -> None:
    rng = random.Random(seed)
    topology = launch("solo", [NodeDef("n1", 7001, config=DURABLE)])
    port = topology.ports["n1"]
    load = write_load(port, seed, threads=2)
    kills = rng.randint(1, 2)
    for round_ in range(kills):
        # Let a seeded number of writes through before the kill, so the kill lands at a different point each run.
        load.wait_acks(rng.randint(50, 400))
        old_pid = topology.signal("n1", signal.SIGKILL)
        new_pid = topology.wait_restarted("n1", old_pid)
        assert new_pid != old_pid
        assert topology.state()["n1"]["restarts"] == round_ + 1
        assert topology.state()["n1"]["last_exit"] == "SIGKILL"
        load.wait_acks(rng.randint(20, 200), timeout_s=20)  # the load reconnected to the new process
    load.stop()
    print(f"{kills} kill(s); {load.count()} writes acknowledged, {len(load.errors)} failed")
    assert load.errors, "the kill went unnoticed by the load: it was not under load"
    assert_no_lost_writes(topology.client("n1"), load, "after the restart")
    assert topology.status_json()["n1"]["restarts"] == kills


def test_actor_crashes_past_the_restart_intensity_end_the_node_and_the_launcher_restarts_it(
    launch: Launch, write_load: LoadFactory, seed: int
) -> None:
    rng = random.Random(seed)
    topology = launch("fragile", [NodeDef("n1", 7001, config={**DURABLE, "supervisor-max-restarts": 2})])
    port = topology.ports["n1"]
    r = topology.client("n1")
    crashable = sorted(actor_states(r))
    load = write_load(port, seed)
    old_pid = topology.pid("n1")
    assert old_pid is not None
    victims = [rng.choice(crashable) for _ in range(3)]
    print(f"crashing, in order: {victims}")
    # Two crashes are within the intensity: the node restarts the actor and keeps its process.
    for crashes, victim in enumerate(victims[:2], 1):
        before = actor_restarts(r)[victim]
        wait_for(lambda: actor_states(r)[victim] == "running", 10, what=f"{victim} running")  # noqa: B023
        assert r.execute_command("DEBUG", "CRASH-ACTOR", victim) == b"OK"
        wait_for(lambda: actor_restarts(r)[victim] == before + 1, 10, what=f"{victim} restarted")  # noqa: B023
        assert r.info("actors")["supervisor_restarts_in_window"] == crashes
        assert topology.pid("n1") == old_pid
        load.wait_acks(20)
    # The third is one too many: the node gives up, exits 3, and the launcher starts a new process.
    wait_for(lambda: actor_states(r)[victims[2]] == "running", 10)
    assert r.execute_command("DEBUG", "CRASH-ACTOR", victims[2]) == b"OK"
    new_pid = topology.wait_restarted("n1", old_pid)
    assert topology.state()["n1"]["last_exit"] == "exit 3"
    assert '"event": "supervisor_gave_up"' in topology.log("n1")
    status = topology.status_json()["n1"]
    assert (status["pid"], status["state"], status["restarts"]) == (new_pid, "up", 1)
    # The new process starts with a fresh supervisor, and serves the load again.
    fresh = topology.client("n1")
    assert set(actor_restarts(fresh).values()) == {0}
    assert fresh.info("actors")["supervisor_state"] == "running"
    load.wait_acks(20, timeout_s=20)
    load.stop()
    print(f"{load.count()} writes acknowledged, {len(load.errors)} failed")
    assert answers_ping(port)
    assert_no_lost_writes(fresh, load, "after the node gave up and was restarted")
