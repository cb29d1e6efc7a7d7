"""Streams against redis-server 7.0: seeded random XADD/XTRIM/XDEL/XRANGE sequences (approximate trimming by
whole listpack nodes included), consumer-group scripts, and blocking reads woken by XADD, DEL and XGROUP DESTROY.

Replies are compared raw (no redis-py callbacks), both servers spoken to in RESP2. Idle times and delivery
times depend on each server's clock, so those fields are compared with a tolerance, never exactly.
"""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.shared import module_node_fixture, resp2_client_fixture

node = module_node_fixture()
r = resp2_client_fixture()

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def call(client: redis.Redis, *args: Any) -> Any:
    """A reply exactly as parsed (no per-command callbacks), or "error: <message>"."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        try:
            return conn.read_response()
        except redis.ResponseError as exc:
            return f"error: {exc}"
    finally:
        client.connection_pool.release(conn)


def _pair(node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path) -> tuple[Any, Any]:
    server = redis_servers(tmp_path)
    ours = node.client(protocol=2)
    ours.flushall()
    theirs = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
    return ours, theirs


def _random_fields(rng: random.Random) -> list[str]:
    out = []
    for _ in range(rng.randint(1, 3)):
        out += [
            rng.choice(["f", "g", "h", "12", "-7"]),
            rng.choice(["v", "1", "300", "x" * rng.randint(0, 90)]),
        ]
    return out


@pytest.mark.compat
@needs_redis
def test_random_add_trim_delete_sequences_match_redis_server(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    ours, theirs = _pair(node, redis_servers, tmp_path)
    rng = random.Random(seed)
    ms = {"s1": 1, "s2": 1}
    for step in range(1500):
        key = rng.choice(["s1", "s2"])
        roll = rng.random()
        if roll < 0.6:
            ms[key] += rng.choice([0, 1, 1, 5])
            args: list[Any] = ["XADD", key]
            trim = rng.random()
            if trim < 0.15:
                args += ["MAXLEN", rng.choice(["~", "=", "~"]), rng.randint(0, 400)]
            elif trim < 0.2:
                args += ["MINID", rng.choice(["~", "="]), f"{max(ms[key] - rng.randint(0, 300), 0)}"]
            if trim < 0.2 and args[2] != "=" and rng.random() < 0.3:
                args += ["LIMIT", rng.randint(0, 300)]
            args.append(rng.choice([f"{ms[key]}-*", f"{ms[key]}-{rng.randint(0, 3)}", f"{ms[key]}"]))
            args += _random_fields(rng)
        elif roll < 0.7:
            args = ["XDEL", key] + [
                f"{rng.randint(0, ms[key])}-{rng.randint(0, 2)}" for _ in range(rng.randint(1, 4))
            ]
        elif roll < 0.75:
            how = rng.choice(["MAXLEN", "MINID"])
            threshold = rng.randint(0, 500) if how == "MAXLEN" else f"{rng.randint(0, ms[key])}-0"
            args = ["XTRIM", key, how, rng.choice(["~", "="]), threshold]
        elif roll < 0.9:
            start = rng.choice(["-", f"{rng.randint(0, ms[key])}", f"({rng.randint(0, ms[key])}-0"])
            end = rng.choice(["+", f"{rng.randint(0, ms[key])}", f"({rng.randint(1, ms[key] + 1)}-0"])
            cmd = rng.choice(["XRANGE", "XREVRANGE"])
            args = [cmd, key, start, end] if cmd == "XRANGE" else [cmd, key, end, start]
            if rng.random() < 0.5:
                args += ["COUNT", rng.randint(0, 20)]
        elif roll < 0.95:
            args = ["XINFO", "STREAM", key]
        else:
            args = ["XREAD", "COUNT", rng.randint(1, 5), "STREAMS", key, f"{rng.randint(0, ms[key])}-0"]
        want, got = call(theirs, *args), call(ours, *args)
        assert got == want, f"step {step}: {args}: redis-server {want!r}, redactor {got!r}"
    assert call(ours, "DEBUG", "DIGEST") == call(theirs, "DEBUG", "DIGEST")


@pytest.mark.compat
@needs_redis
def test_approximate_trimming_follows_the_node_size_settings(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    ours, theirs = _pair(node, redis_servers, tmp_path)
    rng = random.Random(seed)
    for entries, size in (("7", "4096"), ("0", "300"), ("100", "0")):
        for client in (ours, theirs):
            client.config_set("stream-node-max-entries", entries)
            client.config_set("stream-node-max-bytes", size)
        for i in range(300):
            args = [
                "XADD",
                f"s{entries}",
                "MAXLEN",
                "~",
                str(rng.randint(10, 60)),
                f"{i + 1}-1",
                "f",
                "x" * rng.randint(0, 30),
            ]
            assert call(ours, *args) == call(theirs, *args), args
            assert call(ours, "XINFO", "STREAM", f"s{entries}") == call(
                theirs, "XINFO", "STREAM", f"s{entries}"
            )
    for client in (ours, theirs):
        client.config_set("stream-node-max-entries", "100")
        client.config_set("stream-node-max-bytes", "4096")


def _without_times(reply: Any) -> Any:
    """XPENDING / XINFO replies with the clock-dependent numbers blanked (idle, seen-time, delivery time)."""
    if isinstance(reply, list):
        out = []
        skip_next = False
        for item in reply:
            if skip_next:
                out.append("<time>")
                skip_next = False
                continue
            skip_next = item in (b"idle", b"seen-time")
            out.append(_without_times(item))
        return out
    return reply


GROUP_SCRIPT = """
xgroup create s g 0
xgroup create s g 0 mkstream
xgroup create s g 0
xadd s 1-1 a 1
xadd s 2-1 b 2
xadd s 3-1 c 3
xgroup create s g2 $ entriesread 2
xgroup create s g3 0 entriesread -2
xgroup setid s nog 0
xgroup createconsumer s g c1
xgroup createconsumer s g c1
xreadgroup group g c1 count 1 streams s >
xreadgroup group g c2 streams s >
xreadgroup group g c2 streams s >
xreadgroup group g c1 streams s 0
xreadgroup group g c2 streams s $
xreadgroup group nog c2 streams s >
xreadgroup group g c2 streams s
xread group g c streams s >
xread streams s >
xpending s g
xpending s g - + 10 nobody
xpending s nog
xpending s g - +
xack s g 1-1 9-9
xack s g bad
xack s nog 1-1
xpending s g
xdel s 2-1
xreadgroup group g c1 streams s 0
xinfo groups s
xinfo consumers s nog
xinfo stream nokey
xgroup delconsumer s g c2
xgroup delconsumer s g c9
xinfo groups s
xadd s 4-1 d 4
xadd s 5-1 e 5
xreadgroup group g2 c1 noack streams s >
xinfo groups s
xreadgroup group g c3 count 1 streams s >
xautoclaim s g c4 0 0 count 1
xautoclaim s g c4 0 0
xautoclaim s g c4 0 0 justid
xautoclaim s g c4 0 0 count 0
xautoclaim s nog c4 0 0
xclaim s g c5 0 4-1
xclaim s g c5 0 4-1 justid
xclaim s g c5 0 5-1 force retrycount 7
xclaim s g c5 0 4-1 bogus
xclaim s g c5 abc 4-1
xclaim s g c6 0 1-1 2-1 3-1 lastid 9-1
xinfo groups s
xgroup setid s g 0 entriesread 0
xinfo groups s
xinfo consumers s g
xgroup destroy s g
xgroup destroy s g
xgroup help
xgroup foo s g
xgroup create s
xinfo foo s
xinfo stream s full count
xgroup destroy nokey g
xsetid s 1-1
xsetid s 100-1 entriesadded 1
xsetid s 100-1 entriesadded 10 maxdeletedid 5-5
xinfo stream s
xsetid nokey 1-1
"""


@pytest.mark.compat
@needs_redis
def test_consumer_group_script_matches_redis_server(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    ours, theirs = _pair(node, redis_servers, tmp_path)
    for line in GROUP_SCRIPT.strip().splitlines():
        args = line.split()
        want, got = call(theirs, *args), call(ours, *args)
        assert _without_times(got) == _without_times(want), f"{line}: redis-server {want!r}, redactor {got!r}"
    assert call(ours, "DEBUG", "DIGEST") == call(theirs, "DEBUG", "DIGEST")


def test_pending_idle_times_follow_the_clock(r: redis.Redis) -> None:
    r.xadd("s", {"a": "1"}, id="1-1")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"})
    entry = call(r, "XPENDING", "s", "g", "-", "+", "10")[0]
    assert entry[0] == b"1-1" and entry[1] == b"c" and 0 <= entry[2] < 5000 and entry[3] == 1
    assert call(r, "XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10") == []
    call(r, "XCLAIM", "s", "g", "d", "0", "1-1", "IDLE", "50000")
    entry = call(r, "XPENDING", "s", "g", "-", "+", "10")[0]
    assert entry[1] == b"d" and 50000 <= entry[2] < 55000 and entry[3] == 2


def _blocked_call(client: redis.Redis, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call(client, *args)), daemon=True)
    thread.start()
    return thread, out


def _wait_blocked(r: redis.Redis, count: int) -> None:
    wait_for(lambda: r.info("clients")["blocked_clients"] == count, 10, what=f"{count} blocked clients")


def test_xread_block_is_woken_by_xadd_after_dollar(node: NodeProcess, r: redis.Redis) -> None:
    r.xadd("s", {"a": "1"}, id="1-1")
    other = node.client(protocol=2)
    thread, out = _blocked_call(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    _wait_blocked(r, 1)
    r.xadd("s", {"b": "2"}, id="2-1")
    thread.join(10)
    assert out == [[[b"s", [[b"2-1", [b"b", b"2"]]]]]]
    assert call(r, "XREAD", "BLOCK", "10", "STREAMS", "s", "$") is None  # times out: nothing after the top


def test_blocked_reads_are_served_even_when_maxlen_0_trimmed_the_new_entry(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.xadd("s", {"a": "1"}, id="1-1")
    r.xgroup_create("s", "g", id="$")
    other, another = node.client(protocol=2), node.client(protocol=2)
    plain, plain_out = _blocked_call(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    grouped, grouped_out = _blocked_call(
        another, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"
    )
    _wait_blocked(r, 2)
    r.xadd("s", {"b": "2"}, id="2-1", maxlen=0, approximate=False)
    plain.join(10)
    grouped.join(10)
    assert plain_out == grouped_out == [[[b"s", []]]]  # as redis-server: served, with nothing left to read
    assert call(r, "XINFO", "GROUPS", "s")[0][:8] == [b"name", b"g", b"consumers", 1, b"pending", 0,
                                                     b"last-delivered-id", b"1-1"]  # fmt: skip


def test_xread_block_waits_on_a_missing_key_and_ignores_smaller_ids(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.xadd("s", {"a": "1"}, id="5-1")
    other = node.client(protocol=2)
    thread, out = _blocked_call(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "new", "$", "$")
    _wait_blocked(r, 1)
    r.delete("s")
    r.xadd("s", {"x": "1"}, id="1-1")  # below the 5-1 it waits past: keeps waiting
    r.xadd("new", {"y": "1"}, id="3-3")
    thread.join(10)
    assert out == [[[b"new", [[b"3-3", [b"y", b"1"]]]]]]


def test_xreadgroup_block_is_woken_and_records_pending(node: NodeProcess, r: redis.Redis) -> None:
    r.xgroup_create("s", "g", id="$", mkstream=True)
    other = node.client(protocol=2)
    thread, out = _blocked_call(other, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    _wait_blocked(r, 1)
    r.xadd("s", {"a": "1"}, id="1-1")
    thread.join(10)
    assert out == [[[b"s", [[b"1-1", [b"a", b"1"]]]]]]
    assert call(r, "XPENDING", "s", "g")[:3] == [1, b"1-1", b"1-1"]


def test_xreadgroup_block_ends_with_an_error_when_its_group_or_key_goes(
    node: NodeProcess, r: redis.Redis
) -> None:
    r.xgroup_create("s", "g", id="$", mkstream=True)
    other = node.client(protocol=2)
    thread, out = _blocked_call(other, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    _wait_blocked(r, 1)
    r.xgroup_destroy("s", "g")
    thread.join(10)
    assert out == ["error: NOGROUP the consumer group this client was blocked on no longer exists"]
    r.xgroup_create("s", "g", id="$")
    thread, out = _blocked_call(other, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    _wait_blocked(r, 1)
    r.delete("s")
    thread.join(10)
    assert out == ["error: UNBLOCKED the stream key no longer exists"]


def test_xread_block_times_out_with_a_null_array(r: redis.Redis) -> None:
    r.xadd("s", {"a": "1"}, id="1-1")
    assert call(r, "XREAD", "BLOCK", "50", "STREAMS", "s", "$") is None
    assert call(r, "XREAD", "BLOCK", "-1", "STREAMS", "s", "$") == "error: timeout is negative"


def test_streams_are_a_type_for_generic_commands(r: redis.Redis) -> None:
    r.xadd("s", {"a": "1"}, id="1-1")
    assert r.type("s") == b"stream"
    assert r.object("encoding", "s") == b"stream"
    assert r.copy("s", "t")
    r.xadd("t", {"b": "2"}, id="2-1")
    assert r.xlen("s") == 1 and r.xlen("t") == 2
    assert call(r, "LPUSH", "s", "x").startswith("error: WRONGTYPE")
    assert call(r, "XADD", "l", "*", "a") == "error: wrong number of arguments for 'xadd' command"
    small = r.memory_usage("s")
    for i in range(200):
        r.xadd("s", {"field": "value" * 10}, id=f"{10 + i}-1")
    assert r.memory_usage("s") > small + 200 * 50


def test_streams_survive_a_debug_reload_and_star_ids_grow(r: redis.Redis) -> None:
    ids = [r.xadd("s", {"a": str(i)}) for i in range(50)]
    assert ids == sorted(ids, key=lambda x: tuple(map(int, x.split(b"-")))) and len(set(ids)) == 50
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=7)
    r.xdel("s", ids[3])
    before = call(r, "XINFO", "STREAM", "s", "FULL")
    digest = call(r, "DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "RELOAD") == b"OK"
    assert call(r, "DEBUG", "DIGEST") == digest
    assert call(r, "XINFO", "STREAM", "s", "FULL") == before


def _blank_idle(args: list[Any], reply: Any) -> Any:
    """Clock-dependent numbers blanked: XPENDING's idle column, XINFO CONSUMERS' idle."""
    name = args[0].upper()
    if name == "XPENDING" and len(args) > 3 and isinstance(reply, list):
        return [entry[:2] + ["<idle>"] + entry[3:] for entry in reply]
    if name == "XINFO" and isinstance(reply, list):
        return _without_times(reply)
    return reply


@pytest.mark.compat
@needs_redis
def test_random_consumer_group_sequences_match_redis_server(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    ours, theirs = _pair(node, redis_servers, tmp_path)
    rng = random.Random(seed)
    consumers = ["c1", "c2", "c3", "c4"]
    groups = ["g1", "g2"]
    ms = 1
    setup = [["XGROUP", "CREATE", "s", "g1", "0", "MKSTREAM"], ["XGROUP", "CREATE", "s", "g2", "$"]]
    for args in setup:
        assert call(theirs, *args) == call(ours, *args)

    def some_id() -> str:
        return f"{rng.randint(1, ms)}-{rng.randint(0, 1)}"

    for step in range(1200):
        group, consumer = rng.choice(groups), rng.choice(consumers)
        roll = rng.random()
        if roll < 0.25:
            ms += rng.choice([0, 1, 2])
            args: list[Any] = ["XADD", "s", f"{ms}-*", "f", str(rng.randint(0, 9))]
        elif roll < 0.4:
            args = ["XREADGROUP", "GROUP", group, consumer]
            if rng.random() < 0.5:
                args += ["COUNT", rng.randint(1, 5)]
            if rng.random() < 0.15:
                args.append("NOACK")
            args += ["STREAMS", "s", rng.choice([">", ">", ">", "0", some_id()])]
        elif roll < 0.5:
            args = ["XACK", "s", group] + [some_id() for _ in range(rng.randint(1, 4))]
        elif roll < 0.6:
            args = ["XCLAIM", "s", group, consumer, "0"] + [some_id() for _ in range(rng.randint(1, 3))]
            for option in ("JUSTID", "FORCE"):
                if rng.random() < 0.3:
                    args.append(option)
            if rng.random() < 0.2:
                args += ["RETRYCOUNT", rng.randint(0, 5)]
            if rng.random() < 0.1:
                args += ["LASTID", some_id()]
        elif roll < 0.68:
            args = [
                "XAUTOCLAIM",
                "s",
                group,
                consumer,
                "0",
                rng.choice(["0", "-", some_id(), f"({some_id()}"]),
            ]
            if rng.random() < 0.5:
                args += ["COUNT", rng.randint(1, 6)]
            if rng.random() < 0.3:
                args.append("JUSTID")
        elif roll < 0.78:
            args = rng.choice(
                [
                    ["XPENDING", "s", group],
                    ["XPENDING", "s", group, "-", "+", rng.randint(0, 10)],
                    ["XPENDING", "s", group, some_id(), "+", rng.randint(1, 10), consumer],
                ]
            )
        elif roll < 0.84:
            args = ["XDEL", "s", some_id()]
        elif roll < 0.9:
            args = rng.choice(
                [
                    ["XGROUP", "SETID", "s", group, rng.choice(["$", "0", some_id()])],
                    ["XGROUP", "CREATECONSUMER", "s", group, consumer],
                    ["XGROUP", "DELCONSUMER", "s", group, consumer],
                    ["XTRIM", "s", "MAXLEN", rng.randint(5, 40)],
                ]
            )
        else:
            args = rng.choice(
                [["XINFO", "GROUPS", "s"], ["XINFO", "CONSUMERS", "s", group], ["XINFO", "STREAM", "s"]]
            )
        want, got = call(theirs, *args), call(ours, *args)
        assert _blank_idle(args, got) == _blank_idle(args, want), (
            f"step {step}: {args}: redis-server {want!r}, redactor {got!r}"
        )
    assert call(ours, "DEBUG", "DIGEST") == call(theirs, "DEBUG", "DIGEST")
