"""Redis 7's limits for unauthenticated RESP clients (10 arguments, 16 KiB per bulk), compared with
redis-server byte for byte; and constant-time AUTH still accepting the right password only."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, RedisServer, wait_for

# (what the client sends, what it sends after a pause): each case on a fresh connection.
CASES: list[bytes] = [
    b"*20\r\n$3\r\nfoo\r\n",
    b"*11\r\n",
    b"*10\r\n",
    b"*2\r\n$3\r\nGET\r\n$500000000\r\n",
    b"*2\r\n$3\r\nGET\r\n$16384\r\n",
    b"*2\r\n$3\r\nGET\r\n$16385\r\n",
    b"*1\r\n$4\r\nPING\r\n*11\r\n",
    b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*20\r\n",
    b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n" + b"v" * 20000 + b"\r\n",
    b"*2\r\n$4\r\nAUTH\r\n$2\r\nno\r\n*11\r\n",
    b"PING\r\n*12\r\n",
]


def _exchange(port: int, data: bytes, pieces: int = 1) -> bytes:
    """Send ``data`` (in ``pieces`` writes), read until the server closes or stays quiet; mark which."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            try:
                sock.sendall(data[start : start + step])
            except (BrokenPipeError, ConnectionResetError):
                break  # closed by the server already: read what it said
        sock.settimeout(0.5)
        try:
            while True:
                got = sock.recv(65536)
                if not got:
                    return out + b"<closed>"
                out += got
        except TimeoutError:
            return out + b"<open>"
        except ConnectionResetError:
            return out + b"<closed>"


@pytest.fixture
def pair(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> tuple[int, int]:
    node = node_factory("node", requirepass="pw")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = redis_servers(ref_dir)
    ref.client.config_set("requirepass", "pw")
    return node.port, ref.port


@pytest.mark.parametrize("pieces", [1, 3])
def test_unauthenticated_requests_are_refused_as_redis_does(pair: tuple[int, int], pieces: int) -> None:
    ours, ref = pair
    for data in CASES:
        assert _exchange(ours, data, pieces) == _exchange(ref, data, pieces), data[:40]


def test_refused_client_is_logged_once_per_burst_and_others_still_served(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("node", requirepass="pw")
    for _ in range(50):
        assert _exchange(node.port, b"*2\r\n$3\r\nGET\r\n$500000000\r\n").endswith(b"<closed>")
    r = node.client(password="pw")
    assert r.ping()

    def logged() -> bool:
        return "unauth bulk length" in node.log()

    wait_for(logged, 5, what="the unauthenticated bulk length log line")
    # Rate limited: at most 10 lines in the interval, not one per refused client.
    assert 1 <= node.log().count("unauth bulk length") <= 10
    # Authenticated, a big bulk is fine; a wrong password is still refused.
    assert r.set("k", b"v" * 100_000)
    with pytest.raises(Exception, match="invalid username-password pair"):
        node.client(password="px").ping()


def _status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(field)


def test_memory_of_a_big_request_goes_back(node_factory: Callable[..., NodeProcess]) -> None:
    """One 64 MiB SET (the issue's 400 MiB, scaled): afterwards RSS holds the value once, not the read buffers;
    the peak stays near two copies (hiredis's buffer and the value) instead of four."""
    node = node_factory("node")
    r = node.client(socket_timeout=60)
    assert r.ping()
    before = _status_mib(node.pid, "VmRSS")
    size_mib = 64
    r.set("big", b"x" * (size_mib * 1024 * 1024))
    after = _status_mib(node.pid, "VmRSS")
    peak = _status_mib(node.pid, "VmHWM")
    print(f"RSS before {before:.0f} MiB, after {after:.0f} MiB, peak {peak:.0f} MiB")
    assert after - before < size_mib * 1.5
    assert peak - before < size_mib * 2.6
    r.delete("big")
    wait_for(
        lambda: _status_mib(node.pid, "VmRSS") - before < size_mib / 2, 10, what="the value's memory back"
    )
