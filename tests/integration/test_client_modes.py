"""CLIENT PAUSE / UNPAUSE, CLIENT REPLY, CLIENT NO-EVICT against a real node, compared with redis-server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

RESP2: dict[str, Any] = {"protocol": 2}


@pytest.fixture
def reference(redis_servers: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    directory = tmp_path / "reference"
    directory.mkdir()
    return redis_servers(directory)


def _encode(*argv: str) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in argv)


def _wire(port: int, commands: list[list[str]], until: bytes = b"+PONG\r\n") -> bytes:
    """The raw bytes a fresh connection receives for ``commands`` followed by PING (up to its PONG)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(_encode(*argv) for argv in commands) + _encode("PING"))
        data = b""
        while not data.endswith(until):
            chunk = s.recv(65536)
            assert chunk, f"connection closed; got {data!r}"
            data += chunk
    return data


REPLY_SEQUENCES = [
    [["CLIENT", "REPLY", "OFF"], ["SET", "x", "1"], ["GET", "x"], ["CLIENT", "REPLY", "ON"], ["GET", "x"]],
    [["CLIENT", "REPLY", "SKIP"], ["GET", "x"], ["SET", "x", "2"], ["GET", "x"]],
    [["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "ON"], ["GET", "x"]],
    [["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "SKIP"], ["GET", "x"], ["GET", "x"]],
    [["CLIENT", "REPLY", "OFF"], ["CLIENT", "REPLY", "SKIP"], ["GET", "x"], ["CLIENT", "REPLY", "ON"]],
    [["CLIENT", "REPLY", "OFF"], ["NOSUCHCOMMAND"], ["CLIENT", "REPLY", "MAYBE"], ["CLIENT", "REPLY", "ON"]],
    [["CLIENT", "REPLY", "MAYBE"], ["CLIENT", "NO-EVICT", "maybe"], ["CLIENT", "NO-EVICT", "on"]],
]


@pytest.mark.parametrize("sequence", REPLY_SEQUENCES, ids=[str(i) for i in range(len(REPLY_SEQUENCES))])
def test_client_reply_sends_the_bytes_redis_sends(
    node: NodeProcess, reference: RedisServer, sequence: list[list[str]]
) -> None:
    for port in (node.port, reference.port):
        redis.Redis(port=port, **RESP2).set("x", "0")
    assert _wire(node.port, sequence) == _wire(reference.port, sequence)


def _quiet_subscriber_wire(port: int) -> bytes:
    publisher = redis.Redis(port=port, **RESP2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(_encode("CLIENT", "REPLY", "OFF") + _encode("SUBSCRIBE", "ch"))
        wait_for(lambda: publisher.pubsub_numsub("ch")[0][1] == 1, 5, what="the subscriber")
        assert publisher.publish("ch", "hidden") == 1
        s.sendall(_encode("UNSUBSCRIBE") + _encode("CLIENT", "REPLY", "ON") + _encode("PING"))
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            data += s.recv(4096)
    publisher.close()
    return data


def test_reply_off_still_delivers_pubsub_traffic_as_redis(node: NodeProcess, reference: RedisServer) -> None:
    ours = _quiet_subscriber_wire(node.port)
    assert ours == _quiet_subscriber_wire(reference.port)
    assert b"hidden" in ours and ours.endswith(b"+OK\r\n+PONG\r\n")  # pushes are not replies


def test_pause_write_holds_writes_not_reads_and_releases_them_in_order(node: NodeProcess) -> None:
    admin = node.client(**RESP2)
    admin.set("k", "old")
    admin.client_pause(10_000, all=False)
    results: list[Any] = []

    def writer() -> None:
        c = node.client(**RESP2)
        results.append(c.set("k", "new"))
        results.append(c.get("k"))
        c.close()

    thread = threading.Thread(target=writer)
    thread.start()
    wait_for(lambda: any("b" in c["flags"] for c in admin.client_list()), 5, what="the writer to be held")
    assert admin.get("k") == b"old"  # reads run
    # CLIENT UNBLOCK does not release a held client (redis-server 7.0.15 crashes on it: see the README).
    held = next(c for c in admin.client_list() if "b" in c["flags"])
    assert admin.execute_command("CLIENT", "UNBLOCK", held["id"], "ERROR") == 0
    assert results == []
    started = time.monotonic()
    assert admin.client_unpause()
    thread.join(5)
    assert results == [True, b"new"]
    assert time.monotonic() - started < 2
    admin.close()


def test_pause_ends_by_itself_and_all_holds_every_command(node: NodeProcess) -> None:
    admin = node.client(**RESP2)
    admin.client_pause(400)  # ALL
    other = node.client(**RESP2)
    started = time.monotonic()
    assert other.ping()
    waited = time.monotonic() - started
    assert 0.2 < waited < 5, waited
    admin.close()
    other.close()


def test_pause_write_lets_no_writes_scripts_run_as_redis(node: NodeProcess, reference: RedisServer) -> None:
    """EVAL / EVALSHA / FCALL of a script declaring no-writes run during CLIENT PAUSE WRITE (Redis 7.0.1+),
    alone and inside MULTI, and so do SCRIPT and FUNCTION LIST; a script without a shebang is held, and runs
    once the pause ends."""
    lib = "#!lua name=rolib\nredis.register_function{function_name='rof', callback=function() return 'ro' end, flags={'no-writes'}}"
    ro_script = "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])"
    replies: dict[str, list[Any]] = {}
    for name, port in (("ours", node.port), ("redis", reference.port)):
        admin = redis.Redis(port=port, **RESP2)
        admin.set("k", "v")
        admin.execute_command("FUNCTION", "LOAD", "REPLACE", lib)
        sha = admin.script_load(ro_script)
        admin.client_pause(60_000, all=False)
        got: list[Any] = []
        with redis.Redis(port=port, socket_timeout=5, **RESP2) as c:
            got.append(c.eval(ro_script, 1, "k"))
            got.append(c.evalsha(sha, 1, "k"))
            got.append(c.execute_command("FCALL", "rof", 0))
            got.append(c.script_load("return 3"))  # SCRIPT and FUNCTION's read subcommands are not held
            got.append(c.script_exists(sha))
            got.append(len(c.execute_command("FUNCTION", "LIST")))
            pipe = c.pipeline(transaction=True)
            pipe.eval(ro_script, 1, "k")
            pipe.execute_command("FCALL", "rof", 0)
            got.append(pipe.execute())
        held: list[Any] = []

        def write_script(port: int = port, held: list[Any] = held) -> None:
            with redis.Redis(port=port, **RESP2) as writer_client:
                held.append(writer_client.eval("return 1", 0))

        writer = threading.Thread(target=write_script)
        writer.start()

        def script_held(admin: redis.Redis = admin) -> bool:
            return int(admin.info("clients")["blocked_clients"]) == 1

        wait_for(script_held, 10, what="the script to be held")
        got.append(held[:])
        admin.client_unpause()
        writer.join(10)
        got.append(held)
        admin.execute_command("FUNCTION", "DELETE", "rolib")
        admin.close()
        replies[name] = got
    assert replies["ours"] == replies["redis"]
    assert replies["ours"][-2:] == [[], [1]]


def test_read_only_scripts_refuse_may_replicate_commands_as_redis(
    node: NodeProcess, reference: RedisServer
) -> None:
    """PUBLISH / PFCOUNT from EVAL_RO or a no-writes script: refused as writes (Redis 7.0.1+); from EVAL: run."""
    scripts = [
        ("EVAL_RO", "return redis.call('publish','ch','msg')"),
        ("EVAL_RO", "return redis.call('pfcount','hll')"),
        ("EVAL", "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')"),
        ("EVAL", "return redis.call('publish','ch','msg')"),
        ("EVAL_RO", "return redis.call('get','hll')"),
    ]
    replies: dict[str, list[Any]] = {}
    for name, port in (("ours", node.port), ("redis", reference.port)):
        with redis.Redis(port=port, **RESP2) as c:
            got: list[Any] = []
            for command, body in scripts:
                try:
                    got.append(c.execute_command(command, body, 0))
                except redis.ResponseError as exc:
                    got.append(str(exc).split(" script:")[0])
            replies[name] = got
    assert replies["ours"] == replies["redis"]
    assert replies["ours"][0] == "Write commands are not allowed from read-only scripts."


def test_expired_keys_stay_while_paused(node: NodeProcess) -> None:
    admin = node.client(**RESP2)
    admin.set("gone", "v", px=50)
    admin.client_pause(10_000, all=False)
    wait_for(lambda: admin.get("gone") is None, 5, what="the key to read as expired")
    assert admin.dbsize() == 1  # read as missing, not deleted: the dataset stays constant
    admin.client_unpause()
    wait_for(lambda: admin.dbsize() == 0, 5, what="expiry to resume")
    admin.close()


@pytest.mark.parametrize(
    "argv",
    [["PAUSE", "abc"], ["PAUSE", "-1"], ["PAUSE", "10", "foo"], ["PAUSE"], ["UNPAUSE", "x"], ["REPLY", "x"]],
)
def test_pause_errors_are_redis_errors(node: NodeProcess, reference: RedisServer, argv: list[str]) -> None:
    replies = []
    for port in (node.port, reference.port):
        c = redis.Redis(port=port, **RESP2)
        try:
            replies.append(c.execute_command("CLIENT", *argv))
        except redis.ResponseError as exc:
            replies.append(str(exc))
        c.close()
    assert replies[0] == replies[1]


def test_no_evict_shows_in_client_list_flags(node: NodeProcess) -> None:
    c = node.client(**RESP2)
    assert c.execute_command("CLIENT", "NO-EVICT", "on") == b"OK"
    assert "e" in c.client_info()["flags"]
    assert c.execute_command("CLIENT", "NO-EVICT", "off") == b"OK"
    assert c.client_info()["flags"] == "N"
    c.close()
