"""The script lane (actors/scripting/lane.py): a script's plain GET / SET run inline in redis.call, and must
have exactly the effects the general path has. A seeded random run of EVALSHA scripts over keys with and
without TTLs, of other types, spelled in both cases, with numbers for values, is compared with redis-server:
every reply, the dataset and its TTLs, INFO commandstats calls of GET / SET, keyspace hits and misses; then the
same node's AOF and a WATCH see the lane's writes."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer
from tests.integration.shared import module_node_fixture, reply_or_error

node = module_node_fixture()

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

# Each script gets KEYS[1], KEYS[2] and ARGV[1].
SCRIPTS = [
    "local v = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1]) return v",
    "return redis.call('get', KEYS[1])",
    "return redis.call('set', KEYS[1], ARGV[1])",
    "redis.call('SET', KEYS[1], 42) return redis.call('GET', KEYS[1])",
    "redis.call('set', KEYS[1], ARGV[1]) redis.call('set', KEYS[2], ARGV[1]) return redis.call('get', KEYS[2])",
    "return redis.pcall('GET', KEYS[1])",
    "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}",
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', 100) return redis.call('GET', KEYS[1])",
    "return redis.call('SET', KEYS[1], ARGV[1], 'GET')",
    "local ok, e = pcall(redis.call, 'get', KEYS[1]) return {tostring(ok), type(e)}",
    "redis.call('set', KEYS[1], ARGV[1]) return redis.call('ttl', KEYS[1])",
]
KEYS = ["s1", "s2", "ttl1", "ttl2", "list", "hash", "missing1", "missing2"]


def _seed(client: redis.Redis) -> None:
    client.flushall()
    client.mset({"s1": "one", "s2": "two", "ttl1": "t1", "ttl2": "t2"})
    client.expire("ttl1", 1000)
    client.pexpire("ttl2", 5_000_000)
    client.rpush("list", "a", "b")
    client.hset("hash", "f", "v")
    client.config_resetstat()


def _stats(client: redis.Redis) -> dict[str, Any]:
    info = client.info("all")
    # EVALSHA, GET and SET: their calls (usec differs by nature); CONFIG RESETSTAT zeroed them.
    return {
        name: info.get(f"cmdstat_{name}", {}).get("calls") for name in ("evalsha", "get", "set", "ttl")
    } | {"hits": info["keyspace_hits"], "misses": info["keyspace_misses"]}


def _dataset(client: redis.Redis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in KEYS:
        kind = client.type(key)
        value = client.get(key) if kind == b"string" else kind
        ttl = client.ttl(key)
        out[key] = (value, ttl if ttl < 0 else ttl // 100)  # TTLs compared to the 100 s
    return out


@pytest.mark.compat
@needs_redis
def test_script_get_and_set_have_redis_servers_effects(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    theirs = redis.Redis(port=redis_servers(tmp_path).port, socket_timeout=10)
    ours = node.client()
    for client in (theirs, ours):
        _seed(client)
    shas = [ours.script_load(script) for script in SCRIPTS]
    assert shas == [theirs.script_load(script) for script in SCRIPTS]
    for step in range(300):
        index = rng.randrange(len(SCRIPTS))
        key1, key2 = rng.choice(KEYS), rng.choice(KEYS)
        value = rng.choice(["v", "", "12", "x" * 100])
        args = ("EVALSHA", shas[index], 2, key1, key2, value)
        want, got = reply_or_error(theirs, *args), reply_or_error(ours, *args)
        assert got == want, (
            f"step {step}: {SCRIPTS[index]!r} {args[3:]}: redis-server {want!r}, redactor {got!r}"
        )
        if step % 60 == 59:
            assert _stats(ours) == _stats(theirs), f"step {step}"
            assert _dataset(ours) == _dataset(theirs), f"step {step}"
            for client in (theirs, ours):
                _seed(client)
    assert _stats(ours) == _stats(theirs)
    theirs.close()
    ours.close()


def test_script_sets_reach_the_aof_and_a_watch(node_factory: Callable[..., NodeProcess]) -> None:
    n = node_factory("lane-aof", appendonly="yes", appendfsync="always")
    c = n.client()
    sha = c.script_load("local v = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1]) return v")
    assert c.evalsha(sha, 1, "k", "1") is None
    assert c.evalsha(sha, 1, "k", "2") == b"1"
    c.execute_command("SELECT", "3")
    assert c.evalsha(sha, 1, "k", "in3") is None  # the script runs in its caller's database
    incr = (n.dir / "appendonlydir" / "appendonly.aof.1.incr.aof").read_bytes()
    assert b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n2\r\n" in incr
    assert b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nin3\r\n" in incr
    watcher = n.client()
    pipe = watcher.pipeline(transaction=True)
    pipe.watch("k")
    c.execute_command("SELECT", "0")
    c.evalsha(sha, 1, "k", "3")  # a WATCHed key: the general path, which touches it
    pipe.multi()
    pipe.set("k", "lost")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    n.stop()
    n.start()
    c = n.client()
    assert c.get("k") == b"3"
    c.execute_command("SELECT", "3")
    assert c.get("k") == b"in3"
    c.close()
    watcher.close()
