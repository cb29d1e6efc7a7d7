"""Fixtures and helpers shared by the command-family test modules (strings, keys, hashes, ...).

A module declares the fixtures it wants by assignment (pytest finds them by their ``name``)::

    node = module_node_fixture()     # one node per test module; its tests flush it and never stop it
    r = resp2_client_fixture()       # a RESP2 client on it (Redis's default protocol; redis-py 8 would
                                     # negotiate RESP3, which has tests of its own), flushed before each test
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess


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
