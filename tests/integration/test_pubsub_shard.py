"""Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS / SHARDNUMSUB), byte for byte
against redis-server, in RESP2 and RESP3."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for

pytestmark = pytest.mark.compat


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, command: bytes, expect: bool = True) -> bytes:
        """Send ``command``; return what arrives until the connection is idle (nothing if ``expect`` is False)."""
        if command:
            self.sock.sendall(command)
        got = b""
        self.sock.settimeout(0.5 if expect else 0.2)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
                self.sock.settimeout(0.1)
        except TimeoutError:
            pass
        return got

    def close(self) -> None:
        self.sock.close()


def _session(port: int, hello: bytes) -> list[bytes]:
    sub, pub = RawClient(port), RawClient(port)
    out = []
    try:
        if hello:
            out.append(re.sub(rb"id\r\n:\d+", b"id", sub.send(hello)))
        out.append(sub.send(b"SSUBSCRIBE a b a\r\n"))
        out.append(sub.send(b"SUBSCRIBE a\r\n"))
        out.append(sub.send(b"PING\r\n"))
        out.append(sub.send(b"GET x\r\n"))
        out.append(pub.send(b"SPUBLISH a hello\r\n"))
        out.append(sub.send(b"", expect=True))
        out.append(pub.send(b"PUBLISH a world\r\n"))
        out.append(sub.send(b"", expect=True))
        out.append(pub.send(b"SPUBLISH nobody x\r\n"))
        out.append(pub.send(b"PUBSUB SHARDCHANNELS a*\r\n"))  # one at a time: Redis lists in hash order
        out.append(pub.send(b"PUBSUB SHARDCHANNELS b*\r\n"))
        out.append(pub.send(b"PUBSUB SHARDNUMSUB a b c\r\n"))
        out.append(pub.send(b"PUBSUB NUMSUB a b\r\n"))
        out.append(sub.send(b"UNSUBSCRIBE\r\n"))
        out.append(sub.send(b"SUNSUBSCRIBE b\r\n"))
        out.append(sub.send(b"SUNSUBSCRIBE\r\n"))
        out.append(sub.send(b"SUNSUBSCRIBE\r\n"))
        out.append(sub.send(b"GET x\r\n"))
        out.append(pub.send(b"SPUBLISH a again\r\n"))
        out.append(pub.send(b"PUBSUB SHARDCHANNELS\r\n"))
    finally:
        sub.close()
        pub.close()
    return out


@pytest.mark.parametrize("hello", [b"", b"HELLO 3\r\n"])
def test_sharded_pubsub_replies_as_redis_does(
    node: NodeProcess, redis_servers: Any, tmp_path: Path, hello: bytes
) -> None:
    reference = redis_servers(tmp_path)
    got = _session(node.port, hello)
    want = _session(reference.port, hello)
    if hello:  # HELLO's map differs (server name, version, modules): compare what follows it
        got, want = got[1:], want[1:]
    assert got == want


def test_shard_subscriptions_show_in_client_list_and_info_and_go_with_reset(node: NodeProcess) -> None:
    r = node.client()
    sub = node.client().pubsub()
    sub.ssubscribe("x", "y")
    wait_for(lambda: r.info("stats")["pubsubshard_channels"] == 2, 10, what="the shard channels in INFO")
    assert any(c["ssub"] == "2" and "P" in c["flags"] for c in r.client_list())
    sub.reset()
    wait_for(lambda: r.pubsub_shardchannels() == [], 10, what="the subscriptions to go with the connection")
    assert r.set("k", "v") and r.get("k") == b"v"  # the fast path is back
    raw = RawClient(node.port)
    try:
        assert raw.send(b"SSUBSCRIBE q\r\n") == b"*3\r\n$10\r\nssubscribe\r\n$1\r\nq\r\n:1\r\n"
        assert raw.send(b"RESET\r\n") == b"+RESET\r\n"
        assert raw.send(b"GET k\r\n") == b"$1\r\nv\r\n"
    finally:
        raw.close()
    assert r.execute_command("PUBSUB", "SHARDNUMSUB", "q") == [b"q", 0]


def test_spublish_reaches_subscribers_on_a_replica(node_factory: Any) -> None:
    master = node_factory("m")
    replica = node_factory("r", replicaof=f"127.0.0.1 {master.port}")
    wait_for(lambda: replica.client().info("replication")["master_link_status"] == "up", 30, what="the link")
    listener = redis.Redis(port=replica.port, socket_timeout=10).pubsub()
    listener.ssubscribe("news")
    assert listener.get_message(timeout=5)["type"] == "ssubscribe"
    master.client().spublish("news", "hi")
    message = wait_for(lambda: listener.get_message(timeout=1), 15, what="the message on the replica")
    assert message["type"] == "smessage" and message["data"] == b"hi"
    listener.close()
