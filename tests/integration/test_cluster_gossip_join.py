"""A node introduced by gossip joins under its own id and is PINGed, never MEETed (Redis's
clusterProcessGossipSection; the scenario of Redis's cluster suite, 27-endpoints).

A node learns a slot's owner only from that owner's own messages (or an UPDATE). So a node that cannot exchange
PINGs with one master (DEBUG DROP-CLUSTER-PACKET-FILTER 0 on both: each drops the other's PINGs) knows that
master by id, through a third node's gossip, but not its slots, until the filter goes. Before, a node heard of
by gossip got a MEET handshake, which the filter lets through and a PONG answers: the isolated node completed
it, and a PONG to a repeated MEET then taught it the slots after all (27-endpoints failed now and then). The
same steps run on redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, reference_servers, wait_for
from tests.integration.test_cluster_multi import nodes_of

pytestmark = [pytest.mark.slow]
TIMEOUT_MS = 2000


def _slot_ranges(client: redis.Redis) -> set[tuple[int, int]]:
    return {(int(entry[0]), int(entry[1])) for entry in client.execute_command("CLUSTER", "SLOTS")}


def _meets_sent(client: redis.Redis) -> int:
    info = client.execute_command("CLUSTER", "INFO").decode()
    for line in info.splitlines():
        if line.startswith("cluster_stats_messages_meet_sent:"):
            return int(line.split(":", 1)[1])
    return 0


def _join_through_gossip(a: Any, b: Any, c: Any) -> None:
    ca, cb, cc = (redis.Redis(port=n.port, socket_timeout=5) for n in (a, b, c))
    try:
        ca.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "8191")
        cb.execute_command("CLUSTER", "ADDSLOTSRANGE", "8192", "16383")
        ca.execute_command("CLUSTER", "MEET", "127.0.0.1", str(b.port))
        wait_for(
            lambda: len(_slot_ranges(ca)) == 2 and len(_slot_ranges(cb)) == 2, 30, what="a and b to agree"
        )
        a_id = ca.execute_command("CLUSTER", "MYID").decode()
        # a and c drop each other's PINGs (type 0); b introduces c to the cluster.
        ca.execute_command("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "0")
        cc.execute_command("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "0")
        cb.execute_command("CLUSTER", "MEET", "127.0.0.1", str(c.port))
        wait_for(lambda: a_id in {line[0] for line in nodes_of(c.port)}, 30, what="c to hear of a from b")
        wait_for(lambda: _slot_ranges(cc) == {(8192, 16383)}, 30, what="c to learn b's slots")
        assert _meets_sent(cc) == 0  # c met nobody itself: a is PINGed, and a drops those
        assert _slot_ranges(cc) == {(8192, 16383)}  # so a's slots are still unknown to c
        ca.execute_command("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1")
        cc.execute_command("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1")
        wait_for(lambda: _slot_ranges(cc) == {(0, 8191), (8192, 16383)}, 30, what="c to learn a's slots")
    finally:
        for client in (ca, cb, cc):
            client.close()


def test_a_node_learned_by_gossip_is_pinged_not_met(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    # A short node timeout: a node PINGs the others every timeout / 2, and c's first PING to a after the filter
    # goes is what teaches it a's slots.
    options = {"cluster_enabled": "yes", "enable_debug_command": "yes", "cluster_node_timeout": TIMEOUT_MS}
    _join_through_gossip(*(node_factory(name, **options) for name in ("a", "b", "c")))
    _join_through_gossip(*reference_servers(redis_servers, tmp_path, ("a", "b", "c"), **options))
