"""String commands: SET and friends, counters, ranges.

Writes whose effect depends on time or on the stored value are propagated in absolute form, as Redis 7 does:
SET/SETEX/PSETEX/GETEX with a relative expiry become ``PXAT``/``PEXPIREAT``; INCRBYFLOAT becomes
``SET key value KEEPTTL``; GETDEL becomes DEL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import (
    LLONG_MAX,
    LLONG_MIN,
    get_string,
    int_bytes,
    parse_int,
)
from actors.data import events
from actors.data.integers import SHARED_INTEGER_BYTES, SHARED_INTEGERS
from protocol import errors
from protocol.errors import CommandError, WrongTypeError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

STRING_MAX_BYTES = 512 * 1024 * 1024


def _expire_at_ms(client: Client, unit: bytes, raw: bytes, cmd_name: str) -> int:
    """Absolute expiry in ms from an EX/PX/EXAT/PXAT argument; errors as Redis's getExpireMillisecondsOrReply."""
    value = parse_int(raw)
    if value <= 0:
        raise CommandError(errors.INVALID_EXPIRE.format(cmd_name))
    if unit in (b"ex", b"exat"):
        if value > LLONG_MAX // 1000:
            raise CommandError(errors.INVALID_EXPIRE.format(cmd_name))
        value *= 1000
    if unit in (b"ex", b"px"):
        value += client.server.keyspace.clock()
        if value > LLONG_MAX:
            raise CommandError(errors.INVALID_EXPIRE.format(cmd_name))
    return value


@command("set", -3, "write denyoom", (1, 1, 1), "string", "Set the string value of a key")
def cmd_set(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    key, value = argv[1], argv[2]
    if len(argv) == 3:
        keyspace.set(db, key, value)
        keyspace.dirty += 1
        keyspace.notify(db, events.STRING, b"set", key)
        return OK
    nx = xx = get = keepttl = False
    expire_unit: bytes | None = None
    expire_raw = b""
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"nx" and not xx:
            nx = True
        elif opt == b"xx" and not nx:
            xx = True
        elif opt == b"get":
            get = True
        elif opt == b"keepttl" and expire_unit is None:
            keepttl = True
        elif (
            opt in (b"ex", b"px", b"exat", b"pxat")
            and expire_unit in (None, opt)  # (Redis lets an option repeat with its own unit: the last counts)
            and not keepttl
            and i + 1 < len(argv)
        ):
            expire_unit = opt
            expire_raw = argv[i + 1]
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    when = _expire_at_ms(client, expire_unit, expire_raw, "set") if expire_unit is not None else None
    old = keyspace.lookup_read(db, key) if get else keyspace.lookup(db, key)
    if get and old is not None and type(old) is not bytes:
        raise WrongTypeError()
    if (nx and old is not None) or (xx and old is None):
        return old if get else None
    keyspace.set(db, key, value, keep_ttl=keepttl)
    keyspace.notify(db, events.STRING, b"set", key)
    if when is not None:
        keyspace.set_expire(db, key, when)
        keyspace.notify(db, events.GENERIC, b"expire", key)
        client.propagate_as = [[b"SET", key, value, b"PXAT", int_bytes(when)]]
    elif get:
        client.propagate_as = [[b"SET", key, value, b"KEEPTTL"] if keepttl else [b"SET", key, value]]
    keyspace.dirty += 1
    return old if get else OK


@command("get", 2, "readonly fast", (1, 1, 1), "string", "Get the value of a key")
def cmd_get(client: Client, argv: list[bytes]) -> Any:
    value = client.server.keyspace.lookup_read(client.db, argv[1])
    if value is not None and type(value) is not bytes:
        raise WrongTypeError()
    return value


@command(
    "getex", -2, "write fast", (1, 1, 1), "string", "Get the value of a key and optionally set its expiration"
)
def cmd_getex(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key = argv[1]
    # As Redis's parseExtendedStringArgumentsOrReply: the whole syntax first (an expiry option may repeat with
    # the same unit, the last one counts), then the key (missing: nil, whatever the expiry says), then the type,
    # and only then the expiry's value.
    expire_unit: bytes | None = None
    expire_raw = b""
    persist = False
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if (
            opt in (b"ex", b"px", b"exat", b"pxat")
            and expire_unit in (None, opt)
            and not persist
            and i + 1 < len(argv)
        ):
            expire_unit = opt
            expire_raw = argv[i + 1]
            i += 2
        elif opt == b"persist" and expire_unit is None:
            persist = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    value = get_string(client, key)
    if value is None:
        return None
    if expire_unit is not None:
        when = _expire_at_ms(client, expire_unit, expire_raw, "getex")
        if when <= keyspace.clock() and not keyspace.is_replica:
            keyspace.delete(client.db, key)
            client.propagate_as = [[b"DEL", key]]
            keyspace.notify(client.db, events.GENERIC, b"del", key)
        else:
            keyspace.set_expire(client.db, key, when)
            client.propagate_as = [[b"PEXPIREAT", key, int_bytes(when)]]
            keyspace.notify(client.db, events.GENERIC, b"expire", key)
        keyspace.dirty += 1
    elif persist and keyspace.persist(client.db, key):
        client.propagate_as = [[b"PERSIST", key]]
        keyspace.notify(client.db, events.GENERIC, b"persist", key)
        keyspace.dirty += 1
    return value


@command("getdel", 2, "write fast", (1, 1, 1), "string", "Get the value of a key and delete the key")
def cmd_getdel(client: Client, argv: list[bytes]) -> Any:
    value = get_string(client, argv[1])
    if value is not None:
        client.server.keyspace.delete(client.db, argv[1])
        client.server.keyspace.dirty += 1
        client.server.keyspace.notify(client.db, events.GENERIC, b"del", argv[1])
        client.propagate_as = [[b"DEL", argv[1]]]
    return value


@command(
    "getset",
    3,
    "write denyoom fast",
    (1, 1, 1),
    "string",
    "Set the string value of a key and return its old value",
)
def cmd_getset(client: Client, argv: list[bytes]) -> Any:
    old = get_string(client, argv[1])
    client.server.keyspace.set(client.db, argv[1], argv[2])
    client.server.keyspace.dirty += 1
    client.server.keyspace.notify(client.db, events.STRING, b"set", argv[1])
    client.propagate_as = [[b"SET", argv[1], argv[2]]]  # as Redis 7.0: replicas and the AOF see a SET
    return old


@command("mget", -2, "readonly fast", (1, -1, 1), "string", "Get the values of all the given keys")
def cmd_mget(client: Client, argv: list[bytes]) -> Any:
    lookup = client.server.keyspace.lookup_read
    db = client.db
    out = []
    for key in argv[1:]:
        value = lookup(db, key)
        out.append(value if type(value) is bytes else None)
    return out


@command("mset", -3, "write denyoom", (1, -1, 2), "string", "Set multiple keys to multiple values")
def cmd_mset(client: Client, argv: list[bytes]) -> Any:
    if len(argv) % 2 == 0:
        raise errors.wrong_arity("mset")
    keyspace = client.server.keyspace
    db = client.db
    if not (keyspace.notify_flags or db.watched or keyspace.hooked):
        # Nobody to tell (no events, no WATCH, no blocked or tracking client): Keyspace.set would only call
        # the kvstore's writer, which stores every pair here at once (one C dict update while no key has a TTL).
        db.set_pairs(argv, 1)
    else:
        store = keyspace.set
        for i in range(1, len(argv), 2):
            store(db, argv[i], argv[i + 1])
            keyspace.notify(db, events.STRING, b"set", argv[i])
    keyspace.dirty += (len(argv) - 1) // 2
    return OK


@command("msetnx", -3, "write denyoom", (1, -1, 2), "string", "Set multiple keys only if none of them exist")
def cmd_msetnx(client: Client, argv: list[bytes]) -> Any:
    if len(argv) % 2 == 0:
        raise errors.wrong_arity("msetnx")
    keyspace = client.server.keyspace
    if any(keyspace.lookup(client.db, argv[i]) is not None for i in range(1, len(argv), 2)):
        return 0
    for i in range(1, len(argv), 2):
        keyspace.set(client.db, argv[i], argv[i + 1])
        keyspace.notify(client.db, events.STRING, b"set", argv[i])
    keyspace.dirty += (len(argv) - 1) // 2
    return 1


@command(
    "setnx", 3, "write denyoom fast", (1, 1, 1), "string", "Set the value of a key, only if it does not exist"
)
def cmd_setnx(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    if keyspace.lookup(client.db, argv[1]) is not None:
        return 0
    keyspace.add(client.db, argv[1], argv[2])
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"set", argv[1])
    return 1


def _set_with_expire(client: Client, argv: list[bytes], unit: bytes, name: str) -> Any:
    keyspace = client.server.keyspace
    when = _expire_at_ms(client, unit, argv[2], name)
    keyspace.set(client.db, argv[1], argv[3])
    keyspace.notify(client.db, events.STRING, b"set", argv[1])
    keyspace.set_expire(client.db, argv[1], when)
    keyspace.notify(client.db, events.GENERIC, b"expire", argv[1])
    keyspace.dirty += 1
    client.propagate_as = [[b"SET", argv[1], argv[3], b"PXAT", int_bytes(when)]]
    return OK


@command("setex", 4, "write denyoom", (1, 1, 1), "string", "Set the value and expiration of a key")
def cmd_setex(client: Client, argv: list[bytes]) -> Any:
    return _set_with_expire(client, argv, b"ex", "setex")


@command(
    "psetex", 4, "write denyoom", (1, 1, 1), "string", "Set the value and expiration in milliseconds of a key"
)
def cmd_psetex(client: Client, argv: list[bytes]) -> Any:
    return _set_with_expire(client, argv, b"px", "psetex")


def _check_size(client: Client, size: int) -> None:
    limit = min(STRING_MAX_BYTES, int(client.server.config["proto-max-bulk-len"]))
    if size > limit:
        raise CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


@command("append", 3, "write denyoom fast", (1, 1, 1), "string", "Append a value to a key")
def cmd_append(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    old = get_string(client, argv[1], read=False)
    if old is None:
        keyspace.add(client.db, argv[1], argv[2])
        new = argv[2]
    else:
        _check_size(client, len(old) + len(argv[2]))
        new = old + argv[2]
        keyspace.set(client.db, argv[1], new, keep_ttl=True)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"append", argv[1])
    return len(new)


@command("strlen", 2, "readonly fast", (1, 1, 1), "string", "Get the length of the value stored in a key")
def cmd_strlen(client: Client, argv: list[bytes]) -> Any:
    value = get_string(client, argv[1])
    return 0 if value is None else len(value)


def _range(value: bytes, start: int, end: int) -> bytes:
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(length + start, 0)
    if end < 0:
        end = max(length + end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return b""
    return value[start : end + 1]


@command("getrange", 4, "readonly", (1, 1, 1), "string", "Get a substring of the string stored at a key")
def cmd_getrange(client: Client, argv: list[bytes]) -> Any:
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = get_string(client, argv[1])
    return b"" if value is None else _range(value, start, end)


@command("substr", 4, "readonly", (1, 1, 1), "string", "Get a substring of the string stored at a key")
def cmd_substr(client: Client, argv: list[bytes]) -> Any:
    return cmd_getrange(client, argv)


@command(
    "setrange",
    4,
    "write denyoom",
    (1, 1, 1),
    "string",
    "Overwrite part of a string at key starting at the specified offset",
)
def cmd_setrange(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    patch = argv[3]
    old = get_string(client, argv[1], read=False)
    if old is None:
        if not patch:
            return 0
        _check_size(client, offset + len(patch))
        keyspace.add(client.db, argv[1], b"\x00" * offset + patch)
        keyspace.dirty += 1
        keyspace.notify(client.db, events.STRING, b"setrange", argv[1])
        return offset + len(patch)
    if not patch:
        return len(old)
    _check_size(client, offset + len(patch))
    if len(old) < offset:
        old = old + b"\x00" * (offset - len(old))
    new = old[:offset] + patch + old[offset + len(patch) :]
    keyspace.set(client.db, argv[1], new, keep_ttl=True)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"setrange", argv[1])
    return len(new)


def _incr(client: Client, key: bytes, delta: int) -> int:
    keyspace = client.server.keyspace
    db = client.db
    if db.expires or db.meta is not None:
        old = get_string(client, key, read=False)
    else:
        old = db.data.get(key)  # get_string's whole work with no TTL and no access tracking, without its call
        if old is not None and type(old) is not bytes:
            raise WrongTypeError()
    current = 0 if old is None else parse_int(old)
    if (delta < 0 and current < 0 and delta < LLONG_MIN - current) or (
        delta > 0 and current > 0 and delta > LLONG_MAX - current
    ):
        raise CommandError(errors.OVERFLOW)
    new = current + delta
    # 0..9999: Redis's shared integer objects (actors/data/integers.py), one bytes object for every such value.
    raw = SHARED_INTEGER_BYTES[new] if 0 <= new < SHARED_INTEGERS else b"%d" % new
    if keyspace.notify_flags or db.watched or keyspace.hooked:
        keyspace.set(db, key, raw, keep_ttl=True)
    else:
        # nobody to tell (as in cmd_mset): Keyspace.set's whole work, without its call
        db.set_keep_ttl(key, raw)
    keyspace.dirty += 1
    if keyspace.notify_flags & events.STRING:  # Keyspace.notify's test, without its call
        keyspace.on_event(db.id, b"incrby", key)
    return new


@command("incr", 2, "write denyoom fast", (1, 1, 1), "string", "Increment the integer value of a key by one")
def cmd_incr(client: Client, argv: list[bytes]) -> Any:
    return _incr(client, argv[1], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), "string", "Decrement the integer value of a key by one")
def cmd_decr(client: Client, argv: list[bytes]) -> Any:
    return _incr(client, argv[1], -1)


@command(
    "incrby",
    3,
    "write denyoom fast",
    (1, 1, 1),
    "string",
    "Increment the integer value of a key by the given amount",
)
def cmd_incrby(client: Client, argv: list[bytes]) -> Any:
    return _incr(client, argv[1], parse_int(argv[2]))


@command(
    "decrby",
    3,
    "write denyoom fast",
    (1, 1, 1),
    "string",
    "Decrement the integer value of a key by the given number",
)
def cmd_decrby(client: Client, argv: list[bytes]) -> Any:
    delta = parse_int(argv[2])
    if delta == LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(client, argv[1], -delta)


@command(
    "incrbyfloat",
    3,
    "write denyoom fast",
    (1, 1, 1),
    "string",
    "Increment the float value of a key by the given amount",
)
def cmd_incrbyfloat(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    old = get_string(client, argv[1], read=False)
    # In long double, as Redis: 0.2 + 0.1 stores "0.3", not a double's 0.30000000000000004. (Imported on first
    # use: fractions imports decimal, which start-up does without.)
    from actors.data import longdouble

    text = longdouble.incr(old, argv[2])
    if isinstance(text, str):
        raise CommandError(
            errors.NOT_FLOAT if text == "not-float" else "ERR increment would produce NaN or Infinity"
        )
    keyspace.set(client.db, argv[1], text, keep_ttl=True)
    keyspace.dirty += 1
    keyspace.notify(client.db, events.STRING, b"incrbyfloat", argv[1])
    client.propagate_as = [[b"SET", argv[1], text, b"KEEPTTL"]]
    return text
