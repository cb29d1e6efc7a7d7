"""client-output-buffer-limit with real nodes: a subscriber that never reads is closed at the pubsub class's
hard limit (and at its soft limit after the soft seconds), with Redis's log line, while the node's memory stays
bounded however much is published."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from tests.harness import NodeProcess, wait_for

MESSAGE = b"m" * 65536
LOG_LINE = "scheduled to be closed ASAP for overcoming of output buffer limits."


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@contextmanager
def stalled_subscriber(node: NodeProcess, channel: bytes) -> Iterator[socket.socket]:
    """A client that SUBSCRIBEs and then never reads (a small receive buffer, so the node holds the rest)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", node.port))
    sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel))
    try:
        yield sock
    finally:
        sock.close()


def publish_volume(client: redis.Redis, channel: str, total_bytes: int, pid: int) -> tuple[int, int]:
    """PUBLISH ``total_bytes`` in 64 KB messages; returns (bytes published when the subscriber count fell to
    0, the node's highest RSS seen)."""
    pipe = client.pipeline(transaction=False)
    sent = 0
    dropped_at = -1
    peak_rss = rss_bytes(pid)
    while sent < total_bytes:
        for _ in range(16):
            pipe.publish(channel, MESSAGE)
        receivers = pipe.execute()
        sent += 16 * len(MESSAGE)
        if dropped_at < 0 and receivers[-1] == 0:
            dropped_at = sent
        peak_rss = max(peak_rss, rss_bytes(pid))
    return dropped_at, peak_rss


@pytest.mark.parametrize(
    "volume_bytes", [128 * 1024**2, pytest.param(1024**3, marks=pytest.mark.slow)], ids=["128MB", "1GB"]
)
def test_a_subscriber_that_never_reads_is_closed_at_the_hard_limit(
    node_factory: Callable[..., NodeProcess], volume_bytes: int
) -> None:
    node = node_factory("n")  # the default: pubsub 32mb 8mb 60
    c = node.client()
    with stalled_subscriber(node, b"ch"):
        wait_for(lambda: c.pubsub_numsub("ch")[0][1] == 1, 5, what="the subscriber registered")
        base_rss = rss_bytes(node.pid)
        started = time.monotonic()
        dropped_at, peak_rss = publish_volume(c, "ch", volume_bytes, node.pid)
        took_s = time.monotonic() - started
    print(
        f"published {volume_bytes >> 20} MB in {took_s:.1f} s; subscriber closed after {dropped_at >> 20} MB; "
        f"RSS {base_rss >> 20} MB -> peak {peak_rss >> 20} MB"
    )
    limit = 32 * 1024**2
    assert 0 < dropped_at < limit + 16 * 1024**2  # the limit plus what the kernel's socket buffers took
    assert peak_rss - base_rss < 3 * limit
    assert LOG_LINE in node.log()
    assert c.ping()


def test_a_subscriber_over_the_soft_limit_for_its_seconds_is_closed(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("n")
    c = node.client()
    c.config_set("client-output-buffer-limit", "pubsub 0 1mb 1")
    with stalled_subscriber(node, b"soft"):
        wait_for(lambda: c.pubsub_numsub("soft")[0][1] == 1, 5, what="the subscriber registered")
        started = time.monotonic()
        published = 0
        while c.publish("soft", MESSAGE) == 1:  # the kernel buffers first, then the node's buffer passes 1 MB
            published += len(MESSAGE)
            assert time.monotonic() - started < 15, "never closed"
            time.sleep(0.02)  # pacing, not waiting: a steady trickle, so the soft limit's clock is what acts
        # Closed for the soft limit (held over 1 MB for a second), far below any hard limit.
        assert time.monotonic() - started >= 1.0
        assert published < 64 * 1024**2
        assert c.pubsub_numsub("soft")[0][1] == 0
    assert LOG_LINE in node.log()


def test_normal_clients_have_no_limit_by_default_and_one_when_set(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("n")
    c = node.client()
    c.set("big", b"x" * (4 * 1024**2))
    c.config_set("client-output-buffer-limit", "normal 1mb 0 0")
    sock = socket.create_connection(("127.0.0.1", node.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 8)  # 32 MB of replies it does not read
        wait_for(lambda: LOG_LINE in node.log(), 10, what="the client closed for its output buffer")
    finally:
        sock.close()
    assert c.ping()
