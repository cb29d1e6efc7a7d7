"""Streams in persistence files. RDB: written as RDB_TYPE_STREAM_LISTPACKS_2 (19) as Redis 7.0 writes them; read from types
15 (Redis 5-6), 19 (7.0) and 21 (7.2, whose consumers also carry an active time).

Layout (rdb.c, rdbSaveObject for OBJ_STREAM): the number of listpack nodes, then per node its 16-byte master
ID (big-endian ms, seq) and the listpack blob; the length; last ID; (19+) first ID, max deleted entry ID and
entries added; then the groups: name, last ID, (19+) entries read, the group PEL (raw 16-byte ID, delivery
time as a little-endian int64 ms, delivery count) and the consumers (name, seen time, (21) active time, and
their PEL as bare IDs that point into the group PEL).

A node listpack holds the master entry (``count, deleted, num-fields, field..., 0``) and then per entry
``flags, ms-delta, seq-delta, [num-fields, field, value... | value... when SAMEFIELDS], lp-count``. We write
each node with its live entries only (tombstones are not kept in memory): redis-server loads that as is.

The RDB string and length primitives are passed in by actors/persistence/rdb/rdb.py, which dispatches here.
AOF: ``stream_rewrite_commands`` gives the commands an AOF rewrite in command form writes for a stream
(actors/persistence/aof/file.py calls it), exactly those of Redis's rewriteStreamObject.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sortedcontainers import SortedDict

from actors.data.stream import (
    INVALID_ENTRIES_READ,
    Consumer,
    ConsumerGroup,
    PendingEntry,
    Stream,
    StreamID,
    StreamNode,
    as_int64,
    lp_int_size,
)
from actors.persistence.rdb.compact import _listpack_backlen, listpack_entries

TYPE_STREAM_LISTPACKS = 15
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_STREAM_LISTPACKS_3 = 21

FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2

_PACK_I64 = struct.Struct("<q").pack
_UNPACK_I64 = struct.Struct("<q").unpack_from
_LP_UNKNOWN_COUNT = 65535

ReadLen = Callable[[bytes, int], tuple[int, int]]
ReadString = Callable[[bytes, int], tuple[bytes, int]]


class StreamFormatError(ValueError):
    """The stream's serialization is inconsistent (the RDB reader reports it with the file offset)."""


# -- writing -----------------------------------------------------------------------------------------------


def _encode_len(n: int) -> bytes:
    """rdbSaveLen (a negative long long is saved as its unsigned 64-bit image, as C's cast does)."""
    if n < 0:
        n += 1 << 64
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | n >> 8, n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _encode_raw(s: bytes) -> bytes:
    return _encode_len(len(s)) + s


def _raw_id(sid: StreamID) -> bytes:
    return sid[0].to_bytes(8, "big") + sid[1].to_bytes(8, "big")


def _lp_int(v: int) -> bytes:
    """A listpack integer element, encoding and backlen (lpEncodeIntegerGetType)."""
    if 0 <= v <= 127:
        return bytes((v, 1))
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes((0xC0 | u >> 8, u & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + v.to_bytes(2, "little", signed=True) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + v.to_bytes(3, "little", signed=True) + b"\x04"
    if -2147483648 <= v <= 2147483647:
        return b"\xf3" + v.to_bytes(4, "little", signed=True) + b"\x05"
    return b"\xf4" + v.to_bytes(8, "little", signed=True) + b"\x09"


def _lp_element(item: bytes) -> bytes:
    value = as_int64(item)
    if value is not None:
        return _lp_int(value)
    n = len(item)
    if n < 64:
        head = bytes((0x80 | n,))
    elif n < 4096:
        head = bytes((0xE0 | n >> 8, n & 0xFF))
    else:
        head = b"\xf0" + n.to_bytes(4, "little")
    return head + item + _listpack_backlen(len(head) + n)


def _listpack(elements: list[bytes], count: int) -> bytes:
    body = b"".join(elements)
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + min(count, _LP_UNKNOWN_COUNT).to_bytes(2, "little") + body + b"\xff"


def _node_listpack(stream: Stream, node: StreamNode) -> bytes:
    fields = node.master_fields
    entries = list(stream.entries.irange(node.master_id, node.last_id))
    parts = [_lp_int(len(entries)), _lp_int(0), _lp_int(len(fields))]
    parts += [_lp_element(f) for f in fields]
    parts.append(_lp_int(0))
    count = 4 + len(fields)
    master_ms, master_seq = node.master_id
    for sid in entries:
        pairs = stream.entries[sid]
        same = tuple(pairs[0::2]) == fields
        parts += (
            _lp_int(FLAG_SAMEFIELDS if same else 0),
            _lp_int(sid[0] - master_ms),
            _lp_int(sid[1] - master_seq),
        )
        if same:
            parts += [_lp_element(v) for v in pairs[1::2]]
            parts.append(_lp_int(len(fields) + 3))
            count += 4 + len(fields)
        else:
            parts.append(_lp_int(len(pairs) // 2))
            parts += [_lp_element(x) for x in pairs]
            parts.append(_lp_int(len(pairs) + 4))
            count += 5 + len(pairs)
    return _listpack(parts, count)


def encode_stream(stream: Stream) -> tuple[int, list[bytes]]:
    """The RDB type (19) and serialized parts of ``stream``."""
    nodes = [node for node in stream.nodes.values() if node.count]
    parts = [_encode_len(len(nodes))]
    for node in nodes:
        parts += (_encode_raw(_raw_id(node.master_id)), _encode_raw(_node_listpack(stream, node)))
    parts.append(_encode_len(stream.length))
    for sid in (stream.last_id, stream.first_id, stream.max_deleted_entry_id):
        parts += (_encode_len(sid[0]), _encode_len(sid[1]))
    parts.append(_encode_len(stream.entries_added))
    parts.append(_encode_len(len(stream.groups)))
    for name, group in sorted(stream.groups.items()):
        parts += (_encode_raw(name), _encode_len(group.last_id[0]), _encode_len(group.last_id[1]))
        parts.append(_encode_len(group.entries_read))
        parts.append(_encode_len(len(group.pel)))
        for sid, nack in group.pel.items():
            parts += (_raw_id(sid), _PACK_I64(nack.delivery_time), _encode_len(nack.delivery_count))
        parts.append(_encode_len(len(group.consumers)))
        for cname, consumer in sorted(group.consumers.items()):
            parts += (_encode_raw(cname), _PACK_I64(consumer.seen_time), _encode_len(len(consumer.pel)))
            parts += [_raw_id(sid) for sid in consumer.pel]
    return TYPE_STREAM_LISTPACKS_2, parts


# -- reading -----------------------------------------------------------------------------------------------


def _decode_id(raw: bytes) -> StreamID:
    if len(raw) != 16:
        raise StreamFormatError("stream ID of the wrong size")
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def _load_node(stream: Stream, master_id: StreamID, blob: bytes) -> None:
    items = listpack_entries(blob)
    try:
        count, deleted, nfields = int(items[0]), int(items[1]), int(items[2])
        fields = tuple(items[3 : 3 + nfields])
        pos = 4 + nfields
        last_id = master_id
        while pos < len(items):
            flags = int(items[pos])
            sid = (master_id[0] + int(items[pos + 1]), master_id[1] + int(items[pos + 2]))
            pos += 3
            if flags & FLAG_SAMEFIELDS:
                values = items[pos : pos + nfields]
                pos += nfields
                pairs = [x for pair in zip(fields, values, strict=True) for x in pair]
            else:
                n = int(items[pos])
                pairs = list(items[pos + 1 : pos + 1 + 2 * n])
                pos += 1 + 2 * n
            pos += 1  # lp-count
            last_id = sid
            if not flags & FLAG_DELETED:
                stream.entries[sid] = pairs
    except (IndexError, ValueError) as exc:
        raise StreamFormatError(f"malformed stream listpack: {exc}") from None
    node = StreamNode(master_id, fields, count, deleted, 0, last_id)
    node.fixed_bytes = len(blob) - 7 - lp_int_size(count) - lp_int_size(deleted)
    stream.nodes[master_id] = node


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def decode_stream(
    data: bytes, pos: int, rtype: int, read_len: ReadLen, read_string: ReadString
) -> tuple[Stream, int]:
    """rdbLoadObject for streams: (stream, next position)."""
    stream = Stream()
    nodes, pos = read_len(data, pos)
    for _ in range(nodes):
        key, pos = read_string(data, pos)
        blob, pos = read_string(data, pos)
        _load_node(stream, _decode_id(key), blob)
    length, pos = read_len(data, pos)
    if length != stream.length:
        raise StreamFormatError("stream length does not match its entries")
    ms, pos = read_len(data, pos)
    seq, pos = read_len(data, pos)
    stream.last_id = (ms, seq)
    if rtype >= TYPE_STREAM_LISTPACKS_2:
        ms, pos = read_len(data, pos)
        seq, pos = read_len(data, pos)
        stream.first_id = (ms, seq)
        ms, pos = read_len(data, pos)
        seq, pos = read_len(data, pos)
        stream.max_deleted_entry_id = (ms, seq)
        stream.entries_added, pos = read_len(data, pos)
    else:
        stream.entries_added = stream.length
        stream.first_id = stream.entries.peekitem(0)[0] if stream.entries else (0, 0)
    ngroups, pos = read_len(data, pos)
    for _ in range(ngroups):
        name, pos = read_string(data, pos)
        ms, pos = read_len(data, pos)
        seq, pos = read_len(data, pos)
        if rtype >= TYPE_STREAM_LISTPACKS_2:
            raw_read, pos = read_len(data, pos)
            entries_read = _signed(raw_read)
        else:
            entries_read = stream.estimate_distance((ms, seq))
        group = ConsumerGroup((ms, seq), entries_read if entries_read >= -1 else INVALID_ENTRIES_READ)
        pel_size, pos = read_len(data, pos)
        orphans: dict[StreamID, PendingEntry] = {}
        for _ in range(pel_size):
            sid = _decode_id(data[pos : pos + 16])
            delivery_time = _UNPACK_I64(data, pos + 16)[0]
            count, pos = read_len(data, pos + 24)
            nack = PendingEntry(delivery_time, count, None)  # type: ignore[arg-type]
            group.pel[sid] = nack
            orphans[sid] = nack
        nconsumers, pos = read_len(data, pos)
        for _ in range(nconsumers):
            cname, pos = read_string(data, pos)
            seen = _UNPACK_I64(data, pos)[0]
            pos += 8
            if rtype >= TYPE_STREAM_LISTPACKS_3:
                pos += 8  # active time (Redis 7.2): not kept by 7.0's model
            consumer = Consumer(cname, seen, SortedDict())
            owned, pos = read_len(data, pos)
            for _ in range(owned):
                sid = _decode_id(data[pos : pos + 16])
                pos += 16
                found = orphans.pop(sid, None)
                if found is None:
                    raise StreamFormatError("consumer PEL entry missing from the group PEL")
                found.consumer = consumer
                consumer.pel[sid] = found
            group.consumers[cname] = consumer
        if orphans:
            raise StreamFormatError("group PEL entry owned by no consumer")
        stream.groups[name] = group
    if pos > len(data):
        raise IndexError
    return stream, pos


# -- the AOF rewrite form ----------------------------------------------------------------------------------


def stream_rewrite_commands(key: bytes, stream: Stream) -> list[list[bytes]]:
    """rewriteStreamObject: the commands that rebuild ``stream`` when an AOF in command form is replayed.

    XADD per entry (an empty stream: ``XADD key MAXLEN 0 0-1 x y``), XSETID with ENTRIESADDED and
    MAXDELETEDID, then per group XGROUP CREATE ... ENTRIESREAD, and per consumer either XGROUP CREATECONSUMER
    (nothing pending) or one ``XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n JUSTID FORCE`` per entry.
    """
    out: list[list[bytes]] = []
    if stream.length:
        for (ms, seq), pairs in stream.entries.items():
            out.append([b"XADD", key, b"%d-%d" % (ms, seq), *pairs])
    else:
        out.append([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])
    out.append([
        b"XSETID", key, b"%d-%d" % stream.last_id, b"ENTRIESADDED", b"%d" % stream.entries_added,
        b"MAXDELETEDID", b"%d-%d" % stream.max_deleted_entry_id,
    ])  # fmt: skip
    for name, group in sorted(stream.groups.items()):
        out.append([
            b"XGROUP", b"CREATE", key, name, b"%d-%d" % group.last_id, b"ENTRIESREAD", b"%d" % group.entries_read
        ])  # fmt: skip
        for cname, consumer in sorted(group.consumers.items()):
            if not consumer.pel:
                out.append([b"XGROUP", b"CREATECONSUMER", key, name, cname])
                continue
            for sid, nack in consumer.pel.items():
                out.append([
                    b"XCLAIM", key, name, cname, b"0", b"%d-%d" % sid, b"TIME", b"%d" % nack.delivery_time,
                    b"RETRYCOUNT", b"%d" % nack.delivery_count, b"JUSTID", b"FORCE",
                ])  # fmt: skip
    return out
