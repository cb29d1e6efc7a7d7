"""Stream consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, and the group side of reading.

Pending entries (``PendingEntry``) sit in the group's PEL and in their consumer's PEL at once. Delivering an
entry to a consumer (XREADGROUP, in actors/commands/streams_read.py) creates or reassigns one; XACK removes
it; XCLAIM / XAUTOCLAIM move it. Entries deleted from the stream while pending are dropped from the PEL when
claimed (XAUTOCLAIM reports their IDs), as Redis 7.0 does.

Propagation is Redis's: a read that creates pending entries is propagated as one ``XCLAIM key group consumer
0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID id`` per entry (idempotent on a replica), a NOACK read as
``XGROUP SETID key group id ENTRIESREAD n`` (after ``XGROUP CREATECONSUMER`` for a new consumer), and XCLAIM /
XAUTOCLAIM likewise as those XCLAIM forms, never as themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.streams import (
    entry_reply,
    get_stream,
    new_stream,
    parse_id,
    parse_range_bound,
    strict_id,
)
from actors.data import events
from actors.data.stream import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    ConsumerGroup,
    PendingEntry,
    Stream,
    StreamID,
    format_id,
)
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import NULL_ARRAY, OK

if TYPE_CHECKING:
    from actors.data.stream import Consumer
    from actors.server.client import Client

KEY_REQUIRED = (
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the "
    "MKSTREAM option to create an empty stream automatically."
)
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
ENTRIESREAD_RANGE = "ERR value for ENTRIESREAD must be positive or -1"


def nogroup(key: bytes, group: bytes) -> CommandError:
    return CommandError(f"NOGROUP No such key '{echoed(key)}' or consumer group '{echoed(group)}'")


def nogroup_for_key(key: bytes, group: bytes) -> CommandError:
    return CommandError(f"NOGROUP No such consumer group '{echoed(group)}' for key name '{echoed(key)}'")


def _subcommand_error(cmd: str, sub: bytes) -> CommandError:
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{echoed(sub)[:128]}'. Try {cmd} HELP."
    )


XGROUP_ARITY = {
    b"create": -5,
    b"setid": -5,
    b"destroy": 4,
    b"createconsumer": 5,
    b"delconsumer": 5,
    b"help": 2,
}


def _check_subcommand(cmd: str, argv: list[bytes], arities: dict[bytes, int]) -> bytes:
    """The lowercased subcommand, refused as Redis 7.0's table refuses unknown ones and wrong arities."""
    sub = argv[1].lower()
    arity = arities.get(sub)
    if arity is None:
        raise CommandError(f"ERR unknown subcommand '{echoed(argv[1])[:128]}'. Try {cmd} HELP.")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise CommandError(f"ERR wrong number of arguments for '{cmd.lower()}|{sub.decode()}' command")
    return sub


def xclaim_argv(
    key: bytes, group_name: bytes, group: ConsumerGroup, sid: StreamID, nack: PendingEntry
) -> list[bytes]:
    """streamPropagateXCLAIM: the idempotent XCLAIM that recreates ``nack`` on a replica or from the AOF."""
    return [
        b"XCLAIM", key, group_name, nack.consumer.name, b"0", format_id(sid), b"TIME", b"%d" % nack.delivery_time,
        b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE", b"JUSTID", b"LASTID", format_id(group.last_id),
    ]  # fmt: skip


def setid_argv(key: bytes, group_name: bytes, group: ConsumerGroup) -> list[bytes]:
    """streamPropagateGroupID."""
    return [b"XGROUP", b"SETID", key, group_name, format_id(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]  # fmt: skip


def deliver_new(
    stream: Stream,
    key: bytes,
    group_name: bytes,
    group: ConsumerGroup,
    consumer: Consumer,
    start: StreamID,
    count: int,
    noack: bool,
    now_ms: int,
    propagate: list[list[bytes]],
) -> list[Any]:
    """streamReplyWithRange with a group: entries from ``start``, recorded as pending for ``consumer``."""
    out = []
    advanced = False
    for sid, pairs in stream.range(start, MAX_ID, count):
        if sid > group.last_id:
            stream.group_advance(group, sid)
            advanced = advanced or noack
        if not noack:
            nack = group.pel.get(sid)
            if nack is None:
                nack = PendingEntry(now_ms, 1, consumer)
                group.pel[sid] = nack
                consumer.pel[sid] = nack
            else:
                del nack.consumer.pel[sid]
                nack.consumer = consumer
                nack.delivery_time = now_ms
                nack.delivery_count = 1
                consumer.pel[sid] = nack
            propagate.append(xclaim_argv(key, group_name, group, sid, nack))
        out.append(entry_reply(sid, pairs))
    if advanced:
        propagate.append(setid_argv(key, group_name, group))
    return out


def deliver_history(
    stream: Stream, consumer: Consumer, start: StreamID, count: int, now_ms: int
) -> list[Any]:
    """streamReplyWithRangeFromConsumerPEL: the consumer's pending entries from ``start`` (deleted: nil)."""
    out: list[Any] = []
    for sid in consumer.pel.irange(minimum=start):
        if count and len(out) >= count:
            break
        pairs = stream.entries.get(sid)
        if pairs is None:
            out.append([format_id(sid), NULL_ARRAY])
        else:
            nack = consumer.pel[sid]
            nack.delivery_time = now_ms
            nack.delivery_count += 1
            out.append(entry_reply(sid, pairs))
    return out


# -- XGROUP ------------------------------------------------------------------------------------------------


def _entries_read_option(argv: list[bytes], start: int, allow_mkstream: bool) -> tuple[int, bool]:
    entries_read = INVALID_ENTRIES_READ
    mkstream = False
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        if allow_mkstream and opt == b"mkstream":
            mkstream = True
            i += 1
        elif opt == b"entriesread" and i + 1 < len(argv):
            entries_read = parse_int(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise CommandError(ENTRIESREAD_RANGE)
            i += 2
        else:
            raise _subcommand_error("XGROUP", argv[1])
    return entries_read, mkstream


XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


@command(
    "xgroup",
    -2,
    "write",
    (2, 2, 1),
    "stream",
    "A container for consumer groups commands",
    subcommands=("create", "setid", "destroy", "createconsumer", "delconsumer", "help"),
)
def cmd_xgroup(client: Client, argv: list[bytes]) -> Any:
    sub = _check_subcommand("XGROUP", argv, XGROUP_ARITY)
    n = len(argv)
    if sub == b"help":
        return XGROUP_HELP
    entries_read, mkstream = INVALID_ENTRIES_READ, False
    if sub == b"create" and 5 <= n <= 8:
        entries_read, mkstream = _entries_read_option(argv, 5, True)
    elif sub == b"setid" and n in (5, 7):
        entries_read, _ = _entries_read_option(argv, 5, False)
    keyspace = client.server.keyspace
    db = client.db
    key, group_name = argv[2], argv[3]
    stream = get_stream(client, key, read=False)
    if stream is None and not mkstream:
        raise CommandError(KEY_REQUIRED)
    group = stream.groups.get(group_name) if stream is not None else None
    if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
        raise nogroup_for_key(key, group_name)
    now = keyspace.clock()
    if sub == b"create" and 5 <= n <= 8:
        if argv[4] == b"$":
            sid = stream.last_id if stream is not None else (0, 0)
        else:
            sid = strict_id(argv[4])
        if stream is None:
            stream = new_stream(client)
            keyspace.add(db, key, stream)
        if group_name in stream.groups:
            raise CommandError(BUSYGROUP)
        stream.groups[group_name] = ConsumerGroup(sid, entries_read)
        keyspace.dirty += 1
        keyspace.notify(db, events.STREAM, b"xgroup-create", key)
        return OK
    assert stream is not None
    if sub == b"setid" and n in (5, 7):
        assert group is not None
        sid = stream.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
        group.last_id = sid
        group.entries_read = entries_read
        keyspace.dirty += 1
        keyspace.notify(db, events.STREAM, b"xgroup-setid", key)
        return OK
    if sub == b"destroy" and n == 4:
        if group is None:
            return 0
        del stream.groups[group_name]
        keyspace.dirty += 1
        keyspace.touch(db, key)  # wakes XREADGROUP waiters of this group with NOGROUP
        keyspace.notify(db, events.STREAM, b"xgroup-destroy", key)
        return 1
    if sub == b"createconsumer" and n == 5:
        assert group is not None
        if argv[4] in group.consumers:
            return 0
        group.consumer(argv[4], now)
        keyspace.dirty += 1
        keyspace.notify(db, events.STREAM, b"xgroup-createconsumer", key)
        return 1
    if sub == b"delconsumer" and n == 5:
        assert group is not None
        if argv[4] not in group.consumers:
            return 0
        pending = group.remove_consumer(argv[4])
        keyspace.dirty += 1
        keyspace.notify(db, events.STREAM, b"xgroup-delconsumer", key)
        return pending
    raise _subcommand_error("XGROUP", argv[1])


# -- XACK / XPENDING ---------------------------------------------------------------------------------------


@command("xack", -4, "write fast", (1, 1, 1), "stream", "Marks a pending message as correctly processed")
def cmd_xack(client: Client, argv: list[bytes]) -> Any:
    # Redis's order: the key's type, then no stream or no group acks nothing (0, whatever the IDs), then every ID
    # is checked before any is acknowledged.
    stream = get_stream(client, argv[1], read=False)
    if stream is None:
        return 0
    group = stream.groups.get(argv[2])
    if group is None:
        return 0
    ids = [strict_id(raw) for raw in argv[3:]]
    acked = 0
    for sid in ids:
        nack = group.pel.pop(sid, None)
        if nack is not None:
            del nack.consumer.pel[sid]
            acked += 1
    client.server.keyspace.dirty += acked
    return acked


@command(
    "xpending",
    -3,
    "readonly",
    (1, 1, 1),
    "stream",
    "Return information and entries from a stream consumer group pending entries list",
)
def cmd_xpending(client: Client, argv: list[bytes]) -> Any:
    n = len(argv)
    if n != 3 and not 6 <= n <= 9:
        raise CommandError(errors.SYNTAX)
    min_idle = 0
    consumer_name = None
    if n >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = parse_int(argv[4])
            if n < 8:
                raise CommandError(errors.SYNTAX)
            at = 5
        count = max(parse_int(argv[at + 2]), 0)
        start = parse_range_bound(argv[at], start=True)
        end = parse_range_bound(argv[at + 1], start=False)
        if at + 3 < n:
            consumer_name = argv[at + 3]
    stream = get_stream(client, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise nogroup(argv[1], argv[2])
    if n == 3:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [[name, b"%d" % len(c.pel)] for name, c in sorted(group.consumers.items()) if c.pel]
        return [
            len(group.pel),
            format_id(group.pel.peekitem(0)[0]),
            format_id(group.pel.peekitem(-1)[0]),
            owners,
        ]
    pel = group.pel
    if consumer_name is not None:
        found = group.consumers.get(consumer_name)
        if found is None:
            return []
        pel = found.pel
    now = client.server.keyspace.clock()
    out: list[Any] = []
    if start is None or end is None or start > end:
        return out
    for sid in pel.irange(start, end):
        if not count:
            break
        nack = pel[sid]
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        count -= 1
        out.append(
            [format_id(sid), nack.consumer.name, max(now - nack.delivery_time, 0), nack.delivery_count]
        )
    return out


# -- XCLAIM / XAUTOCLAIM -----------------------------------------------------------------------------------


def _consumer_for_claim(client: Client, group: ConsumerGroup, argv: list[bytes], now: int) -> Consumer:
    """XCLAIM / XAUTOCLAIM's consumer (argv[3] of the group at argv[1]), created on first use (an event)."""
    consumer = group.consumers.get(argv[3])
    if consumer is None:
        consumer = group.consumer(argv[3], now)
        assert consumer is not None
        client.server.keyspace.notify(client.db, events.STREAM, b"xgroup-createconsumer", argv[1])
    return consumer


def _claim(group: ConsumerGroup, consumer: Consumer, sid: StreamID, nack: PendingEntry) -> None:
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        consumer.pel[sid] = nack
        nack.consumer = consumer


def _drop_pending(group: ConsumerGroup, sid: StreamID) -> None:
    nack = group.pel.pop(sid)
    if nack.consumer is not None:
        nack.consumer.pel.pop(sid, None)


@command(
    "xclaim",
    -6,
    "write fast",
    (1, 1, 1),
    "stream",
    "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the "
    "specified consumer.",
)
def cmd_xclaim(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key, group_name = argv[1], argv[2]
    stream = get_stream(client, key)
    group = stream.groups.get(group_name) if stream is not None else None
    if stream is None or group is None:
        raise nogroup(key, group_name)
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    j = 5
    ids: list[StreamID] = []
    while j < len(argv):
        try:
            ids.append(strict_id(argv[j]))
        except CommandError:
            break
        j += 1
    now = keyspace.clock()
    force = justid = False
    retrycount = -1
    delivery_time = -1
    last_id = (0, 0)
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            delivery_time = now - parse_int(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            delivery_time = parse_int(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = parse_int(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = strict_id(argv[j])
        else:
            raise CommandError(f"ERR Unrecognized XCLAIM option '{echoed(argv[j])}'")
        j += 1
    propagate: list[list[bytes]] = []
    propagate_last_id = False
    if last_id > group.last_id:
        group.last_id = last_id
        propagate_last_id = True
    if delivery_time == -1 or delivery_time < 0 or delivery_time > now:
        delivery_time = now
    consumer = None
    out: list[Any] = []
    dirty = 0
    for sid in ids:
        nack = group.pel.get(sid)
        if sid not in stream.entries:
            if nack is not None:
                propagate.append(xclaim_argv(key, group_name, group, sid, nack))
                propagate_last_id = False
                dirty += 1
                _drop_pending(group, sid)
            continue
        if force and nack is None:
            nack = PendingEntry(now, 1, None)  # type: ignore[arg-type]
            group.pel[sid] = nack
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _consumer_for_claim(client, group, argv, now)
            consumer.seen_time = now
        _claim(group, consumer, sid, nack)
        nack.delivery_time = delivery_time
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        out.append(format_id(sid) if justid else entry_reply(sid, stream.entries[sid]))
        consumer.seen_time = now
        propagate.append(xclaim_argv(key, group_name, group, sid, nack))
        propagate_last_id = False
        dirty += 1
    if propagate_last_id:
        propagate.append(setid_argv(key, group_name, group))
        dirty += 1
    keyspace.dirty += dirty
    client.propagate_as = propagate
    return out


@command(
    "xautoclaim",
    -6,
    "write fast",
    (1, 1, 1),
    "stream",
    "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the "
    "specified consumer.",
)
def cmd_xautoclaim(client: Client, argv: list[bytes]) -> Any:
    keyspace = client.server.keyspace
    key, group_name = argv[1], argv[2]
    min_idle = max(parse_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start = parse_range_bound(argv[5], start=True)
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            count = parse_int(argv[j + 1], "ERR COUNT must be > 0")
            if not 1 <= count <= (2**63 - 1) // 16:
                raise CommandError("ERR COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    stream = get_stream(client, key)
    group = stream.groups.get(group_name) if stream is not None else None
    if stream is None or group is None:
        raise nogroup(key, group_name)
    assert start is not None
    attempts = count * 10
    now = keyspace.clock()
    keys = list(group.pel.irange(minimum=start))
    idx = 0
    consumer = None
    claimed: list[Any] = []
    deleted: list[bytes] = []
    propagate: list[list[bytes]] = []
    dirty = 0
    while attempts and count and idx < len(keys):
        attempts -= 1
        sid = keys[idx]
        idx += 1
        nack = group.pel[sid]
        if sid not in stream.entries:
            propagate.append(xclaim_argv(key, group_name, group, sid, nack))
            dirty += 1
            _drop_pending(group, sid)
            deleted.append(format_id(sid))
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _consumer_for_claim(client, group, argv, now)
            consumer.seen_time = now
        _claim(group, consumer, sid, nack)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        claimed.append(format_id(sid) if justid else entry_reply(sid, stream.entries[sid]))
        count -= 1
        propagate.append(xclaim_argv(key, group_name, group, sid, nack))
        dirty += 1
    cursor = format_id(keys[idx]) if idx < len(keys) else b"0-0"
    keyspace.dirty += dirty
    client.propagate_as = propagate
    return [cursor, claimed, deleted]
