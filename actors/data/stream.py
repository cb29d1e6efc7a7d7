"""The stream type: entries ordered by ID, consumer groups, their pending lists and consumers.

A stream is a ``SortedDict`` of ``(ms, seq) -> [field, value, field, value, ...]`` (IDs are tuples, so Python
compares them as Redis's streamCompareID does) plus the counters Redis 7.0 keeps: ``last_id`` (the top ID ever
added, deleted or not), ``first_id``, ``max_deleted_entry_id`` and ``entries_added`` (the logical counter
consumer-group lag is computed from).

Beside the entries, the stream models Redis's listpack *nodes* (``StreamNode``: how many entries, live and
deleted, and how many bytes each node's listpack takes) because they are observable: ``XADD ... MAXLEN ~ n``
and ``XTRIM ... ~`` remove only whole nodes, so the resulting XLEN depends on where Redis cut the nodes (at
``stream-node-max-entries`` entries or ``stream-node-max-bytes`` bytes, as streamAppendItem decides).

Consumer groups follow t_stream.c: a group has a ``last_id``, an ``entries_read`` counter (-1 when unknown),
a pending entries list (PEL: ID -> ``PendingEntry``) and consumers, each with its own PEL sharing the same
``PendingEntry`` objects. Plain data: no I/O, no clock (callers pass ``now_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sortedcontainers import SortedDict

StreamID = tuple[int, int]

UINT64_MAX = 2**64 - 1
MAX_ID: StreamID = (UINT64_MAX, UINT64_MAX)
ZERO_ID: StreamID = (0, 0)
# entries_read when the group's position in the stream's history is unknown (Redis's SCG_INVALID_ENTRIES_READ).
INVALID_ENTRIES_READ = -1
# Redis's defaults for stream-node-max-entries / stream-node-max-bytes, and the listpack size cap used when
# the byte limit is 0.
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096
LISTPACK_MAX_SIZE = 1 << 30
# Listpack framing: total-bytes (u32) + count (u16) header, and the end byte.
_LP_FRAME_BYTES = 7


def format_id(sid: StreamID) -> bytes:
    return b"%d-%d" % sid


def lp_int_size(v: int) -> int:
    """Bytes a listpack integer element takes (encoding + backlen), as lpEncodeIntegerGetType sizes it."""
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -2147483648 <= v <= 2147483647:
        return 6
    return 10


def as_int64(item: bytes) -> int | None:
    """The integer ``item`` spells exactly as string2ll reads it, or None (listpacks store those as ints)."""
    n = len(item)
    if n == 0 or n > 20:
        return None
    body = item[1:] if item[0] == 45 else item
    if not body.isdigit() or (body[0] == 48 and (len(body) > 1 or body is not item)):
        return None
    value = int(item)
    if not -(2**63) <= value < 2**63:
        return None
    return value


def _backlen_size(n: int) -> int:
    return 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5


def lp_element_size(item: bytes) -> int:
    """Bytes ``item`` takes as a listpack element (Redis stores integer-looking strings as integers)."""
    value = as_int64(item)
    if value is not None:
        return lp_int_size(value)
    n = len(item)
    head = 1 if n < 64 else 2 if n < 4096 else 5
    return head + n + _backlen_size(head + n)


@dataclass(eq=False, slots=True)
class StreamNode:
    """One listpack node as Redis would have built it: sizes and counts only (entries live in the stream)."""

    master_id: StreamID
    master_fields: tuple[bytes, ...]
    # Live entries (the listpack's first integer) and entries flagged deleted (the second).
    count: int = 0
    deleted: int = 0
    # Bytes of every element except the header, the end byte and the two counters (whose size varies).
    fixed_bytes: int = 0
    # The ID of the last entry appended, deleted or not (lpGetEdgeStreamID reads it for MINID trimming).
    last_id: StreamID = ZERO_ID

    def lp_bytes(self) -> int:
        return _LP_FRAME_BYTES + lp_int_size(self.count) + lp_int_size(self.deleted) + self.fixed_bytes


@dataclass(eq=False, slots=True)
class Consumer:
    name: bytes
    # Last time the consumer was seen (XREADGROUP, XCLAIM, ...): XINFO's "idle" is now minus this.
    seen_time: int
    pel: SortedDict = field(default_factory=SortedDict)


@dataclass(eq=False, slots=True)
class PendingEntry:
    """A delivered, unacknowledged entry (Redis's streamNACK): in the group's PEL and its consumer's."""

    delivery_time: int
    delivery_count: int
    consumer: Consumer


@dataclass(eq=False, slots=True)
class ConsumerGroup:
    last_id: StreamID
    entries_read: int
    pel: SortedDict = field(default_factory=SortedDict)
    # name -> consumer; listed in name order (Redis keeps them in a rax).
    consumers: dict[bytes, Consumer] = field(default_factory=dict)

    def consumer(self, name: bytes, now_ms: int, create: bool = True) -> Consumer | None:
        found = self.consumers.get(name)
        if found is None and create:
            found = self.consumers[name] = Consumer(name, now_ms)
        return found

    def remove_consumer(self, name: bytes) -> int:
        """Delete a consumer and its pending entries; returns how many were pending."""
        found = self.consumers.pop(name)
        for sid in found.pel:
            del self.pel[sid]
        return len(found.pel)


class Stream:
    __slots__ = (
        "entries",
        "nodes",
        "last_id",
        "first_id",
        "max_deleted_entry_id",
        "entries_added",
        "groups",
        "node_max_entries",
        "node_max_bytes",
    )

    def __init__(
        self, node_max_entries: int = NODE_MAX_ENTRIES, node_max_bytes: int = NODE_MAX_BYTES
    ) -> None:
        self.entries: SortedDict = SortedDict()
        # master ID -> StreamNode, in ID order (Redis's rax of listpacks).
        self.nodes: SortedDict = SortedDict()
        self.last_id: StreamID = ZERO_ID
        self.first_id: StreamID = ZERO_ID
        self.max_deleted_entry_id: StreamID = ZERO_ID
        self.entries_added = 0
        # name -> group, in creation order; listed in name order (a rax in Redis).
        self.groups: dict[bytes, ConsumerGroup] = {}
        self.node_max_entries = node_max_entries
        self.node_max_bytes = node_max_bytes

    @property
    def length(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Stream(len={len(self.entries)}, last_id={self.last_id})"

    # -- adding ---------------------------------------------------------------------------------------

    def next_id(self, now_ms: int, ms: int | None = None) -> StreamID | None:
        """The ID ``*`` (ms None) or ``ms-*`` gives; None when it would not be greater than last_id."""
        last_ms, last_seq = self.last_id
        if ms is None:
            if now_ms > last_ms:
                return (now_ms, 0)
            if last_seq == UINT64_MAX:
                if last_ms == UINT64_MAX:
                    return None
                return (last_ms + 1, 0)
            return (last_ms, last_seq + 1)
        if ms == last_ms:
            if last_seq == UINT64_MAX:
                return None
            return (ms, last_seq + 1)
        if ms < last_ms:
            return None
        return (ms, 0)

    def append(self, sid: StreamID, pairs: list[bytes]) -> None:
        """Add an entry whose ID is known to be greater than last_id, as streamAppendItem lays it out."""
        fields = tuple(pairs[0::2])
        values_bytes = sum(len(x) for x in pairs)
        node = None
        if self.nodes:
            node = self.nodes.peekitem(-1)[1]
            max_bytes = self.node_max_bytes
            if max_bytes == 0 or max_bytes > LISTPACK_MAX_SIZE:
                max_bytes = LISTPACK_MAX_SIZE
            if node.lp_bytes() + values_bytes >= max_bytes:
                node = None
            elif self.node_max_entries and node.count + node.deleted >= self.node_max_entries:
                node = None
        if node is None:
            node = StreamNode(sid, fields)
            node.fixed_bytes = (
                lp_int_size(len(fields)) + sum(lp_element_size(f) for f in fields) + lp_int_size(0)
            )
            self.nodes[sid] = node
        master_ms, master_seq = node.master_id
        size = 2 + lp_int_size(sid[0] - master_ms) + lp_int_size(sid[1] - master_seq)  # flags + deltas
        if fields == node.master_fields:
            size += sum(lp_element_size(v) for v in pairs[1::2])
            size += lp_int_size(len(fields) + 3)
        else:
            size += lp_int_size(len(fields)) + sum(lp_element_size(x) for x in pairs)
            size += lp_int_size(len(pairs) + 4)
        node.fixed_bytes += size
        node.count += 1
        node.last_id = sid
        self.entries[sid] = pairs
        if not self.entries_added or len(self.entries) == 1:
            self.first_id = sid
        self.last_id = sid
        self.entries_added += 1

    # -- removing -------------------------------------------------------------------------------------

    def _node_of(self, sid: StreamID) -> StreamNode:
        nodes = self.nodes
        return nodes.peekitem(nodes.bisect_right(sid) - 1)[1]

    def delete(self, sid: StreamID) -> bool:
        """XDEL one ID: True if it existed."""
        if self.entries.pop(sid, None) is None:
            return False
        node = self._node_of(sid)
        node.count -= 1
        node.deleted += 1
        if node.count == 0:
            del self.nodes[node.master_id]
        if sid > self.max_deleted_entry_id:
            self.max_deleted_entry_id = sid
        if sid == self.first_id:
            self._refresh_first_id()
        return True

    def _refresh_first_id(self) -> None:
        self.first_id = self.entries.peekitem(0)[0] if self.entries else ZERO_ID

    def _pop_first(self, n: int) -> None:
        entries = self.entries
        for _ in range(n):
            entries.popitem(0)

    def trim(self, maxlen: int | None, minid: StreamID | None, approx: bool, limit: int) -> int:
        """XTRIM / XADD's trimming, node by node as streamTrim does; returns how many entries went."""
        deleted = 0
        nodes = self.nodes
        while nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node = nodes.peekitem(0)[1]
            if limit and deleted + node.count > limit:
                break
            if maxlen is not None:
                remove_node = len(self.entries) - node.count >= maxlen
            else:
                assert minid is not None
                remove_node = node.last_id < minid
            if remove_node:
                self._pop_first(node.count)
                deleted += node.count
                del nodes[node.master_id]
                continue
            if approx:
                break
            # Mark entries deleted inside this node: they are the stream's first live entries.
            in_node = 0
            entries = self.entries
            while entries:
                sid = entries.peekitem(0)[0]
                if sid > node.last_id:
                    break
                if maxlen is not None:
                    if len(entries) <= maxlen:
                        break
                elif minid is not None and sid >= minid:
                    break
                entries.popitem(0)
                in_node += 1
            node.count -= in_node
            node.deleted += in_node
            deleted += in_node
            break
        if deleted:
            self._refresh_first_id()
        return deleted

    # -- reading --------------------------------------------------------------------------------------

    def range(
        self, start: StreamID, end: StreamID, count: int = 0, reverse: bool = False
    ) -> list[tuple[StreamID, list[bytes]]]:
        """Entries with start <= ID <= end (highest first if ``reverse``), at most ``count`` (0: all)."""
        if start > end:
            return []
        entries = self.entries
        keys = entries.irange(start, end, reverse=reverse)
        out = []
        for sid in keys:
            out.append((sid, entries[sid]))
            if count and len(out) >= count:
                break
        return out

    def last_entry(self) -> tuple[StreamID, list[bytes]] | None:
        if not self.entries:
            return None
        sid, pairs = self.entries.peekitem(-1)
        return sid, pairs

    # -- consumer-group counters (t_stream.c) ---------------------------------------------------------

    def has_tombstones(self, start: StreamID | None, end: StreamID | None = None) -> bool:
        """streamRangeHasTombstones: may a deleted entry lie between ``start`` and ``end``?"""
        if not self.entries or self.max_deleted_entry_id == ZERO_ID:
            return False
        if self.first_id > self.max_deleted_entry_id:
            return False
        lo = start if start is not None else ZERO_ID
        hi = end if end is not None else MAX_ID
        return lo <= self.max_deleted_entry_id <= hi

    def estimate_distance(self, sid: StreamID) -> int:
        """streamEstimateDistanceFromFirstEverEntry: the logical counter of ``sid``, or -1 if unknown."""
        if not self.entries_added:
            return 0
        if not self.entries and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted_entry_id == ZERO_ID or self.max_deleted_entry_id < self.first_id:
            if sid < self.first_id:
                return self.entries_added - len(self.entries)
            if sid == self.first_id:
                return self.entries_added - len(self.entries) + 1
        return INVALID_ENTRIES_READ

    def group_lag(self, group: ConsumerGroup) -> int | None:
        """streamReplyWithCGLag: entries not yet read by the group, or None when it cannot be known."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_distance(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def group_advance(self, group: ConsumerGroup, sid: StreamID) -> None:
        """A group delivered ``sid`` (greater than its last_id): move last_id and the read counter."""
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(sid):
            group.entries_read += 1
        elif self.entries_added:
            group.entries_read = self.estimate_distance(sid)
        group.last_id = sid

    def copy(self) -> Stream:
        clone = Stream(self.node_max_entries, self.node_max_bytes)
        clone.entries = SortedDict((k, list(v)) for k, v in self.entries.items())
        for master, node in self.nodes.items():
            clone.nodes[master] = StreamNode(
                node.master_id, node.master_fields, node.count, node.deleted, node.fixed_bytes, node.last_id
            )
        clone.last_id = self.last_id
        clone.first_id = self.first_id
        clone.max_deleted_entry_id = self.max_deleted_entry_id
        clone.entries_added = self.entries_added
        for name, group in self.groups.items():
            cg = ConsumerGroup(group.last_id, group.entries_read)
            for cname, consumer in group.consumers.items():
                copied = cg.consumers[cname] = Consumer(cname, consumer.seen_time)
                for sid, nack in consumer.pel.items():
                    copied_nack = PendingEntry(nack.delivery_time, nack.delivery_count, copied)
                    copied.pel[sid] = copied_nack
                    cg.pel[sid] = copied_nack
            clone.groups[name] = cg
        return clone
