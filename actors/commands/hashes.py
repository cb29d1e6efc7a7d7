"""Hash commands (HSET, HGET, HINCRBY, HRANDFIELD, HSCAN, ...) and the collection cursor shared by H/S/ZSCAN.

A hash is a plain ``dict`` of bytes -> bytes. A hash whose last field is deleted is deleted too. HINCRBYFLOAT
is propagated as ``HSET key field <new value>`` so replicas and the AOF store the very same bytes.

Collection scans (``scan_members``): a collection Redis would keep in a compact encoding (listpack, intset)
is returned whole with cursor 0, as Redis does. A bigger one is walked over a snapshot of its members taken
when the walk starts (cursor 0), so every member present for the whole walk is returned at least once
however the collection changes meanwhile; the cursor is ``snapshot id << 32 | position``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import (
    LLONG_MAX,
    LLONG_MIN,
    get_typed,
    glob_match,
    parse_cursor,
    parse_int,
    parse_scan_args,
)
from actors.commands.keys import object_encoding
from actors.data import events
from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.config import Config
    from actors.server.client import Client

RANGE_LONG = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
OUT_OF_RANGE = "ERR value is out of range"
# Collection scan snapshots kept at once; an older cursor falls back to a fresh snapshot at its position.
SCAN_SNAPSHOTS_KEPT = 16


def _hash(client: Client, key: bytes, read: bool = False) -> dict[bytes, bytes] | None:
    return get_typed(client, key, dict, read)


# -- collection scans (HSCAN, SSCAN, ZSCAN) ----------------------------------------------------------------

# snapshot id -> (id() of the collection it was taken from, its members then).
_scan_snapshots: dict[int, tuple[int, list[Any]]] = {}
_next_snapshot_id = itertools.count(1)


def scan_members(
    argv: list[bytes],
    collection: Any,
    members_of: Callable[[], list[Any]],
    present: Callable[[Any], bool],
    emit: Callable[[Any, list[bytes]], None],
    config: Config | None = None,
) -> list[Any]:
    """HSCAN/SSCAN/ZSCAN ``key cursor [MATCH p] [COUNT n]``: the reply ``[next cursor, flat elements]``.

    ``collection`` may be None (a missing key). ``members_of()`` lists its members in reply order;
    ``present(member)`` says whether a snapshotted member still exists; ``emit(member, out)`` appends what the
    reply carries for it (the member, or the member and its value or score).
    """
    cursor = parse_cursor(argv[2])
    match, count, type_name = parse_scan_args(argv, 3)
    if type_name is not None:
        raise CommandError(errors.SYNTAX)
    out: list[bytes] = []
    if collection is None:
        return [b"0", out]
    members: Iterable[Any]
    if object_encoding(collection, config) in ("listpack", "intset"):
        members = members_of()
        next_cursor = 0
    else:
        snap_id, position = cursor >> 32, cursor & 0xFFFFFFFF
        found = _scan_snapshots.get(snap_id) if cursor else None
        if found is None or found[0] != id(collection):
            snap_id = next(_next_snapshot_id) % 0xFFFFFFFF + 1
            found = (id(collection), members_of())
            _scan_snapshots[snap_id] = found
            while len(_scan_snapshots) > SCAN_SNAPSHOTS_KEPT:
                del _scan_snapshots[next(iter(_scan_snapshots))]
            if cursor == 0:
                position = 0
        snapshot = found[1]
        end = min(position + count, len(snapshot))
        members = [m for m in snapshot[position:end] if present(m)]
        if end >= len(snapshot):
            _scan_snapshots.pop(snap_id, None)
            next_cursor = 0
        else:
            next_cursor = (snap_id << 32) | end
    for member in members:
        if match is None or glob_match(match, member):
            emit(member, out)
    return [b"%d" % next_cursor, out]


# -- writes ------------------------------------------------------------------------------------------------


def _hset_pairs(client: Client, argv: list[bytes], name: str) -> int:
    if len(argv) % 2:
        raise errors.wrong_arity(name)
    keyspace = client.server.keyspace
    key = argv[1]
    db = client.db
    if db.expires or db.meta is not None:
        fields = get_typed(client, key, dict, False)
    else:
        # get_typed's whole work with no TTL and no access tracking, without its call
        fields = db.data.get(key)
        if fields is not None and type(fields) is not dict:
            raise WrongTypeError()
    if fields is None:
        fields = {}
        keyspace.set(db, key, fields)
    added = 0
    for i in range(2, len(argv), 2):
        if argv[i] not in fields:
            added += 1
        fields[argv[i]] = argv[i + 1]
    if db.watched or db.meta is not None or keyspace.hooked:
        keyspace.touch(db, key)  # (its own tests: with none of them true it does nothing, and costs a call)
    keyspace.dirty += (len(argv) - 2) // 2
    if keyspace.notify_flags & events.HASH:  # Keyspace.notify's test, without its call
        keyspace.on_event(db.id, b"hset", key)
    return added


@command("hset", -4, "write denyoom fast", (1, 1, 1), "hash", "Set the string value of a hash field")
def cmd_hset(client: Client, argv: list[bytes]) -> Any:
    return _hset_pairs(client, argv, "hset")


@command("hmset", -4, "write denyoom fast", (1, 1, 1), "hash", "Set multiple hash fields to multiple values")
def cmd_hmset(client: Client, argv: list[bytes]) -> Any:
    _hset_pairs(client, argv, "hmset")
    return OK


@command(
    "hsetnx",
    4,
    "write denyoom fast",
    (1, 1, 1),
    "hash",
    "Set the value of a hash field, only if the field does not exist",
)
def cmd_hsetnx(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    fields = _hash(client, key)
    if fields is not None and argv[2] in fields:
        return 0
    if fields is None:
        fields = {}
        keyspace.set(client.db, key, fields)
    fields[argv[2]] = argv[3]
    keyspace.touch(client.db, key)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.HASH, b"hset", key)
    return 1


@command("hdel", -3, "write fast", (1, 1, 1), "hash", "Delete one or more hash fields")
def cmd_hdel(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    fields = _hash(client, key)
    if fields is None:
        return 0
    removed = 0
    for field in argv[2:]:
        if fields.pop(field, None) is not None:
            removed += 1
    if removed:
        keyspace.notify(client.db, events.HASH, b"hdel", key)
        if fields:
            keyspace.touch(client.db, key)
        else:
            keyspace.delete(client.db, key)
            keyspace.notify(client.db, events.GENERIC, b"del", key)
        keyspace.dirty += removed
    return removed


@command(
    "hincrby",
    4,
    "write denyoom fast",
    (1, 1, 1),
    "hash",
    "Increment the integer value of a hash field by the given number",
)
def cmd_hincrby(client: Client, argv: list[bytes]) -> Any:
    increment = parse_int(argv[3])
    keyspace = client.server.keyspace
    key = argv[1]
    fields = _hash(client, key)
    current = 0
    if fields is not None and argv[2] in fields:
        current = parse_int(fields[argv[2]], "ERR hash value is not an integer")
    result = current + increment
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise CommandError(errors.OVERFLOW)
    if fields is None:
        fields = {}
        keyspace.set(client.db, key, fields)
    # 0..9999: the shared integer strings (actors/data/integers.py), as INCR's.
    fields[argv[2]] = SHARED_INTEGER_BYTES[result] if 0 <= result < SHARED_INTEGERS else b"%d" % result
    keyspace.touch(client.db, key)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.HASH, b"hincrby", key)
    return result


# longdouble.hincr's error kinds: Redis's words for each.
_HINCRBYFLOAT_ERRORS = {
    "not-float": errors.NOT_FLOAT,
    "increment-nan-or-inf": "ERR value is NaN or Infinity",
    "hash-not-float": "ERR hash value is not a float",
    "nan-or-inf": "ERR increment would produce NaN or Infinity",
}


@command(
    "hincrbyfloat",
    4,
    "write denyoom fast",
    (1, 1, 1),
    "hash",
    "Increment the float value of a hash field by the given amount",
)
def cmd_hincrbyfloat(client: Client, argv: list[bytes]) -> Any:
    # In long double, as Redis (imported on first use: fractions imports decimal, which start-up does without),
    # and in Redis's order: the increment is checked before the key's type, the field's value after it.
    from actors.data import longdouble

    increment = longdouble.parse(argv[3])
    if increment is None or isinstance(increment, float):
        raise CommandError(
            errors.NOT_FLOAT if increment is None else _HINCRBYFLOAT_ERRORS["increment-nan-or-inf"]
        )
    keyspace = client.server.keyspace
    key = argv[1]
    fields = _hash(client, key)
    text = longdouble.hincr(fields.get(argv[2]) if fields is not None else None, argv[3])
    if isinstance(text, str):
        raise CommandError(_HINCRBYFLOAT_ERRORS[text])
    if fields is None:
        fields = {}
        keyspace.set(client.db, key, fields)
    fields[argv[2]] = text
    keyspace.touch(client.db, key)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.HASH, b"hincrbyfloat", key)
    client.propagate_as = [[b"HSET", key, argv[2], text]]
    return text


# -- reads -------------------------------------------------------------------------------------------------


@command("hget", 3, "readonly fast", (1, 1, 1), "hash", "Get the value of a hash field")
def cmd_hget(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    return None if fields is None else fields.get(argv[2])


@command("hmget", -3, "readonly fast", (1, 1, 1), "hash", "Get the values of all the given hash fields")
def cmd_hmget(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    if fields is None:
        return [None] * (len(argv) - 2)
    return [fields.get(field) for field in argv[2:]]


@command("hlen", 2, "readonly fast", (1, 1, 1), "hash", "Get the number of fields in a hash")
def cmd_hlen(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    return 0 if fields is None else len(fields)


@command("hstrlen", 3, "readonly fast", (1, 1, 1), "hash", "Get the length of the value of a hash field")
def cmd_hstrlen(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    if fields is None:
        return 0
    value = fields.get(argv[2])
    return 0 if value is None else len(value)


@command("hexists", 3, "readonly fast", (1, 1, 1), "hash", "Determine if a hash field exists")
def cmd_hexists(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    return 1 if fields is not None and argv[2] in fields else 0


@command("hgetall", 2, "readonly", (1, 1, 1), "hash", "Get all the fields and values in a hash")
def cmd_hgetall(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    # A copy: inside EXEC the reply is encoded after later commands of the transaction ran.
    return {} if fields is None else dict(fields)


@command("hkeys", 2, "readonly", (1, 1, 1), "hash", "Get all the fields in a hash")
def cmd_hkeys(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    return [] if fields is None else list(fields)


@command("hvals", 2, "readonly", (1, 1, 1), "hash", "Get all the values in a hash")
def cmd_hvals(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)
    return [] if fields is None else list(fields.values())


def parse_random_count(argv: list[bytes], option: bytes) -> tuple[int | None, bool]:
    """``[count [WITHVALUES|WITHSCORES]]`` of HRANDFIELD/ZRANDMEMBER: (count or None, with values?)."""
    if len(argv) == 2:
        return None, False
    count = parse_int(argv[2])
    if count == LLONG_MIN:
        raise CommandError(RANGE_LONG)
    with_values = False
    if len(argv) == 4:
        if argv[3].lower() != option:
            raise CommandError(errors.SYNTAX)
        with_values = True
        # Redis refuses a count whose reply would need more than LONG_MAX entries.
        if abs(count) > LLONG_MAX // 2:
            raise CommandError(OUT_OF_RANGE)
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    return count, with_values


def random_picks(population: list[Any], count: int) -> list[Any]:
    """Redis's random-with-count rule: count >= 0 distinct picks (all, if fewer); count < 0 -count with repeats."""
    if count >= 0:
        if count >= len(population):
            return list(population)
        return random.sample(population, count)
    return random.choices(population, k=-count)


@command("hrandfield", -2, "readonly", (1, 1, 1), "hash", "Get one or multiple random fields from a hash")
def cmd_hrandfield(client: Client, argv: list[bytes]) -> Any:
    count, with_values = parse_random_count(argv, b"withvalues")
    fields = _hash(client, argv[1], read=True)
    if count is None:
        if fields is None:
            return None
        return next(itertools.islice(iter(fields), random.randrange(len(fields)), None))
    if fields is None or count == 0:
        return []
    picks = random_picks(list(fields), count)
    if not with_values:
        return picks
    if client.resp3:
        return [[field, fields[field]] for field in picks]
    out: list[bytes] = []
    for field in picks:
        out.append(field)
        out.append(fields[field])
    return out


@command(
    "hscan", -3, "readonly", (1, 1, 1), "hash", "Incrementally iterate hash fields and associated values"
)
def cmd_hscan(client: Client, argv: list[bytes]) -> Any:
    fields = _hash(client, argv[1], read=True)

    def emit(field: bytes, out: list[bytes]) -> None:
        assert fields is not None
        out.append(field)
        out.append(fields[field])

    return scan_members(
        argv,
        fields,
        lambda: list(fields or ()),
        lambda field: fields is not None and field in fields,
        emit,
        config=client.server.config,
    )
