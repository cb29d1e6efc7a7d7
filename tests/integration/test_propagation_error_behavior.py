"""``propagation-error-behavior`` (Redis 7.0; it was accepted and ignored): what a replica does with a command
from its master that fails, and a node with a command of its AOF that fails. ``ignore`` logs Redis's
"== CRITICAL ==" line and counts INFO's ``unexpected_error_replies``; ``panic`` / ``panic-on-replicas`` make a
read-only replica abort with Redis's "Guru Meditation" line, and ``panic`` makes the AOF load abort too. The
replica cases run on a redis-server pair and on a node pair, with DEBUG REPLICATE (Redis's test hook) sending
the failing command."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from protocol.resp import encode_command
from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PANIC_LINE = (
    "Guru Meditation: This replica panicked sending an error to its master after processing the command"
)


def replica_of(master_port: int, behavior: str, read_only: str = "yes") -> list[str]:
    return [
        "--replicaof", "127.0.0.1", str(master_port),
        "--propagation-error-behavior", behavior, "--replica-read-only", read_only,
    ]  # fmt: skip


def wait_synced(replica: redis.Redis) -> None:
    wait_for(
        lambda: replica.info("replication").get("master_link_status") == "up", 20, what="the replica's sync"
    )


@pytest.mark.parametrize("kind", ["redis", "node"])
@pytest.mark.parametrize("behavior", ["ignore", "panic", "panic-on-replicas"])
def test_a_failing_command_from_the_master(
    kind: str, behavior: str, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    stop: list[Callable[[], None]] = []  # what this test started, to stop whatever happens
    try:
        if kind == "redis":
            (tmp_path / "m").mkdir()
            (tmp_path / "r").mkdir()
            master_server = RedisServer(tmp_path / "m")
            stop.append(master_server.stop)
            replica_server = RedisServer(tmp_path / "r", *replica_of(master_server.port, behavior))
            stop.insert(0, replica_server.stop)
            master, replica = master_server.client, replica_server.client
            proc: subprocess.Popen[bytes] = replica_server.proc

            def log() -> str:
                return replica_server.log_path.read_text(errors="replace")

        else:
            master_node = node_factory("m")
            replica_node = node_factory(
                "r", replicaof=f"127.0.0.1 {master_node.port}", propagation_error_behavior=behavior
            )
            master, replica = master_node.client(), replica_node.client()
            assert replica_node.proc is not None
            proc = replica_node.proc
            log = replica_node.log
        wait_synced(replica)
        master.set("k", "abc")
        master.execute_command("DEBUG", "REPLICATE", "INCR", "k")
        if behavior == "ignore":
            master.set("after", "1")
            wait_for(lambda: replica.get("after") == b"1", 10, what="the stream after the failing command")
            assert replica.info("stats")["unexpected_error_replies"] == 1
            assert "== CRITICAL == This replica is sending an error to its master" in log()
            assert "'incr'" in log()
        else:
            assert proc.wait(20) == -signal.SIGABRT
            wait_for(lambda: f"{PANIC_LINE} 'incr'" in log(), 5, what="the panic's line")
    finally:
        for fn in stop:
            fn()


def test_a_writable_replica_does_not_panic(node_factory: Callable[..., NodeProcess]) -> None:
    """As Redis: a writable replica may have diverged on purpose (its own writes), so it only logs."""
    master = node_factory("m")
    replica = node_factory(
        "r", replicaof=f"127.0.0.1 {master.port}", propagation_error_behavior="panic", replica_read_only="no"
    )
    wait_synced(replica.client())
    replica.client().set("number", "foo")
    master.client().incrby("number", 1)
    master.client().set("after", "1")
    wait_for(lambda: replica.client().get("after") == b"1", 10, what="the stream after the failing command")
    assert replica.alive() and replica.client().get("number") == b"foo"


@pytest.mark.parametrize("behavior", ["panic-on-replicas", "panic"])
def test_a_failing_command_of_the_aof(node_factory: Callable[..., NodeProcess], behavior: str) -> None:
    node = node_factory(
        "aof", appendonly="yes", aof_use_rdb_preamble="no", propagation_error_behavior=behavior
    )
    node.client().set("k", "abc")
    node.stop()
    (incr,) = (node.dir / "appendonlydir").glob("*.incr.aof")
    with incr.open("ab") as fh:  # a command that fails on replay (Redis's AOF may hold one from a script)
        fh.write(encode_command([b"INCR", b"k"]))
    node.start(wait=False)
    assert node.proc is not None
    if behavior == "panic":
        assert node.proc.wait(20) == -signal.SIGABRT
        assert (
            "Guru Meditation: This server panicked sending an error to its AOF-loading-client after processing "
            "the command 'incr'"
        ) in node.log()
    else:
        node.wait_ready()
        assert node.client().get("k") == b"abc"
        assert node.client().info("stats")["unexpected_error_replies"] == 1
        assert "== CRITICAL == This server is sending an error to its AOF-loading-client" in node.log()
