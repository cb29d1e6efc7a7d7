"""``tcp-keepalive`` (a node's and a sentinel's; it was accepted and ignored) and a sentinel's ``timeout``, each
checked on redis-server / redis-sentinel with the same setting. Keepalive is read from the kernel: an idle
client connection's server-side socket has its keepalive timer armed (``/proc/net/tcp``'s timer 2) with the
configured idle time, or no timer with ``tcp-keepalive 0``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import REPO, NodeProcess, RedisServer
from tests.sentinel_harness import SentinelProcess

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

CLOCK_TICKS_PER_S = 100  # /proc/net/tcp's timer is in USER_HZ ticks


def server_side_timer(server_port: int, client_port: int) -> tuple[int, float]:
    """(timer kind, seconds left) of the server's end of the connection from ``client_port``: kind 2 is the
    keepalive timer, 0 none."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == wanted:
                kind, when = fields[5].split(":")
                return int(kind, 16), int(when, 16) / CLOCK_TICKS_PER_S
    raise AssertionError(f"no connection {wanted} in /proc/net/tcp")


def keepalive_of(port: int) -> tuple[int, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"  # accepted and served: the options are set
        return server_side_timer(port, sock.getsockname()[1])


@pytest.mark.parametrize("seconds", [300, 77, 0])
def test_a_nodes_client_connections_as_redis(
    node_factory: Callable[..., NodeProcess], tmp_path: Path, seconds: int
) -> None:
    node = node_factory("n", tcp_keepalive=seconds)
    (tmp_path / "redis").mkdir()
    reference = RedisServer(tmp_path / "redis", "--tcp-keepalive", str(seconds))
    try:
        for port in (reference.port, node.port):
            kind, left_s = keepalive_of(port)
            if seconds:
                assert kind == 2 and seconds - 5 <= left_s <= seconds, (port, kind, left_s)
            else:
                assert kind == 0, (port, kind, left_s)
    finally:
        reference.stop()


@pytest.mark.parametrize("real", [False, True], ids=["redactor-sentinel", "redis-sentinel"])
def test_a_sentinels_keepalive_and_idle_timeout(
    real: bool, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    master = node_factory("m")
    sentinel = SentinelProcess(tmp_path, "s", master.port, real=real, prelude="tcp-keepalive 60\ntimeout 1\n")
    sentinel.start()
    try:
        kind, left_s = keepalive_of(sentinel.port)
        assert kind == 2 and 55 <= left_s <= 60
        # timeout 1: an idle client is closed (within Redis's once-a-second sweep), a subscriber is not.
        idle = socket.create_connection(("127.0.0.1", sentinel.port), timeout=10)
        subscriber = redis.Redis(port=sentinel.port, socket_timeout=10).pubsub()
        subscriber.subscribe("+switch-master")
        try:
            assert subscriber.get_message(timeout=5)["type"] == "subscribe"
            assert idle.recv(64) == b""  # closed by the sentinel
            subscriber.ping()  # (the idle one is gone: the timeout has passed for the subscriber too)
            assert subscriber.get_message(timeout=5) is not None  # its PING's answer: still served
        finally:
            idle.close()
            subscriber.close()
    finally:
        sentinel.stop()


def test_sentinel_config_values_are_checked(tmp_path: Path) -> None:
    """A bad value stops the start with the node's (Redis's) words, on both sentinels."""
    conf = tmp_path / "s.conf"
    for argv in (
        ["redis-server", str(conf), "--sentinel"],
        [sys.executable, "-m", "launcher.main", "sentinel", str(conf)],
    ):
        conf.write_text("port 26999\ntcp-keepalive -1\nsentinel monitor m 127.0.0.1 6379 1\n")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=REPO)
        assert done.returncode == 1 and "argument must be between 0 and" in done.stdout + done.stderr, argv
