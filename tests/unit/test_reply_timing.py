"""When a RESP connection's replies leave (actors/loop/connection.py): at the tick's end, every connection's in
one burst after the poll's reads, and after the tick's writes reached the stream sinks (the AOF, the replicas).

In process: a Server, its MasterActor and RespConnections on a transport that records what it is given; the
tick's end is ``MasterActor.flush_now`` (the loop's ``call_soon`` of it is never run here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from actors.config import Config
from actors.loop.connection import RespConnection
from actors.loop.master import MasterActor
from actors.server.server import Server
from protocol.resp import encode_command


class RecordingTransport:
    """What uvloop's transport offers the connection, writes recorded in ``events``."""

    def __init__(self, name: str, events: list[tuple[str, bytes]]) -> None:
        self.name = name
        self.events = events

    def write(self, data: bytes) -> None:
        self.events.append((self.name, data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else default

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


@pytest.fixture
def master() -> Iterator[MasterActor]:
    master = MasterActor(Server(Config()))
    loop = asyncio.new_event_loop()
    master.loop = loop
    yield master
    master.close()
    loop.close()


def connect(master: MasterActor, name: str, events: list[tuple[str, bytes]]) -> RespConnection:
    conn = RespConnection(master)
    transport: Any = RecordingTransport(name, events)  # (uvloop's transports are no asyncio ones either)
    conn.connection_made(transport)
    return conn


def test_replies_leave_at_the_tick_end_in_one_burst(master: MasterActor) -> None:
    """Unpipelined or pipelined, a read's replies wait for the tick's end, so the replies of every connection
    read in the tick leave together (as Redis's beforeSleep), not each as its read ran."""
    events: list[tuple[str, bytes]] = []
    a = connect(master, "a", events)
    b = connect(master, "b", events)
    a.data_received(encode_command([b"INCR", b"counter"]))
    b.data_received(encode_command([b"SET", b"k", b"v"]) + encode_command([b"GET", b"k"]))
    a.data_received(encode_command([b"PING"]))
    assert events == [] and master._flush_scheduled and a.pending and b.pending
    master.flush_now()
    assert events == [("a", b":1\r\n+PONG\r\n"), ("b", b"+OK\r\n$1\r\nv\r\n")]
    assert not master._flush_scheduled and not a.pending and not b.pending
    assert master.server.stats.net_output_bytes == len(b":1\r\n+PONG\r\n+OK\r\n$1\r\nv\r\n")


def test_with_an_aof_replies_wait_for_the_tick_end_after_the_writes(master: MasterActor) -> None:
    events: list[tuple[str, bytes]] = []
    master.stream_sinks.append(lambda data: events.append(("aof", data)))
    master.server.stream.aof_feeding = True
    writer = connect(master, "writer", events)
    reader = connect(master, "reader", events)
    writer.data_received(encode_command([b"SET", b"k", b"v"]))
    # A read in the same tick may show the write: it waits as well.
    reader.data_received(encode_command([b"GET", b"k"]))
    assert events == []
    master.flush_now()
    assert [name for name, _ in events] == ["aof", "writer", "reader"]
    assert events[0][1].endswith(encode_command([b"SET", b"k", b"v"]))
    assert events[1:] == [("writer", b"+OK\r\n"), ("reader", b"$1\r\nv\r\n")]
    # The next tick wrote nothing: its read's reply still waits for the tick's end.
    reader.data_received(encode_command([b"GET", b"k"]))
    assert len(events) == 3
    master.flush_now()
    assert events[3:] == [("reader", b"$1\r\nv\r\n")]


def test_a_restricted_node_or_a_subscriber_waits_for_the_tick_end_too(master: MasterActor) -> None:
    events: list[tuple[str, bytes]] = []
    conn = connect(master, "a", events)
    master.server.restrict("test", True)  # any feature that keeps commands off the fast paths
    conn.data_received(encode_command([b"PING"]))
    assert events == []
    master.flush_now()
    assert events == [("a", b"+PONG\r\n")]
    master.server.restrict("test", False)
    conn.data_received(encode_command([b"SUBSCRIBE", b"ch"]))  # output buffer limits of the pubsub class
    assert events[1:] == []
    master.flush_now()
    assert events[1][1].startswith(b"*3\r\n$9\r\nsubscribe\r\n")
