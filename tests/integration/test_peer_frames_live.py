"""Malformed node-to-node frames against real nodes: the replication actor answers (a bad Hello) or drops them,
never fails on them (its restart count stays 0), and the link works afterwards. Both ends are covered: frames
sent to a master's bus port, and frames a made-up master sends to a replica."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from protocol import peer
from protocol.peer import PEER_FAMILY, PEER_PROTOCOL_VERSION
from tests.harness import NodeProcess, wait_for
from tests.integration.test_replication_stream import FakeMaster, fake_master  # noqa: F401 (fixture)
from tests.integration.test_supervisor import BUS_ACTOR, actor_lines

RECV_TIMEOUT_MS = 10_000


def header(*values: Any) -> bytes:
    return bytes(msgpack.packb(list(values), use_bin_type=True))


MALFORMED: list[list[bytes]] = [
    [PEER_FAMILY, b"\xc1 not msgpack"],
    [PEER_FAMILY, header()],
    [PEER_FAMILY, header(7, 1)],
    [PEER_FAMILY, header("launch", 1)],
    [PEER_FAMILY, header("psync", "?", "-1", "n", 1, "127.0.0.1", "")],
    [PEER_FAMILY, header("psync", "?", -1)],
    [PEER_FAMILY, header("ack", "many")],
    [PEER_FAMILY, header("stream", 0)],
    [PEER_FAMILY, header("snap_ack", 1), b"extra"],
]


def test_a_master_drops_malformed_frames_and_answers_a_bad_hello(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master")
    mc = master.client()
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    sock.connect(f"tcp://127.0.0.1:{master.bus_port}")
    try:
        for frames in MALFORMED:
            sock.send_multipart(frames)
        # A Hello it cannot read (another protocol version, say) is answered, not dropped.
        sock.send_multipart([PEER_FAMILY, header("hello", "", "2")])
        answer = peer.decode(sock.recv_multipart())
        assert isinstance(answer, peer.Error) and answer.message.startswith("ERR bad hello")
        sock.send_multipart(peer.encode(peer.Hello("", PEER_PROTOCOL_VERSION + 1)))
        answer = peer.decode(sock.recv_multipart())
        assert isinstance(answer, peer.Error) and "version 2 is not supported" in answer.message
        sock.send_multipart(peer.encode(peer.Hello("", PEER_PROTOCOL_VERSION)))
        assert isinstance(peer.decode(sock.recv_multipart()), peer.HelloOk)
    finally:
        sock.close(0)
    assert actor_lines(mc)[BUS_ACTOR]["restarts"] == 0
    assert mc.ping()


def test_a_replica_drops_malformed_frames_from_its_master(
    node_factory: Callable[..., NodeProcess],
    fake_master: FakeMaster,  # noqa: F811 (the fixture)
) -> None:
    replica = node_factory("replica", repl_timeout=5)
    rc = replica.client()
    assert rc.execute_command("REPLICAOF", "127.0.0.1", fake_master.port) == b"OK"
    identity, _, _ = fake_master.expect("hello")
    assert fake_master.sock is not None
    for frames in MALFORMED:
        fake_master.sock.send_multipart([identity, *frames])
    fake_master.send(identity, "hello_ok", "fake-run-id")
    _, verb, fields = fake_master.expect("psync")
    assert verb == "psync" and fields[1] == 1  # the handshake went on: PSYNC from its own history's offset
    wait_for(lambda: rc.info("replication")["master_link_status"] == "down", 5, what="the replica's INFO")
    assert actor_lines(rc)[BUS_ACTOR]["restarts"] == 0
