"""Client-side caching (CLIENT TRACKING) against a real node, byte for byte against redis-server.

Each scenario runs on both servers through raw sockets (RESP3 pushes and RESP2 redirection are wire
details redis-py hides); client ids differ between the two, so they are replaced by placeholders first.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

RESP2: dict[str, Any] = {"protocol": 2}
PONG = b"+PONG\r\n"


@pytest.fixture
def reference(redis_servers: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    directory = tmp_path / "reference"
    directory.mkdir()
    return redis_servers(directory)


def _enc(*argv: bytes | str) -> bytes:
    parts = [a if isinstance(a, bytes) else a.encode() for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Conn:
    """A raw connection: ``talk`` sends commands then PING and returns everything up to the PONG."""

    def __init__(self, port: int, resp3: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.id = int(self.talk(["CLIENT", "ID"])[1 : -2 - len(PONG)])
        if resp3:
            self.talk(["HELLO", "3"])

    def read_until(self, done: Callable[[bytes], bool]) -> bytes:
        while not done(self.buffer):
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {self.buffer!r}"
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        return data

    def talk(self, *commands: list[str | bytes]) -> bytes:
        self.sock.sendall(b"".join(_enc(*argv) for argv in commands) + _enc("PING"))
        return self.read_until(lambda data: data.endswith(PONG))

    def close(self) -> None:
        self.sock.close()


def _scenario(port: int) -> list[bytes]:
    """A tour of the tracking modes; returns what each step received, ids replaced by placeholders."""
    out: list[bytes] = []
    writer = Conn(port)
    writer.talk(["FLUSHALL"])
    me = Conn(port, resp3=True)
    # Default mode: reads are remembered, own writes invalidate after the reply, FLUSHDB invalidates all.
    out.append(
        me.talk(["CLIENT", "TRACKING", "on"], ["GET", "k"], ["SET", "k", "v"], ["GET", "k"], ["FLUSHDB"])
    )
    out.append(me.talk(["CLIENT", "TRACKINGINFO"], ["CLIENT", "GETREDIR"], ["MGET", "a", "b"], ["GET", "c"]))
    writer.talk(["MSET", "a", "1", "b", "2"], ["SET", "c", "3"], ["SET", "a", "again"])
    out.append(me.talk())
    # Scripts (Redis 7.0): once a script reads, the keys its caller declared are remembered; keys it reads
    # without declaring them are not, nor the keys of a script that only writes.
    out.append(
        me.talk(
            ["EVAL", "return redis.call('GET', KEYS[1])", "2", "s1", "s2"],
            ["EVAL", "redis.call('SET', 's3', 'x') return redis.call('MGET', 's4', 's5')", "0"],
            ["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "s6"],
            ["EVAL", "return redis.call('SET', KEYS[1], 'w')", "1", "s7"],
        )
    )
    writer.talk(
        ["MSET", "s1", "1", "s2", "2", "s3", "3"], ["MSET", "s4", "4", "s5", "5", "s6", "6", "s7", "7"]
    )
    out.append(me.talk())
    # Mode errors, then BCAST with prefixes and NOLOOP.
    out.append(me.talk(["CLIENT", "TRACKING", "on", "bcast"], ["CLIENT", "TRACKING", "on", "prefix", "x"]))
    out.append(
        me.talk(
            ["CLIENT", "TRACKING", "off"],
            ["CLIENT", "TRACKING", "on", "bcast", "prefix", "a", "prefix", "ab"],
        )
    )
    out.append(me.talk(["CLIENT", "TRACKING", "on", "bcast", "prefix", "b", "noloop"], ["SET", "b1", "1"]))
    out.append(me.talk(["CLIENT", "TRACKING", "on", "bcast", "prefix", "bb"], ["CLIENT", "TRACKINGINFO"]))
    writer.talk(["SET", "b2", "1"], ["MSET", "b3", "1", "b4", "2"], ["SET", "c", "1"])
    out.append(me.talk())
    # OPTIN / OPTOUT and CLIENT CACHING.
    out.append(
        me.talk(
            ["CLIENT", "TRACKING", "off"],
            ["CLIENT", "TRACKING", "on", "optin"],
            ["GET", "k1"],
            ["CLIENT", "CACHING", "yes"],
            ["GET", "k2"],
            ["GET", "k3"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "CACHING", "no"],
            ["CLIENT", "TRACKING", "on", "optout"],
        )
    )
    writer.talk(["MSET", "k1", "1", "k2", "2", "k3", "3"])
    out.append(me.talk())
    out.append(
        me.talk(
            ["CLIENT", "TRACKING", "off"],
            ["CLIENT", "TRACKING", "on", "optout"],
            ["CLIENT", "CACHING", "no"],
            ["GET", "k1"],
            ["GET", "k2"],
            ["MULTI"],
            ["GET", "k3"],
            ["EXEC"],
        )
    )
    writer.talk(["MSET", "k1", "1", "k2", "2", "k3", "3"])
    out.append(
        me.talk(["CLIENT", "CACHING", "yes"], ["CLIENT", "CACHING", "maybe"], ["CLIENT", "TRACKING", "off"])
    )
    out.append(me.talk(["CLIENT", "CACHING", "no"], ["CLIENT", "TRACKINGINFO"], ["CLIENT", "GETREDIR"]))
    # RESP2 redirection to a subscriber of __redis__:invalidate; then the redirect target goes away.
    sub = Conn(port)
    sub.sock.sendall(_enc("SUBSCRIBE", "__redis__:invalidate"))
    sub.read_until(lambda data: data.endswith(b":1\r\n"))
    tracked = Conn(port)
    out.append(
        tracked.talk(
            ["CLIENT", "TRACKING", "on", "REDIRECT", str(sub.id)], ["GET", "r"], ["CLIENT", "GETREDIR"]
        )
    )
    out.append(
        tracked.talk(
            ["CLIENT", "TRACKING", "on", "REDIRECT", "999999"], ["CLIENT", "LIST", "ID", str(tracked.id)]
        )
    )
    writer.talk(["SET", "r", "1"], ["FLUSHALL"])
    out.append(sub.read_until(lambda data: data.count(b"message") == 2))
    sub.close()
    probe = redis.Redis(port=port, **RESP2)
    wait_for(
        lambda: sub.id not in [int(c["id"]) for c in probe.client_list()], 5, what="the subscriber to go"
    )
    out.append(tracked.talk(["GET", "r2"]))
    writer.talk(["SET", "r2", "1"])
    out.append(tracked.talk(["CLIENT", "TRACKINGINFO"], ["HELLO", "3"]))
    writer.talk(["GET", "r2"])
    out.append(b"tracking_clients:%d" % probe.info("clients")["tracking_clients"])
    probe.close()
    for conn in (writer, me, tracked):
        conn.close()
    return [_normalise(chunk, {sub.id: b"SUB", tracked.id: b"TRACKED", me.id: b"ME"}) for chunk in out]


def _normalise(data: bytes, ids: dict[int, bytes]) -> bytes:
    for client_id, name in ids.items():
        data = data.replace(b":%d\r\n" % client_id, b":<%s>\r\n" % name).replace(
            b"id=%d " % client_id, b"id=<%s> " % name
        )
        data = data.replace(b"redir=%d " % client_id, b"redir=<%s> " % name)
    return data


def _client_list_fields(data: bytes) -> bytes:
    """CLIENT LIST lines keep only what both servers can agree on: flags and redir."""
    import re

    return re.sub(
        rb"(=\d+\r\ntxt:|\$\d+\r\n)id=.*?flags=(\S+).*?redir=(\S+).*?\n", rb"<flags=\2 redir=\3>", data
    )


def test_tracking_scenario_matches_redis(node: NodeProcess, reference: RedisServer) -> None:
    ours = [_client_list_fields(chunk) for chunk in _scenario(node.port)]
    theirs = [_client_list_fields(chunk) for chunk in _scenario(reference.port)]
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"step {i}: ours {a!r} theirs {b!r}"


def test_tracking_table_max_keys_invalidates_the_overflow(node: NodeProcess) -> None:
    admin = node.client(**RESP2)
    admin.config_set("tracking-table-max-keys", "2")
    me = Conn(node.port, resp3=True)
    got = me.talk(["CLIENT", "TRACKING", "on"], ["GET", "a"], ["GET", "b"], ["GET", "c"])
    assert got.count(b"invalidate") == 1  # the table held two keys: one of a, b went to make room for c
    admin.config_set("tracking-table-max-keys", "1000000")
    me.close()
    admin.close()


def test_expiry_invalidates_tracked_keys(node: NodeProcess) -> None:
    admin = node.client(**RESP2)
    admin.set("soon", "v", px=100)
    me = Conn(node.port, resp3=True)
    me.talk(["CLIENT", "TRACKING", "on"], ["GET", "soon"])
    pushed = me.read_until(lambda data: b"soon" in data)  # active expiry deletes it: an invalidation
    assert pushed.startswith(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\nsoon\r\n")
    me.close()
    admin.close()
