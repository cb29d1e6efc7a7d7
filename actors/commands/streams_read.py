"""XREAD and XREADGROUP, served at once or blocked until an XADD (or a group change) lets them be served.

Both parse as Redis 7.0's xreadCommand does. A blocked read waits in actors/server/blocking.py's registry with
a per-waiter ``ready`` predicate: XREAD is ready once the stream's last ID passes the ID it read past (``$``
is resolved to the last ID at call time); XREADGROUP ``>`` once the stream passes its group's last delivered
ID, and also when the key is deleted or changes type (served with ``UNBLOCKED the stream key no longer
exists``) or the group is destroyed (``NOGROUP ...``), as redis-server answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.streams import BLOCKED_DEFAULT_COUNT, GROUP_NEW_ID, get_stream, strict_id
from actors.commands.streams_groups import deliver_history, deliver_new, nogroup
from actors.data import events
from actors.data.stream import MAX_ID, Stream, StreamID
from actors.server.blocking import can_block, registry
from actors.server.server import BLOCKED
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.client import Client

GROUP_GONE = "NOGROUP the consumer group this client was blocked on no longer exists"
KEY_GONE = "UNBLOCKED the stream key no longer exists"
DOLLAR_IN_GROUP = (
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer "
    "by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty "
    "result set."
)
GT_OUTSIDE_GROUP = (
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
)


def _incr(sid: StreamID) -> StreamID:
    ms, seq = sid
    if seq == 2**64 - 1:
        return (ms + 1, 0) if ms < 2**64 - 1 else MAX_ID
    return (ms, seq + 1)


def _reply(client: Client, pairs: list[tuple[bytes, Any]]) -> Any:
    if client.resp3:
        return dict(pairs)
    return [[key, entries] for key, entries in pairs]


def _xread(client: Client, argv: list[bytes], group_mode: bool) -> Any:
    name = "XREADGROUP" if group_mode else "XREAD"
    timeout_ms = -1
    count = 0
    streams_at = 0
    group_name = consumer_name = None
    noack = False
    n = len(argv)
    i = 1
    while i < n:
        more = n - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            i += 1
            timeout_ms = _parse_block_ms(argv[i])
        elif opt == b"count" and more:
            i += 1
            count = max(parse_int(argv[i]), 0)
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (n - streams_at) % 2:
                raise CommandError(
                    f"ERR Unbalanced '{name}' list of streams: for each stream key an ID or '$' must be specified."
                )
            break
        elif opt == b"group" and more >= 2:
            if not group_mode:
                raise CommandError(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                )
            group_name, consumer_name = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not group_mode:
                raise CommandError(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                )
            noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(errors.SYNTAX)
    if group_mode and group_name is None:
        raise CommandError("ERR Missing GROUP option for XREADGROUP")
    half = (n - streams_at) // 2
    keys = argv[streams_at : streams_at + half]
    ids: list[StreamID] = []
    streams: list[Stream | None] = []
    for key, raw in zip(keys, argv[streams_at + half :], strict=True):
        stream = get_stream(client, key)
        streams.append(stream)
        if group_name is not None and (stream is None or group_name not in stream.groups):
            raise CommandError(str(nogroup(key, group_name)) + " in XREADGROUP with GROUP option")
        if raw == b"$":
            if group_mode:
                raise CommandError(DOLLAR_IN_GROUP)
            ids.append(stream.last_id if stream is not None else (0, 0))
        elif raw == b">":
            if not group_mode:
                raise CommandError(GT_OUTSIDE_GROUP)
            ids.append(GROUP_NEW_ID)
        else:
            ids.append(strict_id(raw))
    keyspace = client.server.keyspace
    now = keyspace.clock()
    replies: list[tuple[bytes, Any]] = []
    propagate: list[list[bytes]] = []
    for key, gt, stream in zip(keys, ids, streams, strict=True):
        if stream is None:
            continue
        if group_name is not None:
            assert consumer_name is not None
            group = stream.groups[group_name]
            history = gt != GROUP_NEW_ID
            serve = history
            if not history and stream.length and stream.entries.peekitem(-1)[0] > group.last_id:
                serve = True
                gt = group.last_id
            if serve:
                # redis-server 7.0 creates (and, for NOACK, propagates) the consumer only when it is served.
                consumer = group.consumers.get(consumer_name)
                if consumer is None:
                    consumer = group.consumer(consumer_name, now)
                    assert consumer is not None
                    keyspace.notify(client.db, events.STREAM, b"xgroup-createconsumer", key)
                    if noack:
                        propagate.append([b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name])
                consumer.seen_time = now
                if history:
                    entries = deliver_history(stream, consumer, _incr(gt), count, now)
                else:
                    entries = deliver_new(
                        stream, key, group_name, group, consumer, _incr(gt), count, noack, now, propagate
                    )
                replies.append((key, entries))
                keyspace.dirty += 1
        elif stream.length and stream.entries.peekitem(-1)[0] > gt:
            replies.append(
                (key, [[b"%d-%d" % sid, pairs] for sid, pairs in stream.range(_incr(gt), MAX_ID, count)])
            )
    client.propagate_as = propagate
    if replies:
        return _reply(client, replies)
    if timeout_ms == -1 or not can_block(client):
        return NULL_ARRAY
    waits = dict(zip(keys, ids, strict=True))
    serve_count = count or BLOCKED_DEFAULT_COUNT
    if group_name is None:
        registry(client.server).block(
            client,
            keys,
            Stream,
            timeout_ms,
            NULL_ARRAY,
            _serve_xread(waits, serve_count),
            _xread_ready(waits),
        )
    else:
        assert consumer_name is not None
        registry(client.server).block(
            client,
            keys,
            Stream,
            timeout_ms,
            NULL_ARRAY,
            _serve_group(group_name, consumer_name, serve_count, noack),
            _group_ready(group_name),
        )
    return BLOCKED


def _parse_block_ms(raw: bytes) -> int:
    """BLOCK's milliseconds (getTimeoutFromObjectOrReply with UNIT_MILLISECONDS): an integer, not negative."""
    value = parse_int(raw, "ERR timeout is not an integer or out of range")
    if value < 0:
        raise CommandError("ERR timeout is negative")
    return value


def _xread_ready(waits: dict[bytes, StreamID]) -> Any:
    def ready(db: Database, key: bytes, value: Any) -> bool:
        # As Redis: the stream's last ID, not its last entry (an XADD trimmed away by MAXLEN 0 still serves).
        return type(value) is Stream and value.last_id > waits[key]

    return ready


def _serve_xread(waits: dict[bytes, StreamID], count: int) -> Any:
    def serve(client: Client, db: Database, key: bytes, stream: Stream) -> Any:
        entries = [[b"%d-%d" % sid, pairs] for sid, pairs in stream.range(_incr(waits[key]), MAX_ID, count)]
        return _reply(client, [(key, entries)])

    return serve


def _group_ready(group_name: bytes) -> Any:
    def ready(db: Database, key: bytes, value: Any) -> bool:
        if type(value) is not Stream:
            return True  # deleted or replaced: answered with an error
        group = value.groups.get(group_name)
        return group is None or value.last_id > group.last_id

    return ready


def _serve_group(group_name: bytes, consumer_name: bytes, count: int, noack: bool) -> Any:
    def serve(client: Client, db: Database, key: bytes, stream: Any) -> Any:
        if type(stream) is not Stream:
            raise CommandError(KEY_GONE)
        group = stream.groups.get(group_name)
        if group is None:
            raise CommandError(GROUP_GONE)
        server = client.server
        now = server.keyspace.clock()
        propagate: list[list[bytes]] = []
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            consumer = group.consumer(consumer_name, now)
            assert consumer is not None
            server.keyspace.notify(db, events.STREAM, b"xgroup-createconsumer", key)
            if noack:
                propagate.append([b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name])
        consumer.seen_time = now
        entries = deliver_new(
            stream, key, group_name, group, consumer, _incr(group.last_id), count, noack, now, propagate
        )
        server.keyspace.dirty += 1
        server.stream.propagate_several(db.id, propagate)
        return _reply(client, [(key, entries)])

    return serve


@command(
    "xread",
    -4,
    "readonly blocking movablekeys",
    (0, 0, 0),
    "stream",
    "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller "
    "for each stream. Can block.",
)
def cmd_xread(client: Client, argv: list[bytes]) -> Any:
    return _xread(client, argv, group_mode=False)


@command(
    "xreadgroup",
    -7,
    "write blocking movablekeys",
    (0, 0, 0),
    "stream",
    "Return new entries from a stream using a consumer group, or access the history of the pending entries "
    "for a given consumer. Can block.",
)
def cmd_xreadgroup(client: Client, argv: list[bytes]) -> Any:
    return _xread(client, argv, group_mode=True)
