"""Client tracking: when invalidations go out and to whom, byte for byte against redis-server 7.0.

Cases Redis's own tests/unit/tracking.tcl covers and the node once got wrong: a read queued in MULTI is
tracked only when EXEC runs it; an expired key's deletion is a change no client made (NOLOOP does not hide
it); a command woken from BLMOVE gets its own invalidation after its reply; lowering
tracking-table-max-keys invalidates the overflow at once; INFO's tracking_total_* figures; a redirect target
that QUIT is gone before the next command of another client runs; DEBUG POPULATE invalidates what it adds.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, RedisServer, wait_for


@pytest.fixture
def reference(redis_servers: Callable[..., RedisServer], tmp_path: Path) -> RedisServer:
    directory = tmp_path / "reference"
    directory.mkdir()
    return redis_servers(directory)


def _enc(*argv: str) -> bytes:
    parts = [a.encode() for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Conn:
    """A raw connection; ``talk`` sends commands then a marker PING and returns all it got up to the marker's
    reply (what arrives after it, such as a broadcast invalidation sent at the end of the server's loop
    iteration, stays for the next ``talk``)."""

    def __init__(self, port: int, resp3: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.marks = 0
        self.id = int(self.talk(["CLIENT", "ID"]).split(b"\r\n")[0][1:])
        if resp3:
            self.talk(["HELLO", "3"])

    def read_until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {self.buffer!r}"
            self.buffer += chunk
        cut = self.buffer.index(end) + len(end)
        data, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return data

    def send(self, *commands: list[str]) -> None:
        self.sock.sendall(b"".join(_enc(*argv) for argv in commands))

    def talk(self, *commands: list[str]) -> bytes:
        self.marks += 1
        mark = f"mark-{self.marks}"
        self.send(*commands, ["PING", mark])
        return self.read_until(b"$%d\r\n%s\r\n" % (len(mark), mark.encode()))

    def close(self) -> None:
        self.sock.close()


def _scenario(port: int) -> list[bytes]:
    out: list[bytes] = []
    writer = Conn(port)
    me = Conn(port, resp3=True)
    # A read queued in MULTI is tracked when EXEC runs it, not when it is queued: the transaction's own
    # write of that key (before the read) invalidates nothing.
    out.append(
        me.talk(["CLIENT", "TRACKING", "on"], ["MULTI"], ["MSET", "x", "1", "y", "2"], ["GET", "y"], ["EXEC"])
    )
    out.append(writer.talk(["SET", "y", "3"]))
    out.append(me.talk())
    # An expiry found by the client's own read: with NOLOOP its SETs are not reported, the expired key's
    # deletion is (a change by no client). Broadcasts leave at the end of the loop iteration, so the pushes
    # are compared apart from the replies.
    me.talk(["DEBUG", "SET-ACTIVE-EXPIRE", "0"], ["CLIENT", "TRACKING", "off"])
    got = me.talk(
        ["CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"],
        ["SET", "soon", "v", "PX", "1"],
        ["SET", "other", "v"],
        ["DEBUG", "SLEEP", "0.05"],
        ["GET", "soon"],
    )
    got += me.talk()
    pushes = re.findall(rb">2\r\n\$10\r\ninvalidate\r\n\*\d+\r\n(?:\$\d+\r\n\S+\r\n)+", got)
    out.append(b"|".join(pushes))
    out.append(re.sub(rb">2\r\n\$10\r\ninvalidate\r\n\*\d+\r\n(?:\$\d+\r\n\S+\r\n)+", b"", got))
    me.talk(["CLIENT", "TRACKING", "off"], ["DEBUG", "SET-ACTIVE-EXPIRE", "1"])
    # A woken BLMOVE: its reply, then the invalidation of the list it tracked and moved into.
    out.append(me.talk(["CLIENT", "TRACKING", "on"], ["RPUSH", "dst", "a"], ["LRANGE", "dst", "0", "-1"]))
    me.send(["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"])
    probe = Conn(port)
    wait_for(lambda: b"blocked_clients:1\r" in probe.talk(["INFO", "clients"]), 30.0, what="BLMOVE blocked")
    out.append(writer.talk(["RPUSH", "src", "foo"]))
    out.append(me.talk())
    # Lowering tracking-table-max-keys invalidates what no longer fits, at once.
    me.talk(["CLIENT", "TRACKING", "off"], ["FLUSHALL"])
    me.talk(["CLIENT", "TRACKING", "on"], ["MGET", "k1", "k2", "k3", "k4"])
    info = me.talk(["INFO", "stats"])
    out.append(b"".join(re.findall(rb"tracking_total_\w+:\d+\r\n", info)))
    got = me.talk(["CONFIG", "SET", "tracking-table-max-keys", "1"])
    out.append(b"%d invalidations" % got.count(b"invalidate"))
    me.talk(["CONFIG", "SET", "tracking-table-max-keys", "1000000"], ["CLIENT", "TRACKING", "off"])
    # A redirect target that QUIT is gone before another client's next command: tracking-redir-broken.
    target = Conn(port)
    me.talk(["CLIENT", "TRACKING", "on", "REDIRECT", str(target.id)], ["GET", "key1"])
    target.send(["QUIT"])
    assert target.read_until(b"+OK\r\n") == b"+OK\r\n"
    writer.talk(["SET", "key1", "2"])
    out.append(me.talk().replace(b":%d\r\n" % target.id, b":<TARGET>\r\n"))
    me.talk(["CLIENT", "TRACKING", "off"])
    # DEBUG POPULATE signals each key it adds: a tracked (missing) key read before is invalidated.
    me.talk(["CLIENT", "TRACKING", "on"], ["GET", "pop:1"])
    out.append(writer.talk(["DEBUG", "POPULATE", "3", "pop"]))
    out.append(me.talk())
    me.talk(["CLIENT", "TRACKING", "off"])
    # A script's reads are remembered for its caller (the keys it declared), its writes invalidate others.
    me.talk(["CLIENT", "TRACKING", "on"], ["EVAL", "return redis.call('get', KEYS[1])", "1", "sk"])
    out.append(writer.talk(["EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "sk"]))
    out.append(me.talk())
    me.talk(["CLIENT", "TRACKING", "off"])
    # FLUSHDB queued in MULTI flushes nothing yet: the null invalidation follows EXEC's reply (and a discarded
    # transaction sends none), to the flushing client and to the others alike.
    other = Conn(port, resp3=True)
    other.talk(["CLIENT", "TRACKING", "on"], ["GET", "fk"])
    out.append(me.talk(["CLIENT", "TRACKING", "on"], ["SET", "fk", "1"], ["GET", "fk"]))
    out.append(other.talk())
    out.append(me.talk(["MULTI"], ["FLUSHDB"], ["DISCARD"]))
    out.append(other.talk())
    out.append(me.talk(["GET", "fk"]))
    me.send(["MULTI"], ["FLUSHDB"])
    out.append(me.read_until(b"+QUEUED\r\n"))
    out.append(other.talk(["GET", "fk"]))
    out.append(me.talk(["EXEC"]))
    out.append(other.talk())
    me.talk(["CLIENT", "TRACKING", "off"])
    for conn in (writer, me, target, probe, other):
        conn.close()
    return out


def test_tracking_timing_matches_redis(node: NodeProcess, reference: RedisServer) -> None:
    ours = _scenario(node.port)
    theirs = _scenario(reference.port)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"step {i}: ours {a!r} theirs {b!r}"
