"""Cluster mode on one node (issue 15, contract §2.1-2.5): CLUSTER subcommands, their errors and the routing
errors, compared reply for reply with a real redis-server started with ``cluster-enabled yes``; nodes.conf
read back after a restart; a standalone node's refusals."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from actors.config import Config, ConfigError
from tests.harness import REPO, NodeProcess, RedisServer, wait_for

START_TIMEOUT_S = 30


def reply(client: redis.Redis, *args: Any) -> Any:
    try:
        return client.execute_command(*args)
    except redis.ResponseError as exc:
        return f"ERR-REPLY: {exc}"


# Commands whose replies do not depend on the node id: compared as they are.
SCRIPT: list[tuple[Any, ...]] = [
    ("CLUSTER", "KEYSLOT", "123456789"),
    ("CLUSTER", "KEYSLOT", "foo"),
    ("CLUSTER", "KEYSLOT", "{user1000}.following"),
    ("SET", "foo", "1"),
    ("GET", "foo"),
    ("PING",),
    ("CLUSTER", "ADDSLOTS", "16384"),
    ("CLUSTER", "ADDSLOTS", "-1"),
    ("CLUSTER", "ADDSLOTS", "x"),
    ("CLUSTER", "ADDSLOTS", "5", "5"),
    ("CLUSTER", "DELSLOTS", "5"),
    ("CLUSTER", "ADDSLOTSRANGE", "10", "5"),
    ("CLUSTER", "ADDSLOTSRANGE", "10"),
    ("CLUSTER", "ADDSLOTS"),
    ("CLUSTER", "COUNTKEYSINSLOT", "16384"),
    ("CLUSTER", "COUNTKEYSINSLOT", "x"),
    ("CLUSTER", "GETKEYSINSLOT", "1", "-1"),
    ("CLUSTER", "SETSLOT", "5", "MIGRATING", "0" * 40),
    ("CLUSTER", "SETSLOT", "5", "IMPORTING", "0" * 40),
    ("CLUSTER", "SETSLOT", "5", "NODE", "0" * 40),
    ("CLUSTER", "SETSLOT", "5", "BOGUS"),
    ("CLUSTER", "FORGET", "0" * 40),
    ("CLUSTER", "REPLICATE", "0" * 40),
    ("CLUSTER", "COUNT-FAILURE-REPORTS", "0" * 40),
    ("CLUSTER", "FAILOVER"),
    ("CLUSTER", "FAILOVER", "BOGUS"),
    ("CLUSTER", "BLAH"),
    ("CLUSTER", "MEET", "not-an-ip", "7000"),
    ("CLUSTER", "MEET", "127.0.0.1", "x"),
    ("CLUSTER", "SET-CONFIG-EPOCH", "-1"),
    ("CLUSTER", "RESET", "BOGUS"),
    ("SELECT", "1"),
    ("SELECT", "0"),
    ("SWAPDB", "0", "1"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("ASKING",),
    ("READONLY",),
    ("READWRITE",),
    ("CLUSTER", "ADDSLOTSRANGE", "0", "16383"),
    ("CLUSTER", "ADDSLOTS", "100"),
    ("WAIT-OK",),
    ("SET", "foo", "1"),
    ("GET", "foo"),
    ("MOVE", "foo", "1"),
    ("COPY", "foo", "bar", "DB", "1"),
    ("MSET", "a", "1", "b", "2"),
    ("MSET", "{u}a", "1", "{u}b", "2"),
    ("CLUSTER", "COUNTKEYSINSLOT", "12182"),
    ("CLUSTER", "GETKEYSINSLOT", "12182", "10"),
    ("CLUSTER", "SETSLOT", "12182", "IMPORTING", "0" * 40),
    ("CLUSTER", "SET-CONFIG-EPOCH", "5"),
    ("CLUSTER", "SET-CONFIG-EPOCH", "6"),
    ("CLUSTER", "BUMPEPOCH"),
    ("CLUSTER", "DELSLOTSRANGE", "12182", "12182"),
    ("GET", "foo"),
    ("CLUSTER", "RESET"),
    ("MULTI",),
    ("GET", "{u}a"),
    ("GET", "foo"),
    ("EXEC",),
    ("FLUSHALL",),
    ("CLUSTER", "ADDSLOTS", "1"),
    ("CLUSTER", "FLUSHSLOTS"),
    ("CLUSTER", "RESET", "HARD"),
]


def normalise(value: Any) -> Any:
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def test_cluster_commands_and_routing_errors_match_a_redis_cluster_node(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    reference = redis_servers(ref_dir, "--cluster-enabled", "yes").client
    ours = node_factory("c", cluster_enabled="yes").client(protocol=2)
    for args in SCRIPT:
        if args == ("WAIT-OK",):
            for client in (ours, reference):
                wait_for(
                    lambda c=client: b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO"),  # type: ignore[misc]
                    10,
                    what="cluster_state:ok",
                )
            continue
        got, want = reply(ours, *args), reply(reference, *args)
        assert normalise(got) == normalise(want), (args, got, want)


def test_cluster_introspection_has_redis_shapes(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("c", cluster_enabled="yes")
    client = node.client(protocol=2)
    info = client.info()
    assert info["cluster_enabled"] == 1
    assert info["redis_mode"] == "cluster"
    myid = client.execute_command("CLUSTER", "MYID").decode()
    assert re.fullmatch("[0-9a-f]{40}", myid)
    nodes = client.execute_command("CLUSTER", "NODES").decode()
    assert nodes == f"{myid} :{node.port}@{node.bus_port} myself,master - 0 0 0 connected\n"
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "5", "10", "16383")
    client.execute_command("CLUSTER", "SETSLOT", "3", "MIGRATING", myid)
    line = client.execute_command("CLUSTER", "NODES").decode()
    assert line.endswith(f" connected 0-5 10-16383 [3->-{myid}]\n")
    assert client.execute_command("CLUSTER", "SLOTS") == [
        [0, 5, [b"", node.port, myid.encode(), []]],
        [10, 16383, [b"", node.port, myid.encode(), []]],
    ]
    shards = client.execute_command("CLUSTER", "SHARDS")
    assert shards[0][:2] == [b"slots", [0, 5, 10, 16383]]
    text = client.execute_command("CLUSTER", "INFO").decode()
    fields = [line.split(":")[0] for line in text.split("\r\n") if line]
    assert fields[:9] == [
        "cluster_state",
        "cluster_slots_assigned",
        "cluster_slots_ok",
        "cluster_slots_pfail",
        "cluster_slots_fail",
        "cluster_known_nodes",
        "cluster_size",
        "cluster_current_epoch",
        "cluster_my_epoch",
    ]
    assert "cluster_state:fail" in text and "cluster_slots_assigned:16380" in text
    # CONFIG SET port moves a standalone node's listeners (test_config_set_port.py); a cluster node's peers
    # announce its port, so it refuses, and keeps listening where it was.
    with pytest.raises(redis.ResponseError, match="can't change the port of a cluster node at run time"):
        client.config_set("port", node.port + 1)
    assert client.config_get("port") == {"port": str(node.port)} and client.ping()


def test_nodes_conf_is_read_back_after_a_restart(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("c", cluster_enabled="yes")
    client = node.client()
    client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", "3")
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "300")
    # nodes.conf is saved once per loop tick, before that tick's replies: a reply means "in the file".
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("CLUSTER", "DELSLOTS", "300")
    pipe.execute_command("CLUSTER", "SETSLOT", "299", "STABLE")
    pipe.execute()
    assert " connected 0-100 200-299\n" in (node.dir / "nodes.conf").read_text()
    client.execute_command("CLUSTER", "ADDSLOTS", "300")
    assert " connected 0-100 200-300\n" in (node.dir / "nodes.conf").read_text()
    before = client.execute_command("CLUSTER", "NODES")
    node.stop()
    conf = (node.dir / "nodes.conf").read_text()
    assert conf.endswith("vars currentEpoch 3 lastVoteEpoch 0\n"), conf
    node.start()
    client = node.client()
    assert client.execute_command("CLUSTER", "NODES") == before
    assert b"cluster_slots_assigned:202" in client.execute_command("CLUSTER", "INFO")


def test_a_standalone_node_refuses_cluster_commands_as_redis_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path).client
    ours = node.client()
    for args in (("CLUSTER", "INFO"), ("CLUSTER", "NODES"), ("ASKING",), ("READONLY",), ("READWRITE",)):
        assert reply(ours, *args) == reply(reference, *args), args
    assert ours.info("cluster") == {"cluster_enabled": 0}


def start_node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.main", "server", *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )


def test_replicaof_is_refused_in_cluster_mode(tmp_path: Path) -> None:
    proc = start_node(
        "--port", "0", "--dir", str(tmp_path), "--cluster-enabled", "yes", "--replicaof", "127.0.0.1", "7000"
    )
    assert proc.returncode == 1
    assert "replicaof directive not allowed in cluster mode" in proc.stderr


def test_cluster_enabled_reads_back_and_config_set_is_refused_as_redis_refuses_it(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    config = Config()
    config.apply("cluster-enabled", ["yes"], from_file=True)
    assert config.match("cluster-enabled") == [("cluster-enabled", "yes")]
    with pytest.raises(ConfigError):
        config.apply("cluster-enabled", ["maybe"], from_file=True)
    reference = redis_servers(tmp_path)
    ours = node_factory().client(protocol=2)
    for value in ("yes", "no"):
        replies = []
        for client in (ours, reference.client):
            with pytest.raises(redis.ResponseError) as info:
                client.config_set("cluster-enabled", value)
            replies.append(str(info.value))
        assert replies[0] == replies[1], replies
    assert ours.config_get("cluster-enabled") == {"cluster-enabled": "no"}


def _brpop_released_by_delslots(port: int, full_coverage: str, list_key: str) -> str:
    """Block a BRPOP on ``list_key`` at a one-node cluster serving every slot, DELSLOTS its slot: the reply."""
    with (
        redis.Redis(port=port, socket_timeout=10) as admin,
        redis.Redis(port=port, socket_timeout=10) as waiter,
    ):
        admin.config_set("cluster-require-full-coverage", full_coverage)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_for(
            lambda: b"cluster_state:ok" in admin.execute_command("CLUSTER", "INFO"),
            10,
            what="cluster_state:ok",
        )
        waiter_id = str(waiter.client_id())
        done: list[str] = []
        thread = threading.Thread(
            target=lambda: done.append(reply(waiter, "BRPOP", list_key, "0")), daemon=True
        )
        thread.start()
        wait_for(
            lambda: any(c["id"] == waiter_id and c["cmd"] == "brpop" for c in admin.client_list()),
            10,
            what="the client to block",
        )
        slot = int(admin.execute_command("CLUSTER", "KEYSLOT", list_key))
        admin.execute_command("CLUSTER", "DELSLOTS", str(slot))
        thread.join(10)
        assert done, f"{port}: BRPOP still blocked after DELSLOTS {slot}"
        admin.execute_command("CLUSTER", "RESET")
        return done[0]


def test_blocked_clients_are_released_when_their_slot_leaves_as_redis_does(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    """Redis 7.0's clusterRedirectBlockedClientIfNeeded: a BRPOP whose slot this node stops serving is released
    (CLUSTERDOWN Hash slot not served after DELSLOTS without full coverage, CLUSTERDOWN The cluster is down
    when that fails the cluster); compared with a redis-server cluster node. MOVED after SETSLOT NODE is in
    test_cluster_multi.py's reshard test."""
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    reference = redis_servers(ref_dir, "--cluster-enabled", "yes")
    ours = node_factory("c", cluster_enabled="yes")
    replies = {
        label: [
            _brpop_released_by_delslots(port, "no", "{foo}list"),
            _brpop_released_by_delslots(port, "yes", "{bar}list"),
        ]
        for label, port in (("redactor", ours.port), ("redis", reference.port))
    }
    assert replies["redis"] == ["ERR-REPLY: Hash slot not served", "ERR-REPLY: The cluster is down"]
    assert replies["redactor"] == replies["redis"], replies
