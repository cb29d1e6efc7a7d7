"""Sorted-set commands over several keys or that pop: ZPOPMIN / ZPOPMAX / ZMPOP and the blocking BZPOPMIN /
BZPOPMAX / BZMPOP, and the algebra (ZUNION / ZINTER / ZDIFF, their STORE forms, ZINTERCARD).

ZMPOP and a blocking pop served at once are propagated as ``ZPOPMIN/ZPOPMAX key [count]``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED, command
from actors.commands._util import get_typed, int_bytes, parse_int, parse_intercard_limit
from actors.commands.lists import parse_mpop
from actors.commands.zsets import (
    POSITIVE,
    _changed,
    _emit,
    _store,
    _zset,
    parse_score,
    pop_event,
)
from actors.data import events
from actors.data.types import SCORE_KEY_BYTES, ZSet
from actors.server.blocking import can_block, parse_timeout_ms, registry
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import NULL_ARRAY

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

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
    if len(argv) == 2:
        # One pair, the common form: no count to parse, and a flat reply in both protocols.
        zset = get_typed(client, argv[1], ZSet, False)  # (not _zset: a frame less)
        if zset is None:
            return []
        # ZSet.pop's one-pair case inline: no frame, no (member, score) tuple (with the ordering key no
        # longer a tuple, popping one frees none for the reply's to reuse), and ``scores[m]`` + ``del`` rather
        # than the dearer method call ``scores.pop(m)``.
        member = zset.ordered.pop(-1 if highest else 0)[SCORE_KEY_BYTES:]
        scores = zset.scores
        score = scores[member]
        del scores[member]
        keyspace = client.server.keyspace
        if scores:  # _changed's common case, without its calls
            if keyspace.notify_flags & events.ZSET:
                keyspace.on_event(client.db.id, b"zpopmax" if highest else b"zpopmin", argv[1])
            keyspace.touch(client.db, argv[1])
        else:
            _changed(client, client.db, argv[1], zset, pop_event(highest))
        keyspace.dirty += 1
        return [member, float(score)]
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
    _changed(client, client.db, argv[1], zset, pop_event(highest))
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
        _changed(client, client.db, key, zset, pop_event(highest))
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
        _changed(client, db, key, zset, pop_event(highest))
        server.keyspace.dirty += 1
        server.propagate(db.id, [_pop_name(highest), key])
        return [key, member, float(score)]

    return serve


def _serve_bzmpop(highest: bool, count: int) -> Any:
    def serve(client: Client, db: Database, key: bytes, zset: ZSet) -> Any:
        server = client.server
        popped = zset.pop(count, highest)
        _changed(client, db, key, zset, pop_event(highest))
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
        _changed(client, client.db, key, zset, pop_event(highest))
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
        value = keyspace.lookup_read(
            client.db, key
        )  # a read even for the STORE forms: Redis counts it (keymiss too)
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
        return _store(client, store, zset, b"z%sstore" % op.encode())
    return _emit(zset.slice(0, len(zset)), with_scores, client.resp3)


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
    keyspace = client.server.keyspace
    inputs: list[dict[bytes, float]] = []
    for key in argv[2 : 2 + numkeys]:
        value = keyspace.lookup_read(client.db, key)
        if value is not None and type(value) is not ZSet and type(value) is not set:
            raise WrongTypeError()
        inputs.append(_source_scores(value))
    # After the keys' types, as Redis's zunionInterDiffGenericCommand (SINTERCARD reads its LIMIT first).
    limit = parse_intercard_limit(argv, 2 + numkeys)
    inputs.sort(key=len)
    found = 0
    for member in inputs[0]:
        if all(member in other for other in inputs[1:]):
            found += 1
            if limit and found >= limit:
                break
    return found
