"""A sentinel's process directives that it used to read and pass over, now acting as redis-sentinel's:
``loglevel`` drops the lines under it (``warning`` kept notice lines before), ``syslog-enabled`` /
``syslog-ident`` / ``syslog-facility`` send the log to the system log (the last two were refused), and
``supervised systemd`` tells the service manager when the sentinel is ready and when it stops."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import NodeProcess, wait_for
from tests.sentinel_harness import SentinelProcess

LINE = re.compile(r"^\d+:X \d\d \w{3} \d{4} [\d:.]+ ([.\-*#]) ")


@pytest.mark.parametrize(
    "real",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis")),
    ],
    ids=["redactor-sentinel", "redis-sentinel"],
)
def test_loglevel_warning_keeps_warnings_only(
    real: bool, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    master = node_factory("m")
    sentinel = SentinelProcess(tmp_path, "s", master.port, real=real, prelude="loglevel warning\n").start()
    try:
        wait_for(lambda: "+monitor master" in sentinel.log(), 10, what="the +monitor event (a warning)")
    finally:
        sentinel.stop()
    marks = {m.group(1) for line in sentinel.log().splitlines() if (m := LINE.match(line))}
    assert marks == {"#"}, marks


def test_syslog_enabled_sends_the_log_to_the_system_log(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    # libc's syslog() writes to /dev/log: this test plays the system logger there, so it needs the path free.
    if os.path.exists("/dev/log") or not os.access("/dev", os.W_OK):
        pytest.skip("/dev/log is taken by a system logger (or /dev is read-only): nowhere to listen")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("/dev/log")
    listener.settimeout(20)
    master = node_factory("m")
    prelude = "syslog-enabled yes\nsyslog-ident mysentinel\nsyslog-facility local3\n"
    sentinel = SentinelProcess(tmp_path, "s", master.port, prelude=prelude)
    try:
        sentinel.start()
        assert sentinel.proc is not None
        lines: list[bytes] = []
        while not any(b"Sentinel ID is" in line for line in lines):
            lines.append(listener.recv(65536))
        line = next(line for line in lines if b"Sentinel ID is" in line)
        # <priority>: facility local3 (19) * 8 + warning (4) = 156 (Redis logs the id as a warning); the pid.
        assert (
            line.startswith(b"<156>") and f"mysentinel[{sentinel.proc.pid}]: Sentinel ID is".encode() in line
        )
    finally:
        sentinel.stop()
        listener.close()
        os.unlink("/dev/log")


def test_supervised_systemd_notifies_ready_and_stopping(
    node_factory: Callable[..., NodeProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as short:  # (a socket path fits 108 bytes)
        path = Path(short) / "notify"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(path))
        listener.settimeout(20)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        master = node_factory("m")
        sentinel = SentinelProcess(tmp_path, "s", master.port, prelude="supervised systemd\n")
        try:
            sentinel.start()
            assert listener.recv(4096) == b"STATUS=Ready to accept connections\nREADY=1\n"
            sentinel.stop()
            assert listener.recv(4096) == b"STOPPING=1\n"
        finally:
            sentinel.stop()
            listener.close()
