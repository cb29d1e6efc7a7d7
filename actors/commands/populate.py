"""DEBUG POPULATE: fill the selected database with generated string keys, as Redis's debug.c does.

    DEBUG POPULATE <count> [<prefix>] [<size>]

Keys are ``<prefix>:<n>`` for n in 0..count-1 (prefix ``key``), values ``value:<n>``; with a non-zero size
the value is ``value:<n>`` cut or NUL-padded to exactly ``size`` bytes. Keys that already exist keep their
value. ops/bench uses it to build the 1,000,000-key datasets it times BGSAVE, loading and full sync on;
tests use it to get a big dataset fast.

Like Redis it is a debugging aid, not a write: it leaves ``keyspace.dirty`` alone, so nothing reaches the
AOF or the replicas and save points do not fire (Redis 7.0 reports rdb_changes_since_last_save:0 after it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands.debug import DEBUG_HANDLERS
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

# getPositiveLongFromObjectOrReply's message: Redis gives it for a negative number and for non-numbers alike.
NOT_POSITIVE = "ERR value is out of range, must be positive"
# Redis formats each key into a 128-byte C buffer: longer keys are cut to 127 bytes.
KEY_BUFFER_BYTES = 127
LONG_MAX = 2**63 - 1


def _parse_positive(raw: bytes) -> int:
    """A long >= 0 as string2ll accepts it (no '+', spaces or leading zeros), else Redis's range error."""
    body = raw[1:] if raw[:1] == b"-" else raw
    if not body.isdigit() or len(raw) > 20 or (body[:1] == b"0" and (len(body) > 1 or body is not raw)):
        raise CommandError(NOT_POSITIVE)
    value = int(raw)
    if not 0 <= value <= LONG_MAX:
        raise CommandError(NOT_POSITIVE)
    return value


def debug_populate(client: Client, argv: list[bytes]) -> Any:
    if not 3 <= len(argv) <= 5:
        name = argv[1].decode("utf-8", "replace")[:128]
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try DEBUG HELP."
        )
    count = _parse_positive(argv[2])
    size_bytes = _parse_positive(argv[4]) if len(argv) == 5 else 0
    # The prefix goes through "%s", so it ends at its first NUL byte, as a C string would.
    prefix = argv[3].split(b"\0", 1)[0] if len(argv) >= 4 else b"key"
    keyspace = client.server.keyspace
    db = client.db
    data = db.data  # read only: new keys go in through the kvstore's ``add`` (cached: one C call per key)
    # Signalling each key costs a call per key; skip it when nobody can be told (no WATCH, no blocked
    # client, no tracking client: Redis's signalModifiedKey reaches all three).
    signal = bool(db.watched) or keyspace.hooked
    cut_keys = len(prefix) + 21 > KEY_BUFFER_BYTES
    add = db.add
    for n in range(count):
        key = b"%s:%d" % (prefix, n)
        if cut_keys:
            key = key[:KEY_BUFFER_BYTES]
        if key in data:
            # An expired key counts as missing (lookupKeyWrite deletes it on a master): refill it then.
            if not db.expires or keyspace.lookup(db, key) is not None:
                continue
        value = b"value:%d" % n
        if size_bytes:
            value = value[:size_bytes].ljust(size_bytes, b"\0")
        if key in data:  # expired but kept (a replica does not delete): replace it and its TTL
            keyspace.set(db, key, value)
            continue
        add(key, value)
        if signal:
            keyspace.touch(db, key)
    return OK


DEBUG_HANDLERS[b"populate"] = debug_populate
