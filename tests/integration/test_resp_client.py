"""protocol/resp_client.py against a real redactor node and a real redis-server: calls, pipelines, errors,
connection set-up (AUTH / HELLO / SELECT), pub/sub, bounds, and connections that end badly.

Most tests run once per server kind and compare nothing but the client's view; the ones named ``..._as_redis``
compare the two servers' replies through the client. A server that closes mid-reply or never answers is a
loopback socket the test controls (no server would misbehave on cue).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest

from protocol.resp_client import (
    BlockingRespClient,
    ConnectionLost,
    PubSubMessage,
    ReplyError,
    ReplyTooLarge,
    RespClient,
    RespTimeout,
)
from tests.harness import NodeProcess, RedisServer, free_port, wait_for
from tests.integration.shared import module_node_fixture

node = module_node_fixture()
SERVER_KINDS: list[Any] = ["redactor"]
if shutil.which("redis-server"):
    SERVER_KINDS.append(pytest.param("redis", marks=pytest.mark.compat))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer | None]:
    if not shutil.which("redis-server"):
        yield None
        return
    directory = tmp_path_factory.mktemp("redis")
    server = RedisServer(directory)
    yield server
    server.stop()


@pytest.fixture(params=SERVER_KINDS)
def port(request: pytest.FixtureRequest, node: NodeProcess, redis_server: RedisServer | None) -> int:
    """The RESP port of a redactor node, then of a redis-server (flushed before each test)."""
    target = node.port if request.param == "redactor" else redis_server.port  # type: ignore[union-attr]
    with BlockingRespClient.connect("127.0.0.1", target) as client:
        client.call("FLUSHALL")
    return target


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- calls and pipelines ---------------------------------------------------------------------------------


def test_call_returns_each_reply_type(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port) as client:
            assert await client.call("SET", "k", "v") == b"OK"
            assert await client.call("GET", "k") == b"v"
            assert await client.call("GET", "missing") is None
            assert await client.call("INCRBY", "n", 41) == 41
            assert await client.call("RPUSH", "l", b"a", "b", 3) == 3
            assert await client.call("LRANGE", "l", 0, -1) == [b"a", b"b", b"3"]
            assert await client.call("SET", "bin", bytes(range(256))) == b"OK"
            assert await client.call("GET", "bin") == bytes(range(256))
            big = b"x" * 300_000  # several reads for one reply
            assert await client.call("SET", "big", big) == b"OK"
            assert await client.call("GET", "big") == big

    run(scenario())


def test_a_pipeline_is_one_write_and_replies_come_in_order(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port) as client:
            replies = await client.pipeline([["INCR", "n"] for _ in range(1000)] + [["GET", "n"]])
            assert replies == [*range(1, 1001), b"1000"]
            # Concurrent callers pipeline on one connection and each gets its own reply.
            results = await asyncio.gather(*(client.call("ECHO", f"m{i}") for i in range(200)))
            assert results == [f"m{i}".encode() for i in range(200)]

    run(scenario())


def test_error_replies_are_typed_exceptions_with_redis_text(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port) as client:
            await client.call("RPUSH", "l", "a")
            with pytest.raises(ReplyError) as info:
                await client.call("INCR", "l")
            assert str(info.value) == "WRONGTYPE Operation against a key holding the wrong kind of value"
            assert info.value.code == "WRONGTYPE"
            assert isinstance(info.value, hiredis.ReplyError)
            with pytest.raises(ReplyError, match="^ERR unknown command 'NOPE'"):
                await client.call("NOPE")
            # In a pipeline: in place without raise_on_error; else raised after every reply arrived.
            replies = await client.pipeline(
                [["SET", "a", "1"], ["INCR", "l"], ["GET", "a"]], raise_on_error=False
            )
            assert replies[0] == b"OK" and replies[2] == b"1"
            assert isinstance(replies[1], ReplyError) and replies[1].code == "WRONGTYPE"
            with pytest.raises(ReplyError, match="^WRONGTYPE"):
                await client.pipeline([["INCR", "l"], ["SET", "b", "2"]])
            assert await client.call("GET", "b") == b"2"  # the connection carries on

    run(scenario())


@pytest.mark.compat
def test_replies_are_the_same_from_redactor_and_redis_server_as_redis(
    node: NodeProcess, redis_server: RedisServer | None
) -> None:
    if redis_server is None:
        pytest.skip("needs redis-server")
    commands: list[list[Any]] = [
        ["FLUSHALL"],
        ["SET", "s", "v"],
        ["HSET", "h", "f", "1", "g", "2"],
        ["HGETALL", "h"],
        ["ZADD", "z", "1.5", "a", "2", "b"],
        ["ZRANGE", "z", 0, -1, "WITHSCORES"],
        ["SADD", "set", "x"],
        ["SMEMBERS", "set"],
        ["INCR", "s"],
        ["GET", "nokey"],
        ["LPOP", "nokey"],
        ["EXISTS", "s", "h", "nokey"],
        ["TYPE", "z"],
    ]

    async def replies(port: int, protocol: int) -> list[Any]:
        async with await RespClient.connect("127.0.0.1", port, protocol=protocol) as client:
            got = await client.pipeline(commands, raise_on_error=False)
            return [f"error: {r}" if isinstance(r, ReplyError) else r for r in got]

    for protocol in (2, 3):
        assert run(replies(node.port, protocol)) == run(replies(redis_server.port, protocol))


# -- connection set-up -----------------------------------------------------------------------------------


def test_connect_selects_names_and_speaks_resp3(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port, db=3, client_name="rc-test") as client:
            await client.call("SET", "in3", "yes")
            assert await client.call("CLIENT", "GETNAME") == b"rc-test"
        async with await RespClient.connect("127.0.0.1", port, db=3, protocol=3, client_name="rc3") as client:
            assert await client.call("GET", "in3") == b"yes"
            assert await client.call("CLIENT", "GETNAME") == b"rc3"
            await client.call("HSET", "h", "f", "v")
            assert await client.call("HGETALL", "h") == {b"f": b"v"}  # a RESP3 map
        async with await RespClient.connect("127.0.0.1", port) as client:
            assert await client.call("GET", "in3") is None

    run(scenario())


def test_connect_authenticates_and_a_wrong_password_is_a_reply_error(tmp_path: Path) -> None:
    servers: list[Any] = [NodeProcess(tmp_path, "auth", requirepass="s3cret").start()]
    if shutil.which("redis-server"):
        reference = RedisServer(tmp_path)
        reference.client.config_set(
            "requirepass", "s3cret"
        )  # after start-up: the harness PINGs unauthenticated
        servers.append(reference)

    async def scenario(port: int) -> None:
        async with await RespClient.connect("127.0.0.1", port, password="s3cret") as client:
            assert await client.call("PING") == b"PONG"
        async with await RespClient.connect("127.0.0.1", port, password="s3cret", protocol=3) as client:
            assert await client.call("PING") == b"PONG"
        with pytest.raises(ReplyError) as info:
            await RespClient.connect("127.0.0.1", port, password="wrong")
        assert info.value.code == "WRONGPASS"
        async with await RespClient.connect("127.0.0.1", port) as client:
            with pytest.raises(ReplyError, match="^NOAUTH"):
                await client.call("GET", "k")

    try:
        for server in servers:
            run(scenario(server.port))
    finally:
        for server in servers:
            server.stop()


# -- pub/sub ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribers_receive_channel_and_pattern_messages(port: int, protocol: int) -> None:
    async def scenario() -> None:
        sub = await RespClient.connect("127.0.0.1", port, protocol=protocol)
        pub = await RespClient.connect("127.0.0.1", port)
        try:
            await sub.subscribe("news", "weather")
            await sub.psubscribe("log.*")
            assert sub.channels == {b"news", b"weather"} and sub.patterns == {b"log.*"}
            assert await pub.call("PUBLISH", "news", "hello") == 1
            assert await pub.call("PUBLISH", "log.disk", "full") == 1
            assert await pub.call("PUBLISH", "weather", b"\x00rain") == 1
            got: list[PubSubMessage] = []
            async for message in sub.messages():
                got.append(message)
                if len(got) == 3:
                    break
            assert got == [
                PubSubMessage("message", b"news", b"hello"),
                PubSubMessage("pmessage", b"log.disk", b"full", b"log.*"),
                PubSubMessage("message", b"weather", b"\x00rain"),
            ]
            # Commands still work while subscribed (PING, in either protocol).
            assert await sub.call("PING") in (b"PONG", [b"pong", b""])
            await sub.unsubscribe()
            await sub.punsubscribe()
            assert sub.channels == set() and sub.patterns == set()
            assert await pub.call("PUBLISH", "news", "nobody") == 0
            assert await sub.get_message(timeout_s=0.05) is None
            if protocol == 3:
                assert await sub.call("GET", "k") is None  # RESP3 allows any command after unsubscribing
        finally:
            await sub.close()
            await pub.close()

    run(scenario())


def test_subscribing_goes_through_the_subscription_methods(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port) as client:
            for verb in ("SUBSCRIBE", b"psubscribe", "Unsubscribe"):
                with pytest.raises(ValueError, match="answers once per name"):
                    await client.call(verb, "c")
            with pytest.raises(ValueError):
                await client.pipeline([["PING"], ["SUBSCRIBE", "c"]])
            assert await client.call("PING") == b"PONG"  # nothing was sent

    run(scenario())


def test_unread_messages_are_bounded(port: int) -> None:
    async def scenario() -> None:
        sub = await RespClient.connect("127.0.0.1", port, max_pending_messages=5)
        pub = await RespClient.connect("127.0.0.1", port)
        try:
            await sub.subscribe("c")
            await pub.pipeline([["PUBLISH", "c", str(i)] for i in range(20)])
            await sub.wait_closed(5)
            got = []
            with pytest.raises(ConnectionLost, match="pub/sub messages not read"):
                while True:
                    message = await sub.get_message(1)
                    assert message is not None
                    got.append(message.data)
            assert got == [b"0", b"1", b"2", b"3", b"4"]
        finally:
            await sub.close()
            await pub.close()

    run(scenario())


# -- bounds and broken connections ----------------------------------------------------------------------


def test_a_reply_over_max_reply_bytes_closes_the_connection(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port) as writer:
            await writer.call("SET", "big", b"x" * 300_000)
        async with await RespClient.connect("127.0.0.1", port, max_reply_bytes=100_000) as client:
            assert await client.call("STRLEN", "big") == 300_000
            with pytest.raises(ReplyTooLarge):
                await client.call("GET", "big")
            assert client.is_closed
            with pytest.raises(ConnectionLost):
                await client.call("PING")

    run(scenario())


def test_a_call_that_times_out_raises_and_closes_the_connection(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port, timeout_s=5) as client:
            with pytest.raises(RespTimeout):
                await client.call("DEBUG", "SLEEP", "0.5", timeout_s=0.1)
            assert client.is_closed
            with pytest.raises(ConnectionLost):
                await client.call("PING")
            # A longer timeout of its own lets a slow call finish (on a fresh connection).
        async with await RespClient.connect("127.0.0.1", port, timeout_s=0.1) as client:
            assert await client.call("DEBUG", "SLEEP", "0.3", timeout_s=5) == b"OK"

    run(scenario())


def test_a_killed_connection_fails_the_next_call(port: int) -> None:
    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", port, client_name="victim") as victim:
            async with await RespClient.connect("127.0.0.1", port) as killer:
                assert await killer.call("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal") >= 1
            assert await victim.wait_closed(5)
            with pytest.raises(ConnectionLost):
                await victim.call("PING")

    run(scenario())


class _ScriptedServer:
    """A loopback socket server that sends ``script`` to its one client, then closes (or stays silent)."""

    def __init__(self, script: bytes, close: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script, self.close_after = script, close
        self.received = b""
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            self.received = conn.recv(65536)
            conn.sendall(self.script)
            if not self.close_after:
                self.done.wait(10)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.sock.close()


def test_a_server_that_closes_mid_reply_is_a_lost_connection() -> None:
    server = _ScriptedServer(b"*2\r\n$3\r\nabc\r\n$10\r\nabc", close=True)

    async def scenario() -> None:
        async with await RespClient.connect("127.0.0.1", server.port) as client:
            with pytest.raises(ConnectionLost, match="in the middle of a reply"):
                await client.call("LRANGE", "l", 0, -1)

    try:
        run(scenario())
        assert server.received == b"*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n"
    finally:
        server.stop()


def test_a_server_that_never_answers_times_out() -> None:
    server = _ScriptedServer(b"", close=False)

    async def scenario() -> None:
        client = await RespClient.connect("127.0.0.1", server.port, timeout_s=0.2)
        with pytest.raises(RespTimeout):
            await client.call("PING")
        await client.close()

    try:
        run(scenario())
    finally:
        server.stop()


def test_connecting_to_a_closed_port_is_refused() -> None:
    with pytest.raises(ConnectionRefusedError):
        BlockingRespClient.connect("127.0.0.1", free_port(), timeout_s=1)


# -- the blocking wrapper --------------------------------------------------------------------------------


def test_the_blocking_client_calls_pipelines_and_subscribes(port: int) -> None:
    with (
        BlockingRespClient.connect("127.0.0.1", port) as client,
        BlockingRespClient.connect("127.0.0.1", port) as sub,
    ):
        assert client.call("SET", "k", 1) == b"OK"
        assert client.pipeline([["INCR", "k"], ["GET", "k"]]) == [2, b"2"]
        with pytest.raises(ReplyError, match="^ERR"):
            client.call("INCR", "k", "extra")
        sub.subscribe("c")
        assert client.call("PUBLISH", "c", "hi") == 1
        assert sub.get_message(5) == PubSubMessage("message", b"c", b"hi")


def test_the_blocking_client_sees_a_shutdown_close_the_connection(tmp_path: Path) -> None:
    victim = NodeProcess(tmp_path, "victim").start()
    try:
        with BlockingRespClient.connect("127.0.0.1", victim.port) as client:
            client.send("SHUTDOWN", "NOSAVE")
            assert client.wait_closed(10)
        wait_for(lambda: not victim.alive(), 10, what="the node to exit")
    finally:
        victim.stop()
