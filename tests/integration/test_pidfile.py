"""The ``pidfile`` directive (it was accepted and ignored): a node and a sentinel write their process id there
once started and remove it at a clean shutdown, logging Redis's "Removing the pid file.", as redis-server
does (checked on it in the same test). Init scripts and service managers that use pid files rely on both."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, free_port, wait_for
from tests.sentinel_harness import SentinelProcess

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def test_redis_server_writes_and_removes_it(tmp_path: Path) -> None:
    """The reference: a foreground redis-server with a pidfile writes "<pid>\\n" and removes it at SHUTDOWN."""
    port = free_port()
    log = tmp_path / "redis.log"
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--dir", str(tmp_path), "--pidfile", "redis.pid", "--save", "",
         "--logfile", str(log)]
    )  # fmt: skip
    try:
        pid_path = tmp_path / "redis.pid"  # (relative: in dir)
        wait_for(
            lambda: pid_path.exists() and pid_path.read_text() == f"{proc.pid}\n", 10, what="the pid file"
        )
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], timeout=10)
        assert proc.wait(10) == 0
        assert not pid_path.exists()
        assert "Removing the pid file." in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_node_writes_and_removes_it(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("n", pidfile="node.pid")
    pid_path = node.dir / "node.pid"  # (relative: in dir)
    assert pid_path.read_text() == f"{node.pid}\n"
    node.client().shutdown(nosave=True)
    assert node.wait_exit() == 0
    assert not pid_path.exists()
    assert "Removing the pid file." in node.log()


def test_a_sentinel_writes_and_removes_it(node_factory: Callable[..., NodeProcess], tmp_path: Path) -> None:
    master = node_factory("m")
    pid_path = tmp_path / "sentinel.pid"
    sentinel = SentinelProcess(tmp_path, "s", master.port, prelude=f"pidfile {pid_path}\n").start()
    try:
        assert sentinel.proc is not None
        wait_for(lambda: pid_path.exists(), 10, what="the pid file")
        assert pid_path.read_text() == f"{sentinel.proc.pid}\n"
        sentinel.stop()
        assert not pid_path.exists()
        assert "Removing the pid file." in sentinel.log()
    finally:
        sentinel.stop()
