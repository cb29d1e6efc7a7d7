"""CONFIG SET port at run time: the node listens on the new port (connections already open stay), and a
port it cannot listen on fails CONFIG SET with Redis's error and rolls back every pair of that CONFIG SET."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import redis

from tests.harness import NodeProcess, RedisServer, free_port


def _moves_and_refuses(client: redis.Redis, busy_port: int) -> tuple[str, str, str]:
    """Move ``client``'s server to a free port, then try a busy one: what each step answered."""
    new_port = free_port()
    assert client.config_set("port", new_port)
    moved = redis.Redis(port=new_port, socket_timeout=10)
    assert moved.ping() and client.ping()  # the new port serves; the open connection stays
    before = moved.config_get("maxmemory", "port")
    try:
        moved.execute_command("CONFIG", "SET", "maxmemory", "10000001", "port", busy_port)
        error = "no error"
    except redis.ResponseError as exc:
        error = str(exc)
    after = moved.config_get("maxmemory", "port")
    assert after == before, "a failed CONFIG SET changes nothing"
    assert moved.info("server")["tcp_port"] == new_port
    with socket.create_connection(("127.0.0.1", new_port), timeout=10):
        pass  # still listening on the port it had
    moved.close()
    return error, str(after["port"] == str(new_port)), str(before["maxmemory"])


def test_config_set_port_moves_the_listener_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        busy_port = busy.getsockname()[1]
        want = _moves_and_refuses(redis_servers(tmp_path).client, busy_port)
        assert want[0].startswith(
            "CONFIG SET failed (possibly related to argument 'port') - Unable to listen"
        )
        got = _moves_and_refuses(node.client(), busy_port)
    assert got == want
