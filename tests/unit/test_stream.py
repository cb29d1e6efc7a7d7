"""The propagation stream (actors/server/stream.py): what a tick's batch holds, where the replication offset
stands, and what the AOF's share of a batch is."""

from __future__ import annotations

import pytest

from actors.config import Config
from actors.server.client import Client
from actors.server.server import Server
from actors.server.stream import PropagationStream, StreamBatch, without_spans
from protocol.resp import encode_command


def resp(*argv: bytes) -> bytes:
    return encode_command(list(argv))


def test_nothing_is_queued_while_nothing_consumes_the_stream() -> None:
    stream = PropagationStream()
    stream.propagate(0, [b"SET", b"k", b"v"])
    stream.propagate_to_replicas(0, [b"PUBLISH", b"ch", b"m"])
    assert stream.chunks == []
    assert stream.take() == StreamBatch(b"", 0, [], [])


def test_an_aof_only_stream_selects_once_and_does_not_advance_the_offset() -> None:
    stream = PropagationStream()
    stream.aof_feeding = True
    stream.propagate(3, [b"SET", b"k", b"v"])
    stream.propagate(3, [b"DEL", b"k"])
    batch = stream.take()
    assert batch.data == resp(b"SELECT", b"3") + resp(b"SET", b"k", b"v") + resp(b"DEL", b"k")
    assert (batch.start, batch.selects, batch.aof_excluded_spans) == (0, [], [])
    assert stream.offset == 0
    assert stream.chunks == []


def test_the_offset_counts_replicated_bytes_and_each_batch_starts_where_the_last_ended() -> None:
    stream = PropagationStream()
    stream.start_replication_feed()
    stream.reset_offset(1000)
    stream.propagate(0, [b"SET", b"a", b"1"])
    first = stream.take()
    assert first.start == 1000
    assert first.selects == [(1000, 0)]
    assert stream.offset == 1000 + len(first.data)
    stream.select_points.clear()  # the replication feed hands them on and clears them
    stream.propagate(1, [b"SET", b"b", b"2"])
    second = stream.take()
    assert second.start == 1000 + len(first.data)
    assert second.data == resp(b"SELECT", b"1") + resp(b"SET", b"b", b"2")
    assert second.selects == [(second.start, 1)]
    assert stream.offset == second.start + len(second.data)


def test_replica_only_commands_are_left_out_of_the_aof_share() -> None:
    stream = PropagationStream()
    stream.aof_feeding = True
    stream.start_replication_feed()
    stream.propagate(0, [b"SET", b"a", b"1"])
    stream.propagate_to_replicas(0, [b"PUBLISH", b"ch", b"hello"])
    stream.propagate(0, [b"SET", b"b", b"2"])
    batch = stream.take()
    assert batch.data == (
        resp(b"SELECT", b"0")
        + resp(b"SET", b"a", b"1")
        + resp(b"PUBLISH", b"ch", b"hello")
        + resp(b"SET", b"b", b"2")
    )
    assert without_spans(batch.data, 0, batch.aof_excluded_spans) == (
        resp(b"SELECT", b"0") + resp(b"SET", b"a", b"1") + resp(b"SET", b"b", b"2")
    )
    assert stream.taken_repl_only_spans == batch.aof_excluded_spans
    assert stream.repl_only_spans == []
    assert stream.offset == len(batch.data)  # PUBLISH counts in the offset, as in Redis


def test_writes_inside_exec_are_collected_not_queued() -> None:
    stream = PropagationStream()
    stream.aof_feeding = True
    stream.exec_writes = []
    stream.propagate(0, [b"SET", b"a", b"1"])
    stream.propagate_to_replicas(0, [b"PUBLISH", b"ch", b"m"])
    assert stream.exec_writes == [(0, [b"SET", b"a", b"1"], False), (0, [b"PUBLISH", b"ch", b"m"], True)]
    assert stream.chunks == []


def test_the_servers_legacy_names_read_the_stream_and_only_the_stream_moves_the_offset() -> None:
    server = Server(Config())
    stream = server.stream
    server.aof_feeding = True
    server.repl_feeding = True
    stream.reset_offset(42)
    with pytest.raises(AttributeError):
        server.repl_offset = 0  # type: ignore[misc]
    assert (stream.aof_feeding, stream.repl_feeding, stream.offset) == (True, True, 42)
    client = Client(server)
    server.execute(client, [b"SET", b"k", b"v"])
    assert server.prop_chunks is stream.chunks
    assert server.prop_db == stream.db == 0
    assert server.repl_select_points == [(42, 0)]
    assert server.take_propagated() == resp(b"SELECT", b"0") + resp(b"SET", b"k", b"v")
    assert server.repl_offset == 42 + len(resp(b"SELECT", b"0") + resp(b"SET", b"k", b"v"))


def test_the_master_loop_hands_each_tick_one_batch_then_its_bytes() -> None:
    from actors.loop.master import MasterActor

    server = Server(Config())
    master = MasterActor(server)
    order: list[str] = []
    batches: list[StreamBatch] = []
    payloads: list[bytes] = []
    master.batch_sinks.append(lambda batch: (order.append("batch"), batches.append(batch)))
    master.stream_sinks.append(lambda data: (order.append("bytes"), payloads.append(data)))
    server.aof_feeding = True
    server.stream.start_replication_feed()
    client = Client(server)
    server.execute(client, [b"SET", b"k", b"v"])
    server.execute(client, [b"PUBLISH", b"ch", b"m"])
    master.flush_now()
    master.flush_now()  # nothing new: no sink is called
    expected = resp(b"SELECT", b"0") + resp(b"SET", b"k", b"v") + resp(b"PUBLISH", b"ch", b"m")
    assert order == ["batch", "bytes"]
    assert payloads == [expected]
    (batch,) = batches
    assert (batch.data, batch.start, batch.selects) == (expected, 0, [(0, 0)])
    assert (
        without_spans(batch.data, 0, batch.aof_excluded_spans)
        == expected[: -len(resp(b"PUBLISH", b"ch", b"m"))]
    )
    master.close()
