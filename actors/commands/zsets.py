"""Sorted-set commands: ZADD, ZINCRBY, ZREM, point reads (ZSCORE, ZRANK, ZCOUNT, ...), ZRANDMEMBER, ZSCAN, and
the score / bound parsers the other sorted-set modules share. Ranges are in zsets_range.py; pops (blocking
too) and the algebra (ZUNION/ZINTER/ZDIFF, their STORE forms, ZINTERCARD) in zsets_multi.py.

Values are ``actors.data.types.ZSet``. Every range query resolves its bounds by bisection on ``ZSet.ordered`` and
then walks only what it returns (``ZSet.slice``), so ranks and ranges stay O(log n + m).

Replies follow Redis 7.0: scores are doubles (RESP2 bulk strings formatted ``%.17g``, RESP3 ``,``); with
WITHSCORES, RESP2 gets a flat ``[member, score, ...]`` array and RESP3 an array of ``[member, score]`` pairs.
ZMPOP and a blocking pop served at once are propagated as ``ZPOPMIN/ZPOPMAX key [count]``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import get_typed
from actors.commands.hashes import parse_random_count, scan_members
from actors.data import events
from actors.data.types import LexBound, ZSet
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import format_double

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

NAN_SCORE = "ERR resulting score is not a number (NaN)"
NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"
POSITIVE = "ERR value is out of range, must be positive"

# What strtod accepts as a whole argument: decimal or hexadecimal floats, inf/infinity (no NaN).
_DOUBLE_RE = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?)\Z",
    re.IGNORECASE,
)
# C's isspace: strtod skips these before a range bound (ZRANGEBYSCORE " 1" is 1).
_C_SPACE = b" \t\n\v\f\r"


def _strtod(raw: bytes) -> float | None:
    """The double strtod reads from all of ``raw``, or None if it stops early or reads NaN."""
    if _DOUBLE_RE.match(raw) is None:
        return None
    if raw.lstrip(b"+-")[:2].lower() == b"0x":
        return float.fromhex(raw.decode("ascii"))
    value = float(raw)
    return None if math.isnan(value) else value


# First bytes of a ZADD argument that cannot start an option (NX, XX, CH, INCR, GT, LT): of a number.
_NOT_AN_OPTION = frozenset(b"%c" % c for c in b"0123456789+-.")


def parse_score(raw: bytes, message: str = errors.NOT_FLOAT) -> float:
    """A score as Redis's getDoubleFromObject reads it: strict, no NaN, no overflow to inf or underflow to 0."""
    if raw.isdigit() and len(raw) <= 15:
        return float(raw)  # the common case: a plain integer, exact in a double (at most 15 digits)
    value = _strtod(raw) if raw and raw[0] not in _C_SPACE else None
    if value is None:
        raise CommandError(message)
    mantissa = raw.lower().lstrip(b"+-").split(b"e")[0].split(b"p")[0]
    if math.isinf(value) and not mantissa.startswith(b"inf"):
        raise CommandError(message)  # ERANGE: overflow
    if value == 0.0 and re.search(rb"[1-9a-f]", mantissa.removeprefix(b"0x")):
        raise CommandError(message)  # ERANGE: underflow to zero
    # -0 becomes 0: Redis's compact encoding stores the score "-0" as the integer 0, so ZSCORE answers 0.
    return value + 0.0


def _parse_bound(raw: bytes) -> tuple[float, bool]:
    """One end of a score range: ``[(]<double>`` (exclusive with ``(``), as zslParseRange reads it."""
    exclusive = raw[:1] == b"("
    text = (raw[1:] if exclusive else raw).lstrip(_C_SPACE)
    if not text:
        return 0.0, exclusive  # strtod of "" reads 0 and stops at the (already reached) end
    value = _strtod(text)
    if value is None:
        raise CommandError(NOT_FLOAT_RANGE)
    return value, exclusive


def _parse_lex(raw: bytes) -> LexBound:
    """One end of a lex range: ``-``, ``+``, ``[member`` or ``(member`` (zslParseLexRangeItem)."""
    head = raw[:1]
    if head == b"+" and len(raw) == 1:
        return LexBound(1)
    if head == b"-" and len(raw) == 1:
        return LexBound(-1)
    if head == b"(":
        return LexBound(0, raw[1:], True)
    if head == b"[":
        return LexBound(0, raw[1:], False)
    raise CommandError(NOT_LEX_RANGE)


def _zset(client: Client, key: bytes, read: bool = False) -> ZSet | None:
    return get_typed(client, key, ZSet, read)


def _changed(client: Client, db: Database, key: bytes, zset: ZSet, event: bytes) -> None:
    """After members went: report ``event``, then delete the key if the set is now empty (``del``)."""
    keyspace = client.server.keyspace
    keyspace.notify(db, events.ZSET, event, key)
    if zset.scores:  # (not ``if zset``: ZSet.__len__ is a Python call)
        keyspace.touch(db, key)
    else:
        keyspace.delete(db, key)
        keyspace.notify(db, events.GENERIC, b"del", key)


def pop_event(highest: bool) -> bytes:
    return b"zpopmax" if highest else b"zpopmin"


def _emit(pairs: Iterable[tuple[float, bytes]], with_scores: bool, resp3: bool) -> list[Any]:
    """(score, member) pairs as a reply: members, or with scores flat (RESP2) or in pairs (RESP3)."""
    if not with_scores:
        return [member for _, member in pairs]
    if resp3:
        return [[member, float(score)] for score, member in pairs]
    out: list[Any] = []
    for score, member in pairs:
        out.append(member)
        out.append(float(score))
    return out


def _rank_bounds(start: int, stop: int, length: int) -> tuple[int, int] | None:
    """Redis's rank normalisation: negative from the end, clamped; None for an empty range."""
    if start < 0:
        start += length
    if stop < 0:
        stop += length
    start = max(start, 0)
    if start > stop or start >= length:
        return None
    return start, min(stop, length - 1)


def _store(client: Client, dst: bytes, zset: ZSet, event: bytes) -> int:
    keyspace = client.server.keyspace
    if zset:
        keyspace.set(client.db, dst, zset)
        keyspace.dirty += 1
        keyspace.notify(client.db, events.ZSET, event, dst)
    elif keyspace.lookup(client.db, dst) is not None:
        keyspace.delete(client.db, dst)
        keyspace.dirty += 1
        keyspace.notify(client.db, events.GENERIC, b"del", dst)
    return len(zset)


# -- ZADD, ZINCRBY, ZREM -----------------------------------------------------------------------------------


def _zadd_one(client: Client, argv: list[bytes]) -> int:
    """``ZADD key score member``, no options: the common form, without the option flags' tests."""
    score = parse_score(argv[2])
    member = argv[3]
    keyspace = client.server.keyspace
    key = argv[1]
    zset = get_typed(client, key, ZSet, False)
    if zset is None:
        zset = ZSet()
        keyspace.set(client.db, key, zset)
    current = zset.scores.get(member)
    if current is None:
        zset.insert(member, score)
        added = 1
    elif score != current:
        zset.move(member, current, score)
        added = 0
    else:
        return 0
    keyspace.touch(client.db, key)
    keyspace.dirty += 1
    if keyspace.notify_flags & events.ZSET:  # Keyspace.notify's test, without its call
        keyspace.on_event(client.db.id, b"zadd", key)
    return added


def _zadd(client: Client, argv: list[bytes], incr_only: bool = False) -> Any:
    nx = xx = gt = lt = ch = False
    # ZINCRBY is ZADD INCR in Redis, options parsed as well: ZINCRBY key NX member is a syntax error, not a score's.
    incr = incr_only
    i = 2
    if argv[2][:1] not in _NOT_AN_OPTION:  # options are words; a score starts with a digit, sign or dot
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"nx":
                nx = True
            elif opt == b"xx":
                xx = True
            elif opt == b"ch":
                ch = True
            elif opt == b"incr":
                incr = True
            elif opt == b"gt":
                gt = True
            elif opt == b"lt":
                lt = True
            else:
                break
            i += 1
    elements = len(argv) - i
    if elements % 2 or not elements:
        raise CommandError(errors.SYNTAX)
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    if elements == 2:  # one pair, the common form: no comprehension (a function call of its own)
        pairs = [(parse_score(argv[i]), argv[i + 1])]
    else:
        pairs = [(parse_score(argv[j]), argv[j + 1]) for j in range(i, len(argv), 2)]
    keyspace = client.server.keyspace
    key = argv[1]
    zset = get_typed(client, key, ZSet, False)  # (not _zset: a frame less)
    if zset is None:
        if xx:
            return None if incr else 0
        zset = ZSet()
        keyspace.set(client.db, key, zset)
    added = updated = processed = 0
    score = 0.0
    try:
        for score, member in pairs:
            current = zset.scores.get(member)
            if current is None:
                if xx:
                    continue
                zset.insert(member, score)
                added += 1
                processed += 1
                continue
            if nx:
                continue
            if incr:
                score += current
                if math.isnan(score):
                    raise CommandError(NAN_SCORE)
            if (lt and score >= current) or (gt and score <= current):
                continue
            processed += 1
            if score != current:
                zset.move(member, current, score)
                updated += 1
    finally:
        if added or updated:
            keyspace.touch(client.db, key)
            keyspace.dirty += added + updated
            keyspace.notify(client.db, events.ZSET, b"zincr" if incr else b"zadd", key)
    if incr:
        return score if processed else None
    return added + updated if ch else added


@command(
    "zadd",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    "sortedset",
    "Add one or more members to a sorted set, or update its score if it already exists",
)
def cmd_zadd(client: Client, argv: list[bytes]) -> Any:
    if len(argv) == 4 and argv[2][:1] in _NOT_AN_OPTION:
        return _zadd_one(client, argv)
    return _zadd(client, argv)


@command(
    "zincrby",
    4,
    "write denyoom fast",
    (1, 1, 1),
    "sortedset",
    "Increment the score of a member in a sorted set",
)
def cmd_zincrby(client: Client, argv: list[bytes]) -> Any:
    return _zadd(client, argv, incr_only=True)


@command("zrem", -3, "write fast", (1, 1, 1), "sortedset", "Remove one or more members from a sorted set")
def cmd_zrem(client: Client, argv: list[bytes]) -> Any:
    zset = _zset(client, argv[1])
    if zset is None:
        return 0
    removed = sum(1 for member in argv[2:] if zset.remove(member))
    if removed:
        _changed(client, client.db, argv[1], zset, b"zrem")
        client.server.keyspace.dirty += removed
    return removed


# -- point reads -------------------------------------------------------------------------------------------


@command(
    "zscore",
    3,
    "readonly fast",
    (1, 1, 1),
    "sortedset",
    "Get the score associated with the given member in a sorted set",
)
def cmd_zscore(client: Client, argv: list[bytes]) -> Any:
    zset = _zset(client, argv[1], read=True)
    if zset is None:
        return None
    score = zset.scores.get(argv[2])
    return None if score is None else float(score)


@command(
    "zmscore",
    -3,
    "readonly fast",
    (1, 1, 1),
    "sortedset",
    "Get the score associated with the given members in a sorted set",
)
def cmd_zmscore(client: Client, argv: list[bytes]) -> Any:
    zset = _zset(client, argv[1], read=True)
    out: list[Any] = []
    for member in argv[2:]:
        score = None if zset is None else zset.scores.get(member)
        out.append(None if score is None else float(score))
    return out


@command("zcard", 2, "readonly fast", (1, 1, 1), "sortedset", "Get the number of members in a sorted set")
def cmd_zcard(client: Client, argv: list[bytes]) -> Any:
    zset = _zset(client, argv[1], read=True)
    return 0 if zset is None else len(zset)


def _rank(client: Client, argv: list[bytes], reverse: bool) -> Any:
    zset = _zset(client, argv[1], read=True)
    if zset is None:
        return None
    rank = zset.rank(argv[2])
    if rank is None:
        return None
    return len(zset) - 1 - rank if reverse else rank


@command(
    "zrank", 3, "readonly fast", (1, 1, 1), "sortedset", "Determine the index of a member in a sorted set"
)
def cmd_zrank(client: Client, argv: list[bytes]) -> Any:
    return _rank(client, argv, reverse=False)


@command(
    "zrevrank",
    3,
    "readonly fast",
    (1, 1, 1),
    "sortedset",
    "Determine the index of a member in a sorted set, with scores ordered from high to low",
)
def cmd_zrevrank(client: Client, argv: list[bytes]) -> Any:
    return _rank(client, argv, reverse=True)


@command(
    "zcount",
    4,
    "readonly fast",
    (1, 1, 1),
    "sortedset",
    "Count the members in a sorted set with scores within the given values",
)
def cmd_zcount(client: Client, argv: list[bytes]) -> Any:
    low, low_ex = _parse_bound(argv[2])
    high, high_ex = _parse_bound(argv[3])
    zset = _zset(client, argv[1], read=True)
    if zset is None:
        return 0
    return max(zset.score_stop(high, high_ex) - zset.score_start(low, low_ex), 0)


@command(
    "zlexcount",
    4,
    "readonly fast",
    (1, 1, 1),
    "sortedset",
    "Count the number of members in a sorted set between a given lexicographical range",
)
def cmd_zlexcount(client: Client, argv: list[bytes]) -> Any:
    low = _parse_lex(argv[2])
    high = _parse_lex(argv[3])
    zset = _zset(client, argv[1], read=True)
    if zset is None:
        return 0
    return max(zset.lex_stop(high) - zset.lex_start(low), 0)


# -- random picks and scans --------------------------------------------------------------------------------


@command(
    "zrandmember",
    -2,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Get one or multiple random elements from a sorted set",
)
def cmd_zrandmember(client: Client, argv: list[bytes]) -> Any:
    count, with_scores = parse_random_count(argv, b"withscores")
    zset = _zset(client, argv[1], read=True)
    if count is None:
        if zset is None:
            return None
        return zset.pair_at(random.randrange(len(zset)))[1]
    if zset is None or count == 0:
        return []
    length = len(zset)
    pair_at = zset.pair_at
    if count >= length:
        pairs = zset.slice(0, length)
    elif count > 0:
        pairs = [pair_at(i) for i in random.sample(range(length), count)]
    else:
        pairs = [pair_at(random.randrange(length)) for _ in range(-count)]
    return _emit(pairs, with_scores, client.resp3)


@command(
    "zscan",
    -3,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Incrementally iterate sorted sets elements and associated scores",
)
def cmd_zscan(client: Client, argv: list[bytes]) -> Any:
    zset = _zset(client, argv[1], read=True)

    def emit(member: bytes, out: list[bytes]) -> None:
        assert zset is not None
        out.append(member)
        out.append(format_double(float(zset.scores[member])))

    return scan_members(
        argv,
        zset,
        lambda: zset.members() if zset is not None else [],
        lambda member: zset is not None and member in zset.scores,
        emit,
        config=client.server.config,
    )
