"""Sentinel scripts: ``SENTINEL PENDING-SCRIPTS`` and the INFO script counters while a slow notification script
runs and a failed one waits for its retry, compared with Redis's redis-sentinel on the same node; DEBUG is an
unknown command without enable-debug-command, as on redis-sentinel.

The actor restarts (DEBUG CRASH-ACTOR) and the client-reconfig-script calls are checked during the failovers of
test_sentinel.py (test_manual_failover_and_inprog, test_kill9_failover_...).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.sentinel_harness import MASTER_NAME, SentinelProcess, write_script


def _pending(sentinel: SentinelProcess) -> list[dict[str, Any]]:
    entries = sentinel.client().execute_command("SENTINEL", "PENDING-SCRIPTS")
    out = []
    for entry in entries:
        pairs = (
            list(entry.items())
            if isinstance(entry, dict)
            else list(zip(entry[::2], entry[1::2], strict=True))
        )
        out.append({k.decode(): v for k, v in pairs} | {"_keys": [k.decode() for k, _ in pairs]})
    return out


def _settled(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The queue when it holds just the running +reset-master script and the scheduled retry of another."""
    if sorted(e["flags"] for e in entries) != [b"running", b"scheduled"]:
        return None
    if any(e["argv"][1:2] != [b"+reset-master"] or e["retry-num"] != b"1" for e in entries):
        return None
    return entries


def _scripts_scenario(sentinel: SentinelProcess, script: Path, master_port: int) -> dict[str, Any]:
    """Run a slow notification script and a failing one; return what PENDING-SCRIPTS and INFO showed."""
    client = sentinel.client()
    assert client.execute_command("SENTINEL", "DEBUG", "script-retry-delay", 20000) == b"OK"
    wait_for(lambda: not _pending(sentinel), 10, what="the +monitor script run to end")
    described = f"master {MASTER_NAME} 127.0.0.1 {master_port}"
    started: list[int] = []
    try:
        assert client.execute_command("SENTINEL", "RESET", MASTER_NAME) == 1
        # The slow one: RESET's +reset-master (another event's script may run for a moment beside it, and
        # take the pid before it: CI once saw that one's pid here).
        slow = wait_for(
            lambda: [
                e
                for e in _pending(sentinel)
                if e["flags"] == b"running" and e["argv"][1:2] == [b"+reset-master"] and int(e["pid"])
            ],
            10,
            what="the +reset-master script running",
        )
        started += [int(e["pid"]) for e in slow]
        # Past its check for .fail before .fail exists (on a loaded machine the shell may not have got there).
        wait_for(lambda: (script.parent / f"{script.name}.ran").exists(), 10, what="the slow script's check")
        (script.parent / f"{script.name}.fail").touch()  # the next run exits 1: Redis retries it later
        assert client.execute_command("SENTINEL", "RESET", MASTER_NAME) == 1
        # Settled: the slow run and the failed one's retry, and nothing else (another event's script may
        # still be running for a moment: CI once read its pid as the slow one's).
        entries = wait_for(
            lambda: _settled(_pending(sentinel)),
            10,
            what="the failed script waiting for its retry, beside the slow one alone",
        )
        info = sentinel.client(decode_responses=True).info("sentinel")
        by_flag = {e["flags"]: e for e in entries}
        run, retry = by_flag[b"running"], by_flag[b"scheduled"]
        assert run["argv"] == retry["argv"] == [str(script).encode(), b"+reset-master", described.encode()]
        assert int(run["pid"]) == started[0] and int(run["run-time"]) >= 0 and run["retry-num"] == b"1"
        assert retry["pid"] == b"0" and retry["retry-num"] == b"1"
        assert 0 < int(retry["run-delay"]) <= 20_000  # SCRIPT-RETRY-DELAY after the first run (unit-tested)
        os.kill(started[0], 0)  # the pid is the live script
        return {
            "keys": sorted({tuple(e["_keys"]) for e in entries}),
            "running_scripts": info["sentinel_running_scripts"],
            "queue_length": info["sentinel_scripts_queue_length"],
        }
    finally:
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.compat
def test_pending_scripts_with_a_slow_notification_script_as_redis_sentinel(
    node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    node = node_factory("m")
    results = {}
    debug_errors = {}
    for real in (True, False):
        kind = "redis" if real else "redactor"
        base = tmp_path / kind
        base.mkdir()
        # +reset-master sleeps (exec: the pid Sentinel reports is the sleeper), or fails once .fail exists.
        script = write_script(
            base / "notify.sh",
            'case "$1" in\n  +reset-master) [ -e "$0.fail" ] && exit 1; : > "$0.ran"; exec sleep 30 ;;\nesac\n'
            "exit 0\n",
        )
        sentinel = SentinelProcess(
            base, "s", node.port, quorum=1, real=real,
            extra=f"sentinel notification-script {MASTER_NAME} {script}\n",
        ).start()  # fmt: skip
        try:
            results[kind] = _scripts_scenario(sentinel, script, node.port)
            with pytest.raises(redis.ResponseError) as error:
                sentinel.client().execute_command("DEBUG", "CRASH-ACTOR", "monitor")
            debug_errors[kind] = str(error.value)
        finally:
            sentinel.stop()
    assert results["redactor"] == results["redis"]
    assert results["redis"]["running_scripts"] == 1 and results["redis"]["queue_length"] == 2
    # Without enable-debug-command, DEBUG is an unknown command, as on redis-sentinel.
    assert debug_errors["redactor"] == debug_errors["redis"]
