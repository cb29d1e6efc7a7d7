"""Generic key commands against a real node through redis-py: exact replies and errors (Redis 7.0)."""

from __future__ import annotations

import time

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"


# -- existence and deletion ------------------------------------------------------------------------------


node = module_node_fixture()
r = resp2_client_fixture()


def test_del_unlink_exists_touch_count_keys(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.exists("a", "a", "nokey") == 2
    assert r.touch("a", "nokey") == 1
    assert r.delete("a", "b", "nokey") == 2
    assert r.unlink("c", "c") == 1
    assert r.exists("a", "b", "c") == 0
    assert error_of(r.execute_command, "DEL") == "wrong number of arguments for 'del' command"


def test_type_reports_string_and_none(r: redis.Redis) -> None:
    r.set("s", "v")
    assert r.type("s") == b"string"
    assert r.type("nokey") == b"none"


def test_keys_matches_redis_glob_patterns(r: redis.Redis) -> None:
    r.mset({k: "1" for k in ["hello", "hallo", "hxllo", "hllo", "heeello", "h?llo", "other"]})
    assert sorted(r.keys("h?llo")) == [b"h?llo", b"hallo", b"hello", b"hxllo"]
    assert sorted(r.keys("h*llo")) == [b"h?llo", b"hallo", b"heeello", b"hello", b"hllo", b"hxllo"]
    assert sorted(r.keys("h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(r.keys("h[^e]llo")) == [b"h?llo", b"hallo", b"hxllo"]
    assert sorted(r.keys("h[a-b]llo")) == [b"hallo"]
    assert r.keys("h\\?llo") == [b"h?llo"]
    assert r.keys("nomatch*") == []
    assert len(r.keys("*")) == 7


def test_keys_and_exists_do_not_see_expired_keys(r: redis.Redis) -> None:
    r.set("gone", "v", px=1)
    r.set("stays", "v")
    wait_for(lambda: r.keys("*") == [b"stays"], 5, what="the expired key to leave KEYS")
    assert r.exists("gone") == 0


def test_randomkey_returns_an_existing_key_or_nil(r: redis.Redis) -> None:
    assert r.randomkey() is None
    r.mset({"a": "1", "b": "2"})
    seen = {r.randomkey() for _ in range(50)}
    assert seen <= {b"a", b"b"} and seen


# -- SCAN ------------------------------------------------------------------------------------------------


def _scan_all(r: redis.Redis, **kwargs: object) -> list[bytes]:
    cursor, found = 0, []
    for _ in range(10_000):
        cursor, keys = r.scan(cursor, **kwargs)  # type: ignore[arg-type]
        found += keys
        if cursor == 0:
            return found
    raise AssertionError("SCAN did not finish")


def test_scan_returns_every_key_exactly_once_across_cursors(r: redis.Redis) -> None:
    r.mset({f"key:{i}": i for i in range(1000)})
    found = _scan_all(r, count=37)
    assert len(found) == 1000
    assert set(found) == {f"key:{i}".encode() for i in range(1000)}


def test_scan_match_and_type_filter(r: redis.Redis) -> None:
    r.mset({f"user:{i}": i for i in range(50)})
    r.mset({f"item:{i}": i for i in range(50)})
    assert sorted(_scan_all(r, match="user:1*", count=10)) == sorted(
        [b"user:1"] + [f"user:{i}".encode() for i in range(10, 20)]
    )
    assert len(_scan_all(r, _type="string", count=100)) == 100
    assert _scan_all(r, _type="list") == []


def test_scan_sees_keys_that_stay_while_others_are_added(r: redis.Redis) -> None:
    r.mset({f"old:{i}": i for i in range(200)})
    cursor, found = 0, []
    cursor, keys = r.scan(cursor, count=50)
    found += keys
    r.mset({f"new:{i}": i for i in range(500)})
    while cursor:
        cursor, keys = r.scan(cursor, count=50)
        found += keys
    assert {k for k in found if k.startswith(b"old:")} == {f"old:{i}".encode() for i in range(200)}


def test_scan_errors(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "SCAN", "abc") == "invalid cursor"
    assert error_of(r.execute_command, "SCAN", " 1") == "invalid cursor"
    assert error_of(r.execute_command, "SCAN", "1x") == "invalid cursor"
    assert error_of(r.execute_command, "SCAN", "18446744073709551616") == "invalid cursor"
    assert error_of(r.execute_command, "SCAN", "0", "COUNT", "0") == SYNTAX
    assert error_of(r.execute_command, "SCAN", "0", "COUNT", "abc") == NOT_INTEGER
    assert error_of(r.execute_command, "SCAN", "0", "MATCH") == SYNTAX
    assert error_of(r.execute_command, "SCAN", "0", "FOO", "bar") == SYNTAX
    assert raw(r, "SCAN", "0") == [b"0", []]


# -- RENAME / COPY / MOVE / databases --------------------------------------------------------------------


def test_rename_moves_value_and_ttl(r: redis.Redis) -> None:
    r.set("a", "1", ex=100)
    r.set("b", "old")
    assert r.rename("a", "b") is True
    assert r.get("b") == b"1"
    assert 99 <= r.ttl("b") <= 100
    assert r.exists("a") == 0
    assert r.rename("b", "b") is True
    assert error_of(r.rename, "nokey", "x") == "no such key"


def test_renamenx(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2"})
    assert r.renamenx("a", "b") is False
    assert r.renamenx("a", "c") is True
    assert r.get("c") == b"1"
    assert r.renamenx("c", "c") is False
    assert error_of(r.renamenx, "nokey", "x") == "no such key"


def test_copy_within_and_across_databases(r: redis.Redis) -> None:
    r.set("src", "v", ex=100)
    assert r.copy("src", "dst") is True
    assert r.get("dst") == b"v" and r.ttl("dst") > 0
    assert r.copy("src", "dst") is False
    r.set("src", "v2")
    assert r.copy("src", "dst", replace=True) is True
    assert r.get("dst") == b"v2"
    assert r.copy("src", "dst", destination_db=1) is True
    assert r.copy("nokey", "x") is False
    r1 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=1)
    try:
        assert r1.get("dst") == b"v2"
    finally:
        r1.close()
    assert error_of(r.copy, "src", "src") == "source and destination objects are the same"
    assert error_of(r.execute_command, "COPY", "src", "x", "DB", "16") == "DB index is out of range"
    assert error_of(r.execute_command, "COPY", "src", "x", "DB", "abc") == NOT_INTEGER
    assert error_of(r.execute_command, "COPY", "src", "x", "FOO") == SYNTAX


def test_move_between_databases(r: redis.Redis) -> None:
    r.set("k", "v", ex=100)
    assert r.move("k", 1) is True
    assert r.exists("k") == 0
    assert r.move("k", 1) is False
    r.execute_command("SELECT", "1")
    try:
        assert r.get("k") == b"v" and r.ttl("k") > 0
        r.execute_command("SELECT", "0")
        r.set("k", "mine")
        assert r.move("k", 1) is False  # the destination already has it
        assert r.get("k") == b"mine"
        assert error_of(r.move, "k", 0) == "source and destination objects are the same"
        assert error_of(r.move, "k", 16) == "DB index is out of range"
        assert error_of(r.execute_command, "MOVE", "k", "abc") == NOT_INTEGER
    finally:
        r.execute_command("SELECT", "0")


def test_select_dbsize_and_flushdb_are_per_database(node: NodeProcess, r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2"})
    other = node.client(db=3)
    other.set("x", "1")
    assert r.dbsize() == 2
    assert other.dbsize() == 1
    assert other.flushdb() is True
    assert other.dbsize() == 0 and r.dbsize() == 2
    other.set("x", "1")
    assert r.flushall() is True
    assert other.dbsize() == 0 and r.dbsize() == 0
    assert error_of(r.execute_command, "SELECT", "16") == "DB index is out of range"
    assert error_of(r.execute_command, "SELECT", "-1") == "DB index is out of range"
    assert error_of(r.execute_command, "SELECT", "abc") == NOT_INTEGER
    assert error_of(r.execute_command, "FLUSHDB", "FOO") == SYNTAX
    assert raw(r, "FLUSHDB", "ASYNC") == b"OK"
    assert raw(r, "FLUSHALL", "SYNC") == b"OK"


def test_swapdb_exchanges_contents_with_their_ttls(node: NodeProcess, r: redis.Redis) -> None:
    r.set("in0", "a", ex=100)
    db1 = node.client(db=1)
    db1.set("in1", "b")
    assert r.swapdb(0, 1) is True
    assert r.keys("*") == [b"in1"]
    assert db1.get("in0") == b"a" and db1.ttl("in0") > 0
    assert r.swapdb(0, 0) is True
    assert error_of(r.swapdb, 0, 16) == "DB index is out of range"
    assert error_of(r.execute_command, "SWAPDB", "a", "1") == "invalid first DB index"
    assert error_of(r.execute_command, "SWAPDB", "0", "b") == "invalid second DB index"


# -- expiry ----------------------------------------------------------------------------------------------


def test_expire_ttl_pttl_persist(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.ttl("k") == -1 and r.pttl("k") == -1
    assert r.ttl("nokey") == -2 and r.pttl("nokey") == -2
    assert r.expire("k", 100) is True
    assert 99 <= r.ttl("k") <= 100
    assert 99_000 < r.pttl("k") <= 100_000
    assert r.pexpire("k", 200_000) is True
    assert 199 <= r.ttl("k") <= 200
    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.persist("nokey") is False
    assert r.ttl("k") == -1
    assert r.expire("nokey", 10) is False


def test_expire_nx_xx_gt_lt(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False  # no TTL yet
    assert r.expire("k", 100, gt=True) is False  # no TTL counts as infinite
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 200, nx=True) is False
    assert r.expire("k", 200, xx=True) is True
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 500, gt=True) is True
    assert r.expire("k", 600, lt=True) is False
    assert r.expire("k", 100, lt=True) is True
    assert 99 <= r.ttl("k") <= 100
    r.persist("k")
    assert r.expire("k", 100, lt=True) is True  # any TTL is less than none


def test_expire_option_errors(r: redis.Redis) -> None:
    r.set("k", "v")
    nx_err = "NX and XX, GT or LT options at the same time are not compatible"
    assert error_of(r.execute_command, "EXPIRE", "k", "100", "NX", "XX") == nx_err
    assert error_of(r.execute_command, "EXPIRE", "k", "100", "NX", "GT") == nx_err
    assert (
        error_of(r.execute_command, "EXPIRE", "k", "100", "GT", "LT")
        == "GT and LT options at the same time are not compatible"
    )
    assert error_of(r.execute_command, "EXPIRE", "k", "100", "FOO") == "Unsupported option FOO"
    assert error_of(r.execute_command, "EXPIRE", "k", "abc") == NOT_INTEGER
    assert (
        error_of(r.execute_command, "EXPIRE", "k", "9223372036854775807")
        == "invalid expire time in 'expire' command"
    )
    assert (
        error_of(r.execute_command, "PEXPIRE", "k", "9223372036854775807")
        == "invalid expire time in 'pexpire' command"
    )
    assert (
        error_of(r.execute_command, "EXPIREAT", "k", "9223372036854775807")
        == "invalid expire time in 'expireat' command"
    )


def test_expire_with_a_past_time_deletes_the_key(r: redis.Redis) -> None:
    for call in (
        lambda: r.expire("k", -1),
        lambda: r.pexpire("k", 0),
        lambda: r.expireat("k", 1),
        lambda: r.pexpireat("k", 1),
    ):
        r.set("k", "v")
        assert call() is True
        assert r.exists("k") == 0


def test_expiretime_and_pexpiretime(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.expiretime("k") == -1
    assert r.expiretime("nokey") == -2
    assert raw(r, "PEXPIRETIME", "nokey") == -2
    at_s = int(time.time()) + 1000
    assert r.expireat("k", at_s) is True
    assert r.expiretime("k") == at_s
    assert raw(r, "PEXPIRETIME", "k") == at_s * 1000
    assert r.pexpireat("k", at_s * 1000 + 499) is True
    assert r.expiretime("k") == at_s
    assert r.pexpireat("k", at_s * 1000 + 500) is True
    assert r.expiretime("k") == at_s + 1  # rounded, as TTL is
    assert raw(r, "PEXPIRETIME", "k") == at_s * 1000 + 500


def test_an_expired_key_is_gone_for_every_command(r: redis.Redis) -> None:
    r.set("k", "v", px=50)
    wait_for(lambda: r.get("k") is None, 5, what="the key to expire")
    assert r.ttl("k") == -2
    assert r.exists("k") == 0
    assert r.incr("k") == 1  # a fresh key, without the old TTL
    assert r.ttl("k") == -1


def test_active_expiry_removes_keys_nobody_reads(r: redis.Redis) -> None:
    r.mset({f"k{i}": "v" for i in range(100)})
    for i in range(100):
        r.pexpire(f"k{i}", 20)
    # DBSIZE counts keys without looking at their TTL: it drops only when the active cycle deletes them.
    wait_for(lambda: r.dbsize() == 0, 10, what="active expiry to delete the keys")
    info = r.info("stats")
    assert info["expired_keys"] >= 100


# -- OBJECT ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        ("123", b"int"),
        ("-5", b"int"),
        ("0", b"int"),
        ("01", b"embstr"),
        ("-0", b"embstr"),
        ("9223372036854775808", b"embstr"),
        ("short", b"embstr"),
        ("x" * 44, b"embstr"),
        ("x" * 45, b"raw"),
    ],
)
def test_object_encoding_of_strings(r: redis.Redis, value: str, encoding: bytes) -> None:
    r.set("k", value)
    assert r.object("encoding", "k") == encoding


def test_object_subcommands_and_errors(r: redis.Redis) -> None:
    r.set("k", "hello")
    assert r.object("encoding", "nokey") is None
    assert r.object("refcount", "k") == 1
    assert r.object("idletime", "k") == 0
    r.set("shared", "100")
    assert r.object("refcount", "shared") == 2147483647
    assert error_of(r.execute_command, "OBJECT", "FOO", "k") == "unknown subcommand 'FOO'. Try OBJECT HELP."
    assert (
        error_of(r.execute_command, "OBJECT", "ENCODING")
        == "wrong number of arguments for 'object|encoding' command"
    )
    assert error_of(r.execute_command, "OBJECT", "FREQ", "k").startswith(
        "An LFU maxmemory policy is not selected"
    )
    assert raw(r, "OBJECT", "HELP")[0] == b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"  # type: ignore[index]
