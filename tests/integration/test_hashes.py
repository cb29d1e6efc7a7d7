"""Hash commands against a real node through redis-py: exact replies and error strings (Redis 7.0)."""

from __future__ import annotations

import redis

from tests.harness import NodeProcess
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"


node = module_node_fixture()
r = resp2_client_fixture()


def test_hset_counts_new_fields_and_hget_reads_them(r: redis.Redis) -> None:
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert raw(r, "HSET", "h", "a", "10", "c", "3") == 1
    assert r.hget("h", "a") == b"10"
    assert r.hget("h", "nope") is None
    assert r.hget("missing", "a") is None
    assert r.hmget("h", "a", "nope", "c") == [b"10", None, b"3"]
    assert r.hmget("missing", "a", "b") == [None, None]
    assert r.hlen("h") == 3
    assert r.hlen("missing") == 0
    assert r.type("h") == b"hash"
    assert error_of(raw, r, "HSET", "h", "a") == "wrong number of arguments for 'hset' command"
    assert error_of(raw, r, "HSET", "h", "a", "1", "b") == "wrong number of arguments for 'hset' command"


def test_hmset_hsetnx_hexists_hstrlen(r: redis.Redis) -> None:
    assert raw(r, "HMSET", "h", "a", "1", "b", "22") == b"OK"
    assert error_of(raw, r, "HMSET", "h", "a") == "wrong number of arguments for 'hmset' command"
    assert r.hsetnx("h", "a", "x") == 0
    assert r.hsetnx("h", "c", "333") == 1
    assert r.hget("h", "a") == b"1"
    assert r.hexists("h", "c") is True
    assert r.hexists("h", "z") is False
    assert r.hexists("missing", "a") is False
    assert r.hstrlen("h", "c") == 3
    assert r.hstrlen("h", "z") == 0
    assert r.hstrlen("missing", "a") == 0


def test_whole_hash_reads(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert raw(r, "HGETALL", "h") == [b"a", b"1", b"b", b"2"]
    assert r.hgetall("missing") == {}
    assert r.hkeys("h") == [b"a", b"b"]
    assert r.hvals("h") == [b"1", b"2"]
    assert r.hkeys("missing") == [] and r.hvals("missing") == []


def test_hgetall_is_a_map_in_resp3(node: NodeProcess) -> None:
    r3 = node.client(protocol=3)
    r3.flushall()
    r3.hset("h", mapping={"a": "1", "b": "2"})
    assert r3.execute_command("HGETALL", "h") == {b"a": b"1", b"b": b"2"}
    assert r3.execute_command("HRANDFIELD", "h", "-2", "WITHVALUES")[0] in ([b"a", b"1"], [b"b", b"2"])
    r3.close()


def test_hdel_deletes_the_emptied_hash(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.hdel("h", "a", "zz", "a") == 1
    assert r.hdel("missing", "a") == 0
    assert r.hdel("h", "b") == 1
    assert r.exists("h") == 0


def test_hincrby_and_its_errors(r: redis.Redis) -> None:
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -10) == -5
    assert r.hget("h", "n") == b"-5"
    r.hset("h", "big", str(2**63 - 1))
    assert error_of(r.hincrby, "h", "big", 1) == "increment or decrement would overflow"
    r.hset("h", "s", "abc")
    assert error_of(r.hincrby, "h", "s", 1) == "hash value is not an integer"
    assert error_of(raw, r, "HINCRBY", "h", "n", "1.5") == NOT_INTEGER


def test_hincrbyfloat_stores_a_human_float(r: redis.Redis) -> None:
    assert r.hincrbyfloat("h", "f", 1.5) == 1.5
    assert raw(r, "HINCRBYFLOAT", "h", "f", "0.25") == b"1.75"
    assert raw(r, "HINCRBYFLOAT", "h", "f", "-1.75") == b"0"
    assert raw(r, "HINCRBYFLOAT", "h", "g", "3.0e3") == b"3000"
    assert r.hget("h", "g") == b"3000"
    r.hset("h", "s", "abc")
    assert error_of(raw, r, "HINCRBYFLOAT", "h", "s", "1") == "hash value is not a float"
    assert error_of(raw, r, "HINCRBYFLOAT", "h", "f", "abc") == "value is not a valid float"
    assert error_of(raw, r, "HINCRBYFLOAT", "h", "f", "inf") == "value is NaN or Infinity"


def test_hrandfield_counts(r: redis.Redis) -> None:
    fields = {"a": "1", "b": "2", "c": "3"}
    r.hset("h", mapping=fields)
    assert r.hrandfield("h").decode() in fields
    assert r.hrandfield("missing") is None
    assert sorted(r.hrandfield("h", 10)) == [b"a", b"b", b"c"]
    picked = r.hrandfield("h", 2)
    assert len(picked) == 2 and len(set(picked)) == 2
    repeats = r.hrandfield("h", -7)
    assert len(repeats) == 7 and set(repeats) <= {b"a", b"b", b"c"}
    flat = raw(r, "HRANDFIELD", "h", "-4", "WITHVALUES")
    assert len(flat) == 8
    for field, value in zip(flat[::2], flat[1::2], strict=True):
        assert fields[field.decode()] == value.decode()
    assert r.hrandfield("h", 0) == []
    assert r.hrandfield("missing", 3) == []
    assert error_of(raw, r, "HRANDFIELD", "h", "1", "FOO") == SYNTAX
    assert error_of(raw, r, "HRANDFIELD", "h", "1", "WITHVALUES", "x") == SYNTAX
    assert error_of(raw, r, "HRANDFIELD", "h", "abc") == NOT_INTEGER
    assert error_of(raw, r, "HRANDFIELD", "h", str(-(2**63))) == (
        "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert error_of(raw, r, "HRANDFIELD", "h", str(2**63 - 1), "WITHVALUES") == "value is out of range"


def test_hscan_small_hash_in_one_call_and_big_hash_by_cursor(r: redis.Redis) -> None:
    r.hset("small", mapping={"a": "1", "b": "2", "c": "3"})
    assert raw(r, "HSCAN", "small", "0", "COUNT", "1") == [b"0", [b"a", b"1", b"b", b"2", b"c", b"3"]]
    assert raw(r, "HSCAN", "small", "0", "MATCH", "b*") == [b"0", [b"b", b"2"]]
    assert raw(r, "HSCAN", "missing", "0") == [b"0", []]
    big = {f"f{i}": str(i) for i in range(600)}
    r.hset("big", mapping=big)
    seen: dict[bytes, bytes] = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, flat = raw(r, "HSCAN", "big", cursor, "COUNT", "100")
        calls += 1
        seen.update(zip(flat[::2], flat[1::2], strict=True))
        if calls == 2:
            r.hdel("big", "f0", "f1")  # changes during the walk do not make it skip what stays
        if cursor == b"0":
            break
    assert calls > 2
    assert {k.decode(): v.decode() for k, v in seen.items()}.keys() >= set(big) - {"f0", "f1"}
    assert error_of(raw, r, "HSCAN", "big", "abc") == "invalid cursor"
    assert error_of(raw, r, "HSCAN", "big", "0", "COUNT", "0") == SYNTAX
    assert error_of(raw, r, "HSCAN", "big", "0", "TYPE", "hash") == SYNTAX


def test_wrong_type_is_refused_everywhere(r: redis.Redis) -> None:
    r.rpush("l", "a")
    for args in (
        ("HSET", "l", "a", "1"),
        ("HSETNX", "l", "a", "1"),
        ("HGET", "l", "a"),
        ("HMGET", "l", "a"),
        ("HDEL", "l", "a"),
        ("HLEN", "l"),
        ("HSTRLEN", "l", "a"),
        ("HEXISTS", "l", "a"),
        ("HGETALL", "l"),
        ("HKEYS", "l"),
        ("HVALS", "l"),
        ("HINCRBY", "l", "a", "1"),
        ("HINCRBYFLOAT", "l", "a", "1"),
        ("HRANDFIELD", "l"),
        ("HRANDFIELD", "l", "2"),
        ("HSCAN", "l", "0"),
        ("HMSET", "l", "a", "1"),
    ):
        assert error_of(raw, r, *args) == WRONGTYPE, args


def test_generic_key_commands_work_on_hashes(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1"})
    assert r.object("encoding", "h") == b"listpack"
    r.hset("h", "long", "x" * 100)
    assert r.object("encoding", "h") == b"hashtable"
    assert r.copy("h", "h2") is True
    r.hdel("h2", "a")
    assert r.hlen("h") == 2 and r.hlen("h2") == 1
    assert r.rename("h2", "h3") is True
    assert r.type("h3") == b"hash"
    cursor, keys = r.scan(0, _type="hash")
    assert cursor == 0 and sorted(keys) == [b"h", b"h3"]
    assert r.expire("h3", 100) is True and 0 < r.ttl("h3") <= 100
    assert r.memory_usage("h") > 100
    assert r.delete("h", "h3") == 2


def test_memory_usage_estimates_grow_with_the_value(r: redis.Redis) -> None:
    r.hset("small", "f", "v")
    r.hset("big", mapping={f"field{i}": "x" * 100 for i in range(1000)})
    small = r.memory_usage("small")
    big_sampled = r.memory_usage("big")
    big_exact = r.memory_usage("big", samples=0)
    assert 0 < small < 1000
    assert big_sampled > 100_000 and big_exact > 100_000
    assert abs(big_sampled - big_exact) < big_exact // 10  # uniform fields: sampling is close to counting
    assert r.memory_usage("missing") is None
    for value in (r.set("s", "x"), r.rpush("l", "a"), r.sadd("set", "a"), r.zadd("z", {"a": 1})):
        assert value
    assert all(r.memory_usage(k) > 0 for k in ("s", "l", "set", "z"))
    assert error_of(raw, r, "MEMORY", "USAGE", "big", "SAMPLES") == SYNTAX
    assert error_of(raw, r, "MEMORY", "USAGE", "big", "SAMPLES", "-1") == SYNTAX
    assert error_of(raw, r, "MEMORY", "USAGE", "big", "SAMPLES", "x") == NOT_INTEGER
    assert error_of(raw, r, "MEMORY", "USAGE") == "wrong number of arguments for 'memory|usage' command"
    assert error_of(raw, r, "MEMORY", "FOO") == "unknown subcommand 'FOO'. Try MEMORY HELP."
    help_lines = raw(r, "MEMORY", "HELP")
    assert help_lines[0] == b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert b"USAGE <key> [SAMPLES <count>]" in help_lines
    assert raw(r, "MEMORY", "PURGE") == b"OK"
