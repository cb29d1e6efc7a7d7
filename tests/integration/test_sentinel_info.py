"""A sentinel's INFO sections and ``maxclients``, on our sentinels and on redis-sentinel with the same file:
the section checks of Redis's own sentinel unit 13 (which fields each section selection shows and hides), the
stats a monitoring tool reads, and a connection past ``maxclients`` refused with Redis's words (``maxclients``
was refused in sentinel.conf before)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.sentinel_harness import SentinelProcess

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")

MAXCLIENTS = 3


@pytest.fixture(params=[False, True], ids=["redactor-sentinel", "redis-sentinel"])
def sentinel(
    request: pytest.FixtureRequest, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> Iterator[SentinelProcess]:
    master = node_factory("m")
    s = SentinelProcess(tmp_path, "s", master.port, real=request.param, prelude=f"maxclients {MAXCLIENTS}\n")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def info(s: SentinelProcess, *sections: str) -> str:
    with redis.Redis(port=s.port, socket_timeout=5) as r:
        r.response_callbacks.clear()  # the text as sent (redis-py would parse it into a dict)
        return bytes(r.execute_command("INFO", *sections)).decode()


def test_info_sections_as_redis_sentinel_unit_13(sentinel: SentinelProcess) -> None:
    for args in ((), ("all",), ("default",), ("everything",)):
        text = info(sentinel, *args)
        for present in ("redis_version", "maxclients", "used_cpu_user", "sentinel_tilt"):
            assert present in text, (args, present)
        for absent in ("used_memory", "rdb_last_bgsave", "master_repl_offset", "cluster_enabled"):
            assert absent not in text, (args, absent)
    text = info(sentinel, "cpu")
    assert "used_cpu_user" in text and "sentinel_tilt" not in text and "redis_version" not in text
    text = info(sentinel, "sentinel")
    assert "sentinel_tilt" in text and "used_cpu_user" not in text and "redis_version" not in text
    text = info(sentinel, "server", "sentinel", "replication")
    assert "redis_version" in text and "sentinel_tilt" in text
    assert "used_memory" not in text and "used_cpu_user" not in text
    text = info(sentinel, "cpu", "all")
    assert all(f in text for f in ("used_cpu_user", "sentinel_tilt", "redis_version"))
    assert "used_memory" not in text and "master_repl_offset" not in text


def fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def test_maxclients_and_the_stats_that_count_it(sentinel: SentinelProcess) -> None:
    held = [socket.create_connection(("127.0.0.1", sentinel.port), timeout=5) for _ in range(MAXCLIENTS)]
    try:
        for sock in held:  # each is a client now (answered)
            sock.sendall(b"PING\r\n")
            assert sock.recv(64) == b"+PONG\r\n"
        with socket.create_connection(("127.0.0.1", sentinel.port), timeout=5) as extra:
            assert extra.recv(64) == b"-ERR max number of clients reached\r\n"
        held.pop().close()

        def connected_clients() -> int:
            held[0].sendall(b"INFO clients\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < data.index(b"\r\n") + 4 + int(
                data[1 : data.index(b"\r\n")]
            ):
                chunk = held[0].recv(65536)
                assert chunk, "the sentinel closed the connection"
                data += chunk
            return int(fields(data.decode().split("\r\n", 1)[1])["connected_clients"])

        # Once the sentinel has seen the close (its count says so), the freed slot takes the next connection.
        wait_for(lambda: connected_clients() == MAXCLIENTS - 1, 10, what="the sentinel to see the close")
        with socket.create_connection(("127.0.0.1", sentinel.port), timeout=5) as sock:
            sock.sendall(b"INFO\r\n")
            data = b""
            while b"sentinel_masters" not in data:
                chunk = sock.recv(65536)
                assert chunk, "the sentinel closed the connection"
                data += chunk
        stats = fields(data.decode())
        assert stats["maxclients"] == str(MAXCLIENTS)
        assert int(stats["rejected_connections"]) == 1
        assert int(stats["total_connections_received"]) >= MAXCLIENTS + 2
        assert int(stats["total_commands_processed"]) >= MAXCLIENTS
    finally:
        for sock in held:
            sock.close()
