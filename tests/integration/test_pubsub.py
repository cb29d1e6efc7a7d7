"""Pub/sub against a real node: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, in RESP2,
RESP3 and the native (ZeroMQ) protocol, with the exact replies and error strings Redis 7.0 gives."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
import zmq

from protocol import envelope
from tests.harness import NodeProcess, wait_for
from tests.integration.test_transactions import Conn

PUBSUB_CONTEXT = (
    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
    "context"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    n = NodeProcess(Path(tmp_path_factory.mktemp("pubsub"))).start()
    yield n
    n.stop()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    client = node.client(protocol=2)
    yield client
    client.close()


@pytest.fixture
def conns(node: NodeProcess, r: redis.Redis) -> Iterator[list[Conn]]:
    """Raw connections made by a test (``conns.append(Conn(port))``); closed, and their subscriptions gone, after."""
    made: list[Conn] = []
    yield made
    for c in made:
        c.close()
    wait_for(
        lambda: r.pubsub_channels() == [] and r.pubsub_numpat() == 0, 5, what="subscriptions to be dropped"
    )


def sub_conn(node: NodeProcess, conns: list[Conn]) -> Conn:
    c = Conn(node.port)
    conns.append(c)
    return c


def read_bytes(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def err(reply: Any) -> str:
    assert isinstance(reply, hiredis.ReplyError), f"expected an error reply, got {reply!r}"
    return str(reply)


# -- RESP2 ------------------------------------------------------------------------------------------------


def test_subscribe_and_message_exact_bytes(node: NodeProcess, r: redis.Redis) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"SUBSCRIBE a b\r\n")
        expected = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        assert read_bytes(sock, len(expected)) == expected
        assert r.publish("a", "hello") == 1
        expected = b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
        assert read_bytes(sock, len(expected)) == expected
        sock.sendall(b"PSUBSCRIBE n.*\r\n")
        expected = b"*3\r\n$10\r\npsubscribe\r\n$3\r\nn.*\r\n:3\r\n"
        assert read_bytes(sock, len(expected)) == expected
        assert r.publish("n.x", "") == 1
        expected = b"*4\r\n$8\r\npmessage\r\n$3\r\nn.*\r\n$3\r\nn.x\r\n$0\r\n\r\n"
        assert read_bytes(sock, len(expected)) == expected
        sock.sendall(b"UNSUBSCRIBE\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nGET nokey\r\n")
        reader = hiredis.Reader()
        replies: list[Any] = []
        while len(replies) < 5:
            reader.feed(sock.recv(65536))
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        # Leaving every channel goes in no particular order (Redis walks a hash table); the counts fall.
        assert sorted(reply[1] for reply in replies[:2]) == [b"a", b"b"]
        assert [reply[::2] for reply in replies[:2]] == [[b"unsubscribe", 2], [b"unsubscribe", 1]]
        assert replies[2:] == [[b"unsubscribe", None, 1], [b"punsubscribe", b"n.*", 0], None]


def test_subscribed_mode_allows_only_some_commands(node: NodeProcess, conns: list[Conn]) -> None:
    c = sub_conn(node, conns)
    c.send("SUBSCRIBE", "ch")
    assert c.read() == [b"subscribe", b"ch", 1]
    refused = {
        ("GET", "k"): "get",
        ("SET", "k", "v"): "set",
        ("SELECT", "1"): "select",
        ("MULTI",): "multi",
        ("ECHO", "x"): "echo",
        ("PUBLISH", "ch", "m"): "publish",
        ("HELLO",): "hello",
        ("PUBSUB", "NUMPAT"): "pubsub|numpat",
        ("CLIENT", "ID"): "client|id",
        ("CONFIG", "GET", "x"): "config|get",
    }
    for argv, name in refused.items():
        assert err(c(*argv)) == PUBSUB_CONTEXT.format(name), argv
    assert c("PING") == [b"pong", b""]
    assert c("PING", "hi") == [b"pong", b"hi"]
    c.send("PSUBSCRIBE", "x*")
    assert c.read() == [b"psubscribe", b"x*", 2]
    c.send("PUNSUBSCRIBE", "nothere")
    assert c.read() == [b"punsubscribe", b"nothere", 2]
    assert c("RESET") == b"RESET"  # leaves every subscription
    assert c("GET", "nokey") is None
    assert c("PING") == b"PONG"


def test_quit_in_subscribed_mode(node: NodeProcess, conns: list[Conn]) -> None:
    c = sub_conn(node, conns)
    c.send("SUBSCRIBE", "q")
    assert c.read() == [b"subscribe", b"q", 1]
    assert c("QUIT") == b"OK"
    with pytest.raises((ConnectionError, OSError)):
        c("PING")


def test_unsubscribe_replies(node: NodeProcess, conns: list[Conn]) -> None:
    c = sub_conn(node, conns)
    # Leaving nothing: one confirmation with a nil channel and the count.
    c.send("UNSUBSCRIBE")
    assert c.read() == [b"unsubscribe", None, 0]
    c.send("PUNSUBSCRIBE")
    assert c.read() == [b"punsubscribe", None, 0]
    assert c("GET", "nokey") is None  # never entered subscribed mode
    c.send("SUBSCRIBE", "a", "a", "b")  # a repeated channel is confirmed again, not counted twice
    assert [c.read() for _ in range(3)] == [
        [b"subscribe", b"a", 1],
        [b"subscribe", b"a", 1],
        [b"subscribe", b"b", 2],
    ]
    c.send("PSUBSCRIBE", "p*")
    assert c.read() == [b"psubscribe", b"p*", 3]
    c.send("UNSUBSCRIBE", "a", "zz")  # one not subscribed to is confirmed too
    assert [c.read() for _ in range(2)] == [[b"unsubscribe", b"a", 2], [b"unsubscribe", b"zz", 2]]
    c.send("UNSUBSCRIBE")
    assert c.read() == [b"unsubscribe", b"b", 1]
    c.send("UNSUBSCRIBE")
    assert c.read() == [b"unsubscribe", None, 1]  # still subscribed to a pattern
    assert err(c("GET", "k")) == PUBSUB_CONTEXT.format("get")
    c.send("PUNSUBSCRIBE", "p*")
    assert c.read() == [b"punsubscribe", b"p*", 0]
    assert c("GET", "nokey") is None


def test_arity_errors(r: redis.Redis) -> None:
    for argv, name in (
        (("SUBSCRIBE",), "subscribe"),
        (("PSUBSCRIBE",), "psubscribe"),
        (("PUBLISH", "c"), "publish"),
        (("PUBSUB",), "pubsub"),
    ):
        with pytest.raises(redis.ResponseError) as info:
            r.execute_command(*argv)
        assert str(info.value) == f"wrong number of arguments for '{name}' command"


def test_publish_counts_receivers(node: NodeProcess, r: redis.Redis, conns: list[Conn]) -> None:
    subscribers = [sub_conn(node, conns) for _ in range(3)]
    for c in subscribers:
        c.send("SUBSCRIBE", "news")
        assert c.read()[0] == b"subscribe"
    assert r.publish("news", "one") == 3
    for c in subscribers:
        assert c.read() == [b"message", b"news", b"one"]
    assert r.publish("nobody-listens", "x") == 0
    # A client subscribed to the channel and to two matching patterns gets it three times, counted three times;
    # the channel's message comes first.
    both = subscribers[0]
    both.send("PSUBSCRIBE", "ne*", "n?ws")
    assert [both.read() for _ in range(2)] == [[b"psubscribe", b"ne*", 2], [b"psubscribe", b"n?ws", 3]]
    assert r.publish("news", "two") == 5
    first = [both.read() for _ in range(3)]
    assert first[0] == [b"message", b"news", b"two"]
    assert sorted(first[1:]) == [
        [b"pmessage", b"n?ws", b"news", b"two"],
        [b"pmessage", b"ne*", b"news", b"two"],
    ]
    for c in subscribers[1:]:
        assert c.read() == [b"message", b"news", b"two"]
    # Binary-safe channels, patterns and payloads.
    both.send("PSUBSCRIBE", b"bin\x00*")
    assert both.read() == [b"psubscribe", b"bin\x00*", 4]
    assert r.publish(b"bin\x00\xff", b"\x00\r\n") == 1
    assert both.read() == [b"pmessage", b"bin\x00*", b"bin\x00\xff", b"\x00\r\n"]


def test_pattern_glob_syntax(node: NodeProcess, r: redis.Redis, conns: list[Conn]) -> None:
    c = sub_conn(node, conns)
    c.send("PSUBSCRIBE", "h[ae]llo", "x\\*y", "[^a]z")
    assert [c.read()[2] for _ in range(3)] == [1, 2, 3]
    assert [r.publish(ch, "m") for ch in ("hello", "hallo", "hillo", "x*y", "xay", "bz", "az")] == [
        1,
        1,
        0,
        1,
        0,
        1,
        0,
    ]
    got = [c.read()[2] for _ in range(4)]
    assert got == [b"hello", b"hallo", b"x*y", b"bz"]


def test_pubsub_introspection(node: NodeProcess, r: redis.Redis, conns: list[Conn]) -> None:
    assert r.execute_command("PUBSUB", "CHANNELS") == []
    assert r.execute_command("PUBSUB", "NUMSUB") == []
    assert r.execute_command("PUBSUB", "NUMPAT") == 0
    c1, c2 = sub_conn(node, conns), sub_conn(node, conns)
    c1.send("SUBSCRIBE", "chan.a", "chan.b", "other")
    [c1.read() for _ in range(3)]
    c2.send("SUBSCRIBE", "chan.a")
    c2.read()
    c1.send("PSUBSCRIBE", "chan.*", "x*")
    [c1.read() for _ in range(2)]
    c2.send("PSUBSCRIBE", "chan.*")
    c2.read()
    assert sorted(r.execute_command("PUBSUB", "CHANNELS")) == [b"chan.a", b"chan.b", b"other"]
    assert sorted(r.execute_command("PUBSUB", "CHANNELS", "chan.*")) == [b"chan.a", b"chan.b"]
    assert r.execute_command("PUBSUB", "CHANNELS", "nomatch*") == []
    assert r.execute_command("PUBSUB", "NUMSUB", "chan.a", "chan.b", "none") == [
        b"chan.a",
        2,
        b"chan.b",
        1,
        b"none",
        0,
    ]
    assert r.execute_command("PUBSUB", "NUMPAT") == 2  # distinct patterns
    assert r.execute_command("PUBSUB", "SHARDCHANNELS") == []
    assert r.execute_command("PUBSUB", "SHARDNUMSUB", "chan.a") == [b"chan.a", 0]
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"]) == (3, 2)
    clients = {entry["id"]: entry for entry in r.client_list()}
    assert sorted((e["sub"], e["psub"], e["flags"]) for e in clients.values() if e["flags"] == "P") == [
        ("1", "1", "P"),
        ("3", "2", "P"),
    ]
    # A subscriber that disconnects is forgotten.
    c1.close()
    wait_for(
        lambda: r.execute_command("PUBSUB", "NUMSUB", "chan.b", "chan.a") == [b"chan.b", 0, b"chan.a", 1],
        5,
        what="the closed subscriber to be dropped",
    )
    assert r.execute_command("PUBSUB", "NUMPAT") == 1
    assert r.info("stats")["pubsub_channels"] == 1


def test_pubsub_help_and_errors(r: redis.Redis) -> None:
    assert r.execute_command("PUBSUB", "HELP") == [
        b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"CHANNELS [<pattern>]",
        b"    Return the currently active channels matching a <pattern> (default: '*').",
        b"NUMPAT",
        b"    Return number of subscriptions to patterns.",
        b"NUMSUB [<channel> ...]",
        b"    Return the number of subscribers for the specified channels, excluding",
        b"    pattern subscriptions(default: no channels).",
        b"SHARDCHANNELS [<pattern>]",
        b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
        b"SHARDNUMSUB [<shardchannel> ...]",
        b"    Return the number of subscribers for the specified shard level channel(s)",
        b"HELP",
        b"    Prints this help.",
    ]
    cases = [
        (("PUBSUB", "FOO"), "unknown subcommand 'FOO'. Try PUBSUB HELP."),
        (("PUBSUB", "NUMPAT", "x"), "wrong number of arguments for 'pubsub|numpat' command"),
        (("PUBSUB", "HELP", "x"), "wrong number of arguments for 'pubsub|help' command"),
        (
            ("PUBSUB", "CHANNELS", "a", "b"),
            "unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.",
        ),
        (
            ("PUBSUB", "shardchannels", "a", "b"),
            "unknown subcommand or wrong number of arguments for 'shardchannels'. Try PUBSUB HELP.",
        ),
    ]
    for argv, message in cases:
        with pytest.raises(redis.ResponseError) as info:
            r.execute_command(*argv)
        assert str(info.value) == message, argv


def test_subscribe_inside_multi(node: NodeProcess, r: redis.Redis) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"MULTI\r\nSUBSCRIBE a b\r\nEXEC\r\n")
        # The EXEC array says 1 but carries both confirmations: Redis sends exactly this.
        expected = (
            b"+OK\r\n+QUEUED\r\n*1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        )
        assert read_bytes(sock, len(expected)) == expected
        assert r.publish("b", "m") == 1
        expected = b"*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\nm\r\n"
        assert read_bytes(sock, len(expected)) == expected


def test_redis_py_pubsub_resp2(node: NodeProcess, r: redis.Redis) -> None:
    p = r.pubsub()
    try:
        p.subscribe("rp")
        p.psubscribe("rp.*")
        first = [wait_for(lambda: p.get_message(timeout=0.1), 5) for _ in range(2)]
        assert first == [
            {"type": "subscribe", "pattern": None, "channel": b"rp", "data": 1},
            {"type": "psubscribe", "pattern": None, "channel": b"rp.*", "data": 2},
        ]
        assert r.publish("rp", "1") == 1
        assert r.publish("rp.x", "2") == 1
        got = [wait_for(lambda: p.get_message(timeout=0.1), 5) for _ in range(2)]
        assert got == [
            {"type": "message", "pattern": None, "channel": b"rp", "data": b"1"},
            {"type": "pmessage", "pattern": b"rp.*", "channel": b"rp.x", "data": b"2"},
        ]
    finally:
        p.close()
    wait_for(lambda: r.pubsub_numsub("rp") == [(b"rp", 0)], 5, what="the subscriber to be dropped")


# -- RESP3 ------------------------------------------------------------------------------------------------


def test_resp3_pushes_exact_bytes(node: NodeProcess, r: redis.Redis) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"HELLO 3\r\n")
        reader = hiredis.Reader()
        while reader.gets() is False:
            reader.feed(sock.recv(4096))
        sock.sendall(b"SUBSCRIBE a b\r\n")
        expected = b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        assert read_bytes(sock, len(expected)) == expected
        # Any command runs while subscribed in RESP3; PING answers as usual.
        sock.sendall(b"SET k v\r\nGET nokey\r\nPING\r\n")
        expected = b"+OK\r\n_\r\n+PONG\r\n"
        assert read_bytes(sock, len(expected)) == expected
        assert r.publish("a", "m") == 1
        expected = b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n"
        assert read_bytes(sock, len(expected)) == expected
        # A client publishing to itself gets the message before PUBLISH's reply, as from Redis.
        sock.sendall(b"PSUBSCRIBE a*\r\nPUBLISH a x\r\n")
        expected = (
            b">3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n"
            b">4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$1\r\nx\r\n:2\r\n"
        )
        assert read_bytes(sock, len(expected)) == expected
        sock.sendall(b"UNSUBSCRIBE a b\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n")
        expected = (
            b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n>3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
            b">3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:0\r\n>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        )
        assert read_bytes(sock, len(expected)) == expected


def test_redis_py_pubsub_resp3(node: NodeProcess, r: redis.Redis) -> None:
    r3 = node.client(protocol=3)
    p = r3.pubsub()
    try:
        p.subscribe("r3")
        assert wait_for(lambda: p.get_message(timeout=0.1), 5) == {
            "type": "subscribe",
            "pattern": None,
            "channel": b"r3",
            "data": 1,
        }
        assert r.publish("r3", "hello") == 1
        assert wait_for(lambda: p.get_message(timeout=0.1), 5) == {
            "type": "message",
            "pattern": None,
            "channel": b"r3",
            "data": b"hello",
        }
    finally:
        p.close()
        r3.close()


# -- native protocol -------------------------------------------------------------------------------------


class Dealer:
    """A raw ZeroMQ DEALER on the node's bus port speaking the msgpack envelope."""

    def __init__(self, node: NodeProcess) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://127.0.0.1:{node.bus_port}")
        self.next_id = 1
        self.pushes: list[Any] = []

    def recv(self, timeout_s: float = 5.0) -> tuple[int, int, Any]:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise AssertionError("no frame from the node")
        return envelope.decode_reply(self.sock.recv())

    def call(self, *args: Any) -> Any:
        request_id = self.next_id
        self.next_id += 1
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.sock.send(envelope.encode_request(request_id, argv))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got_id, kind, value = self.recv()
            if kind == envelope.KIND_PUSH:
                self.pushes.append(value)
                continue
            assert got_id == request_id
            return (kind, value)
        raise AssertionError("no reply")

    def push(self) -> Any:
        if self.pushes:
            return self.pushes.pop(0)
        request_id, kind, value = self.recv()
        assert (request_id, kind) == (0, envelope.KIND_PUSH)
        return value

    def close(self) -> None:
        self.sock.close(0)


def test_native_protocol_pubsub(node: NodeProcess, r: redis.Redis) -> None:
    d = Dealer(node)
    try:
        # One reply per request: the confirmations come back as one list.
        assert d.call("SUBSCRIBE", "na", "nb") == (
            envelope.KIND_OK,
            [[b"subscribe", b"na", 1], [b"subscribe", b"nb", 2]],
        )
        assert d.call("PSUBSCRIBE", "n*") == (envelope.KIND_OK, [[b"psubscribe", b"n*", 3]])
        assert r.publish("na", "hi") == 2
        assert d.push() == [b"message", b"na", b"hi"]
        assert d.push() == [b"pmessage", b"n*", b"na", b"hi"]
        assert r.execute_command("PUBSUB", "NUMSUB", "na") == [b"na", 1]
        assert d.call("PING") == (envelope.KIND_OK, [b"pong", b""])
        kind, message = d.call("GET", "k")
        assert (kind, message) == (envelope.KIND_ERROR, PUBSUB_CONTEXT.format("get"))
        assert d.call("UNSUBSCRIBE")[0] == envelope.KIND_OK
        assert d.call("PUNSUBSCRIBE", "n*") == (envelope.KIND_OK, [[b"punsubscribe", b"n*", 0]])
        assert d.call("UNSUBSCRIBE") == (envelope.KIND_OK, [[b"unsubscribe", None, 0]])
        assert r.execute_command("PUBSUB", "NUMSUB", "na", "nb") == [b"na", 0, b"nb", 0]
        assert r.publish("na", "gone") == 0
        assert d.call("PUBLISH", "x", "y") == (envelope.KIND_OK, 0)
    finally:
        d.close()
