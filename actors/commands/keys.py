"""Generic key commands: existence, deletion, renaming, copying, expiry, iteration, databases, DUMP/RESTORE.

Expiry commands propagate as ``PEXPIREAT key <absolute ms>`` (or DEL, when the time is already past), so the
AOF and the replicas apply the same deadline whenever they replay it.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import (
    LLONG_MAX,
    compile_glob,
    copy_value,
    glob_match,
    int_bytes,
    parse_cursor,
    parse_int,
    parse_scan_args,
)
from actors.commands.memory import object_access
from actors.data import events
from actors.data.encodings import is_int_member, stays_hashtable
from actors.data.evict import STAMP_MASK, restored_stamp
from actors.data.keyspace import TYPE_NAMES
from actors.data.stream import Stream
from actors.data.types import ZSet
from actors.server import lazyfree
from actors.server.blocking import signal_flushed_keys, signal_swapped_dbs, waited_keys_present
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.config import Config
    from actors.server.client import Client
    from actors.server.ports import SnapshotCodec


@command("del", -2, "write", (1, -1, 1), "generic", "Delete a key")
def cmd_del(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    removed = 0
    for key in argv[1:]:
        if keyspace.lookup(client.db, key) is not None and keyspace.delete(client.db, key):
            removed += 1
            keyspace.notify(client.db, events.GENERIC, b"del", key)
    keyspace.dirty += removed
    return removed


@command("unlink", -2, "write fast", (1, -1, 1), "generic", "Delete a key asynchronously in another thread")
def cmd_unlink(client: Client, argv: list[bytes]) -> Any:
    """DEL, but a big value is emptied in slices after the reply (actors/server/lazyfree.py)."""
    keyspace = client.server.keyspace
    freeing = lazyfree.of(client.server)
    removed = 0
    for key in argv[1:]:
        value = keyspace.lookup(client.db, key)
        if value is not None and keyspace.delete(client.db, key):
            removed += 1
            keyspace.notify(client.db, events.GENERIC, b"del", key)
            freeing.submit(value)
        del value  # (the last reference, if lazyfree did not take it)
    keyspace.dirty += removed
    return removed


@command("exists", -2, "readonly fast", (1, -1, 1), "generic", "Determine if a key exists")
def cmd_exists(client: Client, argv: list[bytes]) -> Any:
    return sum(1 for key in argv[1:] if _lookup_notouch(client, key) is not None)


def _lookup_notouch(client: Client, key: bytes) -> Any:
    """``lookup_read`` that leaves the key's access stamp where it was (Redis's LOOKUP_NOTOUCH, which EXISTS,
    TYPE, TTL and the like use: asking about a key is not using it, so OBJECT IDLETIME keeps growing)."""
    db = client.db
    meta = db.meta
    stamp = meta.get(key) if meta is not None else None
    value = client.server.keyspace.lookup_read(db, key)
    if stamp is not None and meta is not None and key in meta:
        meta[key] = (meta[key] & ~STAMP_MASK) | (stamp & STAMP_MASK)
    return value


@command("touch", -2, "readonly fast", (1, -1, 1), "generic", "Alters the last access time of a key(s)")
def cmd_touch(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    return sum(1 for key in argv[1:] if keyspace.lookup_read(client.db, key) is not None)


@command("type", 2, "readonly fast", (1, 1, 1), "generic", "Determine the type stored at key")
def cmd_type(client: Client, argv: list[bytes]) -> Any:
    value = _lookup_notouch(client, argv[1])
    return "none" if value is None else TYPE_NAMES[type(value)].decode()


@command("keys", 2, "readonly", (0, 0, 0), "generic", "Find all keys matching the given pattern")
def cmd_keys(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    # A lone "*" lists every key (an empty one too), as Redis's allkeys shortcut.
    matches = None if argv[1] == b"*" else compile_glob(argv[1])
    now = keyspace.expiry_clock()
    expires = db.expires
    out = []
    for key in db.data:
        if expires:
            when = expires.get(key)
            if when is not None and when <= now:
                continue
        if matches is None or matches(key):
            out.append(key)
    return out


@command("scan", -2, "readonly", (0, 0, 0), "generic", "Incrementally iterate the keys space")
def cmd_scan(client: Client, argv: list[bytes]) -> Any:
    cursor = parse_cursor(argv[1])
    match, count, type_name = parse_scan_args(argv, 2)
    keyspace = client.server.keyspace
    db = client.db
    snap_id, keys, position = db.scan_snapshot(cursor)
    end = min(position + count, len(keys))
    out = []
    for key in keys[position:end]:
        value = keyspace.lookup(db, key)
        if value is None:
            continue
        if match is not None and not glob_match(match, key):
            continue
        if type_name is not None and TYPE_NAMES.get(type(value)) != type_name:
            continue
        out.append(key)
    if end >= len(keys):
        db.scan_done(snap_id)
        next_cursor = 0
    else:
        next_cursor = (snap_id << 32) | end
    return [b"%d" % next_cursor, out]


@command("randomkey", 1, "readonly", (0, 0, 0), "generic", "Return a random key from the keyspace")
def cmd_randomkey(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    for _ in range(100):
        if not db.data:
            return None
        key = next(itertools.islice(iter(db.data), random.randrange(len(db.data)), None))
        if keyspace.lookup(db, key) is not None:
            return key
    return None


def _rename(client: Client, argv: list[bytes], nx: bool) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    src, dst = argv[1], argv[2]
    value = keyspace.lookup(db, src)
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if keyspace.lookup(db, dst) is not None:
        if nx:
            return 0
        keyspace.delete(db, dst)  # dst is created anew (Redis: dbDelete then dbAdd: a "new" event)
    when = db.expires.get(src)
    keyspace.delete(db, src)
    keyspace.set(db, dst, value)
    if when is not None:
        keyspace.set_expire(db, dst, when)
    keyspace.dirty += 1
    keyspace.notify(db, events.GENERIC, b"rename_from", src)
    keyspace.notify(db, events.GENERIC, b"rename_to", dst)
    return 1 if nx else OK


@command("rename", 3, "write", (1, 2, 1), "generic", "Rename a key")
def cmd_rename(client: Client, argv: list[bytes]) -> Any:
    return _rename(client, argv, nx=False)


@command(
    "renamenx", 3, "write fast", (1, 2, 1), "generic", "Rename a key, only if the new key does not exist"
)
def cmd_renamenx(client: Client, argv: list[bytes]) -> Any:
    return _rename(client, argv, nx=True)


def _db_index(client: Client, raw: bytes) -> int:
    index = parse_int(raw)
    if not 0 <= index < len(client.server.keyspace.dbs):
        raise CommandError(errors.DB_INDEX)
    return index


@command("copy", -3, "write denyoom", (1, 2, 1), "generic", "Copy a key")
def cmd_copy(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    src_db = client.db
    dst_db = client.db
    replace = False
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(argv):
            dst_db = keyspace.dbs[_db_index(client, argv[i + 1])]
            if client.server.cluster is not None and dst_db is not src_db:
                raise CommandError("ERR Copying to another database is not allowed in cluster mode")
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    src, dst = argv[1], argv[2]
    if src_db is dst_db and src == dst:
        raise CommandError(errors.SAME_OBJECT)
    value = keyspace.lookup_read(src_db, src)  # Redis: lookupKeyRead (a hit or miss, a keymiss event)
    if value is None:
        return 0
    if keyspace.lookup(dst_db, dst) is not None:
        if not replace:
            return 0
        keyspace.delete(dst_db, dst)
    keyspace.set(dst_db, dst, copy_value(value))
    when = src_db.expires.get(src)
    if when is not None:
        keyspace.set_expire(dst_db, dst, when)
    keyspace.dirty += 1
    keyspace.notify(dst_db, events.GENERIC, b"copy_to", dst)
    return 1


@command("move", 3, "write fast", (1, 1, 1), "generic", "Move a key to another database")
def cmd_move(client: Client, argv: list[bytes]) -> Any:
    if client.server.cluster is not None:
        raise CommandError("ERR MOVE is not allowed in cluster mode")
    keyspace = client.server.keyspace
    dst_db = keyspace.dbs[_db_index(client, argv[2])]
    src_db = client.db
    if dst_db is src_db:
        raise CommandError(errors.SAME_OBJECT)
    value = keyspace.lookup(src_db, argv[1])
    if value is None or keyspace.lookup(dst_db, argv[1]) is not None:
        return 0
    when = src_db.expires.get(argv[1])
    keyspace.delete(src_db, argv[1])
    keyspace.set(dst_db, argv[1], value)
    if when is not None:
        keyspace.set_expire(dst_db, argv[1], when)
    keyspace.dirty += 1
    keyspace.notify(src_db, events.GENERIC, b"move_from", argv[1])
    keyspace.notify(dst_db, events.GENERIC, b"move_to", argv[1])
    return 1


# -- expiry ----------------------------------------------------------------------------------------------


def _expire(client: Client, argv: list[bytes], unit_ms: int, absolute: bool, name: str) -> Any:
    keyspace = client.server.keyspace
    db = client.db
    key = argv[1]
    nx = xx = gt = lt = False
    # The options are checked before the amount, as Redis's parseExtendedExpireArgumentsOrReply.
    for raw in argv[3:]:
        opt = raw.lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt == b"gt":
            gt = True
        elif opt == b"lt":
            lt = True
        else:
            raise CommandError(f"ERR Unsupported option {echoed(raw)}")
    if nx and (xx or gt or lt):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    amount = parse_int(argv[2])
    if unit_ms == 1000 and (amount > LLONG_MAX // 1000 or amount < -(LLONG_MAX // 1000)):
        raise CommandError(errors.INVALID_EXPIRE.format(name))
    when = amount * unit_ms
    if not absolute:
        when += keyspace.clock()
    if when > LLONG_MAX:
        raise CommandError(errors.INVALID_EXPIRE.format(name))
    if keyspace.lookup(db, key) is None:
        return 0
    current = db.expires.get(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    keyspace.dirty += 1
    if when <= keyspace.clock() and not keyspace.is_replica and not keyspace.ignore_ttl:
        keyspace.delete(db, key)
        client.propagate_as = [[b"DEL", key]]
        keyspace.notify(db, events.GENERIC, b"del", key)
        return 1
    keyspace.set_expire(db, key, when)
    # (the options as sent go along, as Redis rewrites only the command's name and its time)
    client.propagate_as = [[b"PEXPIREAT", key, int_bytes(when), *argv[3:]]]
    keyspace.notify(db, events.GENERIC, b"expire", key)
    return 1


@command("expire", -3, "write fast", (1, 1, 1), "generic", "Set a key's time to live in seconds")
def cmd_expire(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 1000, False, "expire")


@command("pexpire", -3, "write fast", (1, 1, 1), "generic", "Set a key's time to live in milliseconds")
def cmd_pexpire(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 1, False, "pexpire")


@command(
    "expireat", -3, "write fast", (1, 1, 1), "generic", "Set the expiration for a key as a UNIX timestamp"
)
def cmd_expireat(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 1000, True, "expireat")


@command(
    "pexpireat",
    -3,
    "write fast",
    (1, 1, 1),
    "generic",
    "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
)
def cmd_pexpireat(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 1, True, "pexpireat")


def _ttl(client: Client, key: bytes, unit_ms: int, absolute: bool) -> int:
    if _lookup_notouch(client, key) is None:
        return -2
    when = client.db.expires.get(key)
    if when is None:
        return -1
    if absolute:
        return when if unit_ms == 1 else (when + 500) // 1000  # EXPIRETIME rounds as TTL does
    remaining = max(when - client.server.keyspace.clock(), 0)
    return remaining if unit_ms == 1 else (remaining + 500) // 1000


@command("ttl", 2, "readonly fast", (1, 1, 1), "generic", "Get the time to live for a key in seconds")
def cmd_ttl(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], 1000, False)


@command("pttl", 2, "readonly fast", (1, 1, 1), "generic", "Get the time to live for a key in milliseconds")
def cmd_pttl(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], 1, False)


@command(
    "expiretime", 2, "readonly fast", (1, 1, 1), "generic", "Get the expiration Unix timestamp for a key"
)
def cmd_expiretime(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], 1000, True)


@command(
    "pexpiretime",
    2,
    "readonly fast",
    (1, 1, 1),
    "generic",
    "Get the expiration Unix timestamp for a key in milliseconds",
)
def cmd_pexpiretime(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], 1, True)


@command("persist", 2, "write fast", (1, 1, 1), "generic", "Remove the expiration from a key")
def cmd_persist(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    if keyspace.lookup(client.db, argv[1]) is None:
        return 0
    if keyspace.persist(client.db, argv[1]):
        keyspace.dirty += 1
        keyspace.notify(client.db, events.GENERIC, b"persist", argv[1])
        return 1
    return 0


# -- databases -------------------------------------------------------------------------------------------


@command(
    "dbsize", 1, "readonly fast", (0, 0, 0), "server", "Return the number of keys in the selected database"
)
def cmd_dbsize(client: Client, argv: list[bytes]) -> Any:
    return len(client.db.data)


@command(
    "select",
    2,
    "loading stale fast",
    (0, 0, 0),
    "connection",
    "Change the selected database for the current connection",
)
def cmd_select(client: Client, argv: list[bytes]) -> Any:
    index = _db_index(client, argv[1])
    if client.server.cluster is not None and index != 0:
        raise CommandError("ERR SELECT is not allowed in cluster mode")
    client.select(index)
    return OK


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(errors.SYNTAX)


@command("flushdb", -1, "write", (0, 0, 0), "server", "Remove all keys from the current database")
def cmd_flushdb(client: Client, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    keyspace = client.server.keyspace
    gone = waited_keys_present(client.server, (client.db.id,))
    keyspace.flush_db(client.db)
    signal_flushed_keys(client.server, gone)
    keyspace.dirty += 1
    return OK


@command("flushall", -1, "write", (0, 0, 0), "server", "Remove all keys from all databases")
def cmd_flushall(client: Client, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    keyspace = client.server.keyspace
    gone = waited_keys_present(client.server, tuple(range(len(keyspace.dbs))))
    keyspace.flush_all()
    signal_flushed_keys(client.server, gone)
    persistence = client.server.persistence
    if persistence is not None:
        persistence.data_flushed()
    keyspace.dirty += 1
    return OK


@command("swapdb", 3, "write fast", (0, 0, 0), "server", "Swaps two Redis databases")
def cmd_swapdb(client: Client, argv: list[bytes]) -> Any:
    if client.server.cluster is not None:
        raise CommandError("ERR SWAPDB is not allowed in cluster mode")
    keyspace = client.server.keyspace
    a = parse_int(argv[1], "ERR invalid first DB index")
    b = parse_int(argv[2], "ERR invalid second DB index")
    if not (0 <= a < len(keyspace.dbs) and 0 <= b < len(keyspace.dbs)):
        raise CommandError(errors.DB_INDEX)
    if a != b:
        keyspace.swap(a, b)
        # Clients blocked on a key that now holds data in either database are served (Redis's
        # scanDatabaseForReadyKeys).
        signal_swapped_dbs(client.server, (a, b))
    keyspace.dirty += 1
    return OK


# -- introspection ---------------------------------------------------------------------------------------

# Redis 7.0's encoding thresholds (the defaults of the *-max-listpack-* and set-max-intset-entries directives).
HASH_LISTPACK_MAX_ENTRIES = 512
ZSET_LISTPACK_MAX_ENTRIES = 128
LISTPACK_MAX_VALUE_BYTES = 64
INTSET_MAX_ENTRIES = 512
# OBJECT REFCOUNT of Redis's shared integer objects (OBJ_SHARED_INTEGERS, OBJ_SHARED_REFCOUNT).
SHARED_INTEGERS = 10000
SHARED_REFCOUNT = 2**31 - 1


def object_encoding(value: Any, config: Config | None = None) -> str:
    """The encoding Redis 7.0 would report for this value (clients and tools read it), under ``config``'s
    *-max-listpack-* and set-max-intset-entries limits (Redis's defaults without one). Unlike Redis, a
    hash or sorted set that shrinks back under the limits reports the small encoding again (no conversion is
    kept); a set keeps its hashtable encoding, as in Redis (actors/data/encodings.py)."""
    kind = type(value)
    if kind is bytes:
        if is_int_member(value):
            return "int"
        return "embstr" if len(value) <= 44 else "raw"
    if kind is deque:
        return "quicklist"
    if kind is dict:
        max_entries = config["hash-max-listpack-entries"] if config else HASH_LISTPACK_MAX_ENTRIES
        max_bytes = config["hash-max-listpack-value"] if config else LISTPACK_MAX_VALUE_BYTES
        small = len(value) <= max_entries and all(
            len(k) <= max_bytes and len(v) <= max_bytes for k, v in value.items()
        )
        return "listpack" if small else "hashtable"
    if kind is set:
        max_entries = config["set-max-intset-entries"] if config else INTSET_MAX_ENTRIES
        if len(value) <= max_entries and not stays_hashtable(value) and all(is_int_member(m) for m in value):
            return "intset"
        return "hashtable"
    if kind is ZSet:
        max_entries = config["zset-max-listpack-entries"] if config else ZSET_LISTPACK_MAX_ENTRIES
        max_bytes = config["zset-max-listpack-value"] if config else LISTPACK_MAX_VALUE_BYTES
        small = len(value) <= max_entries and all(len(m) <= max_bytes for m in value.scores)
        return "listpack" if small else "skiplist"
    if kind is Stream:
        return "stream"
    return "unknown"


# OBJECT HELP's lines, as Redis 7.0 answers them.
_OBJECT_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"FREQ <key>",
    b"    Return the access frequency index of the <key>. The returned integer is",
    b"    proportional to the logarithm of the recent access frequency of the key.",
    b"IDLETIME <key>",
    b"    Return the idle time of the <key>, that is the approximated number of",
    b"    seconds elapsed since the last access to the key.",
    b"REFCOUNT <key>",
    b"    Return the number of references of the value associated with the specified",
    b"    <key>.",
    b"HELP",
    b"    Prints this help.",
]


@command(
    "object",
    -2,
    "readonly",
    (2, 2, 1),
    "generic",
    "A container for object introspection commands",
    subcommands=("encoding", "freq", "idletime", "refcount", "help"),
)
def cmd_object(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    if sub == b"help" and len(argv) == 2:
        return _OBJECT_HELP
    if sub not in (b"encoding", b"freq", b"idletime", b"refcount", b"help"):
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "object")
    if len(argv) != (2 if sub == b"help" else 3):
        raise errors.wrong_arity(f"object|{sub.decode()}")
    keyspace = client.server.keyspace
    db = client.db
    # OBJECT reads without moving the key's access stamp (Redis's LOOKUP_NOTOUCH): put it back after.
    stamp = db.meta.get(argv[2]) if db.meta is not None else None
    value = keyspace.lookup(db, argv[2])
    if stamp is not None and db.meta is not None and argv[2] in db.meta:
        db.meta[argv[2]] = (db.meta[argv[2]] & ~STAMP_MASK) | (stamp & STAMP_MASK)
    if value is None:
        return None
    if sub == b"encoding":
        return object_encoding(value, client.server.config).encode()
    if sub in (b"freq", b"idletime"):
        return object_access(client, argv[2], sub == b"freq")
    return SHARED_REFCOUNT if is_shared_integer(value, client.server.config) else 1


def is_shared_integer(value: Any, config: Any) -> bool:
    """Whether Redis would hold ``value`` as one of its shared small integers (0..9999), which OBJECT REFCOUNT
    reports as OBJ_SHARED_REFCOUNT: not while maxmemory is set with an LRU or LFU policy (a shared object has
    no access clock of its own: Redis's MAXMEMORY_FLAG_NO_SHARED_INTEGERS). Judged with today's settings,
    where Redis judges when the value is written."""
    if not (type(value) is bytes and is_int_member(value) and 0 <= int(value) < SHARED_INTEGERS):
        return False
    return not (config["maxmemory"] and config["maxmemory-policy"].endswith(("-lru", "-lfu")))


# -- DUMP / RESTORE ------------------------------------------------------------------------------------------

DUMP_PAYLOAD_WRONG = "ERR DUMP payload version or checksum are wrong"


def _rdb_codec(client: Client) -> SnapshotCodec:
    codec = client.server.rdb_codec
    if codec is None:
        raise CommandError("ERR DUMP / RESTORE are not available on this node (no RDB codec)")
    return codec


@command(
    "dump",
    2,
    "readonly random",
    (1, 1, 1),
    "generic",
    "Return a serialized version of the value stored at a key",
)
def cmd_dump(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    codec = _rdb_codec(client)
    value = server.keyspace.lookup_read(client.db, argv[1])
    if value is None:
        return None
    # Redis's createDumpPayload: the RDB serialization of the value (LZF as rdbcompression says), the RDB
    # version and a CRC64, so redis-server's RESTORE takes it and ours takes redis-server's.
    return codec.dump_value(value, compress=bool(server.config["rdbcompression"]))


def _sanitizes(client: Client) -> bool:
    """Whether Redis would deep-check this RESTORE's payload (rdbLoadObject's deep_integrity_validation):
    sanitize-dump-payload yes, or clients for a client that is neither the master nor the AOF's, nor a user
    with skip-sanitize-payload. (This node checks every payload whole anyway: this is what INFO counts.)"""
    mode = client.server.config["sanitize-dump-payload"]
    if mode == "clients":
        trusted = client.kind in (ClientKind.MASTER, ClientKind.INTERNAL)
        return not trusted and client.user.sanitize != "skip-sanitize-payload"
    return bool(mode == "yes")


@command(
    "restore",
    -4,
    "write denyoom",
    (1, 1, 1),
    "generic",
    "Create a key using the provided serialized value, previously obtained using DUMP",
)
def cmd_restore(client: Client, argv: list[bytes]) -> Any:
    """RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked in Redis's order. IDLETIME
    (LRU policies) or FREQ (LFU policies) sets the key's access stamp while stamps are kept (a maxmemory or an
    eviction policy is set); otherwise they are validated and have no effect, as there is nothing to set."""
    replace = absttl = False
    idle = freq = -1
    i = 4
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq == -1:
            idle = parse_int(argv[i + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif option == b"freq" and more >= 1 and idle == -1:
            freq = parse_int(argv[i + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    keyspace = client.server.keyspace
    db, key = client.db, argv[1]
    if not replace and keyspace.lookup(db, key) is not None:
        raise CommandError("BUSYKEY Target key name already exists.")
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    codec = _rdb_codec(client)
    try:
        value = codec.load_value(argv[3])
    except codec.DumpPayloadError:
        raise CommandError(DUMP_PAYLOAD_WRONG) from None
    except codec.RdbError:
        raise CommandError("ERR Bad data format") from None
    if not value and type(value) is not bytes:
        raise CommandError("ERR Bad data format")  # an empty collection (RDB_LOAD_ERR_EMPTY_KEY)
    if _sanitizes(client):
        client.server.stats.dump_payload_sanitizations += codec.sanitized_blobs(argv[3])
    deleted = keyspace.delete(db, key) if replace else False
    if ttl and not absttl:
        ttl += keyspace.clock()
    if ttl and ttl <= keyspace.clock() and not (keyspace.is_replica or keyspace.ignore_ttl):
        # Already expired (checkAlreadyExpired; not on a replica or while replaying the AOF): nothing is
        # created, and a replaced key is simply deleted.
        if deleted:
            client.propagate_as = [[b"DEL", key]]
            keyspace.dirty += 1
            keyspace.notify(db, events.GENERIC, b"del", key)
        return OK
    keyspace.set(db, key, value)
    tracker = keyspace.tracker
    if tracker is not None:
        stamp = restored_stamp(tracker.lfu, idle, freq)
        if stamp is not None:
            db.set_access_stamp(key, stamp)
    if ttl:
        keyspace.set_expire(db, key, ttl)
        if not absttl:  # propagated with the absolute deadline, as Redis rewrites it
            client.propagate_as = [[b"RESTORE", key, b"%d" % ttl, *argv[3:], b"ABSTTL"]]
    keyspace.dirty += 1
    keyspace.notify(db, events.GENERIC, b"restore", key)
    return OK
