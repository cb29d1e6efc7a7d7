"""Functions: FUNCTION LOAD / DELETE / FLUSH / LIST / DUMP / RESTORE / STATS, FCALL and FCALL_RO, compared
with redis-server's replies; libraries in the RDB (ours loaded by redis-server and back), in the AOF and on
replicas."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.shared import module_node_fixture, reply_or_error

NodeFactory = Callable[..., NodeProcess]
node = module_node_fixture()
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

LIB = """#!lua name=mylib
local function get(keys, args) return redis.call('get', keys[1]) end
redis.register_function('myget', get)
redis.register_function('myset', function(keys, args) return redis.call('set', keys[1], args[1]) end)
redis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end,
                        flags={'no-writes'}, description='reads'}
redis.register_function('boom', function() error('boom') end)
redis.register_function('nothere', function() return foo end)
redis.register_function('ro_writes', function(keys) return redis.call('set', keys[1], 'x') end)
"""

SANDBOX_LIB = """#!lua name=sandbox
local function floor(x) return math.floor(x) end
redis.register_function('reg_inside', function() redis.register_function('f2', function() return 2 end) end)
redis.register_function('helper', function(keys) return {floor(2.5), keys[1], redis.REDIS_VERSION_NUM > 0} end)
redis.register_function('keys_global', function() return KEYS end)
redis.register_function('no_dofile', function() return dofile('x') end)
redis.register_function('write_g', function() _G.x = 1 end)
redis.register_function('trick_meta', function() local g = getmetatable(_G) g.__index = {} end)
"""

# (command, args...) run in order on both servers; every reply must be the same.
STEPS: list[tuple[Any, ...]] = [
    ("FUNCTION", "LOAD", "return 1"),
    ("FUNCTION", "LOAD", "#!lua\nreturn 1"),
    ("FUNCTION", "LOAD", "#!lua name=mylib\nreturn 1"),
    ("FUNCTION", "LOAD", "#!lua name=my-lib\nredis.register_function('f', function() return 1 end)"),
    ("FUNCTION", "LOAD", "#!py name=x\n"),
    ("FUNCTION", "LOAD", "#!lua name=x foo=bar\n"),
    ("FUNCTION", "LOAD", "#!lua name=w\nsyntax error"),
    ("FUNCTION", "LOAD", "#!lua name=w\nredis.register_function('a')"),
    ("FUNCTION", "LOAD", "#!lua name=w\nredis.call('ping')"),
    ("FUNCTION", "LOAD", "#!lua name=w\nx = 1"),
    ("FUNCTION", "LOAD", "#!lua name=w\nreturn foo"),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=w\nredis.register_function('g', function() end) redis.register_function('g', function() end)",
    ),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=w\nredis.register_function{function_name='g', callback=function() end, flags={'bogus'}}",
    ),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=w\nredis.register_function{function_name='g', callback=function() end, foo=1}",
    ),
    ("FUNCTION", "LOAD", "#!lua name=w\nredis.register_function('g-h', function() end)"),
    ("FUNCTION", "LOAD", LIB),
    ("FUNCTION", "LOAD", LIB),
    ("FUNCTION", "LOAD", "REPLACE", LIB),
    ("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('myget', function() return 1 end)"),
    ("FCALL", "myset", 1, "k", "v"),
    ("FCALL", "myget", 1, "k"),
    ("FCALL_RO", "ro", 1, "k"),
    ("FCALL_RO", "myget", 1, "k"),
    ("FCALL", "boom", 0),
    ("FCALL", "nothere", 0),
    ("FCALL", "nosuch", 0),
    ("FCALL", "myget", -1),
    ("FCALL", "myget", 5, "k"),
    ("FUNCTION", "LIST"),
    ("FUNCTION", "LIST", "WITHCODE"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "my*"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"),
    ("FUNCTION", "LIST", "BOGUS"),
    ("FUNCTION", "STATS"),
    ("FUNCTION", "KILL"),
    ("FUNCTION", "DELETE", "nosuch"),
    ("FUNCTION", "BOGUS"),
    ("FUNCTION", "FLUSH", "bad"),
    ("FUNCTION", "DELETE", "mylib"),
    ("FCALL", "myget", 1, "k"),
    ("FUNCTION", "LOAD", LIB),
    # Function names are case-insensitive; FCALL's own numkeys text; subcommand syntax errors.
    ("FCALL", "MYGET", 1, "k"),
    ("FCALL", "myget", "x"),
    ("FUNCTION", "FLUSH", "SYNC", "extra"),
    ("FUNCTION", "RESTORE", "a", "b", "c"),
    # register_function's argument checks, the shebang line's parsing, LIST's missing LIBRARYNAME value.
    ("FUNCTION", "LOAD", "#!lua name=t\nredis.register_function('f2', 'not a function')"),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=t\nredis.register_function{function_name=function() end, callback=print}",
    ),
    ("FUNCTION", "LOAD", "#!lua name=t\nredis.register_function{function_name='f', callback='bad'}"),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=t\nredis.register_function{function_name='f', callback=function() end, description={}}",
    ),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=t\nredis.register_function{function_name='f', callback=function() end, flags='x'}",
    ),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=t\nredis.register_function{function_name='f', callback=function() end, flags={{}}}",
    ),
    ("FUNCTION", "LOAD", "#! name=t\nreturn 1"),
    ("FUNCTION", "LOAD", "#!lua name=bad\\0name\nredis.register_function('b', function() return 1 end)"),
    ("FUNCTION", "LOAD", "#!lua name=a name=b\nreturn 1"),
    ("FUNCTION", "LOAD", "#!lua name=\"quoted\"\nredis.register_function('q', function() return 1 end)"),
    ("FUNCTION", "LIST", "LIBRARYNAME"),
    ("FUNCTION", "DELETE", "quoted"),
    # The loading sandbox: only ``redis`` (the loading API) while a library loads; its functions later see
    # the globals (no register_function in the full redis table, no KEYS / ARGV, writes refused).
    ("FUNCTION", "LOAD", "#!lua name=t\nreturn math.random()"),
    ("FUNCTION", "LOAD", "#!lua name=t\nmt = getmetatable(_G)"),
    ("FUNCTION", "LOAD", "#!lua name=t\nreturn string.format('%d', 1)"),
    ("FUNCTION", "LOAD", "REPLACE", SANDBOX_LIB),
    ("FCALL", "reg_inside", 0),
    ("FCALL", "helper", 1, "k"),
    ("FCALL", "keys_global", 0),
    ("EVAL", "return KEYS[1]", 1, "from_eval"),
    ("FCALL", "keys_global", 0),
    ("FCALL", "no_dofile", 0),
    ("FCALL", "write_g", 0),
    ("FCALL", "trick_meta", 0),
    ("FCALL", "no_dofile", 0),
    ("FUNCTION", "DELETE", "sandbox"),
    # A library's top-level code that never ends fails after the load timeout (the node stays up).
    ("FUNCTION", "LOAD", "#!lua name=t\nlocal a = 1 while 1 do a = a + 1 end"),
    # Under maxmemory: a script's write is refused until it has written; a shebang without allow-oom up front.
    ("CONFIG", "SET", "maxmemory", "1"),
    ("EVAL", "return redis.call('set', KEYS[1], '1')", 1, "k"),
    ("EVAL", "return redis.call('get', KEYS[1])", 1, "k"),
    ("EVAL", "#!lua\nreturn 1", 0),
    ("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], '2')", 1, "k"),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", 1, "k"),
    ("FCALL", "myset", 1, "k", "3"),
    ("FCALL", "ro", 1, "k"),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("FUNCTION", "FLUSH", "SYNC"),
    ("FUNCTION", "LIST"),
]


def _unordered(reply: Any) -> Any:
    """FUNCTION LIST with libraries and functions sorted by name (Redis lists them in hash-table order)."""
    if not isinstance(reply, list):
        return reply
    libraries = []
    for library in reply:
        fields = dict(zip(library[::2], library[1::2], strict=True))
        fields[b"functions"] = sorted(fields[b"functions"], key=lambda fn: fn[1])
        libraries.append(sorted(fields.items()))
    return sorted(libraries)


@pytest.mark.compat
@needs_redis
def test_function_commands_reply_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    theirs = redis.Redis(port=redis_servers(tmp_path).port, protocol=2, socket_timeout=10)
    ours = node.client(protocol=2)
    for client in (theirs, ours):
        client.flushall()
        client.function_flush()
    for step in STEPS:
        want, got = reply_or_error(theirs, *step), reply_or_error(ours, *step)
        if step[:2] == ("FUNCTION", "LIST"):
            want, got = _unordered(want), _unordered(got)
        assert got == want, f"{step}: redis-server {want!r}, redactor {got!r}"
    theirs.close()


def test_function_dump_restore_between_redis_server_and_us(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    theirs = redis_servers(tmp_path).client
    ours = node.client()
    ours.function_flush()
    theirs.function_load(LIB)
    payload = theirs.function_dump()
    assert ours.function_restore(payload)
    assert ours.fcall("myset", 1, "k", "v") == b"OK" and ours.fcall("myget", 1, "k") == b"v"
    with pytest.raises(redis.ResponseError, match="Library mylib already exists"):
        ours.function_restore(payload)
    assert ours.function_restore(payload, "REPLACE")
    theirs.function_flush()
    assert theirs.function_restore(ours.function_dump())
    assert theirs.fcall("myget", 1, "k") is None
    assert ours.function_restore(payload, "FLUSH")
    with pytest.raises(redis.ResponseError, match="payload version or checksum are wrong"):
        ours.function_restore(payload[:-1] + b"x")


def test_libraries_survive_in_the_rdb_both_ways(
    node_factory: NodeFactory, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    n = node_factory("rdb")
    c = n.client()
    c.function_load(LIB)
    c.set("k", "v")
    c.save()
    n.stop()
    n.start()
    c = n.client()
    assert c.fcall("myget", 1, "k") == b"v"
    # redis-server loads our RDB, functions included, and we load its.
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    shutil.copy(n.dir / "dump.rdb", ref_dir / "dump.rdb")
    theirs = redis_servers(ref_dir).client
    assert theirs.fcall("myget", 1, "k") == b"v"
    theirs.function_load(
        "#!lua name=theirs\nredis.register_function('twice', function(k, a) return a[1] .. a[1] end)"
    )
    theirs.save()
    n.stop()
    shutil.copy(ref_dir / "dump.rdb", n.dir / "dump.rdb")
    n.start()
    c = n.client()
    assert c.fcall("twice", 0, "ab") == b"abab" and c.fcall("myget", 1, "k") == b"v"


def test_libraries_reach_the_aof_and_replicas(node_factory: NodeFactory) -> None:
    master = node_factory("master", appendonly="yes")
    replica = node_factory("replica")
    m, rc = master.client(), replica.client()
    m.function_load(LIB)
    rc.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for(lambda: rc.info("replication")["master_link_status"] == "up", 15, what="replica link up")
    assert rc.fcall_ro("ro", 1, "k") is None  # the library came with the full sync
    m.fcall("myset", 1, "k", "v")
    m.function_load(
        "#!lua name=later\n"
        "redis.register_function{function_name='later', callback=function() return 7 end, flags={'no-writes'}}"
    )
    wait_for(lambda: rc.get("k") == b"v" and bool(rc.function_list("later")), 10, what="replica caught up")
    assert rc.fcall("later", 0) == 7
    with pytest.raises(
        redis.exceptions.ReadOnlyError, match="^Can not run script with write flag on readonly"
    ):
        rc.fcall("myset", 1, "k", "w")
    master.stop()
    master.start()
    m = master.client()
    assert m.fcall("later", 0) == 7 and m.fcall("myget", 1, "k") == b"v"
