"""Sorted-set range commands: ZRANGE (BYSCORE / BYLEX / REV / LIMIT), ZRANGESTORE, the older ZRANGEBYSCORE /
ZREVRANGE* forms, and removals by range (ZREMRANGEBYRANK / BYSCORE / BYLEX). Bounds are parsed by zsets.py and
resolved by bisection on ``ZSet.ordered``'s ordering keys, so a range costs O(log n + m).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.zsets import (
    NOT_FLOAT_RANGE,
    _changed,
    _emit,
    _parse_bound,
    _parse_lex,
    _rank_bounds,
    _store,
    _zset,
)
from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

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
                    pairs = zset.slice(length - 1 - stop, length - start, reverse=True)
                else:
                    pairs = zset.slice(start, stop + 1)
        elif offset >= 0:
            lo, hi = _range_indices(zset, kind, low, high)
            if reverse:
                top = hi - offset
                bottom = lo if limit < 0 else max(lo, top - limit)
                pairs = zset.slice(bottom, top, reverse=True)
            else:
                first = lo + offset
                last = hi if limit < 0 else min(hi, first + limit)
                pairs = zset.slice(first, last)
    if store is not None:
        return _store(client, store, ZSet((member, score) for score, member in pairs), b"zrangestore")
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
        _changed(client, client.db, argv[1], zset, b"zremrangeby" + kind.encode())
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
