"""The list, set and sorted-set families against plain Python models, in process (no sockets).

Random command sequences (hypothesis) run through ``Server.execute`` exactly as a connection would run them,
and every reply, every error string and the final contents (an emptied collection must not exist) are checked
against a small model written from Redis's documented semantics. Around them: the ZSet range primitives,
propagation of the commands whose effect is not a pure function of their arguments, and the blocked-client
registry (served order, type changes, MULTI, disconnects) driven without a network.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.commands import sets
from actors.config import Config
from actors.data.types import LexBound, ZSet, score_key
from actors.server.blocking import BlockedState, parse_timeout_ms, registry
from actors.server.client import Client
from actors.server.server import BLOCKED, Server
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY, ReplySet

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_server() -> tuple[Server, Client]:
    server = Server(Config())
    return server, Client(server)


def run(server: Server, client: Client, *argv: Any) -> Any:
    reply = server.execute(client, [a if isinstance(a, bytes) else str(a).encode() for a in argv])
    return f"ERR:{reply}" if isinstance(reply, CommandError) else reply


def as_set(reply: Any) -> Any:
    """A set reply as a set: an intset's comes as a ReplySet (a list in ascending order, as Redis reads it)."""
    if isinstance(reply, ReplySet):
        assert list(reply) == sorted(reply, key=int) and len(set(reply)) == len(reply)
        return set(reply)
    return reply


class ModelError(Exception):
    """The model's way of saying "this command answers with this error"."""


def model_run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ModelError as exc:
        return f"ERR:{exc}"


def redis_range(length: int, start: int, stop: int) -> tuple[int, int] | None:
    """Redis's inclusive index range normalisation (LRANGE, ZRANGE, LTRIM, ZREMRANGEBYRANK)."""
    if start < 0:
        start += length
    if stop < 0:
        stop += length
    start = max(start, 0)
    stop = min(stop, length - 1)
    if start > stop or start >= length:
        return None
    return start, stop


# -- ZSet primitives -----------------------------------------------------------------------------------------


def test_zset_score_bounds_resolve_inclusive_and_exclusive_ends() -> None:
    z = ZSet([(b"a", 1.0), (b"b", 2.0), (b"c", 2.0), (b"d", 3.0)])
    assert (z.score_start(2.0, False), z.score_start(2.0, True)) == (1, 3)
    assert (z.score_stop(2.0, False), z.score_stop(2.0, True)) == (3, 1)
    assert z.score_start(-math.inf, False) == 0
    assert z.score_start(math.inf, True) == 4
    assert z.score_stop(math.inf, False) == 4
    assert [m for _, m in z.slice(z.score_start(1.0, True), z.score_stop(3.0, True))] == [b"b", b"c"]


def test_zset_lex_bounds_follow_member_order() -> None:
    z = ZSet((m, 0.0) for m in (b"a", b"b", b"c", b"d"))
    assert z.lex_start(LexBound(-1)) == 0
    assert z.lex_stop(LexBound(1)) == 4
    assert (z.lex_start(LexBound(0, b"b")), z.lex_start(LexBound(0, b"b", True))) == (1, 2)
    assert (z.lex_stop(LexBound(0, b"c")), z.lex_stop(LexBound(0, b"c", True))) == (3, 2)
    assert z.lex_start(LexBound(0, b"bb")) == 2
    assert z.lex_start(LexBound(1)) == 4 and z.lex_stop(LexBound(-1)) == 0


def test_zset_pop_and_remove_slice_keep_both_structures_in_step() -> None:
    z = ZSet([(b"a", 1.0), (b"b", 2.0), (b"c", 3.0), (b"d", 4.0)])
    assert z.pop(1, highest=True) == [(b"d", 4.0)]
    assert z.pop(5, highest=False) == [(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)]
    assert len(z) == 0 and len(z.ordered) == 0
    z = ZSet([(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)])
    assert z.remove_slice(0, 2) == 2
    assert list(z.items()) == [(b"c", 3.0)] and set(z.scores) == {b"c"}


def test_zadd_stores_negative_zero_as_zero() -> None:
    server, client = make_server()
    assert run(server, client, "ZADD", "z", "-0.0", "a") == 1
    assert math.copysign(1.0, client.db.data[b"z"].scores[b"a"]) == 1.0


def test_zset_copy_is_independent() -> None:
    z = ZSet([(b"a", 1.0)])
    clone = z.copy()
    clone.add(b"b", 2.0)
    assert len(z) == 1 and len(clone) == 2


# -- lists ---------------------------------------------------------------------------------------------------

KEYS = [b"a", b"b"]
VALUES = [b"x", b"y", b"z"]
small_ints = st.integers(min_value=-5, max_value=5)
key_st = st.sampled_from(KEYS)
value_st = st.sampled_from(VALUES)

list_ops = st.one_of(
    st.tuples(st.sampled_from([b"LPUSH", b"RPUSH"]), key_st, st.lists(value_st, min_size=1, max_size=4)),
    st.tuples(st.sampled_from([b"LPUSHX", b"RPUSHX"]), key_st, st.lists(value_st, min_size=1, max_size=2)),
    st.tuples(st.sampled_from([b"LPOP", b"RPOP"]), key_st, st.none() | st.integers(0, 4)),
    st.tuples(st.just(b"LRANGE"), key_st, small_ints, small_ints),
    st.tuples(st.just(b"LINDEX"), key_st, small_ints),
    st.tuples(st.just(b"LSET"), key_st, small_ints, value_st),
    st.tuples(st.just(b"LINSERT"), key_st, st.sampled_from([b"BEFORE", b"AFTER"]), value_st, value_st),
    st.tuples(st.just(b"LREM"), key_st, st.integers(-3, 3), value_st),
    st.tuples(st.just(b"LTRIM"), key_st, small_ints, small_ints),
    st.tuples(st.just(b"LLEN"), key_st),
    st.tuples(
        st.just(b"LPOS"), key_st, value_st, st.sampled_from([1, 2, -1, -2]), st.none() | st.integers(0, 3)
    ),
    st.tuples(
        st.just(b"LMOVE"),
        key_st,
        key_st,
        st.sampled_from([b"LEFT", b"RIGHT"]),
        st.sampled_from([b"LEFT", b"RIGHT"]),
    ),
)


class ListModel:
    def __init__(self) -> None:
        self.data: dict[bytes, list[bytes]] = {}

    def _tidy(self, key: bytes) -> None:
        if key in self.data and not self.data[key]:
            del self.data[key]

    def apply(self, op: tuple[Any, ...]) -> tuple[list[Any], Any]:
        name = op[0]
        d = self.data
        if name in (b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"):
            key, values = op[1], op[2]
            if name.endswith(b"X") and key not in d:
                return [name, key, *values], 0
            items = d.setdefault(key, [])
            for v in values:
                if name.startswith(b"L"):
                    items.insert(0, v)
                else:
                    items.append(v)
            return [name, key, *values], len(items)
        if name in (b"LPOP", b"RPOP"):
            key, count = op[1], op[2]
            argv = [name, key] if count is None else [name, key, count]
            if key not in d:
                return argv, None if count is None else NULL_ARRAY
            items = d[key]
            if count is None:
                value = items.pop(0) if name == b"LPOP" else items.pop()
                self._tidy(key)
                return argv, value
            out = [items.pop(0) if name == b"LPOP" else items.pop() for _ in range(min(count, len(items)))]
            self._tidy(key)
            return argv, out
        if name == b"LRANGE":
            key, start, stop = op[1:]
            items = d.get(key, [])
            bounds = redis_range(len(items), start, stop)
            return [name, key, start, stop], [] if bounds is None else items[bounds[0] : bounds[1] + 1]
        if name == b"LINDEX":
            key, index = op[1:]
            items = d.get(key, [])
            return [name, key, index], items[index] if -len(items) <= index < len(items) else None
        if name == b"LSET":
            key, index, value = op[1:]
            argv = [name, key, index, value]
            if key not in d:
                return argv, "ERR:ERR no such key"
            items = d[key]
            if not -len(items) <= index < len(items):
                return argv, "ERR:ERR index out of range"
            items[index] = value
            return argv, "OK"
        if name == b"LINSERT":
            key, where, pivot, value = op[1:]
            argv = [name, key, where, pivot, value]
            if key not in d:
                return argv, 0
            items = d[key]
            if pivot not in items:
                return argv, -1
            i = items.index(pivot)
            items.insert(i if where == b"BEFORE" else i + 1, value)
            return argv, len(items)
        if name == b"LREM":
            key, count, value = op[1:]
            argv = [name, key, count, value]
            items = d.get(key, [])
            removed = 0
            limit = abs(count) if count else len(items)
            order = range(len(items) - 1, -1, -1) if count < 0 else range(len(items))
            doomed = set()
            for i in order:
                if removed < limit and items[i] == value:
                    doomed.add(i)
                    removed += 1
            if key in d:
                d[key] = [v for i, v in enumerate(items) if i not in doomed]
                self._tidy(key)
            return argv, removed
        if name == b"LTRIM":
            key, start, stop = op[1:]
            if key in d:
                bounds = redis_range(len(d[key]), start, stop)
                d[key] = [] if bounds is None else d[key][bounds[0] : bounds[1] + 1]
                self._tidy(key)
            return [name, key, start, stop], "OK"
        if name == b"LLEN":
            return [name, op[1]], len(d.get(op[1], []))
        if name == b"LPOS":
            key, value, rank, count = op[1:]
            argv = [name, key, value, b"RANK", rank] + ([] if count is None else [b"COUNT", count])
            items = d.get(key, [])
            positions = [i for i, v in enumerate(items) if v == value]
            if rank < 0:
                positions.reverse()
            positions = positions[abs(rank) - 1 :]
            if count is None:
                return argv, positions[0] if positions else None
            return argv, positions if count == 0 else positions[:count]
        if name == b"LMOVE":
            src, dst, wherefrom, whereto = op[1:]
            argv = [name, src, dst, wherefrom, whereto]
            if src not in d:
                return argv, None
            value = d[src].pop(0) if wherefrom == b"LEFT" else d[src].pop()
            target = d.setdefault(dst, [])
            if whereto == b"LEFT":
                target.insert(0, value)
            else:
                target.append(value)
            self._tidy(src)
            return argv, value
        raise AssertionError(op)


@SETTINGS
@given(st.lists(list_ops, max_size=30))
def test_list_commands_match_a_python_list_model(ops: list[tuple[Any, ...]]) -> None:
    server, client = make_server()
    model = ListModel()
    for op in ops:
        argv, expected = model.apply(op)
        assert run(server, client, *argv) == expected, argv
    db = client.db
    assert {k: list(v) for k, v in db.data.items()} == model.data
    assert all(type(v) is deque and v for v in db.data.values())


# -- sets ----------------------------------------------------------------------------------------------------

SET_KEYS = [b"a", b"b", b"c"]
set_key_st = st.sampled_from(SET_KEYS)
member_st = st.sampled_from([b"1", b"2", b"3", b"m", b"n"])

set_ops = st.one_of(
    st.tuples(st.sampled_from([b"SADD", b"SREM"]), set_key_st, st.lists(member_st, min_size=1, max_size=4)),
    st.tuples(st.sampled_from([b"SISMEMBER"]), set_key_st, member_st),
    st.tuples(st.sampled_from([b"SCARD", b"SMEMBERS"]), set_key_st),
    st.tuples(st.just(b"SPOP"), set_key_st, st.none() | st.integers(0, 4)),
    st.tuples(st.just(b"SRANDMEMBER"), set_key_st, st.integers(-4, 4)),
    st.tuples(
        st.sampled_from([b"SINTER", b"SUNION", b"SDIFF"]), st.lists(set_key_st, min_size=1, max_size=3)
    ),
    st.tuples(
        st.sampled_from([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]),
        set_key_st,
        st.lists(set_key_st, min_size=1, max_size=3),
    ),
    st.tuples(st.just(b"SMOVE"), set_key_st, set_key_st, member_st),
    st.tuples(st.just(b"SINTERCARD"), st.lists(set_key_st, min_size=1, max_size=3), st.integers(0, 3)),
)


@SETTINGS
@given(st.lists(set_ops, max_size=30))
def test_set_commands_match_a_python_set_model(ops: list[tuple[Any, ...]]) -> None:
    server, client = make_server()
    d: dict[bytes, set[bytes]] = {}

    def tidy(key: bytes) -> None:
        if key in d and not d[key]:
            del d[key]

    def algebra(name: bytes, keys: list[bytes]) -> set[bytes]:
        sets = [d.get(k, set()) for k in keys]
        if name.startswith(b"SINTER"):
            return set.intersection(*sets)
        if name.startswith(b"SUNION"):
            return set.union(*sets)
        return sets[0].difference(*sets[1:])

    for op in ops:
        name = op[0]
        if name in (b"SADD", b"SREM"):
            key, members = op[1], op[2]
            before = set(d.get(key, set()))
            after = before | set(members) if name == b"SADD" else before - set(members)
            assert run(server, client, name, key, *members) == abs(len(after) - len(before))
            d[key] = after
            tidy(key)
        elif name == b"SISMEMBER":
            assert run(server, client, name, op[1], op[2]) == int(op[2] in d.get(op[1], set()))
        elif name == b"SCARD":
            assert run(server, client, name, op[1]) == len(d.get(op[1], set()))
        elif name == b"SMEMBERS":
            assert as_set(run(server, client, name, op[1])) == d.get(op[1], set())
        elif name == b"SPOP":
            key, count = op[1], op[2]
            current = d.get(key, set())
            if count is None:
                reply = run(server, client, name, key)
                if not current:
                    assert reply is None
                else:
                    assert reply in current
                    current.discard(reply)
            else:
                reply = run(server, client, name, key, count)
                assert isinstance(reply, set) and reply <= current and len(reply) == min(count, len(current))
                current -= reply
            tidy(key)
        elif name == b"SRANDMEMBER":
            key, count = op[1], op[2]
            current = d.get(key, set())
            reply = run(server, client, name, key, count)
            assert set(reply) <= current
            if count >= 0:
                assert len(reply) == len(set(reply)) == min(count, len(current))
            else:
                assert len(reply) == (-count if current else 0)
        elif name in (b"SINTER", b"SUNION", b"SDIFF"):
            assert as_set(run(server, client, name, *op[1])) == algebra(name, op[1])
        elif name in (b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"):
            result = algebra(name, op[2])
            assert run(server, client, name, op[1], *op[2]) == len(result)
            d[op[1]] = result
            tidy(op[1])
        elif name == b"SMOVE":
            src, dst, member = op[1:]
            moved = member in d.get(src, set())
            assert run(server, client, name, src, dst, member) == int(moved)
            if moved and src != dst:
                d[src].discard(member)
                d.setdefault(dst, set()).add(member)
                tidy(src)
        elif name == b"SINTERCARD":
            keys, limit = op[1], op[2]
            size = len(algebra(b"SINTER", keys))
            expected = min(size, limit) if limit else size
            assert run(server, client, name, len(keys), *keys, b"LIMIT", limit) == expected
    assert client.db.data == d


def test_spop_of_a_set_that_was_large_rebuilds_its_table_and_pops_every_member_once() -> None:
    # A set's table keeps its size as members go; the uniform pick (sets of <= UNIFORM_PICK_MAX) walks it, so a
    # set emptied from 20,000 members must be rebuilt at its size, or each of its last pops walks ~40,000 slots.
    server, client = make_server()
    members = {b"m%d" % i for i in range(20_000)}
    assert run(server, client, "SADD", "s", *members) == len(members)
    popped = []
    while (reply := run(server, client, "SPOP", "s")) is not None:
        popped.append(reply)
        value = client.db.data.get(b"s")
        if value is not None and len(value) < sets.UNIFORM_PICK_MAX:
            # (after a uniform pick, which checked the table at one member more)
            limit_bytes = sets.SPARSE_BYTES_PER_MEMBER * (len(value) + 1) + 1024
            assert sys.getsizeof(value) <= limit_bytes
    assert len(popped) == len(set(popped)) and set(popped) == members
    assert b"s" not in client.db.data


# -- sorted sets ---------------------------------------------------------------------------------------------

Z_KEYS = [b"a", b"b"]
SCORES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0]
z_key_st = st.sampled_from(Z_KEYS)
z_member_st = st.sampled_from([b"p", b"q", b"r", b"s", b"t"])
score_st = st.sampled_from(SCORES)
bound_st = st.one_of(
    st.sampled_from([b"-inf", b"+inf"]),
    st.tuples(st.booleans(), score_st).map(lambda t: (b"(" if t[0] else b"") + repr(t[1]).encode()),
)
lex_bound_st = st.one_of(
    st.sampled_from([b"-", b"+"]),
    st.tuples(st.sampled_from([b"[", b"("]), z_member_st).map(lambda t: t[0] + t[1]),
)
zadd_flags_st = st.lists(
    st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"]), max_size=3, unique=True
)

zset_ops = st.one_of(
    st.tuples(
        st.just(b"ZADD"),
        z_key_st,
        zadd_flags_st,
        st.lists(st.tuples(score_st, z_member_st), min_size=1, max_size=3),
    ),
    st.tuples(st.just(b"ZINCRBY"), z_key_st, score_st, z_member_st),
    st.tuples(st.just(b"ZREM"), z_key_st, st.lists(z_member_st, min_size=1, max_size=3)),
    st.tuples(st.sampled_from([b"ZSCORE", b"ZRANK", b"ZREVRANK"]), z_key_st, z_member_st),
    st.tuples(st.just(b"ZCARD"), z_key_st),
    st.tuples(st.just(b"ZRANGE"), z_key_st, small_ints, small_ints, st.booleans(), st.booleans()),
    st.tuples(
        st.just(b"ZRANGEBYSCORE"),
        z_key_st,
        bound_st,
        bound_st,
        st.booleans(),
        st.none() | st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
    ),
    st.tuples(st.just(b"ZCOUNT"), z_key_st, bound_st, bound_st),
    st.tuples(st.just(b"ZREMRANGEBYSCORE"), z_key_st, bound_st, bound_st),
    st.tuples(st.just(b"ZREMRANGEBYRANK"), z_key_st, small_ints, small_ints),
    st.tuples(st.sampled_from([b"ZPOPMIN", b"ZPOPMAX"]), z_key_st, st.none() | st.integers(0, 3)),
    st.tuples(
        st.sampled_from([b"ZUNIONSTORE", b"ZINTERSTORE"]),
        z_key_st,
        st.sampled_from([1.0, 2.0, -1.0, 0.5]),
        st.sampled_from([1.0, 2.0, -1.0, 0.5]),
        st.sampled_from([b"SUM", b"MIN", b"MAX"]),
    ),
    # Lex commands on a key whose members all share score 0, as lex ranges require.
    st.tuples(st.just(b"LEXADD"), z_member_st),
    st.tuples(
        st.sampled_from([b"ZRANGEBYLEX", b"ZREVRANGEBYLEX", b"ZLEXCOUNT", b"ZREMRANGEBYLEX"]),
        lex_bound_st,
        lex_bound_st,
    ),
)


def _bound(raw: bytes) -> tuple[float, bool]:
    if raw[:1] == b"(":
        return float(raw[1:]), True
    return float(raw), False


def _in_score_range(score: float, low: bytes, high: bytes) -> bool:
    lo, lo_ex = _bound(low)
    hi, hi_ex = _bound(high)
    return (score > lo if lo_ex else score >= lo) and (score < hi if hi_ex else score <= hi)


def _in_lex_range(member: bytes, low: bytes, high: bytes) -> bool:
    def above_low() -> bool:
        if low == b"-":
            return True
        if low == b"+":
            return False
        return member > low[1:] if low[:1] == b"(" else member >= low[1:]

    def below_high() -> bool:
        if high == b"+":
            return True
        if high == b"-":
            return False
        return member < high[1:] if high[:1] == b"(" else member <= high[1:]

    return above_low() and below_high()


class ZSetModel:
    def __init__(self) -> None:
        self.data: dict[bytes, dict[bytes, float]] = {}

    def ordered(self, key: bytes) -> list[tuple[bytes, float]]:
        return sorted(self.data.get(key, {}).items(), key=lambda kv: (kv[1], kv[0]))

    def _tidy(self, key: bytes) -> None:
        if key in self.data and not self.data[key]:
            del self.data[key]

    def zadd(self, key: bytes, flags: list[bytes], pairs: list[tuple[float, bytes]]) -> Any:
        nx, xx, gt, lt, ch, incr = (f in flags for f in (b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"))
        if nx and xx:
            raise ModelError("ERR XX and NX options at the same time are not compatible")
        if (gt and nx) or (lt and nx) or (gt and lt):
            raise ModelError("ERR GT, LT, and/or NX options at the same time are not compatible")
        if incr and len(pairs) > 1:
            raise ModelError("ERR INCR option supports a single increment-element pair")
        if key not in self.data and xx:
            return None if incr else 0
        z = self.data.setdefault(key, {})
        added = changed = 0
        result: float | None = None
        for score, member in pairs:
            if member not in z:
                if xx:
                    continue
                z[member] = score
                added += 1
                result = score
                continue
            if nx:
                continue
            new = z[member] + score if incr else score
            if (gt and new <= z[member]) or (lt and new >= z[member]):
                continue
            result = new
            if new != z[member]:
                z[member] = new
                changed += 1
        self._tidy(key)
        if incr:
            return result
        return added + changed if ch else added

    def apply(self, op: tuple[Any, ...], resp3: bool) -> tuple[list[Any], Any]:
        name = op[0]
        d = self.data
        argv: list[Any]
        items: list[tuple[bytes, float]]
        chosen: Any
        doomed: Any
        fold: Any
        if name == b"ZADD":
            key, flags, pairs = op[1:]
            argv = [name, key, *flags] + [
                x for score, member in pairs for x in (repr(score).encode(), member)
            ]
            return argv, model_run(self.zadd, key, flags, pairs)
        if name == b"ZINCRBY":
            key, score, member = op[1:]
            return [name, key, repr(score).encode(), member], self.zadd(key, [b"INCR"], [(score, member)])
        if name == b"ZREM":
            key, members = op[1:]
            z = d.get(key, {})
            removed = sum(1 for m in set(members) if z.pop(m, None) is not None)
            self._tidy(key)
            return [name, key, *members], removed
        if name == b"ZSCORE":
            return [name, op[1], op[2]], d.get(op[1], {}).get(op[2])
        if name in (b"ZRANK", b"ZREVRANK"):
            members = [m for m, _ in self.ordered(op[1])]
            if name == b"ZREVRANK":
                members.reverse()
            return [name, op[1], op[2]], members.index(op[2]) if op[2] in members else None
        if name == b"ZCARD":
            return [name, op[1]], len(d.get(op[1], {}))
        if name == b"ZRANGE":
            key, start, stop, rev, withscores = op[1:]
            argv = (
                [name, key, start, stop] + ([b"REV"] if rev else []) + ([b"WITHSCORES"] if withscores else [])
            )
            items = self.ordered(key)
            if rev:
                items.reverse()
            bounds = redis_range(len(items), start, stop)
            chosen = [] if bounds is None else items[bounds[0] : bounds[1] + 1]
            return argv, self.emit(chosen, withscores, resp3)
        if name == b"ZRANGEBYSCORE":
            key, low, high, withscores, limit = op[1:]
            argv = [name, key, low, high] + ([b"WITHSCORES"] if withscores else [])
            chosen = [(m, s) for m, s in self.ordered(key) if _in_score_range(s, low, high)]
            if limit is not None:
                argv += [b"LIMIT", limit[0], limit[1]]
                offset, count = limit
                chosen = (
                    [] if offset < 0 else chosen[offset:] if count < 0 else chosen[offset : offset + count]
                )
            return argv, self.emit(chosen, withscores, resp3)
        if name == b"ZCOUNT":
            key, low, high = op[1:]
            return [name, key, low, high], sum(
                1 for _, s in self.ordered(key) if _in_score_range(s, low, high)
            )
        if name == b"ZREMRANGEBYSCORE":
            key, low, high = op[1:]
            z = d.get(key, {})
            doomed = [m for m, s in z.items() if _in_score_range(s, low, high)]
            for m in doomed:
                del z[m]
            self._tidy(key)
            return [name, key, low, high], len(doomed)
        if name == b"ZREMRANGEBYRANK":
            key, start, stop = op[1:]
            items = self.ordered(key)
            bounds = redis_range(len(items), start, stop)
            doomed = [] if bounds is None else items[bounds[0] : bounds[1] + 1]
            for m, _ in doomed:
                del d[key][m]
            self._tidy(key)
            return [name, key, start, stop], len(doomed)
        if name in (b"ZPOPMIN", b"ZPOPMAX"):
            key, count = op[1:]
            argv = [name, key] if count is None else [name, key, count]
            items = self.ordered(key)
            if name == b"ZPOPMAX":
                items.reverse()
            chosen = items[: 1 if count is None else count]
            for m, _ in chosen:
                del d[key][m]
            self._tidy(key)
            if resp3 and count is not None:
                return argv, [[m, s] for m, s in chosen]
            return argv, [x for m, s in chosen for x in (m, s)]
        if name in (b"ZUNIONSTORE", b"ZINTERSTORE"):
            dst, w1, w2, how = op[1:]
            argv = [
                name,
                dst,
                2,
                b"a",
                b"b",
                b"WEIGHTS",
                repr(w1).encode(),
                repr(w2).encode(),
                b"AGGREGATE",
                how,
            ]
            za, zb = d.get(b"a", {}), d.get(b"b", {})
            members = set(za) | set(zb) if name == b"ZUNIONSTORE" else set(za) & set(zb)
            fold = {b"SUM": lambda x, y: x + y, b"MIN": min, b"MAX": max}[how]
            result = {}
            for m in members:
                parts = [z[m] * w for z, w in ((za, w1), (zb, w2)) if m in z]
                total = parts[0]
                for p in parts[1:]:
                    total = fold(total, p)
                result[m] = total
            d[dst] = result
            self._tidy(dst)
            return argv, len(result)
        if name == b"LEXADD":
            d.setdefault(b"lex", {})[op[1]] = 0.0
            return [b"ZADD", b"lex", b"0", op[1]], None
        if name in (b"ZRANGEBYLEX", b"ZREVRANGEBYLEX", b"ZLEXCOUNT", b"ZREMRANGEBYLEX"):
            low, high = op[1:]
            argv = [name, b"lex", low, high]
            if name == b"ZREVRANGEBYLEX":
                chosen = [m for m, _ in reversed(self.ordered(b"lex")) if _in_lex_range(m, high, low)]
                return argv, chosen
            chosen = [m for m, _ in self.ordered(b"lex") if _in_lex_range(m, low, high)]
            if name == b"ZRANGEBYLEX":
                return argv, chosen
            if name == b"ZLEXCOUNT":
                return argv, len(chosen)
            for m in chosen:
                del d[b"lex"][m]
            self._tidy(b"lex")
            return argv, len(chosen)
        raise AssertionError(op)

    @staticmethod
    def emit(chosen: list[tuple[bytes, float]], withscores: bool, resp3: bool) -> list[Any]:
        if not withscores:
            return [m for m, _ in chosen]
        if resp3:
            return [[m, s] for m, s in chosen]
        return [x for m, s in chosen for x in (m, s)]


@SETTINGS
@given(st.lists(zset_ops, max_size=30), st.booleans())
def test_sorted_set_commands_match_a_python_dict_model(ops: list[tuple[Any, ...]], resp3: bool) -> None:
    server, client = make_server()
    client.resp3 = resp3
    model = ZSetModel()
    for op in ops:
        argv, expected = model.apply(op, resp3)
        reply = run(server, client, *argv)
        if op[0] == b"LEXADD":
            continue
        assert reply == expected, argv
    contents = {k: dict(v.scores) for k, v in client.db.data.items()}
    assert contents == model.data
    for value in client.db.data.values():
        # The ordering keys are exactly the members' keys, and they read back in (score, member) order.
        assert list(value.ordered) == sorted(score_key(s) + m for m, s in value.scores.items())
        assert [(s, m) for m, s in value.items()] == sorted((s, m) for m, s in value.scores.items())


# -- propagation ---------------------------------------------------------------------------------------------


def propagated(server: Server) -> list[list[bytes]]:
    """The commands propagated so far, decoded from the RESP stream (SELECTs dropped)."""
    import hiredis

    reader = hiredis.Reader()
    reader.feed(server.take_propagated())
    out = []
    while (cmd := reader.gets()) is not False:
        if cmd[0].upper() != b"SELECT":
            out.append(cmd)
    return out


@pytest.fixture
def feeding() -> tuple[Server, Client]:
    server, client = make_server()
    server.aof_feeding = True
    return server, client


def test_random_and_relative_writes_propagate_as_what_they_did(feeding: tuple[Server, Client]) -> None:
    server, c = feeding
    run(server, c, "SADD", "s", "a", "b", "c")
    run(server, c, "HSET", "h", "f", "1.5")
    run(server, c, "RPUSH", "l", "1", "2", "3")
    propagated(server)
    popped = run(server, c, "SPOP", "s")
    assert propagated(server) == [[b"SREM", b"s", popped]]
    popped_set = run(server, c, "SPOP", "s", "1")
    assert propagated(server) == [[b"SREM", b"s", *popped_set]]
    run(server, c, "SPOP", "s", "10")
    assert propagated(server) == [[b"DEL", b"s"]]
    assert run(server, c, "HINCRBYFLOAT", "h", "f", "0.25") == b"1.75"
    assert propagated(server) == [[b"HSET", b"h", b"f", b"1.75"]]
    assert run(server, c, "LMPOP", "2", "none", "l", "RIGHT", "COUNT", "5") == [b"l", [b"3", b"2", b"1"]]
    assert propagated(server) == [[b"RPOP", b"l", b"3"]]
    run(server, c, "ZADD", "z", "1", "a", "2", "b")
    propagated(server)
    assert run(server, c, "BZPOPMAX", "z", "0") == [b"z", b"b", 2.0]
    assert run(server, c, "ZMPOP", "1", "z", "MIN", "COUNT", "9") == [b"z", [[b"a", 1.0]]]
    assert propagated(server) == [[b"ZPOPMAX", b"z"], [b"ZPOPMIN", b"z", b"1"]]


def test_reads_and_no_op_writes_propagate_nothing(feeding: tuple[Server, Client]) -> None:
    server, c = feeding
    run(server, c, "RPUSH", "l", "a")
    propagated(server)
    for argv in (
        ("LRANGE", "l", "0", "-1"),
        ("LPOP", "none"),
        ("SREM", "none", "x"),
        ("ZADD", "z", "XX", "1", "a"),
        ("HDEL", "none", "f"),
        ("LTRIM", "l", "0", "-1"),
        ("ZRANDMEMBER", "none"),
        ("SPOP", "none", "3"),
    ):
        run(server, c, *argv)
    assert propagated(server) == []


# -- blocked clients (in process) ----------------------------------------------------------------------------


def blocked_client(server: Server) -> tuple[Client, list[Any]]:
    client = Client(server)
    replies: list[Any] = []
    client.deliver = replies.append
    return client, replies


def test_timeouts_parse_like_redis() -> None:
    assert parse_timeout_ms(b"0") == 0
    assert parse_timeout_ms(b"1.5") == 1500
    assert parse_timeout_ms(b"0.0001") == 1  # rounded up: a tiny timeout is not "forever"
    assert parse_timeout_ms(b"0x10") == 16000  # strtold reads hex
    for raw, message in (
        (b"-1", "ERR timeout is negative"),
        (b"inf", "ERR timeout is negative"),
        (b"1e20", "ERR timeout is negative"),
        (b"abc", "ERR timeout is not a float or out of range"),
        (b" 1", "ERR timeout is not a float or out of range"),
        (b"nan", "ERR timeout is not a float or out of range"),
        (b"", "ERR timeout is not a float or out of range"),
    ):
        with pytest.raises(CommandError) as info:
            parse_timeout_ms(raw)
        assert str(info.value) == message


def test_waiters_are_served_in_arrival_order_after_the_write(feeding: tuple[Server, Client]) -> None:
    server, pusher = feeding
    first, first_replies = blocked_client(server)
    second, second_replies = blocked_client(server)
    assert run(server, first, "BLPOP", "q", "0") is BLOCKED
    assert run(server, second, "BRPOP", "other", "q", "0") is BLOCKED
    assert isinstance(first.blocked, BlockedState)
    assert run(server, pusher, "RPUSH", "q", "1", "2", "3") == 3
    assert first_replies == [[b"q", b"1"]] and second_replies == [[b"q", b"3"]]
    assert first.blocked is None and second.blocked is None
    assert run(server, pusher, "LRANGE", "q", "0", "-1") == [b"2"]
    assert propagated(server) == [[b"RPUSH", b"q", b"1", b"2", b"3"], [b"LPOP", b"q"], [b"RPOP", b"q"]]
    assert registry(server).waiting == {}


def test_a_waiter_for_another_type_keeps_waiting(feeding: tuple[Server, Client]) -> None:
    server, writer = feeding
    waiter, replies = blocked_client(server)
    assert run(server, waiter, "BZPOPMIN", "k", "0") is BLOCKED
    run(server, writer, "RPUSH", "k", "x")
    run(server, writer, "SET", "k", "str")
    assert replies == [] and waiter.blocked is not None
    run(server, writer, "DEL", "k")
    run(server, writer, "ZADD", "k", "5", "m")
    assert replies == [[b"k", b"m", 5.0]]
    assert run(server, writer, "EXISTS", "k") == 0


def test_blmove_chains_wake_the_destination_waiters(feeding: tuple[Server, Client]) -> None:
    server, writer = feeding
    mover, mover_replies = blocked_client(server)
    popper, popper_replies = blocked_client(server)
    assert run(server, popper, "BLPOP", "dst", "0") is BLOCKED
    assert run(server, mover, "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0") is BLOCKED
    run(server, writer, "RPUSH", "src", "v")
    assert mover_replies == [b"v"] and popper_replies == [[b"dst", b"v"]]
    assert propagated(server)[1:] == [[b"LMOVE", b"src", b"dst", b"LEFT", b"RIGHT"], [b"LPOP", b"dst"]]


def test_blocking_commands_inside_multi_answer_at_once(feeding: tuple[Server, Client]) -> None:
    server, c = feeding
    assert run(server, c, "MULTI") == "OK"
    for argv in (
        ("BLPOP", "none", "0"),
        ("BLMOVE", "none", "x", "LEFT", "LEFT", "0"),
        ("BZPOPMIN", "none", "0"),
    ):
        assert run(server, c, *argv) == "QUEUED"
    assert run(server, c, "EXEC") == [NULL_ARRAY, None, NULL_ARRAY]
    assert c.blocked is None


def test_a_departed_client_is_forgotten(feeding: tuple[Server, Client]) -> None:
    server, writer = feeding
    gone, replies = blocked_client(server)
    server.add_client(gone)
    assert run(server, gone, "BLPOP", "q", "0") is BLOCKED
    server.remove_client(gone)
    assert run(server, writer, "RPUSH", "q", "x") == 1
    assert replies == [] and run(server, writer, "LLEN", "q") == 1


def test_unblock_answers_with_the_timeout_reply_or_an_error(feeding: tuple[Server, Client]) -> None:
    server, _ = feeding
    waiter, replies = blocked_client(server)
    assert run(server, waiter, "BLMPOP", "0", "1", "q", "LEFT") is BLOCKED
    assert registry(server).unblock(waiter, with_error=False)
    assert replies == [NULL_ARRAY]
    assert run(server, waiter, "BZMPOP", "0", "1", "z", "MIN") is BLOCKED
    assert registry(server).unblock(waiter, with_error=True)
    assert str(replies[1]) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    assert not registry(server).unblock(waiter, with_error=True)
