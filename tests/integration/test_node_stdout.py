"""A node without a logfile logs to standard output, as Redis does with ``logfile ""``, and what tools read
there is Redis's: the banner's "PID: n" (always-show-logo), "Failed listening on port n (TCP), aborting." for a
port in use (Redis's test suite retries another port on it). A reader that goes away costs the node nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import redis

from tests.harness import REPO, free_port, wait_for


def _node(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "launcher.main", "server", "--port", str(port), "--dir", str(tmp_path)]
    return subprocess.Popen(
        [*argv, "--save", "", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(REPO)
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_banner_names_the_pid_and_a_reader_that_leaves_costs_nothing(tmp_path: Path) -> None:
    port = free_port()
    proc = _node(tmp_path, port, "--always-show-logo", "yes")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert f", PID: {proc.pid}" in first and f"Port: {port}" in first, first
        proc.stdout.close()  # the reader goes: every later log line meets a broken pipe
        with redis.Redis(port=port, socket_timeout=10) as r:
            wait_for(r.ping, 30.0, what="the node to answer")
            for _ in range(3):
                r.save()  # logs "DB saved on disk" each time
                r.set("k", "v")
            assert r.get("k") == b"v"
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        _stop(proc)


def test_a_port_in_use_is_refused_in_redis_s_words_on_standard_output(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _node(tmp_path, port, "--bind", "127.0.0.1")
        try:
            out, _ = proc.communicate(timeout=30)
        finally:
            _stop(proc)
    assert proc.returncode == 1
    text = out.decode()
    assert f"Warning: Could not create server TCP listening socket 127.0.0.1:{port}: bind: " in text, text
    assert f"Failed listening on port {port} (TCP), aborting." in text, text
    assert "Running mode=standalone" in text  # (no banner: not a terminal, always-show-logo no)
