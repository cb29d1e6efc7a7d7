"""UNLINK's lazy free: a big value leaves the keyspace at once and is emptied in slices after the reply,
counted in INFO memory's lazyfree_pending_objects / lazyfreed_objects as redis-server counts its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from tests.harness import NodeProcess, RedisServer, wait_for


def _lazyfreed_after(client: redis.Redis, fill: Callable[[redis.Redis], None]) -> int:
    client.config_set("stream-node-max-entries", 5)
    client.config_resetstat()
    fill(client)
    wait_for(lambda: client.info("memory")["lazyfree_pending_objects"] == 0, 10)
    return int(client.info("memory")["lazyfreed_objects"])


def _big_set(r: redis.Redis) -> None:
    r.sadd("s", *range(100_000))
    assert r.unlink("s", "missing") == 1
    assert not r.exists("s")
    r.sadd("s", "fresh")  # the name is free at once; the new value is not the one being emptied
    assert r.smembers("s") == {b"fresh"}


def _small_values(r: redis.Redis) -> None:
    r.hset("h", mapping={f"f{i}": i for i in range(100)})  # listpack: one allocation
    r.sadd("i", *range(300))  # intset
    r.rpush("l", *range(60))
    r.set("str", "x" * 100_000)
    assert r.unlink("h", "i", "l", "str") == 4


def _stream_and_hashtable(r: redis.Redis) -> None:
    for j in range(1000):
        r.xadd("stream", {"foo": j})
    r.xgroup_create("stream", "g", "0")
    r.xreadgroup("g", "alice", {"stream": ">"}, count=2)
    r.xadd("tiny", {"a": "b"})
    r.hset("big", mapping={f"f{i}": "v" * 70 for i in range(600)})  # hashtable
    r.zadd("z", {f"m{i}": i for i in range(200)})  # skiplist
    assert r.unlink("stream", "tiny", "big", "z") == 4


def test_lazyfreed_objects_count_as_redis_server_counts(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    theirs = redis_servers(tmp_path).client
    ours = node.client()
    for fill in (_big_set, _small_values, _stream_and_hashtable):
        want = _lazyfreed_after(theirs, fill)
        assert _lazyfreed_after(ours, fill) == want, fill.__name__
    assert want == 3  # the stream, the hashtable, the skiplist: the test can tell
    ours.config_resetstat()
    assert ours.info("memory")["lazyfreed_objects"] == 0
    # A value emptied over several turns of the loop (SLICE_ELEMENTS at a time): the node answers meanwhile.
    pipe = ours.pipeline(transaction=False)
    for start in range(0, 300_000, 100_000):
        pipe.sadd("huge", *range(start, start + 100_000))
    pipe.execute()
    assert ours.unlink("huge") == 1 and ours.ping() and not ours.exists("huge")
    wait_for(lambda: ours.info("memory")["lazyfree_pending_objects"] == 0, 20)
    assert ours.info("memory")["lazyfreed_objects"] == 1
