"""Sorted-set commands: ZADD and scores, rank/score/lex ranges, removals by range, pops (and the blocking
BZPOPMIN/BZPOPMAX/BZMPOP), algebra (ZUNION/ZINTER/ZDIFF and their STORE forms, ZINTERCARD), ZRANDMEMBER, ZSCAN.

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
from actors.commands._util import get_typed, int_bytes, parse_int, parse_intercard_limit
from actors.commands.hashes import parse_random_count, scan_members
from actors.commands.lists import parse_mpop
from actors.data.types import LexBound, ZSet
from actors.server.blocking import can_block, parse_timeout_ms, registry
from actors.server.server import BLOCKED
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import NULL_ARRAY, format_double

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


def _changed(client: Client, db: Database, key: bytes, zset: ZSet) -> None:
    keyspace = client.server.keyspace
    if zset:
        keyspace.touch(db, key)
    else:
        keyspace.delete(db, key)


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


# -- ZADD, ZINCRBY, ZREM -----------------------------------------------------------------------------------


def _zadd(client: Client, argv: list[bytes], incr_only: bool = False) -> Any:
    nx = xx = gt = lt = ch = incr = False
    i = 2
    if incr_only:
        incr = True
    elif argv[2][:1] not in _NOT_AN_OPTION:  # options are words; a score starts with a digit, sign or dot
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
    pairs = [(parse_score(argv[j]), argv[j + 1]) for j in range(i, len(argv), 2)]
    keyspace = client.server.keyspace
    key = argv[1]
    zset = _zset(client, key)
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
                zset.add(member, score)
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
                zset.add(member, score)
                updated += 1
    finally:
        if added or updated:
            keyspace.touch(client.db, key)
            keyspace.dirty += added + updated
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
        _changed(client, client.db, argv[1], zset)
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


# -- ranges ------------------------------------------------------------------------------------------------

_RANK, _SCORE, _LEX = "rank", "score", "lex"


def _range_indices(zset: ZSet, kind: str, low: Any, high: Any) -> tuple[int, int]:
    """The ascending index interval [start, stop) of a score or lex range."""
    if kind == _SCORE:
        return zset.score_start(*low), zset.score_stop(*high)
    return zset.lex_start(low), zset.lex_stop(high)


def _zrange(
    client: Client,
    argv: list[bytes],
    key_index: int,
    kind: str | None,
    reverse: bool | None,
    store: bytes | None = None,
) -> Any:
    """Redis's zrangeGenericCommand: ZRANGE and its older forms, and ZRANGESTORE (``store`` = destination).

    ``kind``/``reverse`` are fixed by the older commands (ZRANGEBYSCORE, ZREVRANGE, ...); None lets the
    BYSCORE/BYLEX/REV options of ZRANGE and ZRANGESTORE choose.
    """
    key = argv[key_index]
    min_raw, max_raw = argv[key_index + 1], argv[key_index + 2]
    with_scores = False
    offset, limit = 0, -1
    i = key_index + 3
    while i < len(argv):
        opt = argv[i].lower()
        left = len(argv) - i - 1
        if store is None and opt == b"withscores":
            with_scores = True
        elif opt == b"limit" and left >= 2:
            offset = parse_int(argv[i + 1])
            limit = parse_int(argv[i + 2])
            i += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif kind is None and opt == b"bylex":
            kind = _LEX
        elif kind is None and opt == b"byscore":
            kind = _SCORE
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    reverse = bool(reverse)
    kind = kind or _RANK
    if limit != -1 and kind == _RANK:
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if with_scores and kind == _LEX:
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    if reverse and kind != _RANK:
        min_raw, max_raw = max_raw, min_raw  # given as max, min
    low: Any
    high: Any
    if kind == _RANK:
        low, high = parse_int(min_raw), parse_int(max_raw)
    elif kind == _SCORE:
        try:
            low, high = _parse_bound(min_raw), _parse_bound(max_raw)
        except CommandError:
            raise CommandError(NOT_FLOAT_RANGE) from None
    else:
        low, high = _parse_lex(min_raw), _parse_lex(max_raw)
    zset = _zset(client, key, read=True)
    pairs: list[tuple[float, bytes]] = []
    if zset is not None:
        length = len(zset)
        if kind == _RANK:
            bounds = _rank_bounds(low, high, length)
            if bounds is not None:
                start, stop = bounds
                if reverse:
                    pairs = list(zset.slice(length - 1 - stop, length - start, reverse=True))
                else:
                    pairs = list(zset.slice(start, stop + 1))
        elif offset >= 0:
            lo, hi = _range_indices(zset, kind, low, high)
            if reverse:
                top = hi - offset
                bottom = lo if limit < 0 else max(lo, top - limit)
                pairs = list(zset.slice(bottom, top, reverse=True))
            else:
                first = lo + offset
                last = hi if limit < 0 else min(hi, first + limit)
                pairs = list(zset.slice(first, last))
    if store is not None:
        return _store(client, store, ZSet((member, score) for score, member in pairs))
    return _emit(pairs, with_scores, client.resp3)


@command("zrange", -4, "readonly", (1, 1, 1), "sortedset", "Return a range of members in a sorted set")
def cmd_zrange(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, None, None)


@command(
    "zrangestore",
    -5,
    "write denyoom",
    (1, 2, 1),
    "sortedset",
    "Store a range of members from sorted set into another key",
)
def cmd_zrangestore(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 2, None, None, store=argv[1])


@command(
    "zrevrange",
    -4,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Return a range of members in a sorted set, by index, with scores ordered from high to low",
)
def cmd_zrevrange(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, _RANK, True)


@command(
    "zrangebyscore",
    -4,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Return a range of members in a sorted set, by score",
)
def cmd_zrangebyscore(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, _SCORE, False)


@command(
    "zrevrangebyscore",
    -4,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Return a range of members in a sorted set, by score, with scores ordered from high to low",
)
def cmd_zrevrangebyscore(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, _SCORE, True)


@command(
    "zrangebylex",
    -4,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Return a range of members in a sorted set, by lexicographical range",
)
def cmd_zrangebylex(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, _LEX, False)


@command(
    "zrevrangebylex",
    -4,
    "readonly",
    (1, 1, 1),
    "sortedset",
    "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings",
)
def cmd_zrevrangebylex(client: Client, argv: list[bytes]) -> Any:
    return _zrange(client, argv, 1, _LEX, True)


# -- removals by range -------------------------------------------------------------------------------------


def _zremrange(client: Client, argv: list[bytes], kind: str) -> Any:
    low: Any
    high: Any
    if kind == _RANK:
        low, high = parse_int(argv[2]), parse_int(argv[3])
    elif kind == _SCORE:
        low, high = _parse_bound(argv[2]), _parse_bound(argv[3])
    else:
        low, high = _parse_lex(argv[2]), _parse_lex(argv[3])
    zset = _zset(client, argv[1])
    if zset is None:
        return 0
    if kind == _RANK:
        bounds = _rank_bounds(low, high, len(zset))
        if bounds is None:
            return 0
        start, stop = bounds[0], bounds[1] + 1
    else:
        start, stop = _range_indices(zset, kind, low, high)
    removed = zset.remove_slice(start, stop)
    if removed:
        _changed(client, client.db, argv[1], zset)
        client.server.keyspace.dirty += removed
    return removed


@command(
    "zremrangebyrank",
    4,
    "write",
    (1, 1, 1),
    "sortedset",
    "Remove all members in a sorted set within the given indexes",
)
def cmd_zremrangebyrank(client: Client, argv: list[bytes]) -> Any:
    return _zremrange(client, argv, _RANK)


@command(
    "zremrangebyscore",
    4,
    "write",
    (1, 1, 1),
    "sortedset",
    "Remove all members in a sorted set within the given scores",
)
def cmd_zremrangebyscore(client: Client, argv: list[bytes]) -> Any:
    return _zremrange(client, argv, _SCORE)


@command(
    "zremrangebylex",
    4,
    "write",
    (1, 1, 1),
    "sortedset",
    "Remove all members in a sorted set between the given lexicographical range",
)
def cmd_zremrangebylex(client: Client, argv: list[bytes]) -> Any:
    return _zremrange(client, argv, _LEX)


# -- pops --------------------------------------------------------------------------------------------------


def _pop_pairs(popped: list[tuple[bytes, float]], nested: bool) -> list[Any]:
    if nested:
        return [[member, float(score)] for member, score in popped]
    out: list[Any] = []
    for member, score in popped:
        out.append(member)
        out.append(float(score))
    return out


def _zpop(client: Client, argv: list[bytes], highest: bool) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    count = 1
    if len(argv) == 3:
        count = parse_int(argv[2], POSITIVE)
        if count < 0:
            raise CommandError(POSITIVE)
    zset = _zset(client, argv[1])
    if zset is None or count == 0:
        return []
    popped = zset.pop(count, highest)
    _changed(client, client.db, argv[1], zset)
    client.server.keyspace.dirty += 1
    # With an explicit count RESP3 nests [member, score] pairs; a plain pop is one flat pair.
    return _pop_pairs(popped, nested=client.resp3 and len(argv) == 3)


@command(
    "zpopmin",
    -2,
    "write fast",
    (1, 1, 1),
    "sortedset",
    "Remove and return members with the lowest scores in a sorted set",
)
def cmd_zpopmin(client: Client, argv: list[bytes]) -> Any:
    return _zpop(client, argv, highest=False)


@command(
    "zpopmax",
    -2,
    "write fast",
    (1, 1, 1),
    "sortedset",
    "Remove and return members with the highest scores in a sorted set",
)
def cmd_zpopmax(client: Client, argv: list[bytes]) -> Any:
    return _zpop(client, argv, highest=True)


def _pop_name(highest: bool) -> bytes:
    return b"ZPOPMAX" if highest else b"ZPOPMIN"


def _zmpop_now(client: Client, keys: list[bytes], highest: bool, count: int) -> Any:
    for key in keys:
        zset = _zset(client, key)
        if zset is None:
            continue
        popped = zset.pop(count, highest)
        _changed(client, client.db, key, zset)
        client.server.keyspace.dirty += 1
        client.propagate_as = [[_pop_name(highest), key, int_bytes(len(popped))]]
        return [key, _pop_pairs(popped, nested=True)]
    return None


@command(
    "zmpop",
    -4,
    "write movablekeys",
    (0, 0, 0),
    "sortedset",
    "Remove and return members with scores in a sorted set",
)
def cmd_zmpop(client: Client, argv: list[bytes]) -> Any:
    keys, lowest, count = parse_mpop(argv, 1, (b"min", b"max"))
    reply = _zmpop_now(client, keys, not lowest, count)
    return NULL_ARRAY if reply is None else reply


def _serve_bzpop(highest: bool) -> Any:
    def serve(client: Client, db: Database, key: bytes, zset: ZSet) -> Any:
        server = client.server
        ((member, score),) = zset.pop(1, highest)
        _changed(client, db, key, zset)
        server.keyspace.dirty += 1
        server.propagate(db.id, [_pop_name(highest), key])
        return [key, member, float(score)]

    return serve


def _serve_bzmpop(highest: bool, count: int) -> Any:
    def serve(client: Client, db: Database, key: bytes, zset: ZSet) -> Any:
        server = client.server
        popped = zset.pop(count, highest)
        _changed(client, db, key, zset)
        server.keyspace.dirty += 1
        server.propagate(db.id, [_pop_name(highest), key, int_bytes(len(popped))])
        return [key, _pop_pairs(popped, nested=True)]

    return serve


def _bzpop(client: Client, argv: list[bytes], highest: bool) -> Any:
    keys = argv[1:-1]
    timeout_ms = parse_timeout_ms(argv[-1])
    for key in keys:
        zset = _zset(client, key)
        if zset is None:
            continue
        ((member, score),) = zset.pop(1, highest)
        _changed(client, client.db, key, zset)
        client.server.keyspace.dirty += 1
        client.propagate_as = [[_pop_name(highest), key]]
        return [key, member, float(score)]
    if not can_block(client):
        return NULL_ARRAY
    registry(client.server).block(client, keys, ZSet, timeout_ms, NULL_ARRAY, _serve_bzpop(highest))
    return BLOCKED


@command(
    "bzpopmin",
    -3,
    "write noscript fast blocking",
    (1, -2, 1),
    "sortedset",
    "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
)
def cmd_bzpopmin(client: Client, argv: list[bytes]) -> Any:
    return _bzpop(client, argv, highest=False)


@command(
    "bzpopmax",
    -3,
    "write noscript fast blocking",
    (1, -2, 1),
    "sortedset",
    "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
)
def cmd_bzpopmax(client: Client, argv: list[bytes]) -> Any:
    return _bzpop(client, argv, highest=True)


@command(
    "bzmpop",
    -5,
    "write blocking movablekeys",
    (0, 0, 0),
    "sortedset",
    "Remove and return members with scores in a sorted set or block until one is available",
)
def cmd_bzmpop(client: Client, argv: list[bytes]) -> Any:
    keys, lowest, count = parse_mpop(argv, 2, (b"min", b"max"))
    timeout_ms = parse_timeout_ms(argv[1])
    reply = _zmpop_now(client, keys, not lowest, count)
    if reply is not None:
        return reply
    if not can_block(client):
        return NULL_ARRAY
    registry(client.server).block(
        client, keys, ZSet, timeout_ms, NULL_ARRAY, _serve_bzmpop(not lowest, count)
    )
    return BLOCKED


# -- algebra -----------------------------------------------------------------------------------------------

_SUM, _MIN, _MAX = b"sum", b"min", b"max"


def _aggregate(current: float, value: float, how: bytes) -> float:
    if how == _SUM:
        total = current + value
        return 0.0 if math.isnan(total) else total  # inf + -inf: Redis's convention is 0
    if how == _MIN:
        return value if value < current else current
    return value if value > current else current


def _source_scores(value: Any) -> dict[bytes, float]:
    """A ZUNION input's member -> score: a sorted set's scores, or a plain set's members at score 1."""
    if value is None:
        return {}
    if type(value) is ZSet:
        return value.scores
    return dict.fromkeys(value, 1.0)


def _zsetop(client: Client, argv: list[bytes], numkeys_index: int, op: str, store: bytes | None) -> Any:
    """Redis's zunionInterDiffGenericCommand: ZUNION/ZINTER/ZDIFF and their STORE forms."""
    name = argv[0].decode("utf-8", "replace").lower()
    numkeys = parse_int(argv[numkeys_index])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(argv) - numkeys_index - 1:
        raise CommandError(errors.SYNTAX)
    keyspace = client.server.keyspace
    keys = argv[numkeys_index + 1 : numkeys_index + 1 + numkeys]
    sources: list[Any] = []
    for key in keys:
        value = keyspace.lookup(client.db, key) if store is not None else keyspace.lookup_read(client.db, key)
        if value is not None and type(value) is not ZSet and type(value) is not set:
            raise WrongTypeError()
        sources.append(value)
    weights = [1.0] * numkeys
    how = _SUM
    with_scores = False
    i = numkeys_index + 1 + numkeys
    while i < len(argv):
        opt = argv[i].lower()
        remaining = len(argv) - i
        if op != "diff" and remaining >= numkeys + 1 and opt == b"weights":
            weights = [
                parse_score(raw, "ERR weight value is not a float") for raw in argv[i + 1 : i + 1 + numkeys]
            ]
            i += 1 + numkeys
        elif op != "diff" and remaining >= 2 and opt == b"aggregate":
            how = argv[i + 1].lower()
            if how not in (_SUM, _MIN, _MAX):
                raise CommandError(errors.SYNTAX)
            i += 2
        elif store is None and opt == b"withscores":
            with_scores = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    inputs = [(_source_scores(value), weight) for value, weight in zip(sources, weights, strict=True)]
    result: dict[bytes, float] = {}
    if op == "union":
        for scores, weight in sorted(inputs, key=lambda item: len(item[0])):
            for member, score in scores.items():
                weighted = score * weight
                if math.isnan(weighted):
                    weighted = 0.0
                current = result.get(member)
                result[member] = weighted if current is None else _aggregate(current, weighted, how)
    elif op == "inter":
        ordered = sorted(inputs, key=lambda item: len(item[0]))
        first, first_weight = ordered[0]
        for member, score in first.items():
            total = score * first_weight
            if math.isnan(total):
                total = 0.0
            for scores, weight in ordered[1:]:
                other = scores.get(member)
                if other is None:
                    break
                total = _aggregate(total, other * weight, how)
            else:
                result[member] = total
    else:
        first = inputs[0][0]
        others = [scores for scores, _ in inputs[1:] if scores]
        for member, score in first.items():
            if not any(member in scores for scores in others):
                result[member] = score
    zset = ZSet(result.items())
    if store is not None:
        return _store(client, store, zset)
    return _emit(zset.ordered, with_scores, client.resp3)


def _store(client: Client, dst: bytes, zset: ZSet) -> int:
    keyspace = client.server.keyspace
    if zset:
        keyspace.set(client.db, dst, zset)
        keyspace.dirty += 1
    elif keyspace.lookup(client.db, dst) is not None:
        keyspace.delete(client.db, dst)
        keyspace.dirty += 1
    return len(zset)


@command(
    "zunionstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    "sortedset",
    "Add multiple sorted sets and store the resulting sorted set in a new key",
)
def cmd_zunionstore(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 2, "union", argv[1])


@command(
    "zinterstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    "sortedset",
    "Intersect multiple sorted sets and store the resulting sorted set in a new key",
)
def cmd_zinterstore(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 2, "inter", argv[1])


@command(
    "zdiffstore",
    -4,
    "write denyoom movablekeys",
    (1, 1, 1),
    "sortedset",
    "Subtract multiple sorted sets and store the resulting sorted set in a new key",
)
def cmd_zdiffstore(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 2, "diff", argv[1])


@command("zunion", -3, "readonly movablekeys", (0, 0, 0), "sortedset", "Add multiple sorted sets")
def cmd_zunion(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 1, "union", None)


@command("zinter", -3, "readonly movablekeys", (0, 0, 0), "sortedset", "Intersect multiple sorted sets")
def cmd_zinter(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 1, "inter", None)


@command("zdiff", -3, "readonly movablekeys", (0, 0, 0), "sortedset", "Subtract multiple sorted sets")
def cmd_zdiff(client: Client, argv: list[bytes]) -> Any:
    return _zsetop(client, argv, 1, "diff", None)


@command(
    "zintercard",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    "sortedset",
    "Intersect multiple sorted sets and return the cardinality of the result",
)
def cmd_zintercard(client: Client, argv: list[bytes]) -> Any:
    numkeys = parse_int(argv[1])
    if numkeys < 1:
        raise CommandError("ERR at least 1 input key is needed for 'zintercard' command")
    if numkeys > len(argv) - 2:
        raise CommandError(errors.SYNTAX)
    limit = parse_intercard_limit(argv, 2 + numkeys)
    keyspace = client.server.keyspace
    inputs: list[dict[bytes, float]] = []
    for key in argv[2 : 2 + numkeys]:
        value = keyspace.lookup_read(client.db, key)
        if value is not None and type(value) is not ZSet and type(value) is not set:
            raise WrongTypeError()
        inputs.append(_source_scores(value))
    inputs.sort(key=len)
    found = 0
    for member in inputs[0]:
        if all(member in other for other in inputs[1:]):
            found += 1
            if limit and found >= limit:
                break
    return found


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
        return zset.ordered[random.randrange(len(zset))][1]
    if zset is None or count == 0:
        return []
    length = len(zset)
    ordered = zset.ordered
    if count >= length:
        pairs = list(ordered)
    elif count > 0:
        pairs = [ordered[i] for i in random.sample(range(length), count)]
    else:
        pairs = [ordered[random.randrange(length)] for _ in range(-count)]
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
        lambda: [member for _, member in zset.ordered] if zset is not None else [],
        lambda member: zset is not None and member in zset.scores,
        emit,
    )
