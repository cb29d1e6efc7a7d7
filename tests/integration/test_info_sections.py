"""INFO's sections as Redis 7.0 prints them (default / all / everything, the fixed order, Modules, Errorstats,
Cluster), compared with a real redis-server."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.harness import NodeProcess

pytestmark = pytest.mark.compat


def _raw(port: int, payload: bytes) -> bytes:
    """Send ``payload`` (one command) and read one bulk reply, whole."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while b"\r\n" not in data:
            data += sock.recv(65536)
        header, _, rest = data.partition(b"\r\n")
        if not header.startswith(b"$"):
            return header
        size = int(header[1:])
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        return rest[:size]


def _titles(text: bytes) -> list[bytes]:
    return re.findall(rb"^# (\w+)\r$", text, re.M)


@pytest.mark.parametrize(
    "args",
    [
        "",
        "default",
        "all",
        "everything",
        "keyspace server",
        "cluster",
        "modules",
        "errorstats",
        "latencystats",
        "bogus",
        "CPU",
    ],
)
def test_info_prints_the_sections_redis_prints(
    node: NodeProcess, redis_servers: Any, tmp_path: Path, args: str
) -> None:
    reference = redis_servers(tmp_path)
    command = b"INFO" + (b" " + args.encode() if args else b"") + b"\r\n"
    want = _titles(_raw(reference.port, command))
    got = _titles(_raw(node.port, command))
    if args == "everything":
        # redactor's own, where Redis prints its modules' sections (in name order)
        assert got[-2:] == [b"Actors", b"Bus"]
        got = got[:-2]
    assert got == want


def test_empty_sections_and_cluster_enabled_are_byte_identical(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    for args in (b"modules", b"cluster", b"bogus", b"modules cluster"):
        command = b"INFO " + args + b"\r\n"
        assert _raw(node.port, command) == _raw(reference.port, command), args
    assert node.client().info()["cluster_enabled"] == 0


def test_errorstats_count_each_error_prefix_as_redis_does(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    script = (
        b"FOO\r\nGET\r\nSET a b\r\nLPUSH a x\r\nINCR a\r\nEVAL \"return redis.error_reply('MY own')\" 0\r\n"
        b"EVAL \"return redis.error_reply('NOSPACE')\" 0\r\nPING\r\n"
    )
    for port in (node.port, reference.port):
        # From zero on both (redis-py's CLIENT SETINFO is an error on Redis 7.0 and counted there).
        assert _raw(port, b"CONFIG RESETSTAT\r\n") == b"+OK"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(script)
            data = b""
            while not data.endswith(b"+PONG\r\n"):
                data += sock.recv(65536)
    want = _raw(reference.port, b"INFO errorstats\r\n")
    assert b"errorstat_WRONGTYPE:count=1" in want
    assert _raw(node.port, b"INFO errorstats\r\n") == want
    assert re.findall(rb"total_error_replies:\d+", _raw(node.port, b"INFO stats\r\n")) == re.findall(
        rb"total_error_replies:\d+", _raw(reference.port, b"INFO stats\r\n")
    )
    node.client().config_resetstat()
    assert _raw(node.port, b"INFO errorstats\r\n") == b"# Errorstats\r\n"


def test_errors_inside_exec_and_arity_rejections_are_counted_as_redis(
    node: NodeProcess, redis_servers: Any, tmp_path: Path
) -> None:
    """An error reply inside EXEC's array counts in errorstats; an arity error counts as a rejected call."""
    reference = redis_servers(tmp_path)
    script = b"MULTI\r\nSET a b\r\nAUTH a\r\nLPUSH a x\r\nEXEC\r\nSET k\r\nGET\r\nPING\r\n"
    for port in (node.port, reference.port):
        assert _raw(port, b"CONFIG RESETSTAT\r\n") == b"+OK"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(script)
            data = b""
            while not data.endswith(b"+PONG\r\n"):
                data += sock.recv(65536)
    want = _raw(reference.port, b"INFO errorstats\r\n")
    assert b"errorstat_WRONGTYPE:count=1" in want
    assert _raw(node.port, b"INFO errorstats\r\n") == want

    def counters(port: int) -> list[tuple[bytes, bytes]]:
        stats = _raw(port, b"INFO commandstats\r\n")
        return sorted(
            re.findall(
                rb"(cmdstat_(?:set|get|auth|lpush|exec)):calls=\d+,.*?(rejected_calls=\d+,failed_calls=\d+)",
                stats,
            )
        )

    assert counters(node.port) == counters(reference.port)
