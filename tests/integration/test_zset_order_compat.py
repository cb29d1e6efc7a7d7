"""Sorted-set ordering edge cases compared with redis-server 7.0: the order a set keeps and every reply that
shows it (ranges by rank / score / lex, ranks, counts, pops, stores) for -0 and 0, -inf and +inf, the largest
and the tiniest (subnormal) doubles, negative scores, and equal scores ordered by member bytes - members that
are prefixes of each other, hold NUL bytes or bytes >= 0x80 - in both encodings (listpack and skiplist sizes),
then a seeded random sequence of writes and reads.

The node orders members by one bytes key each (actors/data/types.py ``score_key``); these tests pin that
order to Redis's: score, then member by memcmp, with -0 == 0.

One known difference is pinned separately (strict xfail): in a skiplist-encoded set Redis keeps the sign of
a -0 score (ZSCORE answers "-0"), in a listpack-encoded one it answers "0"; the node always answers "0".
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

EDGE_SCORES = [
    "-inf", "+inf", "inf", "-0", "0", "+0", "-0.0", "0.0", "1", "-1", "2.5", "-2.5", "0.1", "-0.1",
    "1.7976931348623157e308", "-1.7976931348623157e308",  # the largest finite doubles
    "4.9406564584124654e-324", "-4.9406564584124654e-324",  # the smallest subnormals
    "2.2250738585072014e-308", "-2.2250738585072014e-308",  # the smallest normals
    "1e-300", "-1e-300", "9007199254740993", "-9007199254740993", "123456789012345678",
]  # fmt: skip
# Members for equal scores: prefixes of each other, NUL bytes, bytes >= 0x80 (memcmp is unsigned).
EDGE_MEMBERS = [
    b"", b"a", b"ab", b"abc", b"a\x00", b"a\x00b", b"\x00", b"\x00\x00", b"\x7f", b"\x80", b"\x80\x00",
    b"\xc3\xa9", b"\xff", b"\xff\xff", b"b", b"B", b"A",
]  # fmt: skip
SCORE_BOUNDS = [
    ("-inf", "+inf"), ("-inf", "-inf"), ("+inf", "+inf"), ("(-inf", "(+inf"), ("-0", "0"), ("0", "-0"),
    ("(0", "+inf"), ("(-0", "+inf"), ("-inf", "(0"), ("-inf", "(-0"), ("(-4.9406564584124654e-324", "0"),
    ("0", "(4.9406564584124654e-324"), ("-1e-300", "1e-300"), ("(-1", "(1"), ("-1.7976931348623157e308",
    "1.7976931348623157e308"), ("(1.7976931348623157e308", "+inf"), ("-2.5", "-0.1"), ("1", "(1"),
]  # fmt: skip
LEX_BOUNDS = [
    ("-", "+"), ("[a", "[ab"), ("(a", "+"), ("-", "(a\x00"), ("[a\x00", "(b"), ("(\x7f", "[\x80\x00"),
    ("[\x80", "+"), ("(\xff", "+"), ("[", "(a"), ("(", "+"), ("[\xff\xff", "[\xff\xff"), ("+", "-"),
]  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    node = NodeProcess(tmp_path_factory.mktemp("zset_order")).start()
    reference = RedisServer(tmp_path_factory.mktemp("redis_zset_order"))
    ours, theirs = node.client(protocol=2), redis.Redis(port=reference.port, socket_timeout=10, protocol=2)
    yield ours, theirs
    ours.close()
    theirs.close()
    node.stop()
    reference.stop()


def _reply(r: redis.Redis, *args: Any) -> Any:
    """The raw reply (no redis-py callbacks), or the error's text."""
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    except redis.ResponseError as exc:
        return ("error", str(exc))
    finally:
        r.connection_pool.release(conn)


def _same(pair: tuple[redis.Redis, redis.Redis], *args: Any) -> Any:
    ours, theirs = pair
    got, want = _reply(ours, *args), _reply(theirs, *args)
    assert got == want, args
    return got


def _lex(bound: str) -> bytes:
    return bound.encode("latin-1")


def _fill_edges(pair: tuple[redis.Redis, redis.Redis], key: str) -> list[bytes]:
    """Every edge score on its own member, and every edge member at score -0 or 0 (alternating)."""
    members = []
    for i, score in enumerate(EDGE_SCORES):
        member = b"s%02d" % i
        _same(pair, "ZADD", key, score, member)
        members.append(member)
    for i, member in enumerate(EDGE_MEMBERS):
        _same(pair, "ZADD", key, "-0" if i % 2 else "0", member)
        members.append(member)
    return members


def _compare_reads(
    pair: tuple[redis.Redis, redis.Redis], key: str, members: list[bytes], scores: bool
) -> None:
    """Every read that shows the order; with ``scores`` also those that show score texts."""
    withscores = ["WITHSCORES"] if scores else []
    _same(pair, "ZCARD", key)
    for start, stop in [(0, -1), (0, 0), (-1, -1), (3, 9), (-12, -2)]:
        _same(pair, "ZRANGE", key, start, stop, *withscores)
        _same(pair, "ZRANGE", key, start, stop, "REV", *withscores)
    for member in members:
        _same(pair, "ZRANK", key, member)
        _same(pair, "ZREVRANK", key, member)
    for low, high in SCORE_BOUNDS:
        _same(pair, "ZCOUNT", key, low, high)
        _same(pair, "ZRANGEBYSCORE", key, low, high, *withscores)
        _same(pair, "ZREVRANGEBYSCORE", key, high, low, *withscores)
        _same(pair, "ZRANGE", key, low, high, "BYSCORE", "LIMIT", 1, 3, *withscores)
    if scores:
        _same(pair, "ZMSCORE", key, *members, b"nosuchmember")


def test_edge_scores_and_members_in_a_listpack_set_match_redis(pair: tuple[redis.Redis, redis.Redis]) -> None:
    for r in pair:
        r.flushall()
    members = _fill_edges(pair, "z")
    assert _same(pair, "OBJECT", "ENCODING", "z") == b"listpack"
    _compare_reads(pair, "z", members, scores=True)
    # Re-scoring moves a member: -0 <-> 0 is no change; across the edges it is.
    for score, member in [("0", b"a"), ("-0", b"ab"), ("-inf", b"\xff"), ("+inf", b""), ("-1e-300", b"s04")]:
        _same(pair, "ZADD", "z", "CH", score, member)
    _compare_reads(pair, "z", members, scores=True)
    _same(pair, "ZRANGESTORE", "copy", "z", "(-1", "(1", "BYSCORE")
    _same(pair, "ZRANGE", "copy", 0, -1, "WITHSCORES")
    _same(pair, "ZUNIONSTORE", "u", 2, "z", "copy", "WEIGHTS", 2, 3)
    _same(pair, "ZRANGE", "u", 0, -1, "WITHSCORES")
    _same(pair, "ZINTER", 2, "z", "copy", "AGGREGATE", "MAX", "WITHSCORES")
    _same(pair, "ZDIFF", 2, "z", "copy", "WITHSCORES")
    _same(pair, "ZPOPMIN", "z", 4)
    _same(pair, "ZPOPMAX", "z", 4)
    _same(pair, "ZPOPMIN", "z")
    _same(pair, "ZPOPMAX", "z")
    _compare_reads(pair, "z", members, scores=True)
    _same(pair, "ZREMRANGEBYSCORE", "z", "-0", "(1e-300")
    _same(pair, "ZREMRANGEBYRANK", "z", 2, 4)
    _compare_reads(pair, "z", members, scores=True)


def test_equal_scores_order_by_member_bytes_in_lex_ranges(pair: tuple[redis.Redis, redis.Redis]) -> None:
    for r in pair:
        r.flushall()
    for i, member in enumerate(EDGE_MEMBERS):
        _same(pair, "ZADD", "lex", "-0" if i % 2 else "0", member)
        _same(pair, "ZADD", "neg", "-2.5", member)
    for key in ("lex", "neg"):
        _same(pair, "ZRANGE", key, 0, -1, "WITHSCORES")
        for low, high in LEX_BOUNDS:
            _same(pair, "ZRANGEBYLEX", key, _lex(low), _lex(high))
            _same(pair, "ZREVRANGEBYLEX", key, _lex(high), _lex(low))
            _same(pair, "ZLEXCOUNT", key, _lex(low), _lex(high))
            _same(pair, "ZRANGE", key, _lex(low), _lex(high), "BYLEX", "LIMIT", 1, 4)
    _same(pair, "ZREMRANGEBYLEX", "lex", "(a", "[\x80".encode("latin-1"))
    _same(pair, "ZRANGE", "lex", 0, -1, "WITHSCORES")


def test_edge_scores_and_members_in_a_skiplist_set_match_redis(pair: tuple[redis.Redis, redis.Redis]) -> None:
    """The same edges past the listpack limit (128 members). Score texts are compared where no -0 is held
    (see the module docstring); the order, ranks and counts everywhere."""
    for r in pair:
        r.flushall()
    members = _fill_edges(pair, "big")
    for i in range(150):
        _same(pair, "ZADD", "big", EDGE_SCORES[i % len(EDGE_SCORES)], b"pad%03d" % i)
        members.append(b"pad%03d" % i)
    assert _same(pair, "OBJECT", "ENCODING", "big") == b"skiplist"
    _compare_reads(pair, "big", members, scores=False)
    # The same set without any -0 score: now the score texts too.
    _same(pair, "ZADD", "big", "CH", *[x for i, m in enumerate(EDGE_MEMBERS) for x in ("0", m)])
    _same(pair, "ZREM", "big", *[b"s%02d" % i for i, s in enumerate(EDGE_SCORES) if s.startswith("-0")])
    _same(
        pair,
        "ZREM",
        "big",
        *[b"pad%03d" % i for i in range(150) if EDGE_SCORES[i % len(EDGE_SCORES)][:2] == "-0"],
    )
    _compare_reads(pair, "big", members, scores=True)
    _same(pair, "ZPOPMIN", "big", 5)
    _same(pair, "ZPOPMAX", "big", 5)
    _compare_reads(pair, "big", members, scores=True)


def test_seeded_random_writes_and_reads_match_redis(pair: tuple[redis.Redis, redis.Redis], seed: int) -> None:
    rng = random.Random(seed)
    for r in pair:
        r.flushall()
    # Scores without -0 (see the module docstring): a set may grow past the listpack limit here.
    scores = [s for s in EDGE_SCORES if not s.startswith("-0")] + [
        str(rng.randrange(-50, 50)) for _ in range(20)
    ]
    members = EDGE_MEMBERS + [b"m%d" % rng.randrange(300) for _ in range(300)]
    for _ in range(1500):
        key = rng.choice(["r1", "r2"])
        op = rng.random()
        member = rng.choice(members)
        if op < 0.45:
            flags = rng.choice([[], [], ["CH"], ["GT"], ["LT"], ["NX"], ["XX"]])
            _same(pair, "ZADD", key, *flags, rng.choice(scores), member)
        elif op < 0.55:
            _same(pair, "ZINCRBY", key, rng.choice(scores), member)
        elif op < 0.62:
            _same(pair, "ZREM", key, member)
        elif op < 0.66:
            _same(pair, rng.choice(["ZPOPMIN", "ZPOPMAX"]), key, rng.randrange(1, 4))
        elif op < 0.76:
            _same(pair, "ZRANK", key, member)
            _same(pair, "ZSCORE", key, member)
        elif op < 0.88:
            low, high = rng.choice(SCORE_BOUNDS)
            _same(pair, "ZRANGEBYSCORE", key, low, high, "WITHSCORES")
            _same(pair, "ZCOUNT", key, low, high)
        else:
            start = rng.randrange(-20, 20)
            _same(pair, "ZRANGE", key, start, start + rng.randrange(10), "WITHSCORES")
    for key in ("r1", "r2"):
        _same(pair, "ZRANGE", key, 0, -1, "WITHSCORES")
    _same(pair, "ZUNION", 2, "r1", "r2", "WITHSCORES")


@pytest.mark.xfail(strict=True, reason="the node answers 0 where a skiplist-encoded Redis set keeps -0")
def test_a_minus_zero_score_in_a_skiplist_set_keeps_its_sign(pair: tuple[redis.Redis, redis.Redis]) -> None:
    for r in pair:
        r.flushall()
    _same(pair, "ZADD", "big", *[x for i in range(200) for x in (str(i), b"m%d" % i)])
    _same(pair, "ZADD", "big", "-0", "neg")
    _same(pair, "ZSCORE", "big", "neg")
