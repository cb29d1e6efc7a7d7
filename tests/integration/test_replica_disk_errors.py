"""replica-ignore-disk-write-errors: a replica whose persistence fails (here: its BGSAVE failed, with a save point
and stop-writes-on-bgsave-error) stops at its master's next write, as Redis 7.0's does ("Replica was unable to
write command to disk."), unless the directive is yes, when it applies the write and says so. The same steps
run on redis-server and on nodes.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.persistence_helpers import child_pids


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["redis", "redactor"])
@pytest.mark.parametrize("ignore", [False, True])
def test_a_replica_that_cannot_persist_stops_at_its_masters_next_write_unless_told_to_go_on(
    kind: str,
    ignore: bool,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    settings = {"save": "3600 1", "replica-ignore-disk-write-errors": "yes" if ignore else "no"}
    if kind == "redactor":
        master_port = node_factory("master").port
        replica = node_factory(
            "replica",
            replicaof=f"127.0.0.1 {master_port}",
            **{k.replace("-", "_"): v for k, v in settings.items()},
        )
        port, proc, log_path = replica.port, replica.proc, replica.log_path
    else:
        (tmp_path / "m").mkdir()
        (tmp_path / "r").mkdir()
        master_port = redis_servers(tmp_path / "m").port
        server = redis_servers(
            tmp_path / "r",
            "--replicaof",
            "127.0.0.1",
            str(master_port),
            *[x for k, v in settings.items() for x in (f"--{k}", v)],
        )
        port, proc, log_path = server.port, server.proc, server.log_path
    assert isinstance(proc, subprocess.Popen)
    master = redis.Redis(port=master_port, socket_timeout=5)
    client = redis.Redis(port=port, socket_timeout=5)
    master.set("before", "1")
    wait_for(lambda: client.get("before") == b"1", 20, what="the replica to sync")

    # A BGSAVE of the replica, slowed down (one key per second) and killed: its persistence now fails.
    client.config_set("rdb-key-save-delay", 1_000_000)
    client.bgsave()
    (child,) = wait_for(lambda: child_pids(proc.pid), 10, what="the replica's BGSAVE child")
    os.kill(child, signal.SIGKILL)
    wait_for(
        lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err", 10, what="the BGSAVE to fail"
    )
    with pytest.raises(redis.ResponseError, match="^MISCONF"):
        client.ping()

    master.set("after", "2")
    if ignore:
        wait_for(lambda: client.get("after") == b"2", 10, what="the write to be applied anyway")
        wanted = "Replica is applying a command even though it is unable to write to disk."
        wait_for(lambda: wanted in log_path.read_text(errors="replace"), 10, what="the warning")
        assert proc.poll() is None
    else:
        assert proc.wait(20) != 0  # aborted
        assert "Replica was unable to write command to disk." in log_path.read_text(errors="replace")
