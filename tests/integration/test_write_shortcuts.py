"""MSET, INCR and HSET skip work in the common state (nobody to tell: no keyspace events, no WATCH, no blocked
or tracking client; no TTL and no maxmemory bookkeeping; nothing consuming the propagation stream). These check
each state that needs the work still gets it, through a real node, unpipelined (one command per read, the
dispatcher's general path) and pipelined (the general lane): WATCH fails the EXEC, keyspace events are
published, tracking clients are invalidated, TTLs are dropped (MSET) or kept (INCR), WRONGTYPE is answered,
maxmemory's accounting still runs, and the AOF gets the very commands."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis

from protocol.resp import encode_command
from tests.harness import NodeProcess, wait_for
from tests.integration.shared import module_node_fixture, resp2_client_fixture

node = module_node_fixture()
r = resp2_client_fixture()

# (command, the keys it writes, the keyspace event it publishes)
WRITES: list[tuple[list[bytes], list[bytes], bytes]] = [
    ([b"MSET", b"k1", b"1", b"k2", b"2"], [b"k1", b"k2"], b"set"),
    ([b"INCR", b"k1"], [b"k1"], b"incrby"),
    ([b"HSET", b"h", b"f", b"v"], [b"h"], b"hset"),
]


class Resp:
    """A raw connection that reads whole RESP values (pushes included)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.reader = hiredis.Reader()

    def call(self, *argv: bytes, count: int = 1) -> Any:
        self.sock.sendall(b"".join(encode_command(list(argv)) for _ in range(count)))
        return [self.next() for _ in range(count)][-1]

    def next(self) -> Any:
        while True:
            value = self.reader.gets()
            if value is not False:
                return value
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.reader.feed(chunk)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def resp(node: NodeProcess) -> Iterator[Callable[[], Resp]]:
    made: list[Resp] = []

    def make() -> Resp:
        made.append(Resp(node.port))
        return made[-1]

    yield make
    for conn in made:
        conn.close()


def _run(conn: Resp, argv: list[bytes], pipelined: bool) -> Any:
    """``argv`` alone in its read, or twice in one read (the general lane runs the pipeline)."""
    return conn.call(*argv, count=2 if pipelined else 1)


@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize(("argv", "keys", "event"), WRITES)
def test_a_watched_key_written_fails_the_exec(
    r: redis.Redis,
    resp: Callable[[], Resp],
    argv: list[bytes],
    keys: list[bytes],
    event: bytes,
    pipelined: bool,
) -> None:
    writer = resp()
    for key in keys:
        r.set("k1", "5")  # existing keys: the writes that replace or change a value in place
        r.hset("h", "f", "old")
        with r.pipeline(transaction=True) as tx:
            tx.watch(key)
            _run(writer, argv, pipelined)
            tx.multi()
            tx.set("other", "x")
            with pytest.raises(redis.WatchError):
                tx.execute()


@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize(("argv", "keys", "event"), WRITES)
def test_writes_publish_keyspace_events_when_they_are_on(
    r: redis.Redis,
    resp: Callable[[], Resp],
    argv: list[bytes],
    keys: list[bytes],
    event: bytes,
    pipelined: bool,
) -> None:
    r.config_set("notify-keyspace-events", "KEA")
    try:
        listener = resp()
        listener.call(b"PSUBSCRIBE", b"__keyevent@0__:*")
        _run(resp(), argv, pipelined)
        got = [listener.next() for _ in range(len(keys) * (2 if pipelined else 1))]
        assert got == [
            [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:" + event, key] for key in keys
        ] * (2 if pipelined else 1)
    finally:
        r.config_set("notify-keyspace-events", "")


@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize(("argv", "keys", "event"), WRITES)
def test_writes_invalidate_a_tracking_client(
    r: redis.Redis,
    resp: Callable[[], Resp],
    argv: list[bytes],
    keys: list[bytes],
    event: bytes,
    pipelined: bool,
) -> None:
    r.set("k1", "5")
    r.hset("h", "f", "old")
    tracker = resp()
    tracker.call(b"HELLO", b"3")
    assert tracker.call(b"CLIENT", b"TRACKING", b"ON") == b"OK"
    for key in keys:
        tracker.call(b"GET" if key != b"h" else b"HGETALL", key)  # remembered: the next write invalidates
    _run(resp(), argv, pipelined)
    got = [tracker.next() for _ in keys]
    assert sorted(got) == sorted([[b"invalidate", [key]] for key in keys])


@pytest.mark.parametrize("pipelined", [False, True])
def test_mset_drops_ttls_incr_keeps_them_hset_runs_beside_them(
    r: redis.Redis, resp: Callable[[], Resp], pipelined: bool
) -> None:
    r.set("k1", "1", ex=100)
    r.set("k3", "1", ex=100)
    r.set("t", "7", ex=100)
    writer = resp()
    assert _run(writer, [b"MSET", b"k1", b"x", b"k2", b"y"], pipelined) == b"OK"
    assert r.ttl("k1") == -1 and r.ttl("k2") == -1 and r.ttl("k3") > 0
    assert _run(writer, [b"INCR", b"t"], pipelined) == (9 if pipelined else 8)
    assert 0 < r.ttl("t") <= 100
    assert _run(writer, [b"HSET", b"h", b"f", b"v", b"g", b"w"], pipelined) == (0 if pipelined else 2)
    assert r.hgetall("h") == {b"f": b"v", b"g": b"w"}


@pytest.mark.parametrize("pipelined", [False, True])
def test_wrong_types_are_refused_whatever_the_state(
    r: redis.Redis, resp: Callable[[], Resp], pipelined: bool
) -> None:
    r.hset("h", "f", "v")
    r.set("s", "x")
    writer = resp()
    for with_ttl in (False, True):
        if with_ttl:
            r.set("ttl", "1", ex=100)
        assert str(_run(writer, [b"INCR", b"h"], pipelined)).startswith("WRONGTYPE")
        assert str(_run(writer, [b"HSET", b"s", b"f", b"v"], pipelined)).startswith("WRONGTYPE")
        assert str(_run(writer, [b"INCR", b"s"], pipelined)) == "ERR value is not an integer or out of range"


@pytest.mark.parametrize("pipelined", [False, True])
def test_maxmemory_accounting_follows_the_writes(
    r: redis.Redis, resp: Callable[[], Resp], pipelined: bool
) -> None:
    r.config_set("maxmemory", str(512 * 1024 * 1024))
    try:
        writer = resp()
        before = r.info("memory")["used_memory"]
        big = b"v" * 100_000
        assert _run(writer, [b"MSET", b"a", big, b"b", big], pipelined) == b"OK"
        assert _run(writer, [b"HSET", b"h", b"f", big], pipelined) in (0, 1)
        assert _run(writer, [b"INCR", b"n"], pipelined) in (1, 2)
        assert r.info("memory")["used_memory"] - before >= 250_000
        assert r.mget("a", "b") == [big, big] and r.hget("h", "f") == big
    finally:
        r.config_set("maxmemory", "0")


def _aof_commands(path: Path) -> list[list[bytes]]:
    reader = hiredis.Reader()
    out = []
    for file in sorted(path.rglob("*.incr.aof")):
        reader.feed(file.read_bytes())
        while (command := reader.gets()) is not False:
            out.append(command)
    return out


def test_the_aof_gets_every_write_unpipelined_and_pipelined(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    aof_node = node_factory("aof", appendonly="yes", appendfsync="always")
    conn = Resp(aof_node.port)
    try:
        for argv, _, _ in WRITES:
            _run(conn, argv, False)
            _run(conn, argv, True)
        expected = [argv for argv, _, _ in WRITES for _ in range(3)]
        wait_for(
            lambda: [c for c in _aof_commands(tmp_path) if c[0] != b"SELECT"][-len(expected) :] == expected,
            5.0,
            what="the writes to reach the AOF",
        )
    finally:
        conn.close()
