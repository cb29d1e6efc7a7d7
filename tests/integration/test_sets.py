"""Set commands against a real node through redis-py: exact replies and error strings (Redis 7.0)."""

from __future__ import annotations

import redis

from tests.harness import NodeProcess
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"


node = module_node_fixture()
r = resp2_client_fixture()


def test_sadd_srem_and_membership(r: redis.Redis) -> None:
    assert r.sadd("s", "a", "b", "a") == 2
    assert r.sadd("s", "b", "c") == 1
    assert r.scard("s") == 3
    assert r.scard("missing") == 0
    assert r.sismember("s", "a") == 1
    assert r.sismember("s", "z") == 0
    assert r.sismember("missing", "a") == 0
    assert r.smismember("s", "a", "z", "c") == [1, 0, 1]
    assert r.smismember("missing", "a", "b") == [0, 0]
    assert r.smembers("s") == {b"a", b"b", b"c"}
    assert r.smembers("missing") == set()
    assert r.srem("s", "a", "z") == 1
    assert r.srem("missing", "a") == 0
    assert r.srem("s", "b", "c") == 2
    assert r.exists("s") == 0


def resp3_wire(node: NodeProcess, *commands: list[bytes]) -> bytes:
    """The raw RESP3 bytes a fresh connection receives for ``commands`` (after HELLO 3 and its reply)."""
    import socket

    def encode(argv: list[bytes]) -> bytes:
        return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)

    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(encode([b"HELLO", b"3"]))
        hello = b""
        while not hello.endswith(b"*0\r\n"):  # the map ends with "modules" => empty array
            hello += s.recv(4096)
        s.sendall(b"".join(encode(argv) for argv in commands) + encode([b"PING"]))
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            data += s.recv(4096)
    return data[: -len(b"+PONG\r\n")]


def test_whole_set_replies_are_resp3_sets(r: redis.Redis, node: NodeProcess) -> None:
    r.sadd("s", "a")
    r.sadd("t", "a", "b")
    assert resp3_wire(
        node,
        [b"SMEMBERS", b"s"],
        [b"SINTER", b"s", b"t"],
        [b"SDIFF", b"t", b"t"],
        [b"SRANDMEMBER", b"s", b"-2"],
        [b"SPOP", b"s", b"1"],
        [b"SMEMBERS", b"s"],
    ) == (
        b"~1\r\n$1\r\na\r\n" * 2
        + b"~0\r\n"
        + b"*2\r\n$1\r\na\r\n$1\r\na\r\n"
        + b"~1\r\n$1\r\na\r\n"
        + b"~0\r\n"
    )


def test_spop_removes_what_it_returns(r: redis.Redis) -> None:
    members = {b"a", b"b", b"c", b"d", b"e"}
    r.sadd("s", *members)
    one = r.spop("s")
    assert one in members
    two = set(raw(r, "SPOP", "s", "2"))
    assert len(two) == 2 and two <= members - {one}
    assert r.smembers("s") == members - {one} - two
    assert set(raw(r, "SPOP", "s", "10")) == members - {one} - two
    assert r.exists("s") == 0
    assert r.spop("s") is None
    assert raw(r, "SPOP", "s", "2") == []
    assert raw(r, "SPOP", "s", "0") == []
    assert error_of(raw, r, "SPOP", "s", "-1") == "value is out of range, must be positive"
    assert error_of(raw, r, "SPOP", "s", "1", "2") == SYNTAX


def test_srandmember_counts(r: redis.Redis) -> None:
    r.sadd("s", "a", "b", "c")
    assert r.srandmember("s") in {b"a", b"b", b"c"}
    assert r.srandmember("missing") is None
    assert sorted(r.srandmember("s", 10)) == [b"a", b"b", b"c"]
    two = r.srandmember("s", 2)
    assert len(two) == 2 and len(set(two)) == 2
    repeats = r.srandmember("s", -9)
    assert len(repeats) == 9 and set(repeats) <= {b"a", b"b", b"c"}
    assert r.srandmember("s", 0) == []
    assert r.srandmember("missing", 3) == []
    assert r.scard("s") == 3
    assert error_of(raw, r, "SRANDMEMBER", "s", "abc") == NOT_INTEGER
    assert error_of(raw, r, "SRANDMEMBER", "s", "1", "2") == SYNTAX
    assert error_of(raw, r, "SRANDMEMBER", "s", str(-(2**63))) == (
        "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )


def test_set_algebra_and_store_forms(r: redis.Redis) -> None:
    r.sadd("a", "1", "2", "3", "4")
    r.sadd("b", "3", "4", "5")
    assert r.sinter("a", "b") == {b"3", b"4"}
    assert r.sunion("a", "b") == {b"1", b"2", b"3", b"4", b"5"}
    assert r.sdiff("a", "b") == {b"1", b"2"}
    assert r.sdiff("b", "a") == {b"5"}
    assert r.sinter("a", "missing") == set()
    assert r.sunion("missing") == set()
    assert r.sdiff("missing", "a") == set()
    assert r.sinterstore("d", "a", "b") == 2
    assert r.smembers("d") == {b"3", b"4"}
    assert r.sunionstore("d", "a", "b") == 5
    assert r.sdiffstore("d", "a", "b") == 2
    assert r.smembers("d") == {b"1", b"2"}
    r.expire("d", 100)
    assert r.sunionstore("d", "a") == 4
    assert r.ttl("d") == -1  # a STORE replaces the key, TTL included
    assert r.sinterstore("d", "a", "missing") == 0
    assert r.exists("d") == 0


def test_sintercard(r: redis.Redis) -> None:
    r.sadd("a", "1", "2", "3")
    r.sadd("b", "2", "3", "4")
    assert r.sintercard(2, ["a", "b"]) == 2
    assert r.sintercard(2, ["a", "b"], limit=1) == 1
    assert r.sintercard(1, ["a"], limit=0) == 3
    assert r.sintercard(2, ["a", "missing"]) == 0
    assert error_of(raw, r, "SINTERCARD", "0", "a") == "numkeys should be greater than 0"
    assert error_of(raw, r, "SINTERCARD", "2", "a") == "Number of keys can't be greater than number of args"
    assert error_of(raw, r, "SINTERCARD", "1", "a", "LIMIT", "-1") == "LIMIT can't be negative"
    assert error_of(raw, r, "SINTERCARD", "1", "a", "FOO") == SYNTAX


def test_smove(r: redis.Redis) -> None:
    r.sadd("a", "1", "2")
    r.sadd("b", "2")
    assert r.smove("a", "b", "1") is True
    assert r.smove("a", "b", "nope") is False
    assert r.smove("missing", "b", "1") is False
    assert r.smove("a", "b", "2") is True
    assert r.exists("a") == 0
    assert r.smembers("b") == {b"1", b"2"}
    assert r.smove("b", "b", "1") is True
    assert r.smove("b", "c", "1") is True
    assert r.smembers("c") == {b"1"}


def test_sscan_small_set_in_one_call_and_big_set_by_cursor(r: redis.Redis) -> None:
    r.sadd("small", "1", "2", "3")
    cursor, members = raw(r, "SSCAN", "small", "0", "COUNT", "1")
    assert cursor == b"0" and sorted(members) == [b"1", b"2", b"3"]
    assert raw(r, "SSCAN", "small", "0", "MATCH", "2") == [b"0", [b"2"]]
    assert raw(r, "SSCAN", "missing", "0") == [b"0", []]
    big = {f"m{i}".encode() for i in range(1000)}
    r.sadd("big", *big)
    seen: set[bytes] = set()
    cursor, calls = b"0", 0
    while True:
        cursor, members = raw(r, "SSCAN", "big", cursor, "COUNT", "100")
        seen.update(members)
        calls += 1
        if calls == 3:
            r.srem("big", "m1", "m2")
            r.sadd("big", "new")
        if cursor == b"0":
            break
    assert calls >= 10
    assert seen >= big - {b"m1", b"m2"}
    assert error_of(raw, r, "SSCAN", "big", "0", "TYPE", "set") == SYNTAX


def test_wrong_type_is_refused_everywhere(r: redis.Redis) -> None:
    r.set("str", "x")
    r.sadd("s", "a")
    for args in (
        ("SADD", "str", "a"),
        ("SREM", "str", "a"),
        ("SMEMBERS", "str"),
        ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"),
        ("SCARD", "str"),
        ("SPOP", "str"),
        ("SRANDMEMBER", "str"),
        ("SINTER", "missing", "str"),
        ("SUNION", "s", "str"),
        ("SDIFF", "str", "s"),
        ("SINTERSTORE", "d", "s", "str"),
        ("SINTERCARD", "2", "s", "str"),
        ("SMOVE", "s", "str", "a"),
        ("SMOVE", "str", "s", "a"),
        ("SSCAN", "str", "0"),
    ):
        assert error_of(raw, r, *args) == WRONGTYPE, args
    assert r.exists("d") == 0


def test_generic_key_commands_work_on_sets(r: redis.Redis) -> None:
    r.sadd("ints", "1", "2", "3")
    assert r.object("encoding", "ints") == b"intset"
    r.sadd("ints", "x")
    assert r.object("encoding", "ints") == b"hashtable"
    assert r.copy("ints", "copy") is True
    r.srem("copy", "x")
    assert r.scard("ints") == 4 and r.scard("copy") == 3
    assert r.rename("copy", "renamed") is True
    assert r.type("renamed") == b"set"
    cursor, keys = r.scan(0, _type="set")
    assert cursor == 0 and sorted(keys) == [b"ints", b"renamed"]
    assert r.memory_usage("ints") > 0
    assert r.delete("ints", "renamed") == 2
