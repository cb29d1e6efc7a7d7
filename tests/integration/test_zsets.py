"""Sorted-set commands against a real node through redis-py: exact replies and error strings (Redis 7.0).

Replies are read with ``raw`` (no redis-py callbacks) so the checks see what the node sent: in RESP2 scores
are bulk strings formatted like Redis 7.0's ``%.17g``; in RESP3 they are doubles, paired with their member.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.harness import NodeProcess
from tests.integration.shared import error_of, module_node_fixture, raw, resp2_client_fixture

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
NOT_FLOAT = "value is not a valid float"
SYNTAX = "syntax error"
NOT_FLOAT_RANGE = "min or max is not a float"
NOT_LEX_RANGE = "min or max not valid string range item"


node = module_node_fixture()
r = resp2_client_fixture()


@pytest.fixture
def r3(node: NodeProcess) -> Iterator[redis.Redis]:
    client = node.client(protocol=3)
    yield client
    client.close()


def seed(r: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")


# -- ZADD and scores -----------------------------------------------------------------------------------------


def test_zadd_adds_updates_and_counts(r: redis.Redis) -> None:
    assert raw(r, "ZADD", "z", "1", "a", "2", "b") == 2
    assert raw(r, "ZADD", "z", "CH", "1", "a", "3", "b", "4", "c") == 2
    assert raw(r, "ZADD", "z", "NX", "10", "a", "5", "d") == 1
    assert raw(r, "ZADD", "z", "XX", "10", "a", "6", "e") == 0
    assert raw(r, "ZRANGE", "z", "0", "-1", "WITHSCORES") == [b"b", b"3", b"c", b"4", b"d", b"5", b"a", b"10"]
    assert raw(r, "ZADD", "z", "GT", "CH", "5", "a", "20", "b") == 1
    assert raw(r, "ZADD", "z", "LT", "CH", "5", "a", "1", "b") == 2
    assert raw(r, "ZADD", "z", "XX", "GT", "CH", "100", "a", "100", "zz") == 1
    assert r.zscore("z", "a") == 100.0 and r.zscore("z", "zz") is None
    assert raw(r, "ZADD", "missing", "XX", "1", "a") == 0
    assert r.exists("missing") == 0
    assert r.type("z") == b"zset"


def test_zadd_incr_and_zincrby(r: redis.Redis) -> None:
    assert raw(r, "ZADD", "z", "INCR", "5", "a") == b"5"
    assert raw(r, "ZADD", "z", "INCR", "1.5", "a") == b"6.5"
    assert raw(r, "ZADD", "z", "NX", "INCR", "1", "a") is None
    assert raw(r, "ZADD", "z", "XX", "INCR", "1", "nope") is None
    assert raw(r, "ZADD", "z", "GT", "INCR", "-1", "a") is None
    assert raw(r, "ZADD", "z", "LT", "INCR", "-1", "a") == b"5.5"
    assert raw(r, "ZINCRBY", "z", "0.1", "a") == b"5.5999999999999996"
    assert raw(r, "ZINCRBY", "z", "-inf", "b") == b"-inf"
    assert error_of(raw, r, "ZINCRBY", "z", "inf", "b") == "resulting score is not a number (NaN)"
    assert error_of(raw, r, "ZADD", "z", "INCR", "inf", "b") == "resulting score is not a number (NaN)"
    assert error_of(raw, r, "ZINCRBY", "z", "abc", "a") == NOT_FLOAT


def test_zadd_argument_errors(r: redis.Redis) -> None:
    for args, message in (
        (("NX", "XX", "1", "a"), "XX and NX options at the same time are not compatible"),
        (("GT", "LT", "1", "a"), "GT, LT, and/or NX options at the same time are not compatible"),
        (("GT", "NX", "1", "a"), "GT, LT, and/or NX options at the same time are not compatible"),
        (("INCR", "1", "a", "2", "b"), "INCR option supports a single increment-element pair"),
        (("1", "a", "2"), SYNTAX),
        (("FOO", "1", "a"), SYNTAX),
        (("abc", "a"), NOT_FLOAT),
        (("nan", "a"), NOT_FLOAT),
        (("1e400", "a"), NOT_FLOAT),
    ):
        assert error_of(raw, r, "ZADD", "z", *args) == message, args
    assert error_of(raw, r, "ZADD", "z", "1") == "wrong number of arguments for 'zadd' command"
    assert r.exists("z") == 0


def test_scores_are_formatted_like_redis_7_0(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1.1", "a", "-0.0", "b", "inf", "c", "-inf", "d", "3e15", "e", "0x10", "f")
    assert raw(r, "ZSCORE", "z", "a") == b"1.1000000000000001"
    assert raw(r, "ZSCORE", "z", "b") == b"0"
    assert raw(r, "ZMSCORE", "z", "c", "d", "e", "f", "nope") == [
        b"inf",
        b"-inf",
        b"3000000000000000",
        b"16",
        None,
    ]
    assert raw(r, "ZMSCORE", "missing", "a") == [None]
    assert raw(r, "ZSCORE", "missing", "a") is None
    assert raw(r3, "ZSCORE", "z", "a") == 1.1
    assert raw(r3, "ZMSCORE", "z", "c", "nope") == [float("inf"), None]


def test_zrem_zcard_and_ranks(r: redis.Redis) -> None:
    seed(r)
    assert r.zcard("z") == 5 and r.zcard("missing") == 0
    assert r.zrank("z", "a") == 0 and r.zrevrank("z", "a") == 4
    assert r.zrank("z", "nope") is None and r.zrank("missing", "a") is None
    assert error_of(raw, r, "ZRANK", "z", "a", "WITHSCORE") == "wrong number of arguments for 'zrank' command"
    assert r.zrem("z", "a", "nope", "a") == 1
    assert r.zrem("missing", "a") == 0
    assert r.zrem("z", "b", "c", "d", "e") == 4
    assert r.exists("z") == 0


# -- ranges --------------------------------------------------------------------------------------------------


def test_zrange_by_rank(r: redis.Redis) -> None:
    seed(r)
    assert raw(r, "ZRANGE", "z", "0", "-1") == [b"a", b"b", b"c", b"d", b"e"]
    assert raw(r, "ZRANGE", "z", "1", "2", "WITHSCORES") == [b"b", b"2", b"c", b"3"]
    assert raw(r, "ZRANGE", "z", "-2", "100") == [b"d", b"e"]
    assert raw(r, "ZRANGE", "z", "3", "1") == []
    assert raw(r, "ZRANGE", "z", "0", "1", "REV") == [b"e", b"d"]
    assert raw(r, "ZREVRANGE", "z", "-2", "-1", "WITHSCORES") == [b"b", b"2", b"a", b"1"]
    assert raw(r, "ZRANGE", "missing", "0", "-1") == []


def test_zrange_by_score(r: redis.Redis) -> None:
    seed(r)
    assert raw(r, "ZRANGE", "z", "2", "4", "BYSCORE") == [b"b", b"c", b"d"]
    assert raw(r, "ZRANGE", "z", "(2", "(4", "BYSCORE") == [b"c"]
    assert raw(r, "ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2") == [b"b", b"c"]
    assert raw(r, "ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "3", "-1") == [b"d", b"e"]
    assert raw(r, "ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "3") == []
    assert raw(r, "ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES") == [
        b"d",
        b"4",
        b"c",
        b"3",
    ]
    assert raw(r, "ZRANGEBYSCORE", "z", "(1", "3", "WITHSCORES") == [b"b", b"2", b"c", b"3"]
    assert raw(r, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "4", "10") == [b"e"]
    assert raw(r, "ZREVRANGEBYSCORE", "z", "4", "(2") == [b"d", b"c"]
    assert raw(r, "ZRANGEBYSCORE", "z", "5", "1") == []
    assert r.zcount("z", "-inf", "+inf") == 5
    assert r.zcount("z", "(1", "(3") == 1
    assert r.zcount("missing", 0, 1) == 0


def test_zrange_by_lex(r: redis.Redis) -> None:
    raw(r, "ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e")
    assert raw(r, "ZRANGEBYLEX", "l", "-", "+") == [b"a", b"b", b"c", b"d", b"e"]
    assert raw(r, "ZRANGEBYLEX", "l", "[b", "(d") == [b"b", b"c"]
    assert raw(r, "ZRANGEBYLEX", "l", "(b", "+", "LIMIT", "1", "2") == [b"d", b"e"]
    assert raw(r, "ZRANGEBYLEX", "l", "+", "-") == []
    assert raw(r, "ZREVRANGEBYLEX", "l", "[d", "(a", "LIMIT", "1", "2") == [b"c", b"b"]
    assert raw(r, "ZRANGE", "l", "[e", "[b", "BYLEX", "REV", "LIMIT", "0", "2") == [b"e", b"d"]
    assert r.zlexcount("l", "-", "+") == 5
    assert r.zlexcount("l", "[b", "(d") == 2
    assert r.zremrangebylex("l", "[a", "(c") == 2
    assert raw(r, "ZRANGE", "l", "0", "-1") == [b"c", b"d", b"e"]


def test_zrange_argument_errors(r: redis.Redis) -> None:
    seed(r)
    for args, message in (
        (
            ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"),
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            ("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"),
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (("ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"), SYNTAX),
        (("ZRANGE", "z", "0", "-1", "LIMIT", "0"), SYNTAX),
        (("ZRANGE", "z", "(1", "abc", "BYSCORE"), NOT_FLOAT_RANGE),
        (("ZRANGE", "z", "a", "b", "BYLEX"), NOT_LEX_RANGE),
        (("ZRANGE", "z", "a", "1"), NOT_INTEGER),
        (("ZRANGEBYSCORE", "z", "0", "1", "REV"), SYNTAX),
        (("ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"), SYNTAX),
        (("ZCOUNT", "z", "abc", "1"), NOT_FLOAT_RANGE),
        (("ZLEXCOUNT", "z", "a", "b"), NOT_LEX_RANGE),
        (("ZREMRANGEBYRANK", "z", "a", "1"), NOT_INTEGER),
    ):
        assert error_of(raw, r, *args) == message, args


def test_zrangestore(r: redis.Redis) -> None:
    seed(r)
    assert r.zrangestore("d", "z", 0, 1) == 2
    assert raw(r, "ZRANGE", "d", "0", "-1", "WITHSCORES") == [b"a", b"1", b"b", b"2"]
    assert raw(r, "ZRANGESTORE", "d", "z", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1") == 1
    assert raw(r, "ZRANGE", "d", "0", "-1") == [b"b"]
    assert raw(r, "ZRANGESTORE", "d", "missing", "0", "-1") == 0
    assert r.exists("d") == 0


def test_removals_by_range_delete_the_emptied_key(r: redis.Redis) -> None:
    seed(r)
    assert r.zremrangebyrank("z", 0, 1) == 2
    assert r.zremrangebyrank("z", 5, 10) == 0
    assert r.zremrangebyscore("z", "(3", 4) == 1
    assert raw(r, "ZRANGE", "z", "0", "-1") == [b"c", b"e"]
    assert r.zremrangebyscore("z", "-inf", "+inf") == 2
    assert r.exists("z") == 0
    assert r.zremrangebyscore("missing", 0, 1) == 0


# -- pops ----------------------------------------------------------------------------------------------------


def test_zpopmin_zpopmax(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2.5", "b", "3", "c", "4", "d")
    assert raw(r, "ZPOPMIN", "z") == [b"a", b"1"]
    assert raw(r, "ZPOPMAX", "z", "2") == [b"d", b"4", b"c", b"3"]
    assert raw(r3, "ZPOPMIN", "z", "0") == []
    assert raw(r3, "ZPOPMIN", "z", "1") == [[b"b", 2.5]]
    assert r.exists("z") == 0
    assert raw(r, "ZPOPMIN", "z") == []
    assert raw(r, "ZPOPMIN", "z", "3") == []
    raw(r3, "ZADD", "z", "1", "a")
    assert raw(r3, "ZPOPMAX", "z") == [b"a", 1.0]
    assert error_of(raw, r, "ZPOPMIN", "z", "-1") == "value is out of range, must be positive"
    assert error_of(raw, r, "ZPOPMIN", "z", "1", "2") == SYNTAX


def test_zmpop(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert raw(r, "ZMPOP", "2", "missing", "z", "MIN") == [b"z", [[b"a", b"1"]]]
    assert raw(r3, "ZMPOP", "1", "z", "MAX", "COUNT", "5") == [b"z", [[b"c", 3.0], [b"b", 2.0]]]
    assert r.exists("z") == 0
    assert raw(r, "ZMPOP", "1", "z", "MIN") is None
    assert error_of(raw, r, "ZMPOP", "0", "z", "MIN") == "numkeys should be greater than 0"
    assert error_of(raw, r, "ZMPOP", "1", "z", "FOO") == SYNTAX
    assert error_of(raw, r, "ZMPOP", "1", "z", "MIN", "COUNT", "0") == "count should be greater than 0"


def test_blocking_zpops_are_served_at_once_when_data_is_there(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert raw(r, "BZPOPMIN", "missing", "z", "1") == [b"z", b"a", b"1"]
    assert raw(r3, "BZPOPMAX", "z", "1") == [b"z", b"c", 3.0]
    assert raw(r, "BZMPOP", "1", "1", "z", "MIN", "COUNT", "3") == [b"z", [[b"b", b"2"]]]
    assert raw(r, "BZPOPMIN", "z", "0.01") is None
    assert error_of(raw, r, "BZPOPMIN", "z", "-1") == "timeout is negative"


# -- algebra -------------------------------------------------------------------------------------------------


def test_union_inter_diff(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z1", "1", "a", "2", "b", "3", "c")
    raw(r, "ZADD", "z2", "10", "b", "20", "c", "30", "d")
    r.sadd("s", "a", "d", "x")
    assert raw(r, "ZUNION", "2", "z1", "z2", "WITHSCORES") == [
        b"a",
        b"1",
        b"b",
        b"12",
        b"c",
        b"23",
        b"d",
        b"30",
    ]
    assert raw(r, "ZUNION", "2", "z1", "z2", "WEIGHTS", "2", "0.5", "WITHSCORES") == [
        b"a",
        b"2",
        b"b",
        b"9",
        b"d",
        b"15",
        b"c",
        b"16",
    ]
    assert raw(r, "ZUNION", "2", "z1", "z2", "AGGREGATE", "MIN") == [b"a", b"b", b"c", b"d"]
    assert raw(r, "ZINTER", "2", "z1", "z2", "AGGREGATE", "MAX", "WEIGHTS", "1", "-1", "WITHSCORES") == [
        b"b",
        b"2",
        b"c",
        b"3",
    ]
    assert raw(r, "ZINTER", "3", "z1", "z2", "s", "WITHSCORES") == []
    assert raw(r, "ZUNION", "2", "z1", "s", "WITHSCORES") == [
        b"d",
        b"1",
        b"x",
        b"1",
        b"a",
        b"2",
        b"b",
        b"2",
        b"c",
        b"3",
    ]
    assert raw(r, "ZDIFF", "2", "z1", "z2", "WITHSCORES") == [b"a", b"1"]
    assert raw(r, "ZDIFF", "1", "missing") == []
    assert raw(r3, "ZINTER", "2", "z1", "z2", "WITHSCORES") == [[b"b", 12.0], [b"c", 23.0]]
    raw(r, "ZADD", "pinf", "inf", "a")
    raw(r, "ZADD", "ninf", "-inf", "a")
    assert raw(r, "ZUNION", "2", "pinf", "ninf", "WITHSCORES") == [b"a", b"0"]  # inf + -inf is 0
    assert r.zintercard(2, ["z1", "z2"]) == 2
    assert r.zintercard(2, ["z1", "z2"], limit=1) == 1
    assert r.zintercard(2, ["z1", "s"]) == 1


def test_store_forms_replace_or_delete_the_destination(r: redis.Redis) -> None:
    raw(r, "ZADD", "z1", "1", "a", "2", "b")
    raw(r, "ZADD", "z2", "10", "b")
    assert r.zunionstore("d", ["z1", "z2"]) == 2
    assert raw(r, "ZRANGE", "d", "0", "-1", "WITHSCORES") == [b"a", b"1", b"b", b"12"]
    assert r.zinterstore("d", {"z1": 2, "z2": 3}) == 1
    assert raw(r, "ZRANGE", "d", "0", "-1", "WITHSCORES") == [b"b", b"34"]
    assert r.zdiffstore("d", ["z1", "z2"]) == 1
    assert raw(r, "ZRANGE", "d", "0", "-1") == [b"a"]
    assert r.zinterstore("d", ["z1", "missing"]) == 0
    assert r.exists("d") == 0


def test_algebra_argument_errors(r: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a")
    r.set("str", "x")
    for args, message in (
        (("ZUNIONSTORE", "d", "0", "z"), "at least 1 input key is needed for 'zunionstore' command"),
        (("ZINTER", "0", "z"), "at least 1 input key is needed for 'zinter' command"),
        (("ZUNIONSTORE", "d", "2", "z"), SYNTAX),
        (("ZUNIONSTORE", "d", "1", "z", "WEIGHTS"), SYNTAX),
        (("ZUNIONSTORE", "d", "1", "z", "WEIGHTS", "abc"), "weight value is not a float"),
        (("ZUNIONSTORE", "d", "1", "z", "AGGREGATE", "foo"), SYNTAX),
        (("ZUNIONSTORE", "d", "1", "z", "WITHSCORES"), SYNTAX),
        (("ZDIFF", "1", "z", "WEIGHTS", "2"), SYNTAX),
        (("ZINTER", "abc", "z"), NOT_INTEGER),
        (("ZINTERCARD", "0", "z"), "at least 1 input key is needed for 'zintercard' command"),
        (("ZINTERCARD", "1", "z", "LIMIT", "-1"), "LIMIT can't be negative"),
        (("ZUNIONSTORE", "d", "1", "str"), WRONGTYPE),
        (("ZINTERSTORE", "d", "2", "missing", "str"), WRONGTYPE),
    ):
        assert error_of(raw, r, *args) == message, args


# -- random picks, scans, types ------------------------------------------------------------------------------


def test_zrandmember(r: redis.Redis, r3: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert raw(r, "ZRANDMEMBER", "z") in (b"a", b"b", b"c")
    assert raw(r, "ZRANDMEMBER", "missing") is None
    assert raw(r, "ZRANDMEMBER", "z", "5") == [b"a", b"b", b"c"]
    two = raw(r, "ZRANDMEMBER", "z", "2")
    assert len(two) == 2 and len(set(two)) == 2
    flat = raw(r, "ZRANDMEMBER", "z", "-5", "WITHSCORES")
    assert len(flat) == 10 and all(
        dict(a=b"1", b=b"2", c=b"3")[m.decode()] == s for m, s in zip(flat[::2], flat[1::2], strict=True)
    )
    pairs = raw(r3, "ZRANDMEMBER", "z", "-2", "WITHSCORES")
    assert len(pairs) == 2 and all(len(p) == 2 and isinstance(p[1], float) for p in pairs)
    assert raw(r, "ZRANDMEMBER", "z", "0") == []
    assert raw(r, "ZRANDMEMBER", "missing", "2") == []
    assert error_of(raw, r, "ZRANDMEMBER", "z", "1", "FOO") == SYNTAX
    assert error_of(raw, r, "ZRANDMEMBER", "z", str(2**63 - 1), "WITHSCORES") == "value is out of range"


def test_zscan_small_in_score_order_and_big_by_cursor(r: redis.Redis) -> None:
    raw(r, "ZADD", "z", "2", "b", "1.5", "a", "3", "c")
    assert raw(r, "ZSCAN", "z", "0", "COUNT", "1") == [b"0", [b"a", b"1.5", b"b", b"2", b"c", b"3"]]
    assert raw(r, "ZSCAN", "z", "0", "MATCH", "c") == [b"0", [b"c", b"3"]]
    assert raw(r, "ZSCAN", "missing", "0") == [b"0", []]
    raw(r, "ZADD", "big", *[x for i in range(500) for x in (str(i), f"m{i}")])
    seen: dict[bytes, bytes] = {}
    cursor, calls = b"0", 0
    while True:
        cursor, flat = raw(r, "ZSCAN", "big", cursor, "COUNT", "100")
        seen.update(zip(flat[::2], flat[1::2], strict=True))
        calls += 1
        if cursor == b"0":
            break
    assert calls >= 5
    assert seen == {f"m{i}".encode(): str(i).encode() for i in range(500)}


def test_wrong_type_is_refused_everywhere(r: redis.Redis) -> None:
    r.set("str", "x")
    for args in (
        ("ZADD", "str", "1", "a"),
        ("ZINCRBY", "str", "1", "a"),
        ("ZREM", "str", "a"),
        ("ZSCORE", "str", "a"),
        ("ZMSCORE", "str", "a"),
        ("ZCARD", "str"),
        ("ZRANK", "str", "a"),
        ("ZCOUNT", "str", "0", "1"),
        ("ZLEXCOUNT", "str", "-", "+"),
        ("ZRANGE", "str", "0", "-1"),
        ("ZRANGEBYSCORE", "str", "0", "1"),
        ("ZRANGESTORE", "d", "str", "0", "-1"),
        ("ZREMRANGEBYRANK", "str", "0", "1"),
        ("ZPOPMIN", "str"),
        ("ZMPOP", "1", "str", "MIN"),
        ("BZPOPMAX", "str", "0"),
        ("ZRANDMEMBER", "str"),
        ("ZSCAN", "str", "0"),
        ("ZUNION", "1", "str"),
    ):
        assert error_of(raw, r, *args) == WRONGTYPE, args


def test_generic_key_commands_work_on_sorted_sets(node: NodeProcess, r: redis.Redis) -> None:
    raw(r, "ZADD", "z", "1", "a", "2", "b")
    assert r.object("encoding", "z") == b"listpack"
    raw(r, "ZADD", "big", *[x for i in range(200) for x in (str(i), f"m{i}")])
    assert r.object("encoding", "big") == b"skiplist"
    assert r.copy("z", "z2") is True
    r.zrem("z2", "a")
    assert r.zcard("z") == 2 and r.zcard("z2") == 1
    assert r.move("z2", 2) is True
    db2 = node.client(protocol=2, db=2)
    assert raw(db2, "ZRANGE", "z2", "0", "-1") == [b"b"]
    db2.close()
    assert r.rename("big", "big2") is True
    assert r.zcard("big2") == 200
    cursor, keys = r.scan(0, _type="zset")
    assert cursor == 0 and sorted(keys) == [b"big2", b"z"]
    assert r.memory_usage("big2") > r.memory_usage("z") > 0
    assert r.delete("big2") == 1
