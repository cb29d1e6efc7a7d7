"""Sentinel scenario S-9: mixed fleets. Redis's own redis-sentinel and ours in one quorum; real redis-sentinels
failing over redactor nodes; our sentinels failing over real redis-server nodes. Each kill -9 failover prints
its time to a new master on every sentinel, so ours and Redis's are measured in the same run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import START_TIMEOUT_S, NodeProcess, RedisServer, wait_for
from tests.sentinel_harness import (
    MASTER_NAME,
    EventRecorder,
    SentinelProcess,
    wait_discovered,
)

pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server"),
]


class RealNode:
    """A redis-server data node with NodeProcess's small interface (port, client(), kill())."""

    def __init__(self, base: Path, name: str, *args: str) -> None:
        directory = base / name
        directory.mkdir(parents=True, exist_ok=True)
        self.server = RedisServer(directory, *args)
        self.port = self.server.port

    def client(self, **kwargs: Any) -> redis.Redis:
        return self.server.client

    def kill(self) -> None:
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(10)

    def stop(self) -> None:
        try:
            self.server.stop()
        except (subprocess.TimeoutExpired, redis.RedisError):
            pass


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    rec = EventRecorder()
    yield rec
    rec.stop()


def _fail_over(nodes: list[Any], sentinels: list[SentinelProcess], recorder: EventRecorder) -> float:
    """kill -9 the master; the time until every sentinel emitted +switch-master; checks the new master."""
    wait_discovered(sentinels, len(nodes) - 1)
    for s in sentinels:
        recorder.watch(s)
    master = nodes[0]
    killed_at = time.monotonic()
    master.kill()
    wait_for(
        lambda: len({e.sentinel for e in recorder.find("+switch-master")}) == len(sentinels),
        10,
        interval_s=0.05,
        what="+switch-master on every sentinel",
    )
    switches = recorder.find("+switch-master")
    elapsed = max(e.at for e in switches) - killed_at
    new_port = int(switches[0].data.split()[4])
    assert all(e.data == f"{MASTER_NAME} 127.0.0.1 {master.port} 127.0.0.1 {new_port}" for e in switches)
    new = next(n for n in nodes if n.port == new_port)
    assert new.client().execute_command("ROLE")[0] == b"master"
    assert len(recorder.find("+elected-leader")) == 1
    for s in sentinels:
        wait_for(
            lambda s=s: s.master_addr() == ("127.0.0.1", new_port), 5, what=f"{s.name} naming the new master"
        )
    return elapsed


def _redactor_nodes(node_factory: Callable[..., NodeProcess]) -> list[Any]:
    master = node_factory("m")
    return [master, *(node_factory(f"r{i}", replicaof=f"127.0.0.1 {master.port}") for i in range(2))]


# down-after-milliseconds for every sentinel of this file, above Redis's SENTINEL_PING_PERIOD (1 s). Redis 7.0's
# sentinelResetMaster (run at +switch-master) restarts the master's "PING awaited" clock but not its reconnect
# timer, which still holds the last attempt at the dead master: the new master's link may open up to one
# period (plus a timer tick) later, and at 1000 ms a redis-sentinel then flags the new master +sdown in the
# tick it reconnects, and (its peers' "master down" answers are still those about the old master) +odown,
# starting a second failover. Seen here in 2 of 7 runs of the all-Redis fleet; the same with redis-server
# nodes. Ours clears that clock at the switch (actors/sentinel/failover.py).
DOWN_AFTER_MS = 1500


def _sentinels(base: Path, master_port: int, kinds: list[bool]) -> list[SentinelProcess]:
    sentinels = [
        SentinelProcess(base, f"s{i}", master_port, real=real, down_after_ms=DOWN_AFTER_MS)
        for i, real in enumerate(kinds)
    ]
    for s in sentinels:
        s.start(wait=False)
    for s in sentinels:
        wait_for(s._ready, START_TIMEOUT_S, what=f"sentinel {s.name}")
    return sentinels


@pytest.mark.parametrize(
    "fleet",
    [
        pytest.param([False, False, False], id="redactor-sentinels"),
        pytest.param([True, True, True], id="redis-sentinels"),
        pytest.param([True, False, False], id="mixed-1-redis-2-redactor"),
        pytest.param([True, True, False], id="mixed-2-redis-1-redactor"),
    ],
)
def test_kill9_failover_of_redactor_nodes(
    fleet: list[bool], node_factory: Callable[..., NodeProcess], tmp_path: Path, recorder: EventRecorder
) -> None:
    nodes = _redactor_nodes(node_factory)
    sentinels = _sentinels(tmp_path / "sentinels", nodes[0].port, fleet)
    try:
        elapsed = _fail_over(nodes, sentinels, recorder)
        kinds = ",".join("redis" if real else "redactor" for real in fleet)
        print(
            f"[{kinds}] sentinels over redactor nodes: every sentinel named the new master {elapsed:.2f} s after kill -9"
        )
        assert elapsed <= 6.0
        if any(fleet) and not all(fleet):
            # One quorum: Redis's sentinels list ours and ours list Redis's.
            for s in sentinels:
                assert s.master()["num-other-sentinels"] in ("2", 2)
    finally:
        for s in sentinels:
            s.stop()


def test_redactor_sentinels_fail_over_redis_server_nodes(tmp_path: Path, recorder: EventRecorder) -> None:
    master = RealNode(tmp_path, "m")
    nodes: list[Any] = [master]
    try:
        nodes += [RealNode(tmp_path, f"r{i}", "--replicaof", "127.0.0.1", str(master.port)) for i in range(2)]
        sentinels = _sentinels(tmp_path / "sentinels", master.port, [False, False, False])
        elapsed = _fail_over(nodes, sentinels, recorder)
        print(
            f"[redactor] sentinels over redis-server nodes: new master on every sentinel {elapsed:.2f} s after kill -9"
        )
        assert elapsed <= 4.0
        new_port = sentinels[0].master_addr()
        assert new_port is not None
        other = next(n for n in nodes[1:] if n.port != new_port[1])
        wait_for(
            lambda: (
                other.client().info("replication").get("master_port") == new_port[1]
                and other.client().info("replication").get("master_link_status") == "up"
            ),
            10,
            what="the other redis-server replica following the new master",
        )
        for s in sentinels:
            s.stop()
    finally:
        for node in nodes:
            node.stop()
