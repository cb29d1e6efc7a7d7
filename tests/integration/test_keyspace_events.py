"""Keyspace notifications against a real node, compared message for message with redis-server.

Both servers run the same command sequence while a subscriber on ``__key*__:*`` records every message; the
two recordings must be equal (fixed sequences per family, then seeded random ones across all types).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

END = b"__end_of_sequence__"
FLAGS = "KEAnm"


def _events(port: int, commands: list[list[Any]], flags: str = FLAGS) -> list[tuple[bytes, bytes]]:
    """Run ``commands`` on the server at ``port`` and return every keyspace message, in order."""
    client = redis.Redis(port=port, protocol=2, socket_timeout=10)
    client.flushall()
    client.config_set("notify-keyspace-events", flags)
    sub = client.pubsub()
    sub.psubscribe("__key*__:*")
    sub.subscribe(END)
    wait_for(lambda: client.pubsub_numpat() == 1, 5, what="the pattern subscription")
    try:
        for argv in commands:
            try:
                client.execute_command(*argv)
            except redis.ResponseError:
                pass
        client.publish(END, b"x")
        seen: list[tuple[bytes, bytes]] = []
        while True:
            msg = sub.get_message(timeout=5)
            assert msg is not None, f"no end marker; seen so far: {seen}"
            if msg["type"] == "pmessage":
                seen.append((msg["channel"], msg["data"]))
            elif msg["type"] == "message" and msg["channel"] == END:
                return seen
    finally:
        sub.close()
        client.config_set("notify-keyspace-events", "")
        client.close()


def _compare(node: NodeProcess, reference: RedisServer, commands: list[list[Any]], flags: str = FLAGS) -> None:
    theirs = _events(reference.port, commands, flags)
    ours = _events(node.port, commands, flags)
    if ours != theirs:
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            if a != b:
                print("first difference at", i, "ours", a, "theirs", b)
                break
    assert ours == theirs


@pytest.fixture
def reference(redis_servers: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    directory = tmp_path / "reference"
    directory.mkdir()
    return redis_servers(directory)


FIXED: dict[str, list[list[Any]]] = {
    "strings": [
        ["SET", "s", "1"], ["SET", "s", "2", "EX", "100"], ["SET", "s", "3", "KEEPTTL"], ["SETNX", "s", "x"],
        ["SETNX", "s2", "x"], ["APPEND", "s", "a"], ["APPEND", "s3", "a"], ["SETRANGE", "s", "1", "zz"],
        ["SETRANGE", "s4", "0", ""], ["INCR", "n"], ["DECRBY", "n", "5"], ["INCRBYFLOAT", "n", "1.5"],
        ["MSET", "a", "1", "b", "2"], ["MSETNX", "a", "1", "c", "3"], ["MSETNX", "d", "1", "e", "3"],
        ["GETSET", "a", "9"], ["GETDEL", "a"], ["GETDEL", "a"], ["GETEX", "b", "EX", "50"], ["GETEX", "b", "PERSIST"],
        ["SETEX", "f", "10", "v"], ["PSETEX", "g", "1000", "v"], ["SET", "h", "v", "NX", "GET"], ["GET", "nokey"],
        ["SET", "h", "w", "XX", "GET"], ["MGET", "h", "nokey"], ["STRLEN", "nokey"], ["GETEX", "b", "PXAT", "1"],
    ],
    "keys": [
        ["SET", "a", "1"], ["EXPIRE", "a", "100"], ["PEXPIRE", "a", "100", "NX"], ["PERSIST", "a"],
        ["PERSIST", "a"], ["RENAME", "a", "b"], ["SET", "c", "1"], ["RENAME", "b", "c"], ["RENAMENX", "c", "d"],
        ["COPY", "d", "e"], ["COPY", "d", "e", "REPLACE"], ["COPY", "d", "e", "DB", "1"], ["MOVE", "e", "2"],
        ["EXPIRE", "d", "-1"], ["DEL", "e", "zz", "c"], ["SET", "x", "1"], ["UNLINK", "x"],
        ["SET", "y", "1"], ["EXPIREAT", "y", "1"], ["TYPE", "nokey"], ["EXISTS", "nokey"],
    ],
    "lists": [
        ["LPUSH", "l", "a", "b"], ["RPUSH", "l", "c"], ["LPUSHX", "nol", "a"], ["RPUSHX", "l", "d"],
        ["LINSERT", "l", "BEFORE", "c", "x"], ["LINSERT", "l", "BEFORE", "zz", "x"], ["LSET", "l", "0", "q"],
        ["LREM", "l", "0", "x"], ["LREM", "l", "0", "nothing"], ["LTRIM", "l", "0", "10"], ["LPOP", "l"],
        ["RPOP", "l", "2"], ["RPUSH", "m", "1", "2", "3"], ["LMOVE", "m", "n", "LEFT", "RIGHT"],
        ["RPOPLPUSH", "m", "m"], ["LMOVE", "m", "n", "RIGHT", "LEFT"], ["LMOVE", "m", "n", "RIGHT", "LEFT"],
        ["LMPOP", "2", "zz", "n", "LEFT", "COUNT", "5"], ["RPUSH", "o", "1"], ["BLPOP", "o", "0.1"],
        ["RPUSH", "o", "1", "2"], ["BRPOPLPUSH", "o", "p", "0.1"], ["BLMPOP", "0.1", "1", "o", "RIGHT"],
        ["RPUSH", "t", "1", "2"], ["LTRIM", "t", "5", "10"], ["LRANGE", "nol", "0", "-1"], ["LLEN", "nol"],
    ],
    "hashes": [
        ["HSET", "h", "a", "1", "b", "2"], ["HSET", "h", "a", "1"], ["HSETNX", "h", "a", "2"],
        ["HSETNX", "h", "c", "2"], ["HMSET", "h", "d", "4"], ["HINCRBY", "h", "n", "3"],
        ["HINCRBYFLOAT", "h", "f", "1.5"], ["HDEL", "h", "zz"], ["HDEL", "h", "a", "b"],
        ["HDEL", "h", "c", "d", "n", "f"], ["HGET", "nokey", "a"], ["HGETALL", "nokey"],
    ],
    "sets": [
        ["SADD", "s", "a", "b"], ["SADD", "s", "a"], ["SREM", "s", "zz"], ["SREM", "s", "a"],
        ["SADD", "t", "b", "c"], ["SMOVE", "s", "t", "b"], ["SMOVE", "t", "u", "b"], ["SMOVE", "t", "u", "zz"],
        ["SADD", "v", "1", "2", "3"], ["SPOP", "v"], ["SPOP", "v", "5"], ["SADD", "w", "1", "2"],
        ["SINTERSTORE", "x", "w", "u"], ["SUNIONSTORE", "x", "w", "u"], ["SDIFFSTORE", "x", "w", "w"],
        ["SINTERSTORE", "x", "w", "u"], ["SUNIONSTORE", "nx", "zz", "yy"], ["SMEMBERS", "nokey"],
    ],
    "zsets": [
        ["ZADD", "z", "1", "a", "2", "b"], ["ZADD", "z", "1", "a"], ["ZADD", "z", "INCR", "5", "a"],
        ["ZINCRBY", "z", "1", "c"], ["ZREM", "z", "zz"], ["ZREM", "z", "c"], ["ZADD", "z", "3", "c", "4", "d"],
        ["ZREMRANGEBYSCORE", "z", "100", "200"], ["ZREMRANGEBYSCORE", "z", "0", "2"],
        ["ZREMRANGEBYRANK", "z", "0", "0"], ["ZADD", "y", "0", "a", "0", "b", "0", "c"],
        ["ZREMRANGEBYLEX", "y", "[a", "[a"], ["ZPOPMIN", "y"], ["ZPOPMAX", "y", "5"],
        ["ZADD", "w", "1", "a", "2", "b"], ["ZUNIONSTORE", "u", "2", "w", "z"], ["ZINTERSTORE", "u", "2", "w", "z"],
        ["ZDIFFSTORE", "u", "1", "w"], ["ZINTERSTORE", "u", "2", "w", "nokey"], ["ZRANGESTORE", "r", "w", "0", "-1"],
        ["ZRANGESTORE", "r", "w", "5", "6"], ["ZMPOP", "1", "w", "MIN"], ["BZPOPMIN", "w", "0.1"],
        ["ZADD", "q", "1", "a"], ["BZMPOP", "0.1", "1", "q", "MAX"], ["ZSCORE", "nokey", "a"],
        ["ZADD", "z", "XX", "CH", "9", "zz"], ["ZREM", "z", "d", "zz"],
    ],
    "streams": [
        ["XADD", "x", "1-1", "f", "v"], ["XADD", "x", "2-1", "f", "v"], ["XADD", "nox", "NOMKSTREAM", "*", "f", "v"],
        ["XTRIM", "x", "MAXLEN", "5"], ["XTRIM", "x", "MAXLEN", "1"], ["XDEL", "x", "9-9"], ["XDEL", "x", "2-1"],
        ["XADD", "x", "3-1", "f", "v"], ["XSETID", "x", "10-1"], ["XGROUP", "CREATE", "x", "g", "0"],
        ["XGROUP", "CREATE", "y", "g", "$", "MKSTREAM"], ["XGROUP", "CREATECONSUMER", "x", "g", "c"],
        ["XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "x", ">"], ["XACK", "x", "g", "3-1"],
        ["XCLAIM", "x", "g", "c", "0", "3-1"], ["XAUTOCLAIM", "x", "g", "c", "0", "0"],
        ["XGROUP", "SETID", "x", "g", "0"], ["XGROUP", "DELCONSUMER", "x", "g", "c"],
        ["XGROUP", "DESTROY", "x", "g"], ["XADD", "x", "MAXLEN", "1", "*", "f", "v"],
    ],
    "other": [
        ["SET", "b", "abc"], ["SETBIT", "b", "1", "1"], ["SETBIT", "c", "100", "1"], ["BITOP", "AND", "d", "b", "c"],
        ["BITOP", "OR", "d", "zz", "yy"], ["BITFIELD", "e", "SET", "u8", "0", "255"], ["BITFIELD", "e", "GET", "u8", "0"],
        ["PFADD", "p", "a", "b"], ["PFADD", "p", "a"], ["PFADD", "q", "c"], ["PFMERGE", "r", "p", "q"],
        ["PFCOUNT", "p"], ["GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
        ["GEOSEARCHSTORE", "gs", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"],
        ["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gr"], ["RPUSH", "sl", "3", "1", "2"],
        ["SORT", "sl", "STORE", "so"], ["SORT", "zz", "STORE", "so"], ["HSET", "hh", "a", "1"],
        ["SELECT", "3"], ["SET", "k3", "v"], ["DEL", "k3"], ["FLUSHALL"],
    ],
}


@pytest.mark.parametrize("family", sorted(FIXED))
def test_events_of_each_family_match_redis(node: NodeProcess, reference: RedisServer, family: str) -> None:
    _compare(node, reference, FIXED[family])
