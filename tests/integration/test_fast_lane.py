"""Pipelined GET and SET take the fast lane (actors/fastlane.py), other data commands the general lane
(actors/server/dispatch.py): these check both keep the dispatcher's exact effects over raw pipelines, the way
redis-benchmark -P sends them: replies, counters, propagation to the AOF and replicas, WATCH, blocked clients,
TTLs, SELECT, MULTI, and the refusals (NOAUTH, READONLY) they must not skip. The general lane's replies,
INFO commandstats / errorstats and LATENCY HISTOGRAM counts are compared with redis-server's over a seeded
random pipeline; unpipelined GET/SET (one per read: FastLane.run_one) likewise, replies and counters."""

from __future__ import annotations

import random
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis

from protocol.resp import encode_command
from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.shared import Wire, module_node_fixture, resp2_client_fixture

node = module_node_fixture()
r = resp2_client_fixture()


def pipeline(*commands: tuple[str | bytes, ...]) -> bytes:
    """Commands as one write, the way a pipelining client sends them."""
    return b"".join(
        encode_command([part if isinstance(part, bytes) else part.encode() for part in command])
        for command in commands
    )


@pytest.fixture
def wire(node: NodeProcess) -> Iterator[Wire]:
    w = Wire(node.port)
    yield w
    w.close()


def test_pipelined_sets_and_gets_reply_as_redis_does(r: redis.Redis, wire: Wire) -> None:
    wire.send(pipeline(("SET", "a", "1"), ("GET", "a"), ("GET", "missing"), ("set", "b", "22"), ("get", "b")))
    wire.expect(b"+OK\r\n$1\r\n1\r\n$-1\r\n+OK\r\n$2\r\n22\r\n")
    big = b"x" * 5000
    wire.send(pipeline(("SET", "big", big), ("GET", "big"), ("SET", "empty", ""), ("GET", "empty")))
    wire.expect(b"+OK\r\n$5000\r\n" + big + b"\r\n+OK\r\n$0\r\n\r\n")
    assert r.mget("a", "b", "big", "empty") == [b"1", b"22", big, b""]


def test_other_spellings_and_options_run_the_general_way(r: redis.Redis, wire: Wire) -> None:
    wire.send(
        pipeline(
            ("Set", "k", "v1"),
            ("SET", "k", "v2", "EX", "100"),
            ("gEt", "k"),
            ("GET", "k", "extra"),
            ("SET", "k"),
            ("GET", "k"),
        )
    )
    wire.expect(
        b"+OK\r\n+OK\r\n$2\r\nv2\r\n"
        b"-ERR wrong number of arguments for 'get' command\r\n"
        b"-ERR wrong number of arguments for 'set' command\r\n"
        b"$2\r\nv2\r\n"
    )
    assert 0 < r.ttl("k") <= 100


def test_wrongtype_in_the_middle_of_a_pipeline(r: redis.Redis, wire: Wire) -> None:
    r.rpush("list", "x")
    wire.send(pipeline(("SET", "a", "1"), ("GET", "list"), ("GET", "a"), ("SET", "list", "now a string")))
    wire.expect(
        b"+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\n1\r\n+OK\r\n"
    )
    assert r.type("list") == b"string"


def test_set_drops_a_ttl_and_get_honours_lazy_expiry(r: redis.Redis, wire: Wire) -> None:
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        r.set("keep", "v", ex=100)
        r.set("gone", "v", px=30)
        wire.send(pipeline(("SET", "keep", "w"), ("GET", "keep")))
        wire.expect(b"+OK\r\n$1\r\nw\r\n")
        assert r.ttl("keep") == -1
        expired_before = r.info("stats")["expired_keys"]

        def gone_reads_nil() -> bool:
            # redis-py sends a pipeline as one write of upper-case GETs: the lane's input. The miss must come
            # from Keyspace.lookup's lazy expiry (the lane leaves keys with a TTL to it), never a stale value.
            with r.pipeline(transaction=False) as p:
                p.get("gone")
                p.get("keep")
                gone, keep = p.execute()
            assert keep == b"w"
            return gone is None

        wait_for(gone_reads_nil, 5.0, what="the TTL of 'gone' to pass")
        assert r.exists("gone") == 0
        assert r.info("stats")["expired_keys"] == expired_before + 1
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_counters_match_the_general_path(r: redis.Redis, wire: Wire) -> None:
    r.config_resetstat()
    wire.send(
        pipeline(("SET", "a", "1"), ("SET", "b", "2"), ("GET", "a"), ("GET", "nope"), ("SET", "a", "3"))
    )
    wire.expect(b"+OK\r\n+OK\r\n$1\r\n1\r\n$-1\r\n+OK\r\n")
    stats = r.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 3
    assert stats["cmdstat_get"]["calls"] == 2
    keyspace = r.info("stats")
    assert (keyspace["keyspace_hits"], keyspace["keyspace_misses"]) == (1, 1)
    # Counters are published before the next command of the same pipeline runs: INFO sees them.
    wire.send(pipeline(("SET", "c", "1"), ("GET", "c"), ("INFO", "commandstats")))
    wire.expect(b"+OK\r\n$1\r\n1\r\n$")
    header = b""
    while not header.endswith(b"\r\n"):
        header += wire.read(1)
    text = wire.read(int(header[:-2]) + 2).decode()
    assert "cmdstat_set:calls=4," in text and "cmdstat_get:calls=3," in text
    assert r.info("stats")["total_commands_processed"] >= 8
    wire.send(pipeline(("CLIENT", "SETNAME", "lane"), ("SET", "x", "1"), ("GET", "x")))
    wire.expect(b"+OK\r\n+OK\r\n$1\r\n1\r\n")
    clients = {c["name"]: c for c in r.client_list()}
    assert clients["lane"]["cmd"] == "get"


def test_resp3_misses_are_nulls(wire: Wire) -> None:
    wire.send(pipeline(("HELLO", "3"), ("SET", "r3", "v"), ("GET", "r3"), ("GET", "r3-missing")))
    tail = b"+OK\r\n$1\r\nv\r\n_\r\n"
    data = b""
    while not data.endswith(tail):
        assert len(data) < 4096, data
        data += wire.read(1)
    assert data.startswith(b"%")  # HELLO's map, then the three replies


def test_watch_sees_pipelined_sets(r: redis.Redis, wire: Wire, node: NodeProcess) -> None:
    watcher = node.client(protocol=2)
    with watcher.pipeline(transaction=True) as tx:
        tx.watch("w")
        wire.send(pipeline(("SET", "other", "1"), ("SET", "w", "changed")))
        wire.expect(b"+OK\r\n+OK\r\n")
        tx.multi()
        tx.set("w", "from-tx")
        with pytest.raises(redis.WatchError):
            tx.execute()
    assert r.get("w") == b"changed"


def test_a_blocked_client_is_woken_by_a_write_in_a_pipeline(
    r: redis.Redis, wire: Wire, node: NodeProcess
) -> None:
    blocked = Wire(node.port)
    try:
        blocked.send(pipeline(("BLPOP", "queue", "10")))
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, 5.0, what="BLPOP to block")
        wire.send(pipeline(("SET", "x", "1"), ("LPUSH", "queue", "job"), ("SET", "y", "2"), ("GET", "x")))
        wire.expect(b"+OK\r\n:1\r\n+OK\r\n$1\r\n1\r\n")
        blocked.expect(b"*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n")
        assert r.llen("queue") == 0
    finally:
        blocked.close()


def test_select_and_multi_inside_a_pipeline(r: redis.Redis, wire: Wire) -> None:
    wire.send(
        pipeline(
            ("SELECT", "1"),
            ("SET", "k", "one"),
            ("SELECT", "0"),
            ("SET", "k", "zero"),
            ("GET", "k"),
            ("SELECT", "1"),
            ("GET", "k"),
            ("MULTI",),
            ("SET", "t", "1"),
            ("GET", "t"),
            ("EXEC",),
            ("SELECT", "0"),
        )
    )
    wire.expect(
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n$4\r\nzero\r\n+OK\r\n$3\r\none\r\n"
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\n1\r\n+OK\r\n"
    )
    assert r.get("t") is None  # it went to db 1
    r.select(1)
    assert (r.get("k"), r.get("t")) == (b"one", b"1")
    r.flushall()
    r.select(0)


def test_pipelined_writes_reach_the_aof_and_the_replicas(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("master", appendonly="yes", appendfsync="always")
    replica = node_factory("replica")
    m, rep = master.client(protocol=2), replica.client(protocol=2)
    rep.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for(lambda: rep.info("replication")["master_link_status"] == "up", 10.0, what="the replica's link")
    wire = Wire(master.port)
    try:
        batch = [("SET", f"key:{i}", f"v{i}") for i in range(200)]
        wire.send(pipeline(*batch[:100], ("SELECT", "2"), *batch[100:], ("SELECT", "0")))
        wire.expect(b"+OK\r\n" * 202)
        # A read-only replica refuses pipelined SETs the general way; its GETs take the lane.
        replica_wire = Wire(replica.port)
        try:
            wait_for(lambda: rep.dbsize() == 100, 10.0, what="the replica to receive db 0's keys")
            replica_wire.send(pipeline(("SET", "key:1", "x"), ("GET", "key:1")))
            replica_wire.expect(b"-READONLY You can't write against a read only replica.\r\n$2\r\nv1\r\n")
        finally:
            replica_wire.close()
        # The general lane's writes, including those propagated as other commands (INCRBYFLOAT as SET,
        # EXPIRE as PEXPIREAT, SPOP with a count as SREM), in db 0 and db 3.
        general = [
            ("LPUSH", "list", "a", "b"),
            ("HSET", "hash", "f", "1"),
            ("SADD", "set", "m1", "m2", "m3", "m4"),
            ("INCR", "counter"),
            ("INCRBYFLOAT", "float", "1.5"),
            ("ZADD", "zset", "1", "one", "2", "two"),
            ("EXPIRE", "hash", "1000"),
            ("SPOP", "set", "2"),
            ("ZPOPMIN", "zset"),
        ]
        commands = [*general, ("SELECT", "3"), *general, ("SELECT", "0")]
        replies = _replies(master.port, pipeline(*commands), len(commands))
        assert replies[:4] == [2, 1, 4, 1] and replies[-1] == b"OK"  # the rest: the digests below
    finally:
        wire.close()
    digest = m.execute_command("DEBUG", "DIGEST")
    wait_for(lambda: rep.execute_command("DEBUG", "DIGEST") == digest, 10.0, what="replica to match")
    rep.select(2)
    assert rep.dbsize() == 100
    master.stop()
    master.start()
    assert master.client(protocol=2).execute_command("DEBUG", "DIGEST") == digest


def test_unauthenticated_pipelines_are_refused(node_factory: Callable[..., NodeProcess]) -> None:
    guarded = node_factory("guarded")
    guarded.client(protocol=2).config_set("requirepass", "secret")
    wire = Wire(guarded.port)
    try:
        wire.send(
            pipeline(("SET", "a", "1"), ("GET", "a"), ("AUTH", "secret"), ("SET", "a", "1"), ("GET", "a"))
        )
        noauth = b"-NOAUTH Authentication required.\r\n"
        wire.expect(noauth + noauth + b"+OK\r\n+OK\r\n$1\r\n1\r\n")
    finally:
        wire.close()


class _Conn:
    """A raw connection that sends one request per write and returns its reply's exact bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def ask(self, *parts: str | bytes) -> bytes:
        self.sock.sendall(pipeline(parts))
        reader = hiredis.Reader()
        raw = b""
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {raw!r}"
            raw += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return raw  # one request in flight: the reply is all the connection holds

    def close(self) -> None:
        self.sock.close()


def test_unpipelined_gets_and_sets_match_redis_server(
    node: NodeProcess, redis_servers: Callable[..., Any], tmp_path: Path, seed: int
) -> None:
    """One GET or SET per read (FastLane.run_one): replies and counters as redis-server's, seeded."""
    reference = redis_servers(tmp_path)
    rng = random.Random(seed)
    sides: dict[str, list[_Conn]] = {}
    try:
        for name, port in (("redis", reference.port), ("node", node.port)):
            resp2, resp3 = _Conn(port), _Conn(port)
            sides[name] = [resp2, resp3, _Conn(port)]  # the third WATCHes
            resp2.ask("FLUSHALL")
            resp2.ask("CONFIG", "RESETSTAT")
            resp3.ask("HELLO", "3")
            resp3.ask("SELECT", "1")
        keys = [f"k{i}" for i in range(8)]
        for step in range(400):
            op = rng.random()
            key = rng.choice(keys)
            which = rng.randrange(2)  # RESP2 on db 0 or RESP3 on db 1
            if op < 0.4:
                request: tuple[str, ...] = (rng.choice(("GET", "get")), key)
            elif op < 0.75:
                request = (rng.choice(("SET", "set")), key, "v" * rng.randrange(0, 1500))
            elif op < 0.82:
                request = ("SET", key, f"ttl{step}", "PX", "600000")  # a TTL: GET takes the general way
            elif op < 0.88:
                request = ("RPUSH", key, "x")  # WRONGTYPE for GET, replaced by SET
            elif op < 0.94:
                request = ("TTL", key)  # a plain SET drops the TTL
            else:
                # WATCH on another connection, then a plain SET of the key: the EXEC fails as in Redis.
                for conns in sides.values():
                    watcher = conns[2]
                    assert watcher.ask("WATCH", key) == b"+OK\r\n"
                    watcher.ask("MULTI")
                    watcher.ask("GET", key)
                replies = [conns[0].ask("SET", key, "w") for conns in sides.values()]
                assert replies[0] == replies[1]
                request = ("EXEC",)
                which = 2
            replies = [conns[which].ask(*request) for conns in sides.values()]
            assert replies[0] == replies[1], (step, request)
        infos = []
        for conns in sides.values():
            conn = conns[0]
            stats = conn.ask("INFO", "stats").decode()
            commandstats = conn.ask("INFO", "commandstats").decode()
            histogram = hiredis.Reader()
            histogram.feed(conn.ask("LATENCY", "HISTOGRAM", "get", "set"))
            latency = histogram.gets()
            infos.append(
                (
                    re.findall(r"keyspace_(?:hits|misses):\d+", stats),
                    sorted(re.findall(r"cmdstat_(?:get|set):calls=\d+", commandstats)),
                    {name: reply[1] for name, reply in zip(latency[::2], latency[1::2], strict=True)},
                    conn.ask("DBSIZE"),
                )
            )
        assert infos[0] == infos[1]
    finally:
        for conns in sides.values():
            for conn in conns:
                conn.close()


# A small key pool, so commands meet keys of other types (WRONGTYPE) and missing keys.
_LANE_KEYS = ("k1", "k2", "k3", "k4")


def _random_command(rng: random.Random) -> tuple[str, ...]:
    """One command of the general lane's families with a deterministic reply (no SPOP, no TTL), spelled in
    upper, lower or mixed case, sometimes with a wrong arity or a wrong type."""
    key = rng.choice(_LANE_KEYS)
    member = f"m{rng.randrange(6)}"
    number = str(rng.randrange(-5, 50))
    name, *args = rng.choice(
        [
            ("LPUSH", key, member),
            ("RPUSH", key, member, member),
            ("LPOP", key),
            ("RPOP", key),
            ("LRANGE", key, "0", "-1"),
            ("LLEN", key),
            ("HSET", key, member, number),
            ("HGET", key, member),
            ("HINCRBY", key, member, number),
            ("HDEL", key, member),
            ("HSET", key, member, number, member),  # an odd field count: the command finds it
            ("SADD", key, member),
            ("SREM", key, member),
            ("SISMEMBER", key, member),
            ("SCARD", key),
            ("ZADD", key, number, member),
            ("ZINCRBY", key, number, member),
            ("ZRANGE", key, "0", "-1", "WITHSCORES"),
            ("ZPOPMIN", key),
            ("INCR", key),
            ("INCRBY", key, number),
            ("APPEND", key, member),
            ("STRLEN", key),
            ("MGET", key, "k1", "missing"),
            ("EXISTS", key, "k2"),
            ("TYPE", key),
            ("DEL", key),
            ("EXPIRE", key, "1000"),
            ("PERSIST", key),
            ("SET", key, member, "EX", "1000"),  # not the fast lane's form: the general lane's
            ("GET", key),  # on a key with a TTL or of another type: the fast lane declines it
            ("PING",),
            ("ECHO", member),
            ("DBSIZE",),
            ("LLEN",),  # wrong arity: the dispatcher's error
            ("NOSUCHCOMMAND", key),
        ]
    )
    spelled = rng.choice((name, name.lower(), name.capitalize()))
    return (spelled, *args)


def _replies(port: int, data: bytes, count: int) -> list[Any]:
    """Send ``data`` as one write and read ``count`` replies (error replies as ("error", message))."""
    reader = hiredis.Reader(replyError=lambda message: ("error", message))
    replies: list[Any] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(replies)} replies"
                reader.feed(chunk)
            else:
                replies.append(reply)
    return replies


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _counts(client: redis.Redis, names: set[str]) -> dict[str, Any]:
    stats = client.info("commandstats")
    histogram = client.execute_command("LATENCY", "HISTOGRAM", *names)
    if not isinstance(histogram, dict):  # RESP2 without redis-py's callback: a flat array of pairs
        histogram = dict(zip(histogram[::2], histogram[1::2], strict=True))
    latency_calls = {}
    for name, fields in histogram.items():
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        latency_calls[_text(name)] = {_text(k): v for k, v in fields.items()}["calls"]
    return {
        "commandstats": {
            name: (entry["calls"], entry["failed_calls"])
            for name, entry in stats.items()
            if name.removeprefix("cmdstat_") in names
        },
        "latency_calls": latency_calls,
        "errorstats": client.info("errorstats"),
        "total_error_replies": client.info("stats")["total_error_replies"],
    }


def test_random_pipelines_of_other_commands_match_redis(
    r: redis.Redis, node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    reference = redis_servers(tmp_path)
    rng = random.Random(seed)
    r.config_resetstat()
    reference.client.config_resetstat()
    names: set[str] = set()
    for _ in range(8):
        commands = [_random_command(rng) for _ in range(rng.randrange(1, 60))]
        names.update(c[0].lower() for c in commands if c[0].lower() != "nosuchcommand")
        data = pipeline(*commands)
        ours = _replies(node.port, data, len(commands))
        theirs = _replies(reference.port, data, len(commands))
        for command, mine, expected in zip(commands, ours, theirs, strict=True):
            assert mine == expected, (command, mine, expected)
    names.discard("config")
    assert _counts(r, names) == _counts(reference.client, names)
