"""Replies Redis's own Tcl units (expire, dump, protocol, other) showed missing or different, each compared
with a real redis-server: DEBUG PROTOCOL's RESP types, MODULE with no module loadable, INFO's
migrate_cached_sockets and DEBUG LOADAOF (the SELECT at the head of every new SYNC replica's stream is in
test_resp_replica.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.compat

PROTOCOL_TYPES = [
    "string", "integer", "double", "bignum", "null", "array", "set", "map",
    "attrib", "push", "verbatim", "true", "false", "nosuchtype",
]  # fmt: skip
END_MARK = b"$8\r\nEND-MARK\r\n"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, RedisServer]]:
    """One node and one redis-server for the module (DEBUG enabled on both)."""
    node = NodeProcess(tmp_path_factory.mktemp("node")).start()
    reference = RedisServer(tmp_path_factory.mktemp("redis"))
    yield node, reference
    node.stop()
    reference.stop()


def _read_until(sock: socket.socket, suffix: bytes) -> bytes:
    got = b""
    while not got.endswith(suffix):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {got!r}"
        got += chunk
    return got


def _protocol_replies(port: int, resp3: bool) -> bytes:
    """The raw bytes of DEBUG PROTOCOL <type> for every type, pipelined on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if resp3:
            sock.sendall(b"HELLO 3\r\nPING\r\n")
            _read_until(sock, b"+PONG\r\n")
        sock.sendall(b"".join(b"DEBUG PROTOCOL %s\r\n" % name.encode() for name in PROTOCOL_TYPES))
        sock.sendall(b"ECHO END-MARK\r\n")
        return _read_until(sock, END_MARK)


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_debug_protocol_sends_redis_bytes(pair: tuple[NodeProcess, RedisServer], resp3: bool) -> None:
    node, reference = pair
    assert _protocol_replies(node.port, resp3) == _protocol_replies(reference.port, resp3)


def _module_replies(r: redis.Redis) -> list[Any]:
    out: list[Any] = []
    for argv in (
        ["MODULE", "HELP"],
        ["MODULE", "LIST"],
        ["MODULE", "LOAD", "/nonexistent/module.so"],
        ["MODULE", "LOADEX", "/nonexistent/module.so"],
        ["MODULE", "UNLOAD", "nosuchmodule"],
        ["MODULE", "LIST", "extra"],
        ["MODULE", "NOSUCH"],
    ):
        try:
            out.append(r.execute_command(*argv))
        except redis.ResponseError as exc:
            out.append(f"error: {exc}")
    return out


def test_module_help_list_and_refused_loads_match_redis(pair: tuple[NodeProcess, RedisServer]) -> None:
    node, reference = pair
    ours = redis.Redis(port=node.port, socket_timeout=10, protocol=2)
    theirs = redis.Redis(port=reference.port, socket_timeout=10, protocol=2)
    try:
        assert _module_replies(ours) == _module_replies(theirs)
    finally:
        ours.close()
        theirs.close()


def _info_field(r: redis.Redis, name: str) -> Any:
    return r.info("stats")[name]


def test_info_counts_migrate_cached_sockets(pair: tuple[NodeProcess, RedisServer], tmp_path: Path) -> None:
    """Both servers MIGRATE to the same third server: each then keeps one cached connection to it."""
    node, reference = pair
    target = RedisServer(tmp_path)
    try:
        for port in (node.port, reference.port):
            r = redis.Redis(port=port, socket_timeout=10, protocol=2)
            try:
                r.flushall()
                assert _info_field(r, "migrate_cached_sockets") == 0
                r.set(f"k{port}", "v")
                assert r.migrate("127.0.0.1", target.port, f"k{port}", 0, 5000) == b"OK"
                assert _info_field(r, "migrate_cached_sockets") == 1
            finally:
                r.close()
    finally:
        target.stop()


def _loadaof_outcome(r: redis.Redis) -> list[Any]:
    r.flushall()
    r.config_set("appendonly", "yes")

    def base_written() -> bool:
        info = r.info("persistence")
        return info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0

    wait_for(base_written, 30, what="the first AOF base")
    r.set("plain", "v")
    r.set("ttl", "v", ex=100)
    r.set("keep", "v", ex=100)
    r.set("keep", "v2", keepttl=True)
    r.set("persisted", "v", ex=100)
    r.getex("persisted", persist=True)
    r.rpush("list", "a", "b")
    r.select(3)
    r.set("other-db", "x")
    r.select(0)
    before = r.execute_command("DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "LOADAOF") == b"OK"
    out = [r.execute_command("DEBUG", "DIGEST") == before, r.get("keep"), r.lrange("list", 0, -1)]
    out += [r.ttl("plain"), 90 <= r.ttl("ttl") <= 100, 90 <= r.ttl("keep") <= 100, r.ttl("persisted")]
    r.config_set("appendonly", "no")
    return out


def test_debug_loadaof_reloads_the_aof(pair: tuple[NodeProcess, RedisServer]) -> None:
    node, reference = pair
    for port in (node.port, reference.port):
        r = redis.Redis(port=port, socket_timeout=30, protocol=2)
        try:
            assert _loadaof_outcome(r) == [True, b"v2", [b"a", b"b"], -1, True, True, -1]
        finally:
            r.close()


def _restored_access(r: redis.Redis) -> list[Any]:
    r.flushall()
    r.set("src", "bar")
    payload = r.dump("src")
    out: list[Any] = []
    try:
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.restore("lru", 0, payload, idletime=1000)
        out.append(1000 <= r.object("idletime", "lru") <= 1010)
        r.config_set("maxmemory-policy", "allkeys-lfu")
        r.restore("lfu", 0, payload, frequency=100)
        out.append(r.object("freq", "lfu") in (99, 100))  # 99 if a minute boundary passed in between
        out.append(r.get("lfu"))
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    return out


def test_restore_idletime_and_freq_set_the_access_stamp(pair: tuple[NodeProcess, RedisServer]) -> None:
    node, reference = pair
    for port in (reference.port, node.port):
        r = redis.Redis(port=port, socket_timeout=10, protocol=2)
        try:
            assert _restored_access(r) == [True, True, b"bar"], port
        finally:
            r.close()
