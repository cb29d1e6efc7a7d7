"""Directives a node used to accept and ignore, now acting as in Redis 7.0: ``unixsocket`` /
``unixsocketperm`` (a RESP listener on a Unix socket), ``supervised systemd`` (sd_notify), ``syslog-enabled``
(events to the system log) and ``enable-protected-configs`` (CONFIG SET of dir / dbfilename refused by
default)."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, WaitAbort, wait_for
from tests.integration.shared import error_of


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for socket paths (a Unix socket's path must fit in 108 bytes; pytest's are long)."""
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as name:
        yield Path(name)


def test_unixsocket_serves_resp_with_its_mode_and_goes_with_the_node(
    node_factory: Callable[..., NodeProcess], sock_dir: Path
) -> None:
    path = sock_dir / "node.sock"
    node = node_factory("node", unixsocket=str(path), unixsocketperm="700", protected_mode="yes")
    assert stat.S_ISSOCK(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o700
    local = redis.Redis(unix_socket_path=str(path), decode_responses=True)
    try:
        assert local.set("k", "v") and node.client().get("k") == b"v"
        line = local.execute_command("CLIENT", "LIST")
        # Redis's fields for such a client: the path as addr and laddr (port 0), and flag U.
        assert f"addr={path}:0 laddr={path}:0 " in line and " flags=U " in line, line
        assert local.config_get("unixsocket*") == {"unixsocket": str(path), "unixsocketperm": "700"}
    finally:
        local.close()
    node.stop()
    assert not path.exists()


def test_a_stale_socket_is_replaced_and_another_file_is_not(
    node_factory: Callable[..., NodeProcess], sock_dir: Path
) -> None:
    path = sock_dir / "node.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file nobody listens on: what a killed node leaves
    stale.close()
    node = node_factory("node", unixsocket=str(path))
    assert redis.Redis(unix_socket_path=str(path)).ping()
    node.stop()
    regular = sock_dir / "file"
    regular.write_text("keep me")
    blocked = node_factory("blocked", start=False, unixsocket=str(regular))
    blocked.start(wait=False)
    with pytest.raises(WaitAbort):
        blocked.wait_ready(10)
    assert "Failed opening Unix socket" in blocked.log()
    assert regular.read_text() == "keep me"


def test_unix_socket_clients_are_local(node_factory: Callable[..., NodeProcess], sock_dir: Path) -> None:
    path = sock_dir / "node.sock"
    node = node_factory(
        "node", unixsocket=str(path), enable_debug_command="local", enable_protected_configs="local"
    )
    # Over loopback TCP both are local too; over the socket they must be, whatever its path.
    assert node.client().execute_command("DEBUG", "SLEEP", "0")
    local = redis.Redis(unix_socket_path=str(path))
    try:
        assert local.execute_command("DEBUG", "SLEEP", "0") in (b"OK", True)
        assert local.config_set("dbfilename", "other.rdb")
    finally:
        local.close()


def test_supervised_systemd_notifies_ready_and_stopping(
    node_factory: Callable[..., NodeProcess], sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sock_dir / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        node = node_factory("node", supervised="systemd")
        assert listener.recv(4096) == b"STATUS=Ready to accept connections\nREADY=1\n"
        assert node.client().info("server")["process_supervised"] == "systemd"
        node.client().shutdown(nosave=True)
        assert listener.recv(4096) == b"STOPPING=1\n"
        assert node.wait_exit(10) == 0
    finally:
        listener.close()


def test_supervised_without_its_variable_warns_and_serves(
    node_factory: Callable[..., NodeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    node = node_factory("node", supervised="systemd")
    assert node.client().info("server")["process_supervised"] == "no"
    wait_for(lambda: "NOTIFY_SOCKET not found" in node.log(), what="the warning")


def test_dir_and_dbfilename_are_protected_as_in_redis(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis.Redis(port=redis_servers(tmp_path).port)
    node = node_factory("node")
    ours = node.client()
    for name, value in (("dir", str(tmp_path)), ("dbfilename", "x.rdb")):
        assert error_of(ours.config_set, name, value) == error_of(reference.config_set, name, value)
    # The first pair's error is the one answered, as Redis checks pairs in order.
    args = ("CONFIG", "SET", "bogus", "1", "dir", str(tmp_path))
    assert error_of(ours.execute_command, *args) == error_of(reference.execute_command, *args)
    assert ours.config_get("dbfilename") == {"dbfilename": "dump.rdb"}
    allowed = node_factory("allowed", enable_protected_configs="yes").client()
    assert allowed.config_set("dbfilename", "x.rdb")
    assert allowed.config_get("dbfilename") == {"dbfilename": "x.rdb"}


def test_syslog_enabled_sends_the_events_to_the_system_log(node_factory: Callable[..., NodeProcess]) -> None:
    # libc's syslog() writes to /dev/log: this test plays the system logger there, so it needs the path free.
    if os.path.exists("/dev/log") or not os.access("/dev", os.W_OK):
        pytest.skip("/dev/log is taken by a system logger (or /dev is read-only): nowhere to listen")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("/dev/log")
    listener.settimeout(20)
    try:
        node = node_factory("node", syslog_enabled="yes", syslog_ident="myredis", syslog_facility="local3")
        lines = []
        while not any(b"node_started" in line for line in lines):
            lines.append(listener.recv(65536))
        started = next(line for line in lines if b"node_started" in line)
        # <priority>: facility local3 (19) * 8 + notice (5) = 157; then the ident with the pid.
        assert started.startswith(b"<157>") and f"myredis[{node.pid}]: node_started ".encode() in started
        assert "can't set immutable config" in error_of(node.client().config_set, "syslog-ident", "x")
    finally:
        listener.close()
        os.unlink("/dev/log")
