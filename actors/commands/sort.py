"""SORT and SORT_RO (Redis 7.0's sort.c): sort a list, set or sorted set, by itself or by other keys, with
LIMIT, GET patterns and STORE.

Patterns substitute the element for the first ``*``; ``->field`` reads a hash field; ``#`` (GET only) is the
element itself; a key of the wrong type reads as missing (lookupKeyByPattern). Numeric sorting reads scores
as strtod does (a missing weight is 0; a score that is not a double is an error) and breaks ties by comparing
the elements' bytes, so the order is total and the same as Redis's. ALPHA compares bytes (strcoll in the C
locale).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.zsets import parse_score
from actors.data import events
from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError, WrongTypeError

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

NOT_DOUBLE = "ERR One or more scores can't be converted into double"
_C_SPACE = b" \t\n\v\f\r"


def _by_pattern(client: Client, db: Database, pattern: bytes, element: bytes) -> bytes | None:
    """lookupKeyByPattern: the string (or hash field) the pattern names for ``element``, or None."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    field = None
    arrow = pattern.find(b"->", star + 1)
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2 :]
        pattern = pattern[:arrow]
    value = client.server.keyspace.lookup(db, pattern[:star] + element + pattern[star + 1 :])
    if field is not None:
        return value.get(field) if type(value) is dict else None
    return value if type(value) is bytes else None


def _score(raw: bytes | None) -> float:
    """A weight as strtod reads it (leading whitespace allowed, nothing after the number, no NaN or
    overflow); a missing weight counts as 0, and so does an empty string (strtod reads nothing, ends at NUL)."""
    if raw is None or raw == b"":
        return 0.0
    return parse_score(raw.lstrip(_C_SPACE), NOT_DOUBLE)


def _reads_any_key(client: Client, argv: list[bytes]) -> bool:
    """BY and GET patterns read keys no key spec names: Redis allows them only to a user one of whose
    selectors allows this SORT and reads every key (allkeys or ``%R~*``)."""
    server = client.server
    acl = server.acl
    if not acl.enforcing:
        return True
    name = argv[0].lower()
    return acl.unrestricted_key_read(client, server.commands.get(name) or server.orig_commands[name], argv)


def _sort(client: Client, argv: list[bytes], read_only: bool) -> Any:
    desc = alpha = False
    offset, count = 0, -1
    limited = False
    store: bytes | None = None
    by: bytes | None = None
    gets: list[bytes] = []
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"asc":
            desc = False
        elif option == b"desc":
            desc = True
        elif option == b"alpha":
            alpha = True
        elif option == b"limit" and more >= 2:
            offset, count = parse_int(argv[i + 1]), parse_int(argv[i + 2])
            limited = True
            i += 2
        elif option == b"store" and more >= 1 and not read_only:
            store = argv[i + 1]
            i += 1
        elif option == b"by" and more >= 1:
            by = argv[i + 1]
            if b"*" in by and not _reads_any_key(client, argv):
                raise CommandError("ERR BY option of SORT denied due to insufficient ACL permissions.")
            i += 1
        elif option == b"get" and more >= 1:
            if not _reads_any_key(client, argv):
                raise CommandError("ERR GET option of SORT denied due to insufficient ACL permissions.")
            gets.append(argv[i + 1])
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    keyspace = client.server.keyspace
    db = client.db
    value = keyspace.lookup_read(db, argv[1])
    if value is not None and type(value) not in (deque, set, ZSet):
        raise WrongTypeError()
    dont_sort = by is not None and b"*" not in by
    if dont_sort and type(value) is set and (store is not None or client is client.server.lua_client):
        # A set's own order is arbitrary: STORE and a script (whose effects replicate) must be deterministic.
        dont_sort, alpha, by = False, True, None
    if value is None:
        elements: list[bytes] = []
    elif type(value) is ZSet:
        elements = [member for member, _ in value.items()]
    else:
        elements = list(value)
    length = len(elements)
    start = max(offset, 0) if limited else 0
    end = length - 1 if (not limited or count < 0) else start + count - 1
    if start >= length:
        start, end = length - 1, length - 2
    end = min(end, length - 1)
    if dont_sort:
        if desc and type(value) in (deque, ZSet):
            elements.reverse()  # a list or sorted set in its own order, read from the other end
    elif alpha:
        if by is None:
            elements.sort(reverse=desc)
        else:
            weights = {e: _by_pattern(client, db, by, e) for e in elements}
            # Missing weights first (NULL < anything), then by the weights' bytes.
            elements.sort(key=lambda e: (weights[e] is not None, weights[e] or b""), reverse=desc)
    else:
        if by is None:
            keyed = [(_score(e), e) for e in elements]
        else:
            keyed = [(_score(_by_pattern(client, db, by, e)), e) for e in elements]
        keyed.sort(reverse=desc)
        elements = [e for _, e in keyed]
    chosen = elements[start : end + 1] if end >= start else []
    if gets:
        output: list[bytes | None] = [_by_pattern(client, db, pattern, e) for e in chosen for pattern in gets]
    else:
        output = list(chosen)
    if store is None:
        return output
    if output:
        keyspace.set(db, store, deque(v if v is not None else b"" for v in output))
        keyspace.dirty += len(output)
        keyspace.notify(db, events.LIST, b"sortstore", store)
    elif keyspace.delete(db, store):
        keyspace.dirty += 1
        keyspace.notify(db, events.GENERIC, b"del", store)
    return len(output)


@command(
    "sort",
    -2,
    "write denyoom",
    (1, 1, 1),
    "generic",
    "Sort the elements in a list, set or sorted set",
)
def cmd_sort(client: Client, argv: list[bytes]) -> Any:
    return _sort(client, argv, read_only=False)


@command(
    "sort_ro",
    -2,
    "readonly",
    (1, 1, 1),
    "generic",
    "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
)
def cmd_sort_ro(client: Client, argv: list[bytes]) -> Any:
    return _sort(client, argv, read_only=True)
