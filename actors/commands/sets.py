"""Set commands: SADD, SREM, membership, random picks (SPOP, SRANDMEMBER), algebra (SINTER, SUNION, SDIFF and
their STORE forms, SINTERCARD), SMOVE and SSCAN.

A set is a Python ``set`` of bytes; a set whose last member goes is deleted. Whole-set replies (SMEMBERS,
SINTER, SPOP with a count, ...) are RESP3 sets, as in Redis 7.0; SRANDMEMBER's is an array (it may repeat).

SPOP picks at random, so it is propagated as what it did: ``SREM key member...`` (in chunks of
SPOP_PROPAGATE_CHUNK members), or ``DEL key`` when it took the whole set, as Redis 7.0 does.
"""

from __future__ import annotations

import itertools
import random
import sys
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import LLONG_MIN, get_typed, parse_int, parse_intercard_limit
from actors.commands.hashes import RANGE_LONG, random_picks, scan_members
from actors.commands.keys import object_encoding
from actors.data import events
from actors.data.encodings import before_set_shrinks
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import ReplySet

if TYPE_CHECKING:
    from actors.server.client import Client

POSITIVE = "ERR value is out of range, must be positive"
# Redis propagates a multi-member SPOP as SREM commands of at most this many members (SPOP_MOVE_STRATEGY_MUL
# aside, it batches by 1024 so one replicated command stays small).
SPOP_PROPAGATE_CHUNK = 1024
# Up to this size a single random member is chosen uniformly (an O(n) walk); above it SPOP takes the set's
# next member in hash order, which Python randomises per process, so popping in a loop stays O(1) per pop.
UNIFORM_PICK_MAX = 1024
# A set's hash table never shrinks as members go (CPython resizes on growth only), and iterating it crosses
# every slot, empty or not: in a set that was once large, a uniform pick walks mostly empty slots (the last
# 1,024 SPOPs of a set that held 100,000 members cost ~1 ms each). Past this many bytes of table per member
# (16-byte slots: 8 slots per member; a set rebuilt at its size holds 2 to 4), SPOP rebuilds the table first,
# so the walk stays proportional to the members and the rebuilds cost O(1) per pop amortised (the next one
# comes after half the members went).
SPARSE_BYTES_PER_MEMBER = 128


def _set(client: Client, key: bytes, read: bool = False) -> set[bytes] | None:
    return get_typed(client, key, set, read)


def _random_member(members: set[bytes]) -> bytes:
    return next(itertools.islice(iter(members), random.randrange(len(members)), None))


def _compact_if_sparse(members: set[bytes]) -> None:
    """Rebuild ``members``' hash table at its size when it is mostly empty slots (see SPARSE_BYTES_PER_MEMBER).
    Same object, same members: only the table under them is replaced."""
    if sys.getsizeof(members) > SPARSE_BYTES_PER_MEMBER * len(members) + 1024:
        kept = members.copy()  # (a set copied from a set is sized for its members at once)
        members.clear()
        members.update(kept)


def _emptied_or_touched(client: Client, key: bytes, members: set[bytes], event: bytes) -> None:
    """After members went: report ``event``, then delete the key if the set is now empty (``del``)."""
    keyspace = client.server.keyspace
    keyspace.notify(client.db, events.SET, event, key)
    if members:
        keyspace.touch(client.db, key)
    else:
        keyspace.delete(client.db, key)
        keyspace.notify(client.db, events.GENERIC, b"del", key)


# -- writes ------------------------------------------------------------------------------------------------


@command("sadd", -3, "write denyoom fast", (1, 1, 1), "set", "Add one or more members to a set")
def cmd_sadd(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    members = get_typed(client, key, set, False)  # (not _set: a frame less)
    if members is None:
        members = set(argv[2:])
        keyspace.set(client.db, key, members)  # signals the new key
        keyspace.dirty += len(members)
        keyspace.notify(client.db, events.SET, b"sadd", key)
        return len(members)
    before = len(members)
    members.update(argv[2:])
    added = len(members) - before
    if added:
        keyspace.touch(client.db, key)
        keyspace.dirty += added
        if keyspace.notify_flags & events.SET:  # Keyspace.notify's test, without its call
            keyspace.on_event(client.db.id, b"sadd", key)
    return added


@command("srem", -3, "write fast", (1, 1, 1), "set", "Remove one or more members from a set")
def cmd_srem(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    members = _set(client, key)
    if members is None:
        return 0
    before = len(members)
    present = (member for member in argv[2:] if member in members)
    before_set_shrinks(members, before, present, client.server.config.values["set-max-intset-entries"])
    members.difference_update(argv[2:])
    removed = before - len(members)
    if removed:
        _emptied_or_touched(client, key, members, b"srem")
        keyspace.dirty += removed
    return removed


@command("smove", 4, "write fast", (1, 2, 1), "set", "Move a member from one set to another")
def cmd_smove(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = keyspace.lookup(db, src_key)
    dst = keyspace.lookup(db, dst_key)
    if src is None:
        return 0
    if type(src) is not set or (dst is not None and type(dst) is not set):
        raise WrongTypeError()
    if src is dst:
        return 1 if member in src else 0
    if member not in src:
        return 0
    before_set_shrinks(src, len(src), (member,), client.server.config.values["set-max-intset-entries"])
    src.discard(member)
    _emptied_or_touched(client, src_key, src, b"srem")
    if dst is None:
        dst = set()
        keyspace.set(db, dst_key, dst)
    keyspace.dirty += 1
    if member not in dst:
        # Only a real addition changes the destination: a WATCH of it survives a member already there.
        dst.add(member)
        keyspace.dirty += 1
        keyspace.touch(db, dst_key)
        keyspace.notify(db, events.SET, b"sadd", dst_key)
    return 1


@command(
    "spop",
    -2,
    "write fast",
    (1, 1, 1),
    "set",
    "Remove and return one or multiple random members from a set",
)
def cmd_spop(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    keyspace = client.server.keyspace
    key = argv[1]
    if len(argv) == 2:
        members = get_typed(client, key, set, False)  # (not _set: a frame less)
        if members is None:
            return None
        size = len(members)
        if size <= UNIFORM_PICK_MAX:
            _compact_if_sparse(members)
            member = _random_member(members)
        else:
            member = members.pop()
        # (the directive's value by its own name: Config.__getitem__'s call and name lookup cost ~500 instructions)
        before_set_shrinks(members, size, (member,), client.server.config.values["set-max-intset-entries"])
        members.discard(member)
        _emptied_or_touched(client, key, members, b"spop")
        keyspace.dirty += 1
        client.propagate_as = [[b"SREM", key, member]]
        return member
    count = parse_int(argv[2], POSITIVE)
    if count < 0:
        raise CommandError(POSITIVE)
    members = _set(client, key)
    if members is None or count == 0:
        return set()
    keyspace.notify(client.db, events.SET, b"spop", key)
    if count >= len(members):
        keyspace.delete(client.db, key)
        keyspace.notify(client.db, events.GENERIC, b"del", key)
        keyspace.dirty += 1
        client.propagate_as = [[b"DEL", key]]
        return members
    popped = random.sample(list(members), count)
    before_set_shrinks(members, len(members), popped, client.server.config.values["set-max-intset-entries"])
    members.difference_update(popped)
    keyspace.touch(client.db, key)
    keyspace.dirty += 1
    client.propagate_as = [
        [b"SREM", key, *popped[i : i + SPOP_PROPAGATE_CHUNK]]
        for i in range(0, len(popped), SPOP_PROPAGATE_CHUNK)
    ]
    return set(popped)


# -- reads -------------------------------------------------------------------------------------------------


@command("smembers", 2, "readonly", (1, 1, 1), "set", "Get all the members in a set")
def cmd_smembers(client: Client, argv: list[bytes]) -> Any:
    members = _set(client, argv[1], read=True)
    # A copy: inside EXEC the reply is encoded after later commands of the transaction ran.
    return set() if members is None else _in_order(client, set(members), members)


def _in_order(client: Client, members: set[bytes], built_from: set[bytes] | None = None) -> Any:
    """A set reply in Redis's order where it has one: an intset (a small set of integers) is kept sorted, so a
    reply read from one ascends; others come in hash order. ``built_from``: the set whose encoding decides
    (Redis reads SINTER's reply off the smallest set, SDIFF's second algorithm off a copy of the first)."""
    if members and object_encoding(built_from or members, client.server.config) == "intset":
        return ReplySet(sorted(members, key=int))
    return members


@command("sismember", 3, "readonly fast", (1, 1, 1), "set", "Determine if a given value is a member of a set")
def cmd_sismember(client: Client, argv: list[bytes]) -> Any:
    members = _set(client, argv[1], read=True)
    return 1 if members is not None and argv[2] in members else 0


@command(
    "smismember",
    -3,
    "readonly fast",
    (1, 1, 1),
    "set",
    "Returns the membership associated with the given elements for a set",
)
def cmd_smismember(client: Client, argv: list[bytes]) -> Any:
    members = _set(client, argv[1], read=True)
    if members is None:
        return [0] * (len(argv) - 2)
    return [1 if m in members else 0 for m in argv[2:]]


@command("scard", 2, "readonly fast", (1, 1, 1), "set", "Get the number of members in a set")
def cmd_scard(client: Client, argv: list[bytes]) -> Any:
    members = _set(client, argv[1], read=True)
    return 0 if members is None else len(members)


@command("srandmember", -2, "readonly", (1, 1, 1), "set", "Get one or multiple random members from a set")
def cmd_srandmember(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        members = _set(client, argv[1], read=True)
        return None if members is None else _random_member(members)
    count = parse_int(argv[2])
    if count == LLONG_MIN:
        raise CommandError(RANGE_LONG)
    members = _set(client, argv[1], read=True)
    if members is None or count == 0:
        return []
    return random_picks(list(members), count)


@command("sscan", -3, "readonly", (1, 1, 1), "set", "Incrementally iterate Set elements")
def cmd_sscan(client: Client, argv: list[bytes]) -> Any:
    members = _set(client, argv[1], read=True)

    def members_of() -> list[bytes]:
        # An intset (small set of integers) is sorted in Redis, and SSCAN returns it in that order.
        if members and object_encoding(members, client.server.config) == "intset":
            return sorted(members, key=int)
        return list(members or ())

    return scan_members(
        argv,
        members,
        members_of,
        lambda m: members is not None and m in members,
        lambda m, out: out.append(m),
        config=client.server.config,
    )


# -- algebra -----------------------------------------------------------------------------------------------


def _load_sets(client: Client, keys: list[bytes]) -> list[set[bytes] | None]:
    """Every key's set (None if missing), WRONGTYPE if any key holds something else, as Redis checks them all."""
    keyspace = client.server.keyspace
    out: list[set[bytes] | None] = []
    for key in keys:
        value = keyspace.lookup_read(client.db, key)
        if value is not None and type(value) is not set:
            raise WrongTypeError()
        out.append(value)
    return out


def _inter(sets: list[set[bytes] | None]) -> set[bytes]:
    if any(s is None for s in sets):
        return set()
    present = sorted((s for s in sets if s is not None), key=len)
    return set(present[0]).intersection(*present[1:])


def _union(sets: list[set[bytes] | None]) -> set[bytes]:
    out: set[bytes] = set()
    for s in sets:
        if s:
            out |= s
    return out


def _diff(sets: list[set[bytes] | None]) -> set[bytes]:
    first = sets[0]
    if not first:
        return set()
    out = set(first)
    for s in sets[1:]:
        if s:
            out -= s
            if not out:
                break
    return out


def _store(client: Client, dst: bytes, result: set[bytes], event: bytes) -> int:
    keyspace = client.server.keyspace
    if result:
        keyspace.set(client.db, dst, result)
        keyspace.dirty += 1
        keyspace.notify(client.db, events.SET, event, dst)
    elif keyspace.lookup(client.db, dst) is not None:
        keyspace.delete(client.db, dst)
        keyspace.dirty += 1
        keyspace.notify(client.db, events.GENERIC, b"del", dst)
    return len(result)


@command("sinter", -2, "readonly", (1, -1, 1), "set", "Intersect multiple sets")
def cmd_sinter(client: Client, argv: list[bytes]) -> Any:
    sets = _load_sets(client, argv[1:])
    result = _inter(sets)
    if not result:
        return result
    # Redis replies in the order of the smallest set, as it walks it (an intset ascends).
    return _in_order(client, result, min((s for s in sets if s is not None), key=len))


@command("sunion", -2, "readonly", (1, -1, 1), "set", "Add multiple sets")
def cmd_sunion(client: Client, argv: list[bytes]) -> Any:
    return _in_order(client, _union(_load_sets(client, argv[1:])))


@command("sdiff", -2, "readonly", (1, -1, 1), "set", "Subtract multiple sets")
def cmd_sdiff(client: Client, argv: list[bytes]) -> Any:
    sets = _load_sets(client, argv[1:])
    result = _diff(sets)
    first = sets[0]
    if not result or first is None:
        return result
    # Redis's choice of algorithm (sunionDiffGenericCommand): the first adds the result's members to an empty
    # intset, the second copies the whole first set and removes from it (its encoding is the first set's).
    present = [s for s in sets if s is not None]
    first_algorithm = len(first) * len(present) // 2 <= sum(len(s) for s in present)
    return _in_order(client, result, None if first_algorithm else first)


@command(
    "sinterstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    "set",
    "Intersect multiple sets and store the resulting set in a key",
)
def cmd_sinterstore(client: Client, argv: list[bytes]) -> Any:
    return _store(client, argv[1], _inter(_load_sets(client, argv[2:])), b"sinterstore")


@command(
    "sunionstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    "set",
    "Add multiple sets and store the resulting set in a key",
)
def cmd_sunionstore(client: Client, argv: list[bytes]) -> Any:
    return _store(client, argv[1], _union(_load_sets(client, argv[2:])), b"sunionstore")


@command(
    "sdiffstore",
    -3,
    "write denyoom",
    (1, -1, 1),
    "set",
    "Subtract multiple sets and store the resulting set in a key",
)
def cmd_sdiffstore(client: Client, argv: list[bytes]) -> Any:
    return _store(client, argv[1], _diff(_load_sets(client, argv[2:])), b"sdiffstore")


@command(
    "sintercard",
    -3,
    "readonly movablekeys",
    (0, 0, 0),
    "set",
    "Intersect multiple sets and return the cardinality of the result",
)
def cmd_sintercard(client: Client, argv: list[bytes]) -> Any:
    try:
        numkeys = parse_int(argv[1])
    except CommandError:
        raise CommandError("ERR numkeys should be greater than 0") from None
    if numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = parse_intercard_limit(argv, 2 + numkeys)
    sets = _load_sets(client, argv[2 : 2 + numkeys])
    if any(s is None for s in sets):
        return 0
    present = sorted((s for s in sets if s is not None), key=len)
    smallest, others = present[0], present[1:]
    found = 0
    for member in smallest:
        if all(member in other for other in others):
            found += 1
            if limit and found >= limit:
                break
    return found
