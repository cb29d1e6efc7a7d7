"""MONITOR: every command a node runs, echoed to monitoring clients in Redis's format (redis-cli monitor)."""

from __future__ import annotations

import re
import socket

from tests.harness import NodeProcess, wait_for
from tests.persistence_helpers import RawFactory, raw_connections_fixture

raw = raw_connections_fixture()
LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) ([0-9.]+:\d+)\] (.*)$")


class Monitor:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"MONITOR\r\n")
        self.buffer = b""
        assert self.line() == b"+OK"

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the node closed the monitor connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def commands(self, count: int) -> list[tuple[int, bytes]]:
        """The next ``count`` lines as (database, quoted arguments)."""
        out = []
        for _ in range(count):
            match = LINE.match(self.line())
            assert match is not None
            out.append((int(match.group(3)), match.group(5)))
        return out


def test_monitor_shows_what_runs_as_redis_does(node: NodeProcess, raw: RawFactory) -> None:
    monitor = Monitor(node.port)
    conn = raw(node.port)
    conn.call("SET", "a", b'x"y\n\x01\\')
    conn.call("CONFIG", "GET", "port")  # administrative: not shown
    conn.call("GET")  # refused before it runs (arity): not shown
    conn.call("SELECT", "3")
    conn.call("SET", "b", "1", "2")  # runs and fails (syntax): shown, as in Redis
    assert conn.pipeline(["MULTI"], ["SET", "q", "1"], ["GET", "q"], ["EXEC"])[-1] == [b"OK", b"1"]
    conn.call("AUTH", "secret-password")
    conn.call("HELLO", "2", "AUTH", "default", "secret")
    conn.call("PING")
    assert monitor.commands(10) == [
        (0, b'"SET" "a" "x\\"y\\n\\x01\\\\"'),
        (3, b'"SELECT" "3"'),
        (3, b'"SET" "b" "1" "2"'),
        (3, b'"MULTI"'),
        (3, b'"SET" "q" "1"'),
        (3, b'"GET" "q"'),
        (3, b'"EXEC"'),
        (3, b'"AUTH" "(redacted)"'),
        (3, b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"'),
        (3, b'"PING"'),
    ]
    r = node.client()
    assert b"flags=O" in r.execute_command("CLIENT", "LIST")
    monitor.sock.close()
    wait_for(lambda: b"flags=O" not in r.execute_command("CLIENT", "LIST"), 5, what="the monitor to be gone")
    assert r.set("after", "1") and r.get("after") == b"1"
