"""redis-cli --cluster add-node, rebalance, del-node and fix against redactor nodes (issue 15, item 5).

A three-master cluster made by ``redis-cli --cluster create`` holds keys written by redis-py's RedisCluster;
the operator tools then grow it (add-node as a master and as a replica, rebalance with
--cluster-use-empty-masters), shrink it (del-node: the forgotten node does not come back through gossip) and
repair it (fix: a slot left MIGRATING / IMPORTING, a slot nobody serves). Every key stays readable.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.harness import NodeProcess, wait_for
from tests.integration.test_cluster_multi import (
    NODE_TIMEOUT_MS,
    check_passes,
    cluster_info,
    nodes_of,
    owner_of,
    raw,
    wait_ok,
)

pytestmark = [pytest.mark.slow, pytest.mark.compat]
KEYS = 200


def redis_cli(*args: str, timeout_s: float = 120, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", *args], capture_output=True, text=True, timeout=timeout_s, input=answer
    )


def masters(ports: list[int]) -> list[int]:
    return [p for p in ports if "master" in nodes_of(p)[0][2]]


def three_masters(node_factory: Callable[..., NodeProcess]) -> tuple[list[int], RedisCluster]:
    """A three-master cluster (no replicas) with KEYS keys; returns its ports and a RedisCluster client."""
    nodes = [
        node_factory(f"m{i}", cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS) for i in range(3)
    ]
    ports = [n.port for n in nodes]
    created = redis_cli(
        "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0", "--cluster-yes"
    )
    assert created.returncode == 0, created.stdout + created.stderr
    wait_ok(ports, 3)
    cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
    for i in range(KEYS):
        cluster.set(f"key:{i}", i)
    return ports, cluster


def all_keys_readable(ports: list[int]) -> None:
    cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in ports])
    try:
        assert [int(cluster.get(f"key:{i}") or -1) for i in range(KEYS)] == list(range(KEYS))
    finally:
        cluster.close()


def slot_count(port: int) -> int:
    total = 0
    for item in nodes_of(port)[0][8:]:
        if not item.startswith("["):
            first, _, last = item.partition("-")
            total += int(last or first) - int(first) + 1
    return total


@pytest.mark.timeout(300)
def test_add_node_rebalance_and_del_node(node_factory: Callable[..., NodeProcess]) -> None:
    ports, cluster = three_masters(node_factory)
    cluster.close()
    new_master, new_replica = (
        node_factory(name, cluster_enabled="yes", cluster_node_timeout=NODE_TIMEOUT_MS).port
        for name in ("n-master", "n-replica")
    )
    added = redis_cli("--cluster", "add-node", f"127.0.0.1:{new_master}", f"127.0.0.1:{ports[0]}")
    assert added.returncode == 0 and "[OK] New node added correctly." in added.stdout, added.stdout
    wait_ok([*ports, new_master], 4)
    new_id = nodes_of(new_master)[0][0]
    added = redis_cli(
        "--cluster", "add-node", f"127.0.0.1:{new_replica}", f"127.0.0.1:{ports[0]}",
        "--cluster-slave", "--cluster-master-id", new_id,
    )  # fmt: skip
    assert added.returncode == 0 and "[OK] New node added correctly." in added.stdout, added.stdout
    everyone = [*ports, new_master, new_replica]
    wait_ok(everyone, 5)
    assert nodes_of(new_replica)[0][2:4] == ["myself,slave", new_id]

    # rebalance --cluster-use-empty-masters: the slot-less master gets its quarter.
    started = time.monotonic()
    rebalanced = redis_cli(
        "--cluster", "rebalance", f"127.0.0.1:{ports[0]}", "--cluster-use-empty-masters", timeout_s=240
    )
    seconds = time.monotonic() - started
    assert rebalanced.returncode == 0, rebalanced.stdout[-2000:] + rebalanced.stderr
    print(f"rebalance --cluster-use-empty-masters: {slot_count(new_master)} slots in {seconds:.1f}s")
    wait_for(lambda: check_passes(ports[0]), 30, what="redis-cli --cluster check after the rebalance")
    counts = [slot_count(p) for p in masters(everyone)]
    assert sum(counts) == 16384 and len(counts) == 4, counts
    assert all(abs(c - 4096) <= 2 for c in counts), counts  # redis-cli's threshold leaves ~1 slot of noise
    all_keys_readable(ports)
    with redis.Redis(port=new_replica) as client:  # the replica follows its master's new keys
        keys = int(redis.Redis(port=new_master).dbsize())
        assert keys > 0
        wait_for(lambda: int(client.dbsize()) == keys, 20, what="the new replica to hold its master's keys")

    # del-node of the replica: every node forgets it, and gossip does not bring it back.
    replica_id = nodes_of(new_replica)[0][0]
    removed = redis_cli("--cluster", "del-node", f"127.0.0.1:{ports[0]}", replica_id)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    remaining = [*ports, new_master]
    for port in remaining:
        assert replica_id not in [w[0] for w in nodes_of(port)], port
    assert cluster_info(new_replica)["cluster_known_nodes"] == "1"  # CLUSTER RESET SOFT
    # Several gossip rounds (a node pings about every node_timeout/2): nobody re-learns the forgotten id.
    deadline = time.monotonic() + 2 * NODE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for port in remaining:
            assert replica_id not in [w[0] for w in nodes_of(port)], f"{port} re-learned the deleted node"
        time.sleep(0.2)  # polling a condition that must stay true, for a bounded time
    wait_ok(remaining, 4)
    all_keys_readable(ports)


@pytest.mark.timeout(200)
def test_fix_closes_open_slots_and_covers_unassigned_ones(node_factory: Callable[..., NodeProcess]) -> None:
    ports, cluster = three_masters(node_factory)
    cluster.close()
    by_id = {w[0]: int(w[1].split(":")[1].split("@")[0]) for w in nodes_of(ports[0])}
    slot = 12182  # foo's slot
    source_id, source_port = owner_of(ports[0], slot)
    target_id = next(i for i, p in by_id.items() if p != source_port)
    target_port = by_id[target_id]
    with redis.Redis(port=source_port) as client:
        client.set("foo", "bar")

    # A slot left half-moved: MIGRATING on the owner, IMPORTING on the target (a reshard killed mid-way).
    assert (
        raw(target_port, b"CLUSTER", b"SETSLOT", b"%d" % slot, b"IMPORTING", source_id.encode()) == b"+OK\r\n"
    )
    assert (
        raw(source_port, b"CLUSTER", b"SETSLOT", b"%d" % slot, b"MIGRATING", target_id.encode()) == b"+OK\r\n"
    )
    check = redis_cli("--cluster", "check", f"127.0.0.1:{ports[0]}")
    assert check.returncode != 0 and "open slot" in check.stdout, check.stdout
    fixed = redis_cli("--cluster", "fix", f"127.0.0.1:{ports[0]}", "--cluster-yes")
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr
    wait_for(lambda: check_passes(ports[0]), 30, what="check to pass after fixing the open slot")
    assert not [w for p in ports for w in nodes_of(p)[0][8:] if w.startswith("[")]
    all_keys_readable(ports)
    assert redis_cli("-c", "-p", str(ports[0]), "get", "foo").stdout.strip() == "bar"

    # A slot nobody serves (DELSLOTS everywhere): the cluster is down until fix assigns it again.
    empty_slot = 0 if owner_of(ports[0], 0)[1] != source_port else 16383
    for port in ports:
        assert raw(port, b"CLUSTER", b"DELSLOTS", b"%d" % empty_slot) in (
            b"+OK\r\n",
            b"-ERR Slot %d is already unassigned\r\n" % empty_slot,
        )
    wait_for(
        lambda: all(cluster_info(p)["cluster_state"] == "fail" for p in ports),
        20,
        what="cluster_state:fail with a slot unassigned",
    )
    # redis-cli 7.0 asks before covering slots even with --cluster-yes: answer it.
    fixed = redis_cli("--cluster", "fix", f"127.0.0.1:{ports[0]}", "--cluster-yes", answer="yes\n")
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr
    assert "Fixing slots coverage" in fixed.stdout, fixed.stdout
    wait_ok(ports, 3)
    wait_for(lambda: check_passes(ports[0]), 30, what="check to pass after covering the slot")
    all_keys_readable(ports)
