"""cluster-replica-validity-factor (issue 15): a replica whose copy of its master's data is too old does not
stand for election (Redis's clusterHandleReplicaFailover data_age rule), and factor 0 lets it.

Three masters and one replica of the first. The first master is stopped (SIGSTOP: its replication link stays
open but silent, so the replica's data age grows from its last message), and is flagged FAIL by the other
masters. The replica, held back by cluster-replica-no-failover until its data age is past
node-timeout + node-timeout * factor + repl-ping-replica-period, is then allowed to fail over: it says why it
cannot and stays a replica; with the factor set to 0 it is elected.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.integration.test_cluster_multi import cluster_info, create, nodes_of, wait_ok

pytestmark = [pytest.mark.slow]
NODE_TIMEOUT_MS = 1000
# data age allowed past node-timeout: repl-ping-replica-period (1 s) + node-timeout * factor (1)
FACTOR = 1
PING_PERIOD_S = 1


@pytest.mark.timeout(180)
def test_replica_with_old_data_does_not_stand_for_election(node_factory: Callable[..., NodeProcess]) -> None:
    masters = [
        node_factory(f"m{i}", cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS) for i in range(3)
    ]
    replica = node_factory(
        "r0",
        cluster_enabled="yes",
        cluster_node_timeout=NODE_TIMEOUT_MS,
        cluster_replica_no_failover="yes",
        cluster_replica_validity_factor=FACTOR,
        repl_ping_replica_period=PING_PERIOD_S,
    )
    ports = [m.port for m in masters]
    create(ports, "redactor", replicas=0)
    first = masters[0].client()
    rc = replica.client()
    first_id = first.execute_command("CLUSTER", "MYID").decode()
    rc.execute_command("CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
    wait_for(lambda: first_id in {w[0] for w in nodes_of(replica.port)}, 30, what="the replica to meet")
    rc.execute_command("CLUSTER", "REPLICATE", first_id)
    wait_ok([*ports, replica.port], 4, timeout_s=60)
    replica_id = rc.execute_command("CLUSTER", "MYID").decode()

    def flags_of_replica(port: int) -> list[str]:
        return next(w[2] for w in nodes_of(port) if w[0] == replica_id).split(",")

    # cluster-replica-no-failover is the replica's nofailover flag, in every node's CLUSTER NODES (Redis's
    # cluster suite, 13-no-failover-option).
    wait_for(
        lambda: all("nofailover" in flags_of_replica(p) for p in [*ports, replica.port]),
        30,
        what="every node to see the replica's nofailover flag",
    )

    masters[0].signal(signal.SIGSTOP)
    try:
        wait_for(
            lambda: any(w[0] == first_id and "fail" in w[2].split(",") for w in nodes_of(replica.port)),
            30,
            what="the replica to see its master FAIL",
        )
        # Past node-timeout (1 s) + repl-ping-replica-period (1 s) + node-timeout * factor (1 s), with room.
        wait_for(
            lambda: int(rc.info("replication")["master_last_io_seconds_ago"]) >= 4,
            30,
            interval_s=0.1,
            what="the replica's data to age",
        )
        rc.config_set("cluster-replica-no-failover", "no")
        assert "nofailover" not in flags_of_replica(replica.port)
        wait_for(
            lambda: (
                "Currently unable to failover: Disconnected from master for longer than allowed"
                in replica.log()
            ),
            20,
            what="the replica to refuse to stand for election",
        )
        assert rc.info("replication")["role"] == "slave"
        assert "myself,slave" in nodes_of(replica.port)[0][2]

        rc.config_set("cluster-replica-validity-factor", "0")  # 0: always eligible
        wait_for(
            lambda: (
                nodes_of(replica.port)[0][2] == "myself,master"
                and cluster_info(replica.port)["cluster_state"] == "ok"
            ),
            30,
            what="the replica to be elected",
        )
        # The sentences Redis's cluster.c logs for these moments (an operator's grep finds them here too).
        log = replica.log()
        assert "Start of election delayed for " in log and " milliseconds (rank #0, offset " in log
        assert "Failover election won: I'm the new master." in log
        assert "Cluster state changed: ok" in log
        other_log = masters[1].log()
        assert (
            f"Marking node {first_id} as failing (quorum reached)." in other_log
            or f"about {first_id}" in other_log  # "FAIL message received from <sender> about <node>"
        )
        with redis.Redis(port=masters[1].port, socket_timeout=5) as other:
            assert other.config_get("cluster-replica-validity-factor") == {
                "cluster-replica-validity-factor": "10"
            }
    finally:
        masters[0].signal(signal.SIGCONT)
