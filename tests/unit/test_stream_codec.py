"""The stream model and its RDB codec in process: node cutting, trimming by whole nodes, RDB 19 round trips,
and type 15 (Redis 5-6: no first ID, tombstone ID, entries added or entries read) read with Redis's defaults."""

from __future__ import annotations

from actors.data.stream import Stream
from actors.persistence.rdb import decode
from actors.persistence.rdb.stream_codec import (
    TYPE_STREAM_LISTPACKS,
    _encode_len,
    _encode_raw,
    _node_listpack,
    _raw_id,
    decode_stream,
    encode_stream,
)


def _stream(n: int, node_max_entries: int = 100) -> Stream:
    s = Stream(node_max_entries=node_max_entries)
    for i in range(1, n + 1):
        s.append((i, 0), [b"f", b"%d" % i])
    return s


def test_nodes_are_cut_at_the_entry_limit_and_approximate_trims_drop_whole_nodes() -> None:
    s = _stream(250)
    assert [node.count for node in s.nodes.values()] == [100, 100, 50]
    assert s.trim(maxlen=120, minid=None, approx=True, limit=10_000) == 100
    assert s.length == 150 and s.first_id == (101, 0)
    assert s.trim(maxlen=120, minid=None, approx=False, limit=0) == 30
    assert s.length == 120 and s.first_id == (131, 0)
    assert s.trim(maxlen=None, minid=(240, 0), approx=True, limit=10_000) == 70  # the rest of the first node


def test_a_type_19_round_trip_keeps_counters_groups_and_pending_entries() -> None:
    s = _stream(30, node_max_entries=8)
    s.delete((5, 0))
    from actors.data.stream import ConsumerGroup, PendingEntry

    group = s.groups[b"g"] = ConsumerGroup((12, 0), 11)
    consumer = group.consumer(b"c", 1000)
    assert consumer is not None
    nack = PendingEntry(1234, 3, consumer)
    group.pel[(7, 0)] = consumer.pel[(7, 0)] = nack
    rtype, parts = encode_stream(s)
    back, end = decode_stream(b"".join(parts), 0, rtype, decode.read_len, decode.read_string)
    assert end == len(b"".join(parts))
    assert back.entries == s.entries and back.last_id == s.last_id
    assert (back.first_id, back.max_deleted_entry_id, back.entries_added) == ((1, 0), (5, 0), 30)
    loaded = back.groups[b"g"]
    assert (loaded.last_id, loaded.entries_read) == ((12, 0), 11)
    assert loaded.pel[(7, 0)] is loaded.consumers[b"c"].pel[(7, 0)]
    assert (loaded.pel[(7, 0)].delivery_time, loaded.pel[(7, 0)].delivery_count) == (1234, 3)


def test_type_15_reads_with_redis_defaults_for_the_missing_counters() -> None:
    s = _stream(10)
    node = next(iter(s.nodes.values()))
    body = [_encode_len(1), _encode_raw(_raw_id(node.master_id)), _encode_raw(_node_listpack(s, node))]
    body += [_encode_len(10), _encode_len(10), _encode_len(0)]  # length, last ID
    body.append(_encode_len(2))
    for name, ms in ((b"g", 4), (b"start", 0)):  # groups at 4-0 and 0-0, no pending entries, no consumers
        body += [_encode_raw(name), _encode_len(ms), _encode_len(0), _encode_len(0), _encode_len(0)]
    back, _ = decode_stream(b"".join(body), 0, TYPE_STREAM_LISTPACKS, decode.read_len, decode.read_string)
    assert back.entries_added == 10 and back.first_id == (1, 0)
    assert back.groups[b"g"].entries_read == -1  # 4-0 is inside the stream: its counter is unknown
    assert back.group_lag(back.groups[b"g"]) is None
    assert back.groups[b"start"].entries_read == 0  # before the first entry: nothing read yet
    assert back.group_lag(back.groups[b"start"]) == 10
