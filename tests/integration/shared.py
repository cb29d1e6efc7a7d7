"""Fixtures and helpers shared by the command-family test modules (strings, keys, hashes, ...).

A module declares the fixtures it wants by assignment (pytest finds them by their ``name``)::

    node = module_node_fixture()     # one node per test module; its tests flush it and never stop it
    r = resp2_client_fixture()       # a RESP2 client on it (Redis's default protocol; redis-py 8 would
                                     # negotiate RESP3, which has tests of its own), flushed before each test
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess

READ_TIMEOUT_S = 5.0


def module_node_fixture() -> Any:
    @pytest.fixture(scope="module", name="node")
    def node(
        tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
    ) -> Iterator[NodeProcess]:
        name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        n = NodeProcess(tmp_path_factory.mktemp(name)).start()
        yield n
        n.stop()

    return node


def resp2_client_fixture() -> Any:
    @pytest.fixture(name="r")
    def r(node: NodeProcess) -> Iterator[redis.Redis]:
        client = node.client(protocol=2)
        client.flushall()
        yield client
        client.close()

    return r


def error_of(call: Callable[..., object], *args: object) -> str:
    """The error message a call raises (redis-py strips the leading code for ERR errors)."""
    with pytest.raises(redis.ResponseError) as info:
        call(*args)
    return str(info.value)


def raw(r: redis.Redis, *args: object) -> Any:
    """Send a command and return the reply exactly as parsed, without redis-py's per-command callbacks."""
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        r.connection_pool.release(conn)


class Wire:
    """A raw TCP connection to the node: send bytes, read exact replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes (fails if the node closes first or goes silent)."""
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {self.buffer!r}"
            self.buffer += chunk
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def expect(self, reply: bytes) -> None:
        assert self.read(len(reply)) == reply

    def read_until_closed(self) -> bytes:
        """Everything until the node closes the connection (fails if it stays open)."""
        out = self.buffer
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        self.sock.close()


def reply_or_error(client: redis.Redis, *args: Any) -> Any:
    """A command's reply, or "error: <message>" for an error reply: replies of two servers compare as values."""
    try:
        return client.execute_command(*args)
    except redis.ResponseError as exc:
        return f"error: {exc}"
