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
RESP2: dict[str, Any] = {"protocol": 2}  # pub/sub messages as RESP2 arrays, whatever redis-py's default


def _events(port: int, commands: list[list[Any]], flags: str = FLAGS) -> list[tuple[bytes, bytes]]:
    """Run ``commands`` on the server at ``port`` and return every keyspace message, in order."""
    client = redis.Redis(port=port, socket_timeout=10, **RESP2)
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


def _compare(
    node: NodeProcess, reference: RedisServer, commands: list[list[Any]], flags: str = FLAGS
) -> None:
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
        ["SET", "s", "1"],
        ["SET", "s", "2", "EX", "100"],
        ["SET", "s", "3", "KEEPTTL"],
        ["SETNX", "s", "x"],
        ["SETNX", "s2", "x"],
        ["APPEND", "s", "a"],
        ["APPEND", "s3", "a"],
        ["SETRANGE", "s", "1", "zz"],
        ["SETRANGE", "s4", "0", ""],
        ["INCR", "n"],
        ["DECRBY", "n", "5"],
        ["INCRBYFLOAT", "n", "1.5"],
        ["MSET", "a", "1", "b", "2"],
        ["MSETNX", "a", "1", "c", "3"],
        ["MSETNX", "d", "1", "e", "3"],
        ["GETSET", "a", "9"],
        ["GETDEL", "a"],
        ["GETDEL", "a"],
        ["GETEX", "b", "EX", "50"],
        ["GETEX", "b", "PERSIST"],
        ["SETEX", "f", "10", "v"],
        ["PSETEX", "g", "1000", "v"],
        ["SET", "h", "v", "NX", "GET"],
        ["GET", "nokey"],
        ["SET", "h", "w", "XX", "GET"],
        ["MGET", "h", "nokey"],
        ["STRLEN", "nokey"],
        ["GETEX", "b", "PXAT", "1"],
    ],
    "keys": [
        ["SET", "a", "1"],
        ["EXPIRE", "a", "100"],
        ["PEXPIRE", "a", "100", "NX"],
        ["PERSIST", "a"],
        ["PERSIST", "a"],
        ["RENAME", "a", "b"],
        ["SET", "c", "1"],
        ["RENAME", "b", "c"],
        ["RENAMENX", "c", "d"],
        ["COPY", "d", "e"],
        ["COPY", "d", "e", "REPLACE"],
        ["COPY", "d", "e", "DB", "1"],
        ["MOVE", "e", "2"],
        ["EXPIRE", "d", "-1"],
        ["DEL", "e", "zz", "c"],
        ["SET", "x", "1"],
        ["UNLINK", "x"],
        ["SET", "y", "1"],
        ["EXPIREAT", "y", "1"],
        ["TYPE", "nokey"],
        ["EXISTS", "nokey"],
    ],
    "lists": [
        ["LPUSH", "l", "a", "b"],
        ["RPUSH", "l", "c"],
        ["LPUSHX", "nol", "a"],
        ["RPUSHX", "l", "d"],
        ["LINSERT", "l", "BEFORE", "c", "x"],
        ["LINSERT", "l", "BEFORE", "zz", "x"],
        ["LSET", "l", "0", "q"],
        ["LREM", "l", "0", "x"],
        ["LREM", "l", "0", "nothing"],
        ["LTRIM", "l", "0", "10"],
        ["LPOP", "l"],
        ["RPOP", "l", "2"],
        ["RPUSH", "m", "1", "2", "3"],
        ["LMOVE", "m", "n", "LEFT", "RIGHT"],
        ["RPOPLPUSH", "m", "m"],
        ["LMOVE", "m", "n", "RIGHT", "LEFT"],
        ["LMOVE", "m", "n", "RIGHT", "LEFT"],
        ["LMPOP", "2", "zz", "n", "LEFT", "COUNT", "5"],
        ["RPUSH", "o", "1"],
        ["BLPOP", "o", "0.1"],
        ["RPUSH", "o", "1", "2"],
        ["BRPOPLPUSH", "o", "p", "0.1"],
        ["BLMPOP", "0.1", "1", "o", "RIGHT"],
        ["RPUSH", "t", "1", "2"],
        ["LTRIM", "t", "5", "10"],
        ["LRANGE", "nol", "0", "-1"],
        ["LLEN", "nol"],
    ],
    "hashes": [
        ["HSET", "h", "a", "1", "b", "2"],
        ["HSET", "h", "a", "1"],
        ["HSETNX", "h", "a", "2"],
        ["HSETNX", "h", "c", "2"],
        ["HMSET", "h", "d", "4"],
        ["HINCRBY", "h", "n", "3"],
        ["HINCRBYFLOAT", "h", "f", "1.5"],
        ["HDEL", "h", "zz"],
        ["HDEL", "h", "a", "b"],
        ["HDEL", "h", "c", "d", "n", "f"],
        ["HGET", "nokey", "a"],
        ["HGETALL", "nokey"],
    ],
    "sets": [
        ["SADD", "s", "a", "b"],
        ["SADD", "s", "a"],
        ["SREM", "s", "zz"],
        ["SREM", "s", "a"],
        ["SADD", "t", "b", "c"],
        ["SMOVE", "s", "t", "b"],
        ["SMOVE", "t", "u", "b"],
        ["SMOVE", "t", "u", "zz"],
        ["SADD", "v", "1", "2", "3"],
        ["SPOP", "v"],
        ["SPOP", "v", "5"],
        ["SADD", "w", "1", "2"],
        ["SINTERSTORE", "x", "w", "u"],
        ["SUNIONSTORE", "x", "w", "u"],
        ["SDIFFSTORE", "x", "w", "w"],
        ["SINTERSTORE", "x", "w", "u"],
        ["SUNIONSTORE", "nx", "zz", "yy"],
        ["SMEMBERS", "nokey"],
    ],
    "zsets": [
        ["ZADD", "z", "1", "a", "2", "b"],
        ["ZADD", "z", "1", "a"],
        ["ZADD", "z", "INCR", "5", "a"],
        ["ZINCRBY", "z", "1", "c"],
        ["ZREM", "z", "zz"],
        ["ZREM", "z", "c"],
        ["ZADD", "z", "3", "c", "4", "d"],
        ["ZREMRANGEBYSCORE", "z", "100", "200"],
        ["ZREMRANGEBYSCORE", "z", "0", "2"],
        ["ZREMRANGEBYRANK", "z", "0", "0"],
        ["ZADD", "y", "0", "a", "0", "b", "0", "c"],
        ["ZREMRANGEBYLEX", "y", "[a", "[a"],
        ["ZPOPMIN", "y"],
        ["ZPOPMAX", "y", "5"],
        ["ZADD", "w", "1", "a", "2", "b"],
        ["ZUNIONSTORE", "u", "2", "w", "z"],
        ["ZINTERSTORE", "u", "2", "w", "z"],
        ["ZDIFFSTORE", "u", "1", "w"],
        ["ZINTERSTORE", "u", "2", "w", "nokey"],
        ["ZRANGESTORE", "r", "w", "0", "-1"],
        ["ZRANGESTORE", "r", "w", "5", "6"],
        ["ZMPOP", "1", "w", "MIN"],
        ["BZPOPMIN", "w", "0.1"],
        ["ZADD", "q", "1", "a"],
        ["BZMPOP", "0.1", "1", "q", "MAX"],
        ["ZSCORE", "nokey", "a"],
        ["ZADD", "z", "XX", "CH", "9", "zz"],
        ["ZREM", "z", "d", "zz"],
    ],
    "streams": [
        ["XADD", "x", "1-1", "f", "v"],
        ["XADD", "x", "2-1", "f", "v"],
        ["XADD", "nox", "NOMKSTREAM", "*", "f", "v"],
        ["XTRIM", "x", "MAXLEN", "5"],
        ["XTRIM", "x", "MAXLEN", "1"],
        ["XDEL", "x", "9-9"],
        ["XDEL", "x", "2-1"],
        ["XADD", "x", "3-1", "f", "v"],
        ["XSETID", "x", "10-1"],
        ["XGROUP", "CREATE", "x", "g", "0"],
        ["XGROUP", "CREATE", "y", "g", "$", "MKSTREAM"],
        ["XGROUP", "CREATECONSUMER", "x", "g", "c"],
        ["XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "x", ">"],
        ["XACK", "x", "g", "3-1"],
        ["XCLAIM", "x", "g", "c", "0", "3-1"],
        ["XAUTOCLAIM", "x", "g", "c", "0", "0"],
        ["XGROUP", "SETID", "x", "g", "0"],
        ["XGROUP", "DELCONSUMER", "x", "g", "c"],
        ["XGROUP", "DESTROY", "x", "g"],
        ["XADD", "x", "MAXLEN", "1", "*", "f", "v"],
    ],
    "other": [
        ["SET", "b", "abc"],
        ["SETBIT", "b", "1", "1"],
        ["SETBIT", "c", "100", "1"],
        ["BITOP", "AND", "d", "b", "c"],
        ["BITOP", "OR", "d", "zz", "yy"],
        ["BITFIELD", "e", "SET", "u8", "0", "255"],
        ["BITFIELD", "e", "GET", "u8", "0"],
        ["PFADD", "p", "a", "b"],
        ["PFADD", "p", "a"],
        ["PFADD", "q", "c"],
        ["PFMERGE", "r", "p", "q"],
        ["PFCOUNT", "p"],
        ["GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
        ["GEOSEARCHSTORE", "gs", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"],
        ["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gr"],
        ["RPUSH", "sl", "3", "1", "2"],
        ["SORT", "sl", "STORE", "so"],
        ["SORT", "zz", "STORE", "so"],
        ["HSET", "hh", "a", "1"],
        ["SELECT", "3"],
        ["SET", "k3", "v"],
        ["DEL", "k3"],
        ["FLUSHALL"],
    ],
}


@pytest.mark.parametrize("family", sorted(FIXED))
def test_events_of_each_family_match_redis(node: NodeProcess, reference: RedisServer, family: str) -> None:
    _compare(node, reference, FIXED[family])


def _random_commands(rng: random.Random, count: int) -> list[list[Any]]:
    """Seeded commands of every family on a few shared keys (so types collide, lists empty out, ...)."""
    keys = ["k1", "k2", "k3", "k4"]
    members = ["a", "b", "c"]

    def k() -> str:
        return rng.choice(keys)

    def m() -> str:
        return rng.choice(members)

    def n() -> str:
        return str(rng.randint(-2, 5))

    makers: list[Callable[[], list[Any]]] = [
        lambda: ["SET", k(), m()],
        lambda: (
            ["SET", k(), m(), rng.choice(["NX", "XX", "GET", "EX"])] + (["100"] if rng.random() < 0.3 else [])
        ),
        lambda: ["SET", k(), m(), "EX", "100"],
        lambda: ["INCR", k()],
        lambda: ["APPEND", k(), m()],
        lambda: ["GETDEL", k()],
        lambda: ["GETEX", k(), "PERSIST"],
        lambda: ["MSET", k(), m(), k(), m()],
        lambda: ["DEL", k(), k()],
        lambda: ["EXPIRE", k(), rng.choice(["100", "-1", "200"])],
        lambda: ["PERSIST", k()],
        lambda: ["RENAME", k(), k()],
        lambda: ["COPY", k(), k(), "REPLACE"],
        lambda: ["LPUSH", k(), m(), m()],
        lambda: ["RPUSH", k(), m()],
        lambda: ["LPOP", k()],
        lambda: ["RPOP", k(), n()],
        lambda: ["LREM", k(), "0", m()],
        lambda: ["LTRIM", k(), n(), n()],
        lambda: ["LMOVE", k(), k(), "LEFT", "RIGHT"],
        lambda: ["LSET", k(), "0", m()],
        lambda: ["HSET", k(), m(), m()],
        lambda: ["HDEL", k(), m(), m()],
        lambda: ["HINCRBY", k(), m(), "1"],
        lambda: ["SADD", k(), m(), m()],
        lambda: ["SREM", k(), m()],
        lambda: ["SMOVE", k(), k(), m()],
        lambda: ["SINTERSTORE", k(), k(), k()],
        lambda: ["SUNIONSTORE", k(), k(), k()],
        lambda: ["ZADD", k(), n(), m()],
        lambda: ["ZINCRBY", k(), "1", m()],
        lambda: ["ZREM", k(), m()],
        lambda: ["ZPOPMIN", k()],
        lambda: ["ZREMRANGEBYSCORE", k(), n(), n()],
        lambda: ["ZUNIONSTORE", k(), "2", k(), k()],
        lambda: ["XADD", k(), "*", "f", m()],
        lambda: ["XTRIM", k(), "MAXLEN", "1"],
        lambda: ["GET", k()],
        lambda: ["LRANGE", k(), "0", "-1"],
        lambda: ["SMEMBERS", k()],
        lambda: ["HGETALL", k()],
        lambda: ["ZRANGE", k(), "0", "-1"],
        lambda: ["TYPE", k()],
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_seeded_random_commands_publish_what_redis_publishes(
    node: NodeProcess, reference: RedisServer, seed: int
) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        _compare(node, reference, _random_commands(rng, 150))


@pytest.mark.parametrize("flags", ["KEA", "Kl", "E$", "Ex", "Kgn", "Em", "gshz", "KEAnm"])
def test_class_subsets_filter_the_same_messages(
    node: NodeProcess, reference: RedisServer, flags: str
) -> None:
    _compare(node, reference, FIXED["lists"] + FIXED["strings"] + FIXED["keys"], flags)


@pytest.mark.parametrize("value", ["KEA", "An", "Kx", "", "gK", "E", "Elsh", "$lshzxetdKEmn", "AKEnm", "ml"])
def test_config_get_shows_the_normalized_classes(
    node: NodeProcess, reference: RedisServer, value: str
) -> None:
    ours, theirs = node.client(), reference.client
    for c in (ours, theirs):
        c.config_set("notify-keyspace-events", value)
    assert ours.config_get("notify-keyspace-events") == theirs.config_get("notify-keyspace-events")
    with pytest.raises(redis.ResponseError) as mine:
        ours.config_set("notify-keyspace-events", "Ab")
    with pytest.raises(redis.ResponseError) as ref:
        theirs.config_set("notify-keyspace-events", "Ab")
    assert str(mine.value) == str(ref.value)
    ours.close()


def test_lazy_and_active_expiry_publish_expired(node: NodeProcess) -> None:
    client = node.client(protocol=2)
    client.config_set("notify-keyspace-events", "Ex")
    sub = client.pubsub()
    sub.psubscribe("__keyevent@0__:*")
    wait_for(lambda: client.pubsub_numpat() == 1, 5, what="the pattern subscription")
    client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    client.set("lazy", "v", px=1)
    wait_for(lambda: client.pttl("lazy") == -2, 5, what="lazy to pass its time")  # the lookup deletes it
    client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    client.set("active", "v", px=1)

    seen: list[tuple[bytes, bytes]] = []

    def got_both() -> bool:
        msg = sub.get_message(timeout=0.1)
        if msg is not None and msg["type"] == "pmessage":
            seen.append((msg["channel"], msg["data"]))
        return len(seen) >= 2

    wait_for(got_both, 10, what="two expired events")
    assert seen == [(b"__keyevent@0__:expired", b"lazy"), (b"__keyevent@0__:expired", b"active")]
    sub.close()
    client.config_set("notify-keyspace-events", "")
    client.close()


def test_notifications_off_publish_nothing_and_keep_the_fast_lane(node: NodeProcess) -> None:
    client = node.client(protocol=2)
    assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": ""}
    sub = client.pubsub()
    sub.psubscribe("__key*__:*")
    wait_for(lambda: client.pubsub_numpat() == 1, 5, what="the pattern subscription")
    client.set("a", "1")
    client.lpush("l", "x")
    client.config_set("notify-keyspace-events", "K")  # no class: still nothing
    client.set("a", "2")
    client.config_set("notify-keyspace-events", "K$")
    client.set("a", "3")
    msgs: list[dict[str, Any]] = []

    def got_event() -> bool:
        msg = sub.get_message(timeout=0.1)
        if msg is not None and msg["type"] == "pmessage":
            msgs.append(msg)
        return bool(msgs)

    wait_for(got_event, 5, what="the one event")
    assert msgs[-1]["channel"] == b"__keyspace@0__:a" and msgs[-1]["data"] == b"set"
    assert sub.get_message(timeout=0.2) is None
    sub.close()
    client.config_set("notify-keyspace-events", "")
    client.close()
