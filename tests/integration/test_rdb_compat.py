"""RDB compatibility with a real redis-server 7.0: our files load into Redis, Redis's files load into us.

Both directions compare every key (type, value, TTL in ms) through redis-py and compare Redis's DEBUG DIGEST
with actors.data.digest.dataset_digest, so the RDB code and the digest code check each other against Redis.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from actors.data.digest import dataset_digest
from actors.data.keyspace import Database, Keyspace
from actors.data.types import ZSet
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb import writer as rdb_writer
from tests.harness import free_port, wait_for

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        shutil.which("redis-server") is None or shutil.which("redis-check-rdb") is None,
        reason="needs Debian's redis-server and redis-check-rdb",
    ),
]

NUM_DBS = 16
# A TTL far enough ahead that no key expires while a test runs (a loading master drops expired keys).
TTL_AHEAD_MS = 3_600_000

Snapshot = dict[tuple[int, bytes], tuple[str, Any, int | None]]


class RedisServer:
    """A redis-server 7.0 on a free port, its dump file in ``dir``."""

    def __init__(self, directory: Path, *extra_args: str) -> None:
        self.dir = directory
        self.port = free_port()
        self.rdb_path = directory / "dump.rdb"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)]
        argv += [
            "--dbfilename",
            "dump.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ]
        argv += ["--daemonize", "no", "--databases", str(NUM_DBS), "--logfile", str(directory / "redis.log")]
        argv += extra_args
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.client = redis.Redis(port=self.port, socket_timeout=30)
        wait_for(self._ready, 15, what=f"redis-server on port {self.port}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
        return bool(self.client.ping())

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def db(self, index: int) -> redis.Redis:
        return redis.Redis(port=self.port, db=index, socket_timeout=30)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    instance = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield instance
    finally:
        instance.stop()


def snapshot_redis(server: RedisServer) -> Snapshot:
    """Every key of every database as (type, value, PEXPIRETIME or None), read with redis-py."""
    snap: Snapshot = {}
    for index in range(NUM_DBS):
        client = server.db(index)
        try:
            for key in client.scan_iter(count=1000):
                kind = client.type(key).decode()
                value: Any
                if kind == "string":
                    value = client.get(key)
                elif kind == "list":
                    value = client.lrange(key, 0, -1)
                elif kind == "hash":
                    value = client.hgetall(key)
                elif kind == "set":
                    value = client.smembers(key)
                elif kind == "zset":
                    value = client.zrange(key, 0, -1, withscores=True)
                else:
                    raise AssertionError(f"unexpected type {kind}")
                when = client.pexpiretime(key)
                snap[(index, key)] = (kind, value, when if when >= 0 else None)
        finally:
            client.close()
    return snap


def snapshot_dbs(dbs: list[Database]) -> Snapshot:
    """The same view of our own databases."""
    names = {bytes: "string", deque: "list", dict: "hash", set: "set", ZSet: "zset"}
    snap: Snapshot = {}
    for db in dbs:
        for key, value in db.data.items():
            kind = names[type(value)]
            if kind == "list":
                shown: Any = list(value)
            elif kind == "zset":
                shown = list(value.items())
            else:
                shown = value
            snap[(db.id, key)] = (kind, shown, db.expires.get(key))
    return snap


def digest_of(dbs: list[Database]) -> bytes:
    keyspace = Keyspace(NUM_DBS)
    keyspace.replace_all(dbs)
    return dataset_digest(keyspace)


def build_dataset(seed: int) -> list[Database]:
    """Every type in small and large sizes, every string shape, TTLs, several databases."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    dbs = [Database(i) for i in range(NUM_DBS)]
    main = dbs[0].data
    main[b"int:small"] = b"42"
    main[b"int:neg"] = b"-2147483648"
    main[b"int:big"] = b"9223372036854775807"
    main[b"int:padded"] = b"007"
    main[b"short"] = b"hello"
    main[b"empty"] = b""
    main[b"compressible"] = b"abcdefgh" * 500
    main[b"random:long"] = rng.randbytes(5000)
    main[b"huge"] = b"0123456789" * 200_000
    main[b"\x00bin\xffkey"] = bytes(range(256))
    main[b"list:small"] = deque([b"a", b"1", b"-5", b"", b"x" * 100])
    main[b"list:big"] = deque(b"element:%d" % i for i in range(30_000))
    main[b"list:fat"] = deque([b"y" * 20_000, b"z", b"w" * 9000])
    main[b"hash:small"] = {b"f1": b"v1", b"n": b"12", b"neg": b"-5000"}
    main[b"hash:big"] = {b"field:%d" % i: rng.randbytes(rng.randrange(0, 30)) for i in range(2000)}
    main[b"hash:longval"] = {b"f": b"v" * 100}  # too long for a listpack in Redis: a hashtable
    main[b"set:ints"] = {b"%d" % i for i in (1, 2, -3, 70000, 5000000000)}
    main[b"set:bigints"] = {b"%d" % i for i in range(1000)}
    main[b"set:strings"] = {b"m%d" % i for i in range(50)}
    main[b"zset:small"] = ZSet([(b"a", 1.5), (b"b", -2.0), (b"c", float("inf")), (b"d", float("-inf"))])
    main[b"zset:big"] = ZSet((b"member:%d" % i, rng.uniform(-1e6, 1e6)) for i in range(3000))
    main[b"zset:exact"] = ZSet([(b"p", 0.1), (b"q", 1e300), (b"r", 5e-324), (b"s", 123456789.123456789)])
    for i in range(500):
        main[b"key:%d" % i] = b"value:%d" % i
    for key in (b"short", b"list:big", b"hash:small", b"zset:big", b"set:ints", b"key:7"):
        dbs[0].expires[key] = now_ms + TTL_AHEAD_MS + rng.randrange(1000)
    dbs[3].data[b"other"] = b"db three"
    dbs[3].data[b"h"] = {b"a": b"b"}
    dbs[3].expires[b"other"] = now_ms + TTL_AHEAD_MS
    dbs[15].data[b"last"] = deque([b"q"])
    return dbs


def populate_redis(server: RedisServer, seed: int) -> None:
    """The same kinds of data built through commands, so Redis picks its own encodings."""
    rng = random.Random(seed)
    server.client.flushall()
    r = server.db(0)
    pipe = r.pipeline(transaction=False)
    pipe.set("int:small", "42").set("int:neg", "-2147483648").set("int:big", "9223372036854775807")
    pipe.set("int:padded", "007").set("short", "hello").set("empty", "")
    pipe.set("compressible", "abcdefgh" * 500).set("random:long", rng.randbytes(5000))
    pipe.set("\x00bin\xffkey", bytes(range(256)))
    pipe.rpush("list:small", "a", "1", "-5", "", "x" * 100, 127, 4095, -4096, 2**40, -(2**63))
    pipe.rpush("list:big", *[f"element:{i}" for i in range(30_000)])
    pipe.rpush("list:fat", "y" * 20_000, "z", "w" * 9000)
    pipe.hset("hash:small", mapping={"f1": "v1", "n": "12", "neg": "-5000", "big": 2**50})
    pipe.hset("hash:big", mapping={f"field:{i}": rng.randbytes(rng.randrange(0, 30)) for i in range(2000)})
    pipe.hset("hash:longval", "f", "v" * 100)
    pipe.sadd("set:ints", 1, 2, -3, 70000, 5000000000)
    pipe.sadd("set:bigints", *range(1000))
    pipe.sadd("set:strings", *[f"m{i}" for i in range(50)])
    pipe.zadd("zset:small", {"a": 1.5, "b": -2, "c": float("inf"), "d": float("-inf"), "e": 7})
    pipe.zadd("zset:big", {f"member:{i}": rng.uniform(-1e6, 1e6) for i in range(3000)})
    pipe.zadd("zset:exact", {"p": 0.1, "q": 1e300, "r": 5e-324, "s": 123456789.123456789})
    for i in range(500):
        pipe.set(f"key:{i}", f"value:{i}")
    for key in ("short", "list:big", "hash:small", "zset:big", "set:ints", "key:7"):
        pipe.pexpire(key, TTL_AHEAD_MS + rng.randrange(1000))
    pipe.execute()
    r.close()
    r3 = server.db(3)
    r3.set("other", "db three", px=TTL_AHEAD_MS)
    r3.hset("h", "a", "b")
    r3.close()
    r15 = server.db(15)
    r15.rpush("last", "q")
    r15.close()


def check_rdb(path: Path) -> None:
    result = subprocess.run(["redis-check-rdb", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RDB looks OK" in result.stdout


@pytest.mark.parametrize(("compress", "checksum"), [(True, True), (False, False)])
def test_redactor_rdb_loads_into_redis(
    server: RedisServer, seed: int, compress: bool, checksum: bool
) -> None:
    dbs = build_dataset(seed)
    aux = rdb_writer.default_aux("a1b2c3d4e5" * 4, 4242, 0)
    rdb_writer.save_file(str(server.rdb_path), dbs, aux, compress=compress, checksum=checksum)
    check_rdb(server.rdb_path)
    assert server.client.execute_command("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert snapshot_redis(server) == snapshot_dbs(dbs)
    assert server.client.execute_command("DEBUG", "DIGEST") == digest_of(dbs)
    # Redis's encodings after loading our plain types: it re-encodes small collections compactly.
    names = ("hash:small", "hash:big", "set:ints", "set:strings", "zset:small", "zset:big", "list:big")
    encodings = {key: server.client.object("encoding", key) for key in names}
    assert encodings == {
        "hash:small": b"listpack",
        "hash:big": b"hashtable",
        "set:ints": b"intset",
        "set:strings": b"hashtable",
        "zset:small": b"listpack",
        "zset:big": b"skiplist",
        "list:big": b"quicklist",
    }
    # Commands that walk the compact encodings in order see the right order.
    assert server.client.zrange("zset:small", 0, -1) == [b"d", b"b", b"a", b"c"]
    assert server.client.zrangebyscore("zset:exact", 0.05, 1e10) == [b"p", b"s"]


def test_redis_rdb_loads_into_redactor(server: RedisServer, seed: int) -> None:
    populate_redis(server, seed)
    client = server.client
    encodings = {
        key: client.object("encoding", key)
        for key in ("hash:small", "hash:big", "set:ints", "set:strings", "zset:small", "zset:big", "list:big")
    }
    assert encodings == {
        "hash:small": b"listpack",
        "hash:big": b"hashtable",
        "set:ints": b"intset",
        "set:strings": b"hashtable",
        "zset:small": b"listpack",
        "zset:big": b"skiplist",
        "list:big": b"quicklist",
    }
    expected = snapshot_redis(server)
    redis_digest = client.execute_command("DEBUG", "DIGEST")
    assert client.save()
    loaded = rdb_reader.load_file(
        str(server.rdb_path), NUM_DBS, drop_expired_before_ms=int(time.time() * 1000)
    )
    assert snapshot_dbs(loaded.dbs) == expected
    assert digest_of(loaded.dbs) == redis_digest
    assert loaded.aux["redis-ver"].startswith(b"7.0.")
    assert loaded.aux["aof-base"] == b"0"
    assert loaded.expired_skipped == 0 and loaded.empty_skipped == 0


def test_redis_rdb_without_compression_or_checksum(tmp_path: Path, seed: int) -> None:
    """rdbchecksum is immutable at run time in 7.0: a second server writes the file with both off."""
    plain_server = RedisServer(tmp_path, "--rdbcompression", "no", "--rdbchecksum", "no")
    try:
        populate_redis(plain_server, seed)
        expected = snapshot_redis(plain_server)
        assert plain_server.client.save()
        assert plain_server.rdb_path.read_bytes()[-8:] == bytes(8)  # checksum off: the trailer is zeros
        loaded = rdb_reader.load_file(str(plain_server.rdb_path), NUM_DBS)
        assert snapshot_dbs(loaded.dbs) == expected
        assert digest_of(loaded.dbs) == plain_server.client.execute_command("DEBUG", "DIGEST")
    finally:
        plain_server.stop()


def test_redis_aux_fields_match_ours_and_keys_only_in_a_high_db(server: RedisServer) -> None:
    """A master with no replication backlog writes no repl-* fields: default_aux(None, ...) has the same."""
    client = server.client
    client.flushall()
    high = server.db(9)
    high.set("k", "v", px=TTL_AHEAD_MS)
    high.close()
    assert client.save()
    loaded = rdb_reader.load_file(str(server.rdb_path), NUM_DBS)
    assert loaded.dbs[9].data == {b"k": b"v"}
    assert set(loaded.dbs[9].expires) == {b"k"}
    assert list(loaded.aux) == list(rdb_writer.default_aux(None, None, None))
    assert loaded.aux["redis-bits"] == b"64"
    assert loaded.end_offset == server.rdb_path.stat().st_size
