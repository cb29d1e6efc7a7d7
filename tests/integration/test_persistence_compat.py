"""Files exchanged with redis-server 7.0: our AOF directory loads into it, its AOF directory and dump.rdb load
into redactor, and redis-check-aof accepts our manifest and files. Same DEBUG DIGEST on both sides."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.persistence_helpers import all_types_keyspace, dataset_digest_of, write_rdb

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

NodeFactory = Callable[..., NodeProcess]


def _check_aof(aof_dir: Path) -> str:
    result = subprocess.run(
        ["redis-check-aof", str(aof_dir / "appendonly.aof.manifest")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_our_aof_dir_loads_into_redis_server(
    node_factory: NodeFactory, redis_servers: Callable[..., RedisServer], tmp_path: Path, preamble: str
) -> None:
    node = node_factory("n", start=False, appendonly="yes", aof_use_rdb_preamble=preamble)
    write_rdb(node.dir / "dump.rdb", all_types_keyspace())
    node.start()
    r = node.client()
    r.set("s", "v")
    r.incr("counter")
    r.expire("s", 3600)
    r.delete("binary")
    redis.Redis(port=node.port, db=3).set("db3", "x")
    assert r.bgrewriteaof()
    wait_for(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, 15)
    r.append("s", "-after-rewrite")
    r.incr("counter")
    expected = dataset_digest_of(r)
    node.stop()
    copy = tmp_path / "redis-copy"
    copy.mkdir()
    shutil.copytree(node.dir / "appendonlydir", copy / "appendonlydir")
    assert "All AOF files and manifest are valid" in _check_aof(copy / "appendonlydir")
    server = redis_servers(copy, "--appendonly", "yes", "--aof-use-rdb-preamble", preamble)
    assert server.digest() == expected
    assert server.client.get("counter") == b"2"


def test_redis_server_aof_dir_and_dump_load_into_redactor(
    node_factory: NodeFactory, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    source = tmp_path / "redis-source"
    source.mkdir()
    server = redis_servers(source, "--appendonly", "yes")
    c = server.client
    c.rpush("list", *[f"item:{i}" for i in range(300)], "x" * 10_000)
    c.rpush("small-list", "a", "1", "-2")
    c.sadd("intset", 1, 2, 3, -40)
    c.sadd("set", *[f"m{i}" for i in range(200)])
    c.sadd("small-set", "a", "b")
    c.zadd("zset", {"a": 1.5, "b": float("inf"), "c": -3})
    c.zadd("bigzset", {f"m{i}": i / 3 for i in range(200)})
    c.hset("hash", mapping={"f": "v", "n": "1"})
    c.hset("bighash", mapping={f"f{i}": "v" * (i % 80) for i in range(300)})
    c.set("int", 12345)
    c.set("str", "hello", ex=3600)
    c.set("big", "abc" * 10_000)
    redis.Redis(port=server.port, db=9).set("db9", "nine")
    assert c.bgrewriteaof()  # the collections go into an RDB base; what follows into the incr file
    wait_for(lambda: c.info("persistence")["aof_rewrite_in_progress"] == 0, 15)
    wait_for(lambda: c.info("persistence")["aof_last_bgrewrite_status"] == "ok", 5)
    c.set("after", "rewrite")
    c.incr("int")
    c.expire("big", 7200)
    c.delete("small-set")
    assert c.save()
    expected = server.digest()
    server.stop()

    with_aof = node_factory("with-aof", start=False, appendonly="yes")
    shutil.copytree(source / "appendonlydir", with_aof.dir / "appendonlydir")
    with_aof.start()
    assert dataset_digest_of(with_aof.client()) == expected
    assert with_aof.client().get("int") == b"12346"

    with_rdb = node_factory("with-rdb", start=False)
    shutil.copy(source / "dump.rdb", with_rdb.dir / "dump.rdb")
    with_rdb.start()
    assert dataset_digest_of(with_rdb.client()) == expected


def _copy_every_key(source: redis.Redis, target: redis.Redis) -> int:
    """DUMP every key of ``source`` (database 0) and RESTORE it into ``target`` with its TTL; returns how many."""
    count = 0
    for key in source.scan_iter(count=1000):
        payload = source.dump(key)
        ttl = source.pttl(key)
        assert payload is not None
        assert target.restore(key, max(ttl, 0), payload) == b"OK"
        count += 1
    return count


def test_dump_and_restore_move_every_type_between_redis_server_and_redactor(
    node_factory: NodeFactory, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    source_dir, target_dir = tmp_path / "redis-source", tmp_path / "redis-target"
    source_dir.mkdir()
    target_dir.mkdir()
    keyspace = all_types_keyspace()
    keyspace.dbs[5].data.clear()
    keyspace.dbs[15].data.clear()
    keyspace.dbs[5].expires.clear()
    keyspace.dbs[15].expires.clear()
    write_rdb(source_dir / "dump.rdb", keyspace)  # redis-server loads it: its own encodings from here on
    redis_source = redis_servers(source_dir)
    expected = redis_source.digest()

    node = node_factory("n")
    r = node.client()
    assert _copy_every_key(redis_source.client, r) == len(keyspace.dbs[0].data)
    assert dataset_digest_of(r) == expected  # redis-server's payloads (listpack, intset, quicklist) load

    redis_target = redis_servers(target_dir)
    _copy_every_key(r, redis_target.client)
    assert redis_target.digest() == expected  # and ours load into redis-server
