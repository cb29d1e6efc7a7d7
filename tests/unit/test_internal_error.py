"""A command that raises something other than its error reply (a bug of ours) is answered with an error, and
the client keeps its connection (uvloop would close a transport whose data_received raised, dropping the
client's pipelined commands unanswered): Server.call and the general lane (actors/server/dispatch.py).

In process: a Server, its MasterActor and a RespConnection on a transport that records what it is given."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from actors.config import Config
from actors.loop.connection import RespConnection
from actors.loop.master import MasterActor
from actors.server.dispatch import GeneralLane
from actors.server.server import Server
from protocol.resp import encode_command
from tests.unit.test_reply_timing import RecordingTransport

FAILED = b"-ERR internal error running 'hlen' (ZeroDivisionError); the node logged it\r\n"


@pytest.fixture
def master() -> Iterator[MasterActor]:
    server = Server(Config())

    def broken(client: Any, argv: list[bytes]) -> Any:
        return 1 // 0

    server.commands[b"hlen"].fn = broken
    server.general_lane = GeneralLane(server)  # (its table holds each command's function)
    master = MasterActor(server)
    loop = asyncio.new_event_loop()
    master.loop = loop
    yield master
    master.close()
    loop.close()


def test_a_lone_command_that_raises_gets_an_error_and_the_connection_stays(master: MasterActor) -> None:
    events: list[tuple[str, bytes]] = []
    conn = RespConnection(master)
    conn.connection_made(RecordingTransport("c", events))
    conn.data_received(encode_command([b"HLEN", b"h"]))
    master.flush_now()
    conn.data_received(encode_command([b"PING"]))
    master.flush_now()
    assert events == [("c", FAILED), ("c", b"+PONG\r\n")]
    assert not conn.closed
    assert master.server.commands[b"hlen"].failed_calls == 1


def test_a_pipelined_command_that_raises_gets_an_error_and_the_rest_run(master: MasterActor) -> None:
    events: list[tuple[str, bytes]] = []
    conn = RespConnection(master)
    conn.connection_made(RecordingTransport("c", events))
    conn.data_received(
        encode_command([b"SET", b"k", b"v"])
        + encode_command([b"HLEN", b"h"])
        + encode_command([b"GET", b"k"])
    )
    master.flush_now()
    assert events == [("c", b"+OK\r\n" + FAILED + b"$1\r\nv\r\n")]
    assert not conn.closed
    assert master.server.stats.total_error_replies == 1
