"""Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD [BLOCK], XSETID.

The type lives in actors/data/stream.py; XREAD and XREADGROUP in streams_read.py; consumer groups (XGROUP,
XACK, XPENDING, XCLAIM, XAUTOCLAIM) in streams_groups.py; XINFO in streams_info.py. ID parsing, argument order and error strings follow Redis 7.0's
t_stream.c. Propagation follows it too: XADD goes out with the ID it generated (``*`` and ``ms-*`` replaced)
and an approximate trim is rewritten as an exact one at the length (MAXLEN) or first ID (MINID) it produced,
so a replica or an AOF replay trims exactly as much.

Blocking XREAD / XREADGROUP wait in actors/server/blocking.py's registry; their readiness depends on the
waiter (the ID it waits past, its group), so they pass a ``ready`` predicate along with the serve function.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import get_typed, parse_int
from actors.data import events
from actors.data.stream import (
    MAX_ID,
    NODE_MAX_BYTES,
    NODE_MAX_ENTRIES,
    UINT64_MAX,
    ZERO_ID,
    Stream,
    StreamID,
    format_id,
)
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY, OK

if TYPE_CHECKING:
    from actors.server.client import Client

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
ID_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
TRIM_BOTH = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
LIMIT_WITHOUT_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
LIMIT_WITHOUT_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
XTRIM_NO_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
XSETID_BELOW_GIVEN_MAXDEL = "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
XSETID_ADDED_TOO_SMALL = "ERR The entries_added specified in XSETID is smaller than the target stream length"
# The ID a blocked XREADGROUP ">" waits past: "whatever the group delivered last", resolved when served.
GROUP_NEW_ID = MAX_ID
# XREAD BLOCK without COUNT serves at most this many entries per stream (Redis's XREAD_BLOCKED_DEFAULT_COUNT).
BLOCKED_DEFAULT_COUNT = 1000

_STRTOULL_RE = re.compile(rb"\s*([+-]?)(\d+)\Z")


def _parse_u64(raw: bytes) -> int | None:
    """string2ull: a strict integer first (negative ones are out of range), else strtoull (leading space,
    '+', leading zeros; a '-' wraps around as in C); None if neither reads it."""
    try:
        value = parse_int(raw)
    except CommandError:
        pass
    else:
        return value if value >= 0 else None
    match = _STRTOULL_RE.match(raw)
    if match is None:
        return None
    value = int(match.group(2))
    if value > UINT64_MAX:
        return None
    return (-value) % 2**64 if match.group(1) == b"-" else value


def parse_id(
    raw: bytes, missing_seq: int = 0, strict: bool = False, allow_star_seq: bool = False
) -> tuple[StreamID, bool]:
    """streamGenericParseIDOrReply: ``ms-seq`` or ``ms`` (seq = ``missing_seq``), ``-``/``+`` unless strict.

    Returns (id, seq_given); with ``allow_star_seq`` (XADD) ``ms-*`` gives seq_given False.
    """
    if len(raw) > 127:
        raise CommandError(INVALID_ID)
    if not strict:
        if raw == b"-":
            return ZERO_ID, True
        if raw == b"+":
            return MAX_ID, True
    dash = raw.find(b"-")
    if dash >= 0:
        ms = _parse_u64(raw[:dash])
        tail = raw[dash + 1 :]
        if allow_star_seq and tail == b"*":
            if ms is None:
                raise CommandError(INVALID_ID)
            return (ms, 0), False
        seq = _parse_u64(tail)
        if ms is None or seq is None:
            raise CommandError(INVALID_ID)
        return (ms, seq), True
    ms = _parse_u64(raw)
    if ms is None:
        raise CommandError(INVALID_ID)
    return (ms, missing_seq), True


def strict_id(raw: bytes) -> StreamID:
    return parse_id(raw, 0, strict=True)[0]


def _incr(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq == UINT64_MAX:
        if ms == UINT64_MAX:
            return None
        return (ms + 1, 0)
    return (ms, seq + 1)


def _decr(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq == 0:
        if ms == 0:
            return None
        return (ms - 1, UINT64_MAX)
    return (ms, seq - 1)


def parse_range_bound(raw: bytes, start: bool) -> StreamID | None:
    """An XRANGE bound: ``-``, ``+``, ``ms`` (seq 0 / max), ``ms-seq``, ``(id`` exclusive; None: empty range."""
    if raw[:1] == b"(":
        if len(raw) == 1:
            raise CommandError(INVALID_ID)
        sid = parse_id(raw[1:], 0 if start else UINT64_MAX, strict=True)[0]
        moved = _incr(sid) if start else _decr(sid)
        if moved is None:
            which = "start" if start else "end"
            raise CommandError(f"ERR invalid {which} ID for the interval")
        return moved
    return parse_id(raw, 0 if start else UINT64_MAX)[0]


def entry_reply(sid: StreamID, pairs: list[bytes]) -> list[Any]:
    return [format_id(sid), pairs]


def get_stream(client: Client, key: bytes, read: bool = True) -> Stream | None:
    return get_typed(client, key, Stream, read)


def node_limits(client: Client) -> tuple[int, int]:
    """stream-node-max-entries and stream-node-max-bytes as set now (Redis reads them at every append)."""
    config = client.server.config
    try:
        return int(config["stream-node-max-entries"]), int(config["stream-node-max-bytes"])
    except (KeyError, TypeError, ValueError):
        return NODE_MAX_ENTRIES, NODE_MAX_BYTES


def new_stream(client: Client) -> Stream:
    return Stream(*node_limits(client))


# -- XADD / XTRIM ------------------------------------------------------------------------------------------


class TrimArgs:
    __slots__ = (
        "maxlen",
        "minid",
        "approx",
        "limit",
        "arg_index",
        "no_mkstream",
        "sid",
        "id_given",
        "seq_given",
    )

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        # argv index of the threshold (rewritten for propagation after an approximate trim).
        self.arg_index = 0
        self.no_mkstream = False
        self.sid: StreamID = ZERO_ID
        self.id_given = False
        self.seq_given = True


def parse_add_or_trim(client: Client, argv: list[bytes], xadd: bool) -> tuple[TrimArgs, int]:
    """streamParseAddOrTrimArgsOrReply: options from argv[2]; returns them and the ID's index (XADD)."""
    args = TrimArgs()
    limit_given = False
    n = len(argv)
    i = 2
    strategy = False
    while i < n:
        more = n - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if (low == b"maxlen" or low == b"minid") and more:
            if strategy:
                raise CommandError(TRIM_BOTH)
            args.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                args.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            if low == b"maxlen":
                args.maxlen = parse_int(argv[i + 1])
                if args.maxlen < 0:
                    raise CommandError(MAXLEN_NEGATIVE)
            else:
                args.minid = strict_id(argv[i + 1])
            i += 1
            strategy = True
            args.arg_index = i
        elif low == b"limit" and more:
            args.limit = parse_int(argv[i + 1])
            if args.limit < 0:
                raise CommandError(LIMIT_NEGATIVE)
            limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            args.no_mkstream = True
        elif xadd:
            args.sid, args.seq_given = parse_id(opt, 0, strict=True, allow_star_seq=True)
            args.id_given = True
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if args.limit and not strategy:
        raise CommandError(LIMIT_WITHOUT_STRATEGY)
    if not xadd and not strategy:
        raise CommandError(XTRIM_NO_STRATEGY)
    if client.kind is ClientKind.MASTER or client.server.loading:
        args.limit = 0  # the master / the AOF rewrote the threshold: trim exactly that much
    elif limit_given:
        if not args.approx:
            raise CommandError(LIMIT_WITHOUT_APPROX)
    elif args.approx:
        node_max = node_limits(client)[0]
        args.limit = 100 * node_max if 0 < 100 * node_max <= 10000 else 10000
    else:
        args.limit = 0
    return args, i


def _trim_and_rewrite(stream: Stream, args: TrimArgs, argv: list[bytes]) -> tuple[int, list[bytes]]:
    """Trim; after an approximate trim, the argv to propagate says ``=`` and the exact threshold reached."""
    deleted = stream.trim(args.maxlen, args.minid, args.approx, args.limit)
    if not args.approx:
        return deleted, argv
    argv = list(argv)
    argv[args.arg_index - 1] = b"="
    if args.maxlen is not None:
        argv[args.arg_index] = b"%d" % stream.length
    else:
        first = stream.entries.peekitem(0)[0] if stream.entries else MAX_ID
        argv[args.arg_index] = format_id(first)
    return deleted, argv


@command("xadd", -5, "write denyoom fast", (1, 1, 1), "stream", "Appends a new entry to a stream")
def cmd_xadd(client: Client, argv: list[bytes]) -> Any:
    args, id_pos = parse_add_or_trim(client, argv, xadd=True)
    field_pos = id_pos + 1
    rest = len(argv) - field_pos
    if rest < 2 or rest % 2 == 1:
        raise errors.wrong_arity("xadd")
    if args.id_given and args.seq_given and args.sid == ZERO_ID:
        raise CommandError(ID_ZERO)
    keyspace = client.server.keyspace
    db = client.db
    key = argv[1]
    stream = get_stream(client, key, read=False)
    created = False
    if stream is None:
        if args.no_mkstream:
            return None
        stream = new_stream(client)
        created = True
    if stream.last_id == MAX_ID:
        raise CommandError(ID_EXHAUSTED)
    if not args.id_given:
        sid = stream.next_id(keyspace.clock())
    elif not args.seq_given:
        sid = stream.next_id(0, args.sid[0])
    else:
        sid = args.sid if args.sid > stream.last_id else None
    if sid is None:
        if created:
            keyspace.add(db, key, stream)  # Redis created the key before failing the append
            keyspace.dirty += 1
            client.propagate_as = []
        raise CommandError(ID_TOO_SMALL)
    stream.node_max_entries, stream.node_max_bytes = node_limits(client)
    stream.append(sid, argv[field_pos:])
    if created:
        keyspace.add(db, key, stream)
    keyspace.dirty += 1
    keyspace.notify(db, events.STREAM, b"xadd", key)
    out = argv
    if args.maxlen is not None or args.minid is not None:
        trimmed, out = _trim_and_rewrite(stream, args, argv)
        if trimmed:
            keyspace.notify(db, events.STREAM, b"xtrim", key)
    if not args.id_given or not args.seq_given:
        out = list(out)
        out[id_pos] = format_id(sid)
    if out is not argv:
        client.propagate_as = [out]
    if not created:
        keyspace.touch(db, key)
    return format_id(sid)


@command("xtrim", -4, "write", (1, 1, 1), "stream", "Deletes messages from the beginning of a stream")
def cmd_xtrim(client: Client, argv: list[bytes]) -> Any:
    args, _ = parse_add_or_trim(client, argv, xadd=False)  # the arguments before the key, as Redis
    stream = get_stream(client, argv[1], read=False)
    if stream is None:
        return 0
    deleted, out = _trim_and_rewrite(stream, args, argv)
    if deleted:
        client.server.keyspace.touch(client.db, argv[1])
        client.server.keyspace.dirty += deleted
        client.server.keyspace.notify(client.db, events.STREAM, b"xtrim", argv[1])
    if out is not argv:
        client.propagate_as = [out]
    return deleted


@command("xdel", -3, "write fast", (1, 1, 1), "stream", "Removes the specified entries from the stream")
def cmd_xdel(client: Client, argv: list[bytes]) -> Any:
    stream = get_stream(client, argv[1], read=False)
    if stream is None:
        return 0  # the key before the IDs, as Redis: a missing stream deletes nothing, whatever they say
    ids = [strict_id(raw) for raw in argv[2:]]  # every ID checked before any is deleted
    deleted = sum(1 for sid in ids if stream.delete(sid))
    if deleted:
        client.server.keyspace.touch(client.db, argv[1])
        client.server.keyspace.dirty += deleted
        client.server.keyspace.notify(client.db, events.STREAM, b"xdel", argv[1])
    return deleted


@command("xlen", 2, "readonly fast", (1, 1, 1), "stream", "Return the number of entries in a stream")
def cmd_xlen(client: Client, argv: list[bytes]) -> Any:
    stream = get_stream(client, argv[1])
    return 0 if stream is None else stream.length


def _xrange(client: Client, argv: list[bytes], reverse: bool) -> Any:
    start_raw, end_raw = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    start = parse_range_bound(start_raw, start=True)
    end = parse_range_bound(end_raw, start=False)
    count = -1
    i = 4
    while i < len(argv):
        if argv[i].lower() == b"count" and i + 1 < len(argv):
            count = parse_int(argv[i + 1])
            if count < 0:
                count = 0
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    stream = get_stream(client, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY  # as Redis: COUNT 0 on an existing stream is a null reply, not an empty one
    assert start is not None and end is not None
    return [entry_reply(sid, pairs) for sid, pairs in stream.range(start, end, max(count, 0), reverse)]


@command(
    "xrange", -4, "readonly", (1, 1, 1), "stream", "Return a range of elements in a stream, with IDs matching"
)
def cmd_xrange(client: Client, argv: list[bytes]) -> Any:
    return _xrange(client, argv, reverse=False)


@command(
    "xrevrange",
    -4,
    "readonly",
    (1, 1, 1),
    "stream",
    "Return a range of elements in a stream, in reverse order",
)
def cmd_xrevrange(client: Client, argv: list[bytes]) -> Any:
    return _xrange(client, argv, reverse=True)


@command(
    "xsetid",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    "stream",
    "An internal command for replicating stream values",
)
def cmd_xsetid(client: Client, argv: list[bytes]) -> Any:
    sid = strict_id(argv[2])
    entries_added = -1
    max_xdel = ZERO_ID
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"entriesadded" and i + 1 < len(argv):
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and i + 1 < len(argv):
            max_xdel = strict_id(argv[i + 1])
            if sid < max_xdel:
                raise CommandError(XSETID_BELOW_GIVEN_MAXDEL)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    stream = get_stream(client, argv[1], read=False)
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if stream.length:
        if sid < stream.entries.peekitem(-1)[0]:
            raise CommandError("ERR The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and stream.length > entries_added:
            raise CommandError(XSETID_ADDED_TOO_SMALL)
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_xdel != ZERO_ID:
        stream.max_deleted_entry_id = max_xdel
    client.server.keyspace.touch(client.db, argv[1])
    client.server.keyspace.dirty += 1
    client.server.keyspace.notify(client.db, events.STREAM, b"xsetid", argv[1])
    return OK
