"""Blocking commands across real connections: a waiting client does not block the node, is woken by another
client's write in arrival order, times out with Redis 7.0's null replies, and is forgotten when it leaves.

A waiter is a raw redis-py connection: ``send_command`` starts the blocking command and ``read_response``
collects the reply once the test has made it possible; ``wait_for`` on INFO's blocked_clients replaces sleeps.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from tests.harness import NodeProcess, wait_for
from tests.integration.shared import module_node_fixture

node = module_node_fixture()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    client = node.client(protocol=2)
    client.flushall()
    wait_for(lambda: blocked_clients(client) == 0, what="no client blocked from an earlier test")
    yield client
    client.close()


@pytest.fixture
def waiters(node: NodeProcess) -> Iterator[list[Connection]]:
    """Fresh RESP2 connections that block; closed after the test."""
    made: list[Connection] = []
    yield made
    for conn in made:
        conn.disconnect()


def connect(node: NodeProcess, waiters: list[Connection], db: int = 0) -> Connection:
    conn = Connection(port=node.port, protocol=2, db=db, socket_timeout=10)
    conn.connect()
    waiters.append(conn)
    return conn


def blocked_clients(r: redis.Redis) -> int:
    return int(r.info("clients")["blocked_clients"])


def start(r: redis.Redis, conn: Connection, *argv: Any, expect_blocked: int = 1) -> None:
    """Send a blocking command on ``conn`` and wait until the node reports ``expect_blocked`` waiters."""
    conn.send_command(*argv)
    wait_for(lambda: blocked_clients(r) == expect_blocked, what=f"{expect_blocked} blocked client(s)")


def test_blpop_waits_until_another_client_pushes(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLPOP", "q", "0")
    assert r.ping() is True  # the node serves others meanwhile
    assert r.set("other", "v") is True
    assert "b" in next(c["flags"] for c in r.client_list() if c["cmd"] == "blpop")
    assert r.rpush("q", "a", "b") == 2
    assert conn.read_response() == [b"q", b"a"]
    assert r.lrange("q", 0, -1) == [b"b"]
    assert blocked_clients(r) == 0


def test_two_waiters_are_served_in_arrival_order(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    first, second, third = (connect(node, waiters) for _ in range(3))
    start(r, first, "BLPOP", "q", "0")
    start(r, second, "BRPOP", "nothing", "q", "0", expect_blocked=2)
    start(r, third, "BLPOP", "q", "0", expect_blocked=3)
    assert r.rpush("q", "1", "2") == 2
    assert first.read_response() == [b"q", b"1"]
    assert second.read_response() == [b"q", b"2"]
    assert blocked_clients(r) == 1
    assert r.exists("q") == 0
    r.lpush("q", "3")
    assert third.read_response() == [b"q", b"3"]


def test_a_pipelined_pop_after_the_push_finds_the_waiter_already_served(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLPOP", "q", "0")
    pipe = r.pipeline(transaction=False)
    pipe.rpush("q", "x")
    pipe.lpop("q")
    assert pipe.execute() == [1, None]
    assert conn.read_response() == [b"q", b"x"]


def test_timeouts_answer_with_null_replies(node: NodeProcess, r: redis.Redis) -> None:
    started = time.monotonic()
    assert r.blpop(["q"], 0.2) is None
    assert time.monotonic() - started >= 0.19
    assert r.bzpopmax(["z"], 0.01) is None
    assert r.blmove("q", "d", 0.01, "LEFT", "LEFT") is None
    # On the wire Redis 7.0 answers every timed-out wait with a null array, BLMOVE and BRPOPLPUSH included.
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(
            b"*4\r\n$10\r\nBRPOPLPUSH\r\n$1\r\nq\r\n$1\r\nd\r\n$4\r\n0.01\r\n"
            b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$4\r\n0.01\r\n"
        )
        data = b""
        while data.count(b"\r\n") < 2:
            data += s.recv(100)
    assert data == b"*-1\r\n*-1\r\n"
    assert blocked_clients(r) == 0


def test_blocking_commands_inside_multi_answer_at_once(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.blpop(["q"], 0)
    pipe.bzpopmin(["z"], 0)
    pipe.brpoplpush("q", "d", 0)
    assert pipe.execute() == [None, None, None]
    r.rpush("q", "x")
    pipe = r.pipeline(transaction=True)
    pipe.blpop(["q"], 0)
    pipe.blpop(["q"], 0)
    assert pipe.execute() == [(b"q", b"x"), None]


def test_blmove_and_brpoplpush_wake_and_move(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    mover, popper = connect(node, waiters), connect(node, waiters)
    start(r, popper, "BLPOP", "dst", "0")
    start(r, mover, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0", expect_blocked=2)
    r.rpush("src", "a", "b")
    assert mover.read_response() == b"b"
    assert popper.read_response() == [b"dst", b"b"]  # the move made dst ready for its own waiter
    assert r.lrange("src", 0, -1) == [b"a"]
    assert r.exists("dst") == 0
    start(r, mover, "BRPOPLPUSH", "other", "dst2", "0")
    r.lpush("other", "z")
    assert mover.read_response() == b"z"
    assert r.lrange("dst2", 0, -1) == [b"z"]


def test_blmove_into_a_wrong_type_destination_errors_and_moves_nothing(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    r.set("dst", "string")
    start(r, conn, "BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
    r.rpush("src", "x")
    with pytest.raises(redis.ResponseError) as info:
        conn.read_response()
    assert str(info.value) == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert r.lrange("src", 0, -1) == [b"x"]


def test_multi_pops_and_sorted_set_pops_wake(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "5")
    r.rpush("m2", "1", "2", "3")
    assert conn.read_response() == [b"m2", [b"3", b"2", b"1"]]
    start(r, conn, "BZPOPMIN", "z1", "z2", "0")
    r.zadd("z2", {"a": 1, "b": 2})
    assert conn.read_response() == [b"z2", b"a", b"1"]
    start(r, conn, "BZPOPMAX", "z3", "0")
    r.zincrby("z3", 2.5, "m")
    assert conn.read_response() == [b"z3", b"m", b"2.5"]
    start(r, conn, "BZMPOP", "0", "1", "z4", "MAX", "COUNT", "2")
    r.zadd("z4", {"a": 1, "b": 2, "c": 3})
    assert conn.read_response() == [b"z4", [[b"c", b"3"], [b"b", b"2"]]]
    assert r.zrange("z4", 0, -1) == [b"a"]


def test_waiters_keep_waiting_through_type_changes(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BZPOPMIN", "k", "0")
    r.rpush("k", "a")  # a list does not serve a sorted-set waiter
    r.delete("k")
    r.set("k", "x")
    r.delete("k")
    assert blocked_clients(r) == 1
    r.zadd("k", {"m": 7})
    assert conn.read_response() == [b"k", b"m", b"7"]


def test_rename_and_lmove_into_a_waited_key_wake_it(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLPOP", "target", "0")
    r.rpush("staging", "v")
    assert r.rename("staging", "target") is True
    assert conn.read_response() == [b"target", b"v"]
    start(r, conn, "BRPOP", "target", "0")
    r.rpush("src", "w")
    assert r.lmove("src", "target", "LEFT", "LEFT") == b"w"
    assert conn.read_response() == [b"target", b"w"]


def test_waiters_are_per_database(node: NodeProcess, r: redis.Redis, waiters: list[Connection]) -> None:
    conn = connect(node, waiters, db=1)
    start(r, conn, "BLPOP", "q", "0")
    r.rpush("q", "db0")
    assert blocked_clients(r) == 1
    db1 = node.client(protocol=2, db=1)
    db1.rpush("q", "db1")
    assert conn.read_response() == [b"q", b"db1"]
    assert r.lrange("q", 0, -1) == [b"db0"]
    db1.close()


def test_pipelined_commands_behind_a_block_run_after_it(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    conn.send_packed_command(conn.pack_commands([("BLPOP", "q", "0"), ("RPUSH", "log", "after"), ("PING",)]))
    wait_for(lambda: blocked_clients(r) == 1, what="one blocked client")
    assert r.exists("log") == 0  # queued behind the block
    r.rpush("q", "x")
    assert conn.read_response() == [b"q", b"x"]
    assert conn.read_response() == 1
    assert conn.read_response() == b"PONG"


def test_a_disconnected_waiter_is_forgotten(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLPOP", "q", "0")
    conn.disconnect()
    wait_for(lambda: blocked_clients(r) == 0, what="the waiter to be forgotten")
    assert r.rpush("q", "kept") == 1
    assert r.lrange("q", 0, -1) == [b"kept"]


def test_client_kill_ends_a_wait(node: NodeProcess, r: redis.Redis, waiters: list[Connection]) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BRPOP", "q", "0")
    victim = next(c for c in r.client_list() if c["cmd"] == "brpop")
    assert r.client_kill_filter(_id=victim["id"]) == 1
    wait_for(lambda: blocked_clients(r) == 0, what="the killed waiter to be forgotten")
    r.rpush("q", "kept")
    assert r.llen("q") == 1


def test_a_timed_out_waiter_is_not_served_later(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    conn.send_command("BLPOP", "q", "0.05")
    assert conn.read_response() is None
    assert blocked_clients(r) == 0
    r.rpush("q", "kept")
    assert r.llen("q") == 1


def test_client_unblock_with_timeout_or_error(
    node: NodeProcess, r: redis.Redis, waiters: list[Connection]
) -> None:
    conn = connect(node, waiters)
    start(r, conn, "BLPOP", "q", "0")
    waiter_id = next(c["id"] for c in r.client_list() if c["cmd"] == "blpop")
    assert r.execute_command("CLIENT", "UNBLOCK", waiter_id) == 1
    assert conn.read_response() is None
    start(r, conn, "BZPOPMIN", "z", "0")
    assert r.execute_command("CLIENT", "UNBLOCK", waiter_id, "ERROR") == 1
    with pytest.raises(redis.ResponseError) as info:
        conn.read_response()
    assert str(info.value) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    assert r.execute_command("CLIENT", "UNBLOCK", waiter_id) == 0
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command("CLIENT", "UNBLOCK", waiter_id, "LATER")
    assert str(info.value) == "CLIENT UNBLOCK reason should be TIMEOUT or ERROR"


def _flush_and_destroy_wake_group_readers(port: int) -> list[Any]:
    """FLUSHALL, FLUSHDB and XGROUP DESTROY under blocked stream readers: what each waiter gets and what the
    node counts (run against a node and against redis-server)."""
    r = redis.Redis(port=port, protocol=2, socket_timeout=10)
    conns = [Connection(port=port, protocol=2, socket_timeout=10) for _ in range(2)]
    seen: list[Any] = []
    try:
        r.flushall()
        for conn in conns:
            conn.connect()  # before RESETSTAT: redis-py's handshake has error replies on redis-server 7.0
        r.config_resetstat()
        group_reader, reader = conns
        for flush in ("FLUSHALL", "FLUSHDB"):
            r.delete("s", "plain")
            r.xadd("s", {"f": "v"}, id="1-1")
            r.xgroup_create("s", "g", id="$")
            r.xadd("plain", {"f": "v"}, id="1-1")
            start(r, group_reader, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
            start(r, reader, "XREAD", "BLOCK", "0", "STREAMS", "plain", "$", expect_blocked=2)
            r.execute_command(flush)
            with pytest.raises(redis.ResponseError) as info:
                group_reader.read_response()
            seen.append(str(info.value))
            wait_for(lambda: blocked_clients(r) == 1, what="the XREAD waiter still waiting")
            r.xadd("plain", {"f": "new"}, id="2-1")  # a stream again: XREAD is served
            seen.append(reader.read_response())
        r.xgroup_create("s", "g", id="$", mkstream=True)
        start(r, group_reader, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        r.xgroup_destroy("s", "g")
        with pytest.raises(redis.ResponseError) as info:
            group_reader.read_response()
        seen.append(str(info.value))
        stats = r.info("stats")["total_error_replies"], r.info("errorstats")
        xreadgroup = r.info("commandstats")["cmdstat_xreadgroup"]
        seen.append((stats, xreadgroup["calls"], xreadgroup["failed_calls"], xreadgroup["rejected_calls"]))
    finally:
        for conn in conns:
            conn.disconnect()
        r.close()
    return seen


def test_flushes_and_group_destroy_answer_blocked_group_readers_with_errors_counted_as_redis(
    node: NodeProcess, redis_servers: Any, tmp_path: Any
) -> None:
    ours = _flush_and_destroy_wake_group_readers(node.port)
    theirs = _flush_and_destroy_wake_group_readers(redis_servers(tmp_path).port)
    assert ours == theirs
    assert ours[0] == "UNBLOCKED the stream key no longer exists"
    assert ours[-1] == (
        (3, {"errorstat_NOGROUP": {"count": 1}, "errorstat_UNBLOCKED": {"count": 2}}),
        3,
        3,
        0,
    )
