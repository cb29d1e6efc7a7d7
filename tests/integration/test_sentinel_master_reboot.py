"""Sentinel's master-reboot-down-after-period (Redis 7.0), on our sentinels and on redis-sentinel over the same
kind of redactor nodes: a master killed and restarted at once comes back with a new run_id and answers -LOADING
while it loads its dataset (made slow with the hidden ``key-load-delay``, as Redis's own sentinel unit 12
does). -LOADING counts as an answer, so down-after-milliseconds never fires; with the period set, a master
that restarted and still loads after it is subjectively down, and the sentinels fail over to its replica.

The same run with redis-sentinel checks the node's side: INFO's run_id and -LOADING during the load.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import START_TIMEOUT_S, NodeProcess, wait_for
from tests.sentinel_harness import MASTER_NAME, EventRecorder, SentinelProcess, wait_discovered

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server"),
]

KEYS = 2000
# Each key loaded takes 2.5 ms longer: the restarted master loads for ~5 s, well past the period below.
KEY_LOAD_DELAY_US = 2500
REBOOT_PERIOD_MS = 1000
# Long enough that the restart itself (a fraction of a second without answers) is never an SDOWN.
DOWN_AFTER_MS = 20000


@pytest.mark.parametrize("real", [False, True], ids=["redactor-sentinels", "redis-sentinels"])
def test_a_master_restarted_and_still_loading_is_failed_over(
    real: bool, node_factory: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    master = node_factory("m", key_load_delay=KEY_LOAD_DELAY_US)
    master.client().execute_command("DEBUG", "POPULATE", KEYS)
    master.client().execute_command(
        "SAVE"
    )  # (before the replica's sync, whose snapshot would be in progress)
    replica = node_factory("r", replicaof=f"127.0.0.1 {master.port}")
    extra = f"sentinel master-reboot-down-after-period {MASTER_NAME} {REBOOT_PERIOD_MS}\n"
    sentinels = [
        SentinelProcess(
            tmp_path / "s", f"s{i}", master.port, real=real, down_after_ms=DOWN_AFTER_MS, extra=extra
        )
        for i in range(3)
    ]
    recorder = EventRecorder()
    try:
        for s in sentinels:
            s.start(wait=False)
        for s in sentinels:
            wait_for(s._ready, START_TIMEOUT_S, what=f"sentinel {s.name}")
        wait_discovered(sentinels, 1)
        for s in sentinels:
            recorder.watch(s)
            # INFO every 0.5 s (the default 10 s would outlast the load) and PING as often.
            s.client().execute_command("SENTINEL", "DEBUG", "info-period", 500, "ping-period", 500)
            assert s.client().sentinel_master(MASTER_NAME)["flags"] == "master"
        master.kill()
        master.start(wait=False)
        wait_for(
            lambda: len({e.sentinel for e in recorder.find("+switch-master")}) == len(sentinels),
            30,
            interval_s=0.05,
            what="+switch-master on every sentinel",
        )
        assert recorder.find("+reboot")
        assert {e.sentinel for e in recorder.find("+sdown", lambda e: e.data.startswith("master "))}
        for e in recorder.find("+switch-master"):
            assert e.data == f"{MASTER_NAME} 127.0.0.1 {master.port} 127.0.0.1 {replica.port}"
        # The restarted master was loading when the sentinels gave up on it: it answers -LOADING still, or
        # has finished and been turned into the new master's replica.
        wait_for(
            lambda: master.client().execute_command("ROLE")[0] == b"slave",
            30,
            what="the old master to become a replica once loaded",
        )
        # Its sync with the new master may be a full one, whose load answers -LOADING (as Redis's): wait it out.
        wait_for(
            lambda: master.client().dbsize() == KEYS,
            30,
            what="the old master, now a replica, to hold every key once its sync ends",
        )
    finally:
        recorder.stop()
        for s in sentinels:
            s.stop()
