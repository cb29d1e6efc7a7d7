"""List commands: pushes, pops, ranges, LPOS, LMOVE, LMPOP; the blocking pops are in lists_blocking.py.

A list is a ``collections.deque`` of bytes: O(1) at both ends, which is what lists are used for. A list that
becomes empty is deleted, as in Redis, so an existing list key always holds at least one element.

Propagation follows Redis 7.0: LMPOP (and a blocking pop served at once) is propagated as ``LPOP/RPOP key
[count]``, BLMOVE as LMOVE, BRPOPLPUSH as RPOPLPUSH. Blocked clients are served by actors/blocking.py, which
calls the ``_serve_*`` functions of lists_blocking.py (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) when a key they
wait on gets data.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import get_typed, int_bytes, parse_either, parse_int
from actors.data import events
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import NULL_ARRAY, OK

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

POSITIVE = "ERR value is out of range, must be positive"
NUMKEYS = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"


def _list(client: Client, key: bytes, read: bool = False) -> deque[bytes] | None:
    return get_typed(client, key, deque, read)


def _changed(client: Client, db: Database, key: bytes, items: deque[bytes], event: bytes) -> None:
    """After an in-place change: report ``event``, then delete the key if the list is now empty (a ``del``
    event, as Redis), else signal the change."""
    keyspace = client.server.keyspace
    if items:
        keyspace.touch(db, key)
        keyspace.notify(db, events.LIST, event, key)
    else:
        keyspace.notify(db, events.LIST, event, key)
        keyspace.delete(db, key)
        keyspace.notify(db, events.GENERIC, b"del", key)


def pop_event(left: bool) -> bytes:
    return b"lpop" if left else b"rpop"


def _side(raw: bytes) -> bool:
    """LEFT -> True, RIGHT -> False; anything else is a syntax error."""
    return parse_either(raw, b"left", b"right")


def _side_name(left: bool) -> bytes:
    return b"LEFT" if left else b"RIGHT"


def _range(items: deque[bytes], start: int, stop: int) -> list[bytes]:
    """Elements ``start..stop`` (inclusive, already normalised), walking from the nearer end."""
    n = len(items)
    if start > n - 1 - stop:
        chunk = list(itertools.islice(reversed(items), n - 1 - stop, n - start))
        chunk.reverse()
        return chunk
    return list(itertools.islice(items, start, stop + 1))


def _pop_many(items: deque[bytes], count: int, left: bool) -> list[bytes]:
    pop = items.popleft if left else items.pop
    return [pop() for _ in range(min(count, len(items)))]


# -- pushes ------------------------------------------------------------------------------------------------


# The pushes and the pops run as one Python frame each in their common case: pipelined, a Python call costs a
# tenth of such a command. ``get_typed``'s lookup is inline, and so is the test that makes ``Keyspace.touch``
# a no-op and the list event silent: no key of the database is WATCHed, no memory charges are kept (``meta``),
# nobody waits on a key (``on_modified``: blocked clients), no client tracks keys (``on_invalidate``), and
# keyspace notifications of lists are off. When any of them holds, the general path (``touch``, ``_changed``)
# runs, as for every other command.


def _pusher(left: bool, only_existing: bool) -> Callable[[Client, list[bytes]], int]:
    """LPUSH / RPUSH / LPUSHX / RPUSHX (see the comment above)."""
    extend = deque.extendleft if left else deque.extend
    # One element (the common push, redis-benchmark's): ~900 instructions less than extending by a slice.
    add = deque.appendleft if left else deque.append
    event = b"lpush" if left else b"rpush"

    def push(client: Client, argv: list[bytes]) -> int:
        db = client.db
        key = argv[1]
        keyspace = client.server.keyspace
        if db.expires or db.meta is not None:
            items = keyspace.lookup(db, key)
        else:
            # Keyspace.lookup's whole work when no key has a TTL and nothing is tracked
            items = db.data.get(key)
        if items is None:
            if only_existing:
                return 0
            items = deque()
            extend(items, argv[2:])
            keyspace.set(db, key, items)  # signals the new key
        elif type(items) is deque:
            if len(argv) == 3:
                add(items, argv[2])
            else:
                extend(items, argv[2:])
            if db.watched or db.meta is not None or keyspace.hooked:
                keyspace.touch(db, key)
        else:
            raise WrongTypeError()
        keyspace.dirty += len(argv) - 2
        if keyspace.notify_flags & events.LIST:  # Keyspace.notify's test, without its call
            keyspace.on_event(db.id, event, key)
        return len(items)

    return push


cmd_lpush = command(
    "lpush", -3, "write denyoom fast", (1, 1, 1), "list", "Prepend one or multiple elements to a list"
)(_pusher(left=True, only_existing=False))
cmd_rpush = command(
    "rpush", -3, "write denyoom fast", (1, 1, 1), "list", "Append one or multiple elements to a list"
)(_pusher(left=False, only_existing=False))
cmd_lpushx = command(
    "lpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    "list",
    "Prepend an element to a list, only if the list exists",
)(_pusher(left=True, only_existing=True))
cmd_rpushx = command(
    "rpushx",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    "list",
    "Append an element to a list, only if the list exists",
)(_pusher(left=False, only_existing=True))


@command(
    "linsert",
    5,
    "write denyoom",
    (1, 1, 1),
    "list",
    "Insert an element before or after another element in a list",
)
def cmd_linsert(client: Client, argv: list[bytes]) -> Any:
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(errors.SYNTAX)
    items = _list(client, argv[1])
    if items is None:
        return 0
    try:
        index = items.index(argv[3])
    except ValueError:
        return -1
    items.insert(index if where == b"before" else index + 1, argv[4])
    keyspace = client.server.keyspace
    keyspace.touch(client.db, argv[1])
    keyspace.dirty += 1
    keyspace.notify(client.db, events.LIST, b"linsert", argv[1])
    return len(items)


# -- reads -------------------------------------------------------------------------------------------------


@command("llen", 2, "readonly fast", (1, 1, 1), "list", "Get the length of a list")
def cmd_llen(client: Client, argv: list[bytes]) -> Any:
    items = _list(client, argv[1], read=True)
    return 0 if items is None else len(items)


@command("lindex", 3, "readonly", (1, 1, 1), "list", "Get an element from a list by its index")
def cmd_lindex(client: Client, argv: list[bytes]) -> Any:
    # The key before the index, as Redis: a missing key is nil and a wrong type WRONGTYPE, whatever the index says.
    items = _list(client, argv[1], read=True)
    if items is None:
        return None
    index = parse_int(argv[2])
    if index < 0:
        index += len(items)
    if not 0 <= index < len(items):
        return None
    return items[index]


@command("lrange", 4, "readonly", (1, 1, 1), "list", "Get a range of elements from a list")
def cmd_lrange(client: Client, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    db = client.db
    items = db.data.get(argv[1])
    if items is None or db.expires or db.meta is not None:
        items = _list(client, argv[1], read=True)
        if items is None:
            return []
    else:
        # Keyspace.lookup_read's whole work on a hit when no key has a TTL and nothing is tracked (three frames
        # less: LRANGE_100..600 are four of redis-benchmark's tests)
        client.server.keyspace.keyspace_hits += 1
        if type(items) is not deque:
            raise WrongTypeError()
    n = len(items)
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = max(start, 0)
    if start > stop or start >= n:
        return []
    return _range(items, start, min(stop, n - 1))


@command("lpos", -3, "readonly", (1, 1, 1), "list", "Return the index of matching elements on a list")
def cmd_lpos(client: Client, argv: list[bytes]) -> Any:
    rank = 1
    count: int | None = None
    maxlen = 0
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(errors.SYNTAX)
        if opt == b"rank":
            rank = parse_int(argv[i + 1])
            if rank == 0:
                raise CommandError(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
                    "negative to start from the end of the list"
                )
        elif opt == b"count":
            # (Redis's getPositiveLongFromObjectOrReply: one message for a negative and a non-integer alike)
            count = parse_int(argv[i + 1], "ERR COUNT can't be negative")
            if count < 0:
                raise CommandError("ERR COUNT can't be negative")
        elif opt == b"maxlen":
            maxlen = parse_int(argv[i + 1], "ERR MAXLEN can't be negative")
            if maxlen < 0:
                raise CommandError("ERR MAXLEN can't be negative")
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    items = _list(client, argv[1], read=True)
    if items is None:
        return [] if count is not None else None
    from_tail = rank < 0
    # -LLONG_MIN overflows in Redis and stays negative, so every match "reaches" the rank: the first one wins.
    rank = 1 if rank == -(2**63) else abs(rank)
    n = len(items)
    target = argv[2]
    wanted = count if count else None  # COUNT 0: every match
    found: list[int] = []
    matches = 0
    walk = reversed(items) if from_tail else iter(items)
    limit = maxlen if maxlen else n
    for index, element in enumerate(itertools.islice(walk, limit)):
        if element == target:
            matches += 1
            if matches >= rank:
                found.append(n - 1 - index if from_tail else index)
                if count is None or (wanted is not None and len(found) >= wanted):
                    break
    if count is None:
        return found[0] if found else None
    return found


# -- in-place writes ---------------------------------------------------------------------------------------


@command("lset", 4, "write denyoom", (1, 1, 1), "list", "Set the value of an element in a list by its index")
def cmd_lset(client: Client, argv: list[bytes]) -> Any:
    items = _list(client, argv[1])  # the key before the index, as Redis (no such key, WRONGTYPE first)
    if items is None:
        raise CommandError(errors.NO_SUCH_KEY)
    index = parse_int(argv[2])
    if index < 0:
        index += len(items)
    if not 0 <= index < len(items):
        raise CommandError("ERR index out of range")
    items[index] = argv[3]
    keyspace = client.server.keyspace
    keyspace.touch(client.db, argv[1])
    keyspace.dirty += 1
    keyspace.notify(client.db, events.LIST, b"lset", argv[1])
    return OK


@command("lrem", 4, "write", (1, 1, 1), "list", "Remove elements from a list")
def cmd_lrem(client: Client, argv: list[bytes]) -> Any:
    count = parse_int(argv[2])
    items = _list(client, argv[1])
    if items is None:
        return 0
    target = argv[3]
    limit = abs(count) if count else len(items)
    removed = 0
    if count < 0:
        kept_rev: list[bytes] = []
        for element in reversed(items):
            if removed < limit and element == target:
                removed += 1
            else:
                kept_rev.append(element)
        kept_rev.reverse()
        kept = kept_rev
    else:
        kept = []
        for element in items:
            if removed < limit and element == target:
                removed += 1
            else:
                kept.append(element)
    if removed:
        items.clear()
        items.extend(kept)
        _changed(client, client.db, argv[1], items, b"lrem")
        client.server.keyspace.dirty += removed
    return removed


@command("ltrim", 4, "write", (1, 1, 1), "list", "Trim a list to the specified range")
def cmd_ltrim(client: Client, argv: list[bytes]) -> Any:
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    items = _list(client, argv[1])
    if items is None:
        return OK
    n = len(items)
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = max(start, 0)
    if start > stop or start >= n:
        left_cut, right_cut = n, 0
    else:
        stop = min(stop, n - 1)
        left_cut, right_cut = start, n - stop - 1
    if left_cut + right_cut > n // 2:
        kept = _range(items, left_cut, n - right_cut - 1) if left_cut < n else []
        items.clear()
        items.extend(kept)
    else:
        for _ in range(left_cut):
            items.popleft()
        for _ in range(right_cut):
            items.pop()
    keyspace = client.server.keyspace
    _changed(client, client.db, argv[1], items, b"ltrim")
    keyspace.dirty += left_cut + right_cut
    return OK


# -- pops --------------------------------------------------------------------------------------------------


def _pop(client: Client, argv: list[bytes], left: bool) -> Any:
    if len(argv) > 3:
        raise errors.wrong_arity(argv[0].decode("utf-8", "replace").lower())
    count: int | None = None
    if len(argv) == 3:
        count = parse_int(argv[2], POSITIVE)
        if count < 0:
            raise CommandError(POSITIVE)
    key = argv[1]
    items = get_typed(client, key, deque, False)
    if items is None:
        return None if count is None else NULL_ARRAY
    keyspace = client.server.keyspace
    if count is None:
        value = items.popleft() if left else items.pop()
        _changed(client, client.db, key, items, pop_event(left))
        keyspace.dirty += 1
        return value
    popped = _pop_many(items, count, left)
    if popped:
        _changed(client, client.db, key, items, pop_event(left))
        keyspace.dirty += 1
    return popped


def _popper(left: bool) -> Callable[[Client, list[bytes]], Any]:
    """LPOP / RPOP (see the comment above): one frame without a count, when the list keeps elements and nothing
    listens; the count form takes ``_pop``, the other cases ``_changed``."""
    take = deque.popleft if left else deque.pop
    event = pop_event(left)

    def pop(client: Client, argv: list[bytes]) -> Any:
        if len(argv) != 2:
            return _pop(client, argv, left)
        db = client.db
        key = argv[1]
        keyspace = client.server.keyspace
        if db.expires or db.meta is not None:
            items = keyspace.lookup(db, key)
        else:
            items = db.data.get(key)  # as in _pusher
        if items is None:
            return None
        if type(items) is not deque:
            raise WrongTypeError()
        value = take(items)
        if (
            not items
            or db.watched
            or db.meta is not None
            or keyspace.hooked
            or keyspace.notify_flags & events.LIST
        ):
            _changed(client, db, key, items, event)
        keyspace.dirty += 1
        return value

    return pop


cmd_lpop = command(
    "lpop", -2, "write fast", (1, 1, 1), "list", "Remove and get the first elements in a list"
)(_popper(left=True))
cmd_rpop = command("rpop", -2, "write fast", (1, 1, 1), "list", "Remove and get the last elements in a list")(
    _popper(left=False)
)


def _move(
    client: Client, db: Database, src: bytes, dst: bytes, items: deque[bytes], from_left: bool, to_left: bool
) -> bytes:
    """Pop from ``items`` (the list at ``src``) and push onto ``dst``; the caller checked dst's type."""
    keyspace = client.server.keyspace
    value = items.popleft() if from_left else items.pop()
    target = keyspace.lookup(db, dst)
    if target is None:
        target = deque()
        keyspace.set(db, dst, target)
    if to_left:
        target.appendleft(value)
    else:
        target.append(value)
    keyspace.touch(db, dst)
    keyspace.notify(db, events.LIST, b"lpush" if to_left else b"rpush", dst)
    if target is not items:
        _changed(client, db, src, items, pop_event(from_left))
    else:
        keyspace.notify(db, events.LIST, pop_event(from_left), src)
    keyspace.dirty += 1
    return value


def _lmove(client: Client, src: bytes, dst: bytes, from_left: bool, to_left: bool) -> Any:
    items = _list(client, src)
    if items is None:
        return None
    _list(client, dst)  # WRONGTYPE before anything moves
    return _move(client, client.db, src, dst, items, from_left, to_left)


@command(
    "lmove",
    5,
    "write denyoom",
    (1, 2, 1),
    "list",
    "Pop an element from a list, push it to another list and return it",
)
def cmd_lmove(client: Client, argv: list[bytes]) -> Any:
    from_left = _side(argv[3])
    to_left = _side(argv[4])
    return _lmove(client, argv[1], argv[2], from_left, to_left)


@command(
    "rpoplpush",
    3,
    "write denyoom",
    (1, 2, 1),
    "list",
    "Remove the last element in a list, prepend it to another list and return it",
)
def cmd_rpoplpush(client: Client, argv: list[bytes]) -> Any:
    return _lmove(client, argv[1], argv[2], False, True)


def parse_mpop(
    argv: list[bytes], numkeys_index: int, sides: tuple[bytes, bytes]
) -> tuple[list[bytes], bool, int]:
    """``numkeys key... <side> [COUNT n]`` of LMPOP/BLMPOP/ZMPOP/BZMPOP: (keys, first side?, count)."""
    try:
        numkeys = parse_int(argv[numkeys_index], NUMKEYS)
    except CommandError:
        raise CommandError(NUMKEYS) from None
    if numkeys < 1:
        raise CommandError(NUMKEYS)
    side_index = numkeys_index + 1 + numkeys
    if side_index >= len(argv):
        raise CommandError(errors.SYNTAX)
    side = argv[side_index].lower()
    if side not in sides:
        raise CommandError(errors.SYNTAX)
    count = -1
    i = side_index + 1
    while i < len(argv):
        if argv[i].lower() == b"count" and i + 1 < len(argv) and count == -1:
            count = parse_int(argv[i + 1], COUNT_POSITIVE)
            if count < 1:
                raise CommandError(COUNT_POSITIVE)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    keys = argv[numkeys_index + 1 : side_index]
    return keys, side == sides[0], (1 if count == -1 else count)


def _mpop_now(client: Client, keys: list[bytes], left: bool, count: int) -> Any:
    """Pop from the first non-empty list among ``keys``; None when all are empty (WRONGTYPE stops the scan)."""
    for key in keys:
        items = _list(client, key)
        if items is None:
            continue
        popped = _pop_many(items, count, left)
        _changed(client, client.db, key, items, pop_event(left))
        client.server.keyspace.dirty += 1
        client.propagate_as = [[b"LPOP" if left else b"RPOP", key, int_bytes(len(popped))]]
        return [key, popped]
    return None


@command("lmpop", -4, "write movablekeys", (0, 0, 0), "list", "Pop elements from a list")
def cmd_lmpop(client: Client, argv: list[bytes]) -> Any:
    keys, left, count = parse_mpop(argv, 1, (b"left", b"right"))
    reply = _mpop_now(client, keys, left, count)
    return NULL_ARRAY if reply is None else reply
