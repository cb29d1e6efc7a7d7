"""String commands against a real node through redis-py: exact replies and exact error strings (Redis 7.0)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from tests.integration.shared import module_node_fixture, raw, resp2_client_fixture

NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


node = module_node_fixture()
r = resp2_client_fixture()


def error_of(call: Callable[..., object], *args: object) -> str:
    """The text of the error reply a command gets (redis-py strips nothing but the leading '-')."""
    with pytest.raises(redis.ResponseError) as info:
        call(*args)
    return str(info.value)


def list_key(r: redis.Redis, key: str = "lst") -> str:
    """A key holding a list, for WRONGTYPE checks; skipped while the list family is not in the node yet."""
    try:
        r.rpush(key, "x")
    except redis.ResponseError as exc:
        if "unknown command" in str(exc):
            pytest.skip("RPUSH not implemented by this node yet: no non-string key to test WRONGTYPE with")
        raise
    return key


# -- SET -------------------------------------------------------------------------------------------------


def test_set_and_get_round_trip_binary_values(r: redis.Redis) -> None:
    value = bytes(range(256)) + b"\r\n"
    assert r.set("k", value) is True
    assert r.get("k") == value
    assert r.get("missing") is None


def test_set_nx_and_xx_only_write_when_the_key_is_missing_or_present(r: redis.Redis) -> None:
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == b"1"
    assert r.set("k", "3", xx=True) is True
    assert r.set("other", "3", xx=True) is None
    assert r.exists("other") == 0
    assert r.get("k") == b"3"


def test_set_get_returns_the_old_value_and_honours_nx_xx(r: redis.Redis) -> None:
    assert r.set("k", "1", get=True) is None
    assert r.set("k", "2", get=True) == b"1"
    assert r.set("k", "3", nx=True, get=True) == b"2"
    assert r.get("k") == b"2"
    assert r.set("nokey", "3", xx=True, get=True) is None
    assert r.exists("nokey") == 0


def test_set_get_on_a_non_string_is_wrongtype(r: redis.Redis) -> None:
    key = list_key(r)
    assert error_of(r.execute_command, "SET", key, "v", "GET") == WRONGTYPE
    assert r.type(key) == b"list"


def test_set_with_ex_px_exat_pxat_sets_the_ttl(r: redis.Redis) -> None:
    now_s = int(time.time())
    r.set("ex", "v", ex=100)
    assert 99 <= r.ttl("ex") <= 100
    r.set("px", "v", px=100_000)
    assert 99_000 < r.pttl("px") <= 100_000
    r.set("exat", "v", exat=now_s + 1000)
    assert r.expiretime("exat") == now_s + 1000
    r.set("pxat", "v", pxat=(now_s + 1000) * 1000 + 123)
    assert r.execute_command("PEXPIRETIME", "pxat") == (now_s + 1000) * 1000 + 123


def test_set_without_keepttl_clears_the_ttl_and_with_keepttl_keeps_it(r: redis.Redis) -> None:
    r.set("k", "v", ex=100)
    r.set("k", "v2", keepttl=True)
    assert 99 <= r.ttl("k") <= 100
    assert r.get("k") == b"v2"
    r.set("k", "v3")
    assert r.ttl("k") == -1


def test_set_with_an_expiry_in_the_past_deletes_nothing_it_did_not_set(r: redis.Redis) -> None:
    # EXAT 1 is a valid (past) time: the key is set and immediately logically expired.
    assert r.set("k", "v", exat=1) is True
    assert r.get("k") is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["EX", "0"], "invalid expire time in 'set' command"),
        (["EX", "-1"], "invalid expire time in 'set' command"),
        (["PX", "0"], "invalid expire time in 'set' command"),
        (["EX", "9223372036854775807"], "invalid expire time in 'set' command"),
        (["PX", "9223372036854775807"], "invalid expire time in 'set' command"),
        (["EXAT", "9223372036854775807"], "invalid expire time in 'set' command"),
        (["EX", "abc"], NOT_INTEGER),
        (["EX", "1.5"], NOT_INTEGER),
        (["PX", "100", "EX", "100"], SYNTAX),
        (["KEEPTTL", "EX", "10"], SYNTAX),
        (["EX", "10", "KEEPTTL"], SYNTAX),
        (["NX", "XX"], SYNTAX),
        (["EX"], SYNTAX),
        (["FOO"], SYNTAX),
    ],
)
def test_set_option_errors_match_redis(r: redis.Redis, args: list[str], error: str) -> None:
    assert error_of(r.execute_command, "SET", "k", "v", *args) == error
    assert r.exists("k") == 0


def test_setnx_setex_psetex(r: redis.Redis) -> None:
    assert r.setnx("k", "1") is True
    assert r.setnx("k", "2") is False
    assert r.get("k") == b"1"
    assert raw(r, "SETEX", "e", 100, "v") == b"OK"
    assert 99 <= r.ttl("e") <= 100
    assert raw(r, "PSETEX", "p", 100_000, "v") == b"OK"
    assert 99_000 < r.pttl("p") <= 100_000
    assert error_of(raw, r, "SETEX", "e", 0, "v") == "invalid expire time in 'setex' command"
    assert error_of(raw, r, "SETEX", "e", -1, "v") == "invalid expire time in 'setex' command"
    assert error_of(raw, r, "PSETEX", "p", 0, "v") == "invalid expire time in 'psetex' command"
    assert error_of(r.execute_command, "SETEX", "e", "abc", "v") == NOT_INTEGER


# -- GET family ------------------------------------------------------------------------------------------


def test_get_of_a_non_string_is_wrongtype(r: redis.Redis) -> None:
    key = list_key(r)
    for call, args in [
        (r.get, (key,)),
        (r.getset, (key, "x")),
        (r.strlen, (key,)),
        (r.append, (key, "x")),
        (r.incr, (key,)),
        (r.incrbyfloat, (key, 1)),
        (r.setrange, (key, 0, "x")),
        (r.getrange, (key, 0, 1)),
        (r.getdel, (key,)),
        (r.getex, (key,)),
    ]:
        assert error_of(call, *args) == WRONGTYPE
    assert r.mget(key, "nokey") == [None, None]


def test_getex_sets_and_removes_the_ttl(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.getex("k") == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", ex=100) == b"v"
    assert 99 <= r.ttl("k") <= 100
    assert r.getex("k", px=200_000) == b"v"
    assert 199_000 < r.pttl("k") <= 200_000
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1
    now_s = int(time.time())
    assert r.getex("k", exat=now_s + 500) == b"v"
    assert r.expiretime("k") == now_s + 500
    assert r.getex("nokey", ex=10) is None
    assert r.exists("nokey") == 0


def test_getex_with_a_past_time_deletes_the_key(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.execute_command("GETEX", "k", "EXAT", "1") == b"v"
    assert r.exists("k") == 0


def test_getex_errors(r: redis.Redis) -> None:
    r.set("k", "v")
    assert error_of(r.execute_command, "GETEX", "k", "EX", "10", "PERSIST") == SYNTAX
    assert error_of(r.execute_command, "GETEX", "k", "PX", "0") == "invalid expire time in 'getex' command"
    assert error_of(r.execute_command, "GETEX", "k", "EX") == SYNTAX
    assert error_of(r.execute_command, "GETEX", "k", "FOO") == SYNTAX


def test_getdel_and_getset(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.getdel("k") == b"v"
    assert r.getdel("k") is None
    assert r.exists("k") == 0
    assert r.getset("k", "1") is None
    assert r.getset("k", "2") == b"1"
    r.set("t", "v", ex=100)
    assert r.getset("t", "w") == b"v"
    assert r.ttl("t") == -1


def test_mget_mset_msetnx(r: redis.Redis) -> None:
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "c") == [b"1", b"2", None]
    assert r.msetnx({"a": "x", "c": "3"}) is False
    assert r.exists("c") == 0
    assert r.msetnx({"c": "3", "d": "4"}) is True
    assert r.mget("c", "d") == [b"3", b"4"]
    assert (
        error_of(r.execute_command, "MSET", "a", "1", "b") == "wrong number of arguments for 'mset' command"
    )
    assert error_of(r.execute_command, "MSETNX", "a") == "wrong number of arguments for 'msetnx' command"
    assert error_of(r.execute_command, "MGET") == "wrong number of arguments for 'mget' command"


def test_append_and_strlen(r: redis.Redis) -> None:
    assert r.append("k", "Hello") == 5
    assert r.append("k", " World") == 11
    assert r.get("k") == b"Hello World"
    assert r.strlen("k") == 11
    assert r.strlen("nokey") == 0
    r.set("t", "v", ex=100)
    r.append("t", "w")
    assert r.ttl("t") > 0


# -- ranges ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 4, b"Hello"),
        (-5, -1, b"World"),
        (5, 2, b""),
        (-1, -5, b""),
        (0, -1, b"Hello World"),
        (0, 1000, b"Hello World"),
        (-100, 2, b"Hel"),
        (10, 10, b"d"),
        (11, 20, b""),
    ],
)
def test_getrange_clamps_like_redis(r: redis.Redis, start: int, end: int, expected: bytes) -> None:
    r.set("s", "Hello World")
    assert r.getrange("s", start, end) == expected
    assert r.execute_command("SUBSTR", "s", start, end) == expected


def test_getrange_of_a_missing_key_and_bad_arguments(r: redis.Redis) -> None:
    assert r.getrange("nokey", 0, 10) == b""
    r.set("s", "x")
    assert error_of(r.getrange, "s", "a", 1) == NOT_INTEGER


def test_setrange_overwrites_pads_with_zero_bytes_and_keeps_the_ttl(r: redis.Redis) -> None:
    r.set("s", "Hello World", ex=100)
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    assert r.setrange("s", 20, "X") == 21
    assert r.get("s") == b"Hello Redis" + b"\x00" * 9 + b"X"
    assert r.ttl("s") > 0
    assert r.setrange("s", 1, "") == 21
    assert r.setrange("new", 3, "x") == 4
    assert r.get("new") == b"\x00\x00\x00x"


def test_setrange_with_an_empty_value_on_a_missing_key_creates_nothing(r: redis.Redis) -> None:
    assert r.setrange("new", 0, "") == 0
    assert r.exists("new") == 0


def test_setrange_errors(r: redis.Redis) -> None:
    r.set("s", "x")
    assert error_of(r.setrange, "s", -1, "x") == "offset is out of range"
    assert (
        error_of(r.setrange, "s", 536870912, "x")
        == "string exceeds maximum allowed size (proto-max-bulk-len)"
    )
    assert error_of(r.execute_command, "SETRANGE", "s", "abc", "x") == NOT_INTEGER


# -- counters --------------------------------------------------------------------------------------------


def test_incr_decr_incrby_decrby(r: redis.Redis) -> None:
    assert r.incr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decr("n") == 10
    assert r.decrby("n", 15) == -5
    assert r.get("n") == b"-5"
    r.set("t", "1", ex=100)
    assert r.incr("t") == 2
    assert r.ttl("t") > 0


@pytest.mark.parametrize("stored", ["abc", "1 ", " 1", "007", "1.5", "+1", "", "99999999999999999999"])
def test_incr_of_a_non_integer_string_is_an_error(r: redis.Redis, stored: str) -> None:
    r.set("n", stored)
    assert error_of(r.incr, "n") == NOT_INTEGER
    assert r.get("n") == stored.encode()


@pytest.mark.parametrize("increment", ["abc", "1.5", " 1", "+1", "01", "9223372036854775808"])
def test_incrby_with_a_non_integer_increment_is_an_error(r: redis.Redis, increment: str) -> None:
    assert error_of(r.execute_command, "INCRBY", "n", increment) == NOT_INTEGER


def test_incr_overflow_is_refused_both_ways(r: redis.Redis) -> None:
    r.set("n", "9223372036854775807")
    assert error_of(r.incr, "n") == "increment or decrement would overflow"
    assert r.get("n") == b"9223372036854775807"
    r.set("n", "-9223372036854775808")
    assert error_of(r.decr, "n") == "increment or decrement would overflow"
    r.set("n", "0")
    assert error_of(r.decrby, "n", -9223372036854775808) == "decrement would overflow"
    r.set("n", "-1")
    assert r.decrby("n", 9223372036854775807) == -9223372036854775808


def test_incrbyfloat_formats_like_redis(r: redis.Redis) -> None:
    r.set("f", "10.5")
    assert r.incrbyfloat("f", 0.1) == 10.6
    assert r.get("f") == b"10.6"
    r.set("f", "5.0e3")
    assert raw(r, "INCRBYFLOAT", "f", "200") == b"5200"
    assert r.get("f") == b"5200"
    assert raw(r, "INCRBYFLOAT", "f", "-5200") == b"0"
    assert raw(r, "INCRBYFLOAT", "new", "3.0") == b"3"
    assert raw(r, "INCRBYFLOAT", "new", "1.1") == b"4.1"
    r.set("f", "3")
    assert raw(r, "INCRBYFLOAT", "f", "1.0e1") == b"13"


def test_incrbyfloat_keeps_the_ttl(r: redis.Redis) -> None:
    r.set("f", "1", ex=100)
    r.incrbyfloat("f", 1.5)
    assert r.ttl("f") > 0


def test_incrbyfloat_errors(r: redis.Redis) -> None:
    r.set("f", "abc")
    assert error_of(r.incrbyfloat, "f", 1) == "value is not a valid float"
    r.set("f", "1")
    assert error_of(r.execute_command, "INCRBYFLOAT", "f", "abc") == "value is not a valid float"
    assert error_of(r.execute_command, "INCRBYFLOAT", "f", "inf") == "increment would produce NaN or Infinity"
    assert r.get("f") == b"1"


def test_wrong_arity_errors_name_the_command(r: redis.Redis) -> None:
    assert error_of(r.execute_command, "SET", "a") == "wrong number of arguments for 'set' command"
    assert error_of(r.execute_command, "GET") == "wrong number of arguments for 'get' command"
    assert error_of(r.execute_command, "INCR", "a", "b") == "wrong number of arguments for 'incr' command"
    assert (
        error_of(r.execute_command, "GETRANGE", "a", "0")
        == "wrong number of arguments for 'getrange' command"
    )
