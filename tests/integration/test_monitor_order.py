"""MONITOR as Redis 7.0 shows scripts and MIGRATE: EVAL's / FCALL's line comes before those of the commands
their script runs; MIGRATE's AUTH password and AUTH2 credentials are redacted. Compared with redis-server."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import redis

from tests.harness import NodeProcess, RedisServer


def _lines(port: int) -> list[bytes]:
    monitor = socket.create_connection(("127.0.0.1", port), timeout=10)
    monitor.sendall(b"MONITOR\r\n")
    buffer = b""
    while b"+OK\r\n" not in buffer:
        buffer += monitor.recv(65536)
    buffer = buffer.split(b"+OK\r\n", 1)[1]
    r = redis.Redis(port=port)
    r.eval("redis.call('set', KEYS[1], ARGV[1])", 1, "foo", "bar")
    r.function_load(
        "#!lua name=lib\nredis.register_function('f', function() return redis.call('get', 'foo') end)",
        replace=True,
    )
    r.fcall("f", 0)
    for extra in ([], ["AUTH", "secret"], ["AUTH2", "user", "secret"]):
        r.execute_command("MIGRATE", "127.0.0.1", str(port), "nokey", "0", "1000", *extra)
    r.execute_command("ECHO", "end")
    while b'"end"' not in buffer:
        chunk = monitor.recv(65536)
        assert chunk, buffer
        buffer += chunk
    monitor.close()
    r.close()
    # Keep the arguments: the time and the client's address differ between the servers.
    lines = [re.sub(rb"^\+[\d.]+ \[\d+ [^\]]+\] ", b"", line) for line in buffer.split(b"\r\n") if line]
    start = next(
        i for i, line in enumerate(lines) if line.startswith(b'"EVAL"')
    )  # after the client's handshake
    return lines[start:]


def test_monitor_order_and_redaction_match_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    ours = _lines(node.port)
    assert ours[:2] == [
        b'"EVAL" "redis.call(\'set\', KEYS[1], ARGV[1])" "1" "foo" "bar"',
        b'"set" "foo" "bar"',
    ]
    theirs = _lines(reference.port)
    assert [line.replace(str(node.port).encode(), b"P") for line in ours] == [
        line.replace(str(reference.port).encode(), b"P") for line in theirs
    ]
