"""How a node shuts down (actors/server/shutdown.py): SHUTDOWN's flags and errors as redis-server answers them,
the wait for lagging replicas (shutdown-timeout) with writes held and reads served, SHUTDOWN ABORT, FORCE over
a save that fails, shutdown-on-sigterm, and a replica whose connection closes leaving at once."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, config_set_differences, wait_for
from tests.integration.shared import error_of


def online(master: redis.Redis) -> int:
    return int(master.info("replication")["connected_slaves"])


def send_shutdown(port: int, *args: str) -> bytes:
    """SHUTDOWN over a plain socket: the reply, or b"" when the node closed the connection (it stopped).
    (redis-py would retry the closed connection, with back-off, and hide how soon the node went.)"""
    words = ["SHUTDOWN", *args]
    request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.fixture
def pair(node_factory: Callable[..., NodeProcess]) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """A master (shutdown-timeout 3) and its replica, linked and caught up; the replica is continued and
    stopped at the end whatever the test did to it."""
    master = node_factory("master", shutdown_timeout=3)
    replica = node_factory("replica", replicaof=f"127.0.0.1 {master.port}")
    wait_for(lambda: online(master.client()) == 1, 20, what="the replica online")
    yield master, replica
    replica.signal(signal.SIGCONT)


def test_shutdown_flags_are_checked_as_redis_checks_them(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis.Redis(port=redis_servers(tmp_path).port)
    ours = node.client()
    for args in (("SAVE", "NOSAVE"), ("ABORT", "NOW"), ("BOGUS",), ("ABORT",), ("now", "abort")):
        assert error_of(ours.execute_command, "SHUTDOWN", *args) == error_of(
            reference.execute_command, "SHUTDOWN", *args
        ), args
    assert ours.ping()


def test_shutdown_waits_for_a_lagging_replica_and_abort_resumes_writes(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    master, replica = pair
    r = master.client()
    replica.signal(signal.SIGSTOP)  # alive, connected, acknowledging nothing
    r.set("k", "v")
    outcome: dict[str, Any] = {}

    def shutdown() -> None:
        outcome["reply"] = send_shutdown(master.port)

    waiter = threading.Thread(target=shutdown, daemon=True)
    waiter.start()
    wait_for(lambda: "cmd=shutdown" in str(r.execute_command("CLIENT", "LIST")), what="SHUTDOWN to wait")
    assert r.get("k") == b"v"  # reads are served meanwhile
    # INFO says how long it still waits, only meanwhile (Redis 7.0's conditional field).
    assert 0 < int(r.info("server")["shutdown_in_milliseconds"]) <= 3000  # shutdown-timeout 3
    writer = threading.Thread(target=lambda: outcome.setdefault("set", master.client().set("w", "1")))
    writer.start()
    wait_for(lambda: int(r.info("clients")["blocked_clients"]) == 2, what="the SET held with SHUTDOWN")
    assert "w" not in outcome and master.alive()
    assert r.execute_command("SHUTDOWN", "ABORT") is True  # (redis-py reads OK as True)
    waiter.join(10)
    writer.join(10)
    assert outcome["reply"] == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    assert outcome["set"] is True and r.get("w") == b"1"
    assert error_of(r.execute_command, "SHUTDOWN", "ABORT") == "No shutdown in progress."
    assert master.alive() and "shutdown_in_milliseconds" not in r.info("server")


def test_shutdown_stops_after_shutdown_timeout_when_a_replica_stays_behind(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    master, replica = pair
    replica.signal(signal.SIGSTOP)
    master.client().set("k", "v")
    started = time.monotonic()
    master.signal(signal.SIGTERM)
    assert master.wait_exit(15) == 0
    waited_s = time.monotonic() - started
    assert 2.5 <= waited_s < 10, waited_s  # shutdown-timeout 3
    # Redis's lines: the lagging replica, then how many were in sync.
    assert re.search(
        r"Lagging replica 127\.0\.0\.1:\d+ reported offset \d+ behind master, lag=\d+", master.log()
    )
    assert "0 of 1 replicas are in sync when shutting down." in master.log()


def test_shutdown_now_and_a_caught_up_replica_do_not_wait(pair: tuple[NodeProcess, NodeProcess]) -> None:
    master, replica = pair
    r = master.client()
    r.set("k", "v")
    wait_for(lambda: replica.client().get("k") == b"v", what="the replica to catch up")
    started = time.monotonic()
    assert send_shutdown(master.port) == b""
    # (it may wait a moment: a replica acknowledges the newest offset when asked, as with Redis)
    assert master.wait_exit(10) == 0 and time.monotonic() - started < 2


def test_shutdown_now_skips_the_wait(pair: tuple[NodeProcess, NodeProcess]) -> None:
    master, replica = pair
    replica.signal(signal.SIGSTOP)
    r = master.client()
    r.set("k", "v")
    started = time.monotonic()
    assert send_shutdown(master.port, "NOW") == b""
    assert master.wait_exit(10) == 0 and time.monotonic() - started < 2


def test_a_replica_whose_connection_closes_is_dropped_at_once(pair: tuple[NodeProcess, NodeProcess]) -> None:
    master, replica = pair
    replica.kill()
    # Redis frees a replica's client when its socket closes; repl-timeout (60 s) is far longer than this.
    wait_for(lambda: online(master.client()) == 0, 10, what="the master to forget the killed replica")
    started = time.monotonic()
    master.signal(signal.SIGTERM)
    assert master.wait_exit(10) == 0 and time.monotonic() - started < 2


def test_force_exits_when_the_final_save_fails(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("node", save="3600 1")
    r = node.client()
    r.set("k", "v")
    # The save's temporary file cannot be made: a directory sits where it goes.
    (node.dir / f"temp-{node.pid}.rdb").mkdir()
    assert "Errors trying to SHUTDOWN" in error_of(r.shutdown)
    assert node.alive() and r.get("k") == b"v"
    assert send_shutdown(node.port, "FORCE") == b""
    assert node.wait_exit(10) == 0


def test_a_shutdown_while_the_first_aof_is_written_is_refused_unless_forced(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """Redis 7.0: with appendonly just turned on, the dataset is in no file until the first rewrite ends, so a
    shutdown is refused ("Writing initial AOF, can't exit.") unless FORCE. Same replies as redis-server."""
    (tmp_path / "redis").mkdir()
    server = redis_servers(tmp_path / "redis")
    node = node_factory("node")
    for client in (server.client, node.client()):
        client.set("k", "v")
        client.config_set(
            "rdb-key-save-delay", 1_000_000
        )  # (a microsecond per key: the rewrite takes its time)
        client.config_set("appendonly", "yes")
        assert "Errors trying to SHUTDOWN" in error_of(client.shutdown)
        assert client.get("k") == b"v"
    assert node.alive() and server.proc.poll() is None
    assert "Writing initial AOF, can't exit." in node.log()
    assert "Writing initial AOF, can't exit." in server.log_path.read_text()
    for port in (server.port, node.port):
        assert send_shutdown(port, "NOSAVE", "FORCE") == b""
    assert node.wait_exit(10) == 0 and server.proc.wait(10) == 0
    assert "Writing initial AOF. Exit anyway." in node.log()
    assert "Writing initial AOF. Exit anyway." in server.log_path.read_text()


@pytest.mark.parametrize(("words", "saved"), [("default", True), ("nosave", False), ("save now", True)])
def test_shutdown_on_sigterm_chooses_whether_sigterm_saves(
    node_factory: Callable[..., NodeProcess], words: str, saved: bool
) -> None:
    node = node_factory("node", save="3600 1")
    r = node.client(decode_responses=True)
    assert r.config_set("shutdown-on-sigterm", words)
    assert r.config_get("shutdown-on-sigterm") == {"shutdown-on-sigterm": words}
    r.set("k", "v")
    node.signal(signal.SIGTERM)
    assert node.wait_exit(10) == 0
    assert (node.dir / "dump.rdb").exists() is saved


def test_shutdown_on_sig_values_are_checked_as_redis_checks_them(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path).client
    values = ("save nosave", "bogus", "now default", "force now")
    assert config_set_differences(node.client(), reference, ["shutdown-on-sigint"], values) == []


def test_a_signalled_shutdown_whose_save_fails_serves_writes_again(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", shutdown_timeout=1, save="3600 1")
    replica = node_factory("replica", replicaof=f"127.0.0.1 {master.port}")
    r = master.client()
    wait_for(lambda: online(r) == 1, 20, what="the replica online")
    replica.signal(signal.SIGSTOP)
    try:
        r.set("k", "v")
        (master.dir / f"temp-{master.pid}.rdb").mkdir()  # the final save cannot make its file
        master.signal(signal.SIGTERM)
        wait_for(lambda: '"event": "shutdown_failed"' in master.log(), 10, what="the failed shutdown")
        assert master.alive()
        assert r.set("after", "1")  # the wait's write hold was lifted with it
    finally:
        replica.signal(signal.SIGCONT)
    (master.dir / f"temp-{master.pid}.rdb").rmdir()


def test_shutdown_timeout_values_are_checked_as_redis_checks_them(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path).client
    values = ("abc", "-1", "2147483648", "0", "7")
    assert config_set_differences(node.client(), reference, ["shutdown-timeout"], values) == []
