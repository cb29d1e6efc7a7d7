"""A manual failover overtaken by the master's failure (Redis's cluster suite, 10-manual-failover): CLUSTER
FAILOVER (without FORCE) waits for the master's replication offset, which a master that stopped answering never
sends. As in Redis, where the manual failover only starts once that offset is reached (mf_can_start), the
replica fails over automatically as soon as the master is FAIL, instead of waiting out the manual failover's
5 s (CLUSTER_MF_TIMEOUT) first.

Three masters and one replica of the first, node-timeout 700 ms. The first master is stopped (SIGSTOP), the
replica is asked to fail over at once (accepted: the master is not FAIL yet), and is master again well before
the manual failover would have timed out.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.harness import NodeProcess, wait_for
from tests.integration.test_cluster_multi import create, nodes_of, wait_ok

pytestmark = [pytest.mark.slow]
NODE_TIMEOUT_MS = 700
# Redis's CLUSTER_MF_TIMEOUT: the manual failover gives up after this; the automatic one must not wait for it.
MANUAL_FAILOVER_TIMEOUT_S = 5.0


@pytest.mark.timeout(120)
def test_a_manual_failover_whose_master_dies_becomes_an_automatic_one(
    node_factory: Callable[..., NodeProcess],
) -> None:
    masters = [
        node_factory(f"m{i}", cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS) for i in range(3)
    ]
    replica = node_factory("r0", cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS)
    ports = [m.port for m in masters]
    create(ports, "redactor", replicas=0)
    first_id = masters[0].client().execute_command("CLUSTER", "MYID").decode()
    rc = replica.client()
    rc.execute_command("CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
    wait_for(lambda: first_id in {w[0] for w in nodes_of(replica.port)}, 30, what="the replica to meet")
    rc.execute_command("CLUSTER", "REPLICATE", first_id)
    wait_ok([*ports, replica.port], 4, timeout_s=60)

    masters[0].signal(signal.SIGSTOP)
    try:
        asked = time.monotonic()
        assert rc.execute_command("CLUSTER", "FAILOVER") in (b"OK", True)
        wait_for(
            lambda: nodes_of(replica.port)[0][2] == "myself,master",
            MANUAL_FAILOVER_TIMEOUT_S,
            interval_s=0.05,
            what="the replica to fail over before its manual failover's timeout",
        )
        print(
            f"CLUSTER FAILOVER -> master in {time.monotonic() - asked:.2f} s (node-timeout {NODE_TIMEOUT_MS} ms)"
        )
        assert "Failover election won: I'm the new master." in replica.log()
        assert "Manual failover timed out." not in replica.log()
    finally:
        masters[0].signal(signal.SIGCONT)
