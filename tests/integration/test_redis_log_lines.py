"""The log lines an operator (or a tool) greps for: Redis's own words, in a node's log as in redis-server's.

A node logs structlog events (JSON lines off a terminal); an event Redis also logs carries Redis's sentence in
its ``message`` field, so ``grep 'Ready to accept connections'`` (Testcontainers' wait strategy, a health
check, an operator's alert) finds the same moment in both. The same scenario runs against a redis-server
master and replica and against two nodes, and every sentence below must be in both servers' logs: the
expectations are checked against the reference, not written from memory.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

ADDR = r"127\.0\.0\.1:\d+"

# What the master logs: replication, BGSAVE, SAVE, BGREWRITEAOF, its replica leaving, SIGTERM with a save point.
MASTER_LINES = [
    r"Ready to accept connections",
    rf"Replica {ADDR} asks for synchronization",
    rf"Full resync requested by replica {ADDR}",
    rf"Synchronization with replica {ADDR} succeeded",
    r"Background saving started by pid \d+",
    r"Background saving terminated with success",
    r"DB saved on disk",
    r"Background append only file rewriting started by pid \d+",
    r"Background AOF rewrite finished successfully",
    rf"Connection with replica {ADDR} lost\.",
    r"Received SIGTERM scheduling shutdown\.\.\.",
    r"User requested shutdown\.\.\.",
    r"Saving the final RDB snapshot before exiting\.",
    r"Redis is now ready to exit, bye bye\.\.\.",
]
# What the master logs when it starts again on the dump.rdb it saved.
RESTART_LINES = [r"DB loaded from disk: \d+\.\d{3} seconds", r"Ready to accept connections"]
# What the replica logs.
REPLICA_LINES = [
    r"Ready to accept connections",
    rf"Connecting to MASTER {ADDR}",
    r"MASTER <-> REPLICA sync started",
    r"Full resync from master: [0-9a-f]{40}:\d+",
    r"MASTER <-> REPLICA sync: Finished with success",
    r"Connection with master lost\.",
]


def _wait_logged(read_log: Callable[[], str], pattern: str, who: str, times: int = 1) -> None:
    """Wait (bounded) until ``pattern`` is in the log ``times`` times."""
    wait_for(lambda: len(re.findall(pattern, read_log())) >= times, 15.0, what=f"{who} to log /{pattern}/")


def _scenario(
    master: redis.Redis,
    replicas: list[redis.Redis],
    master_log: Callable[[], str],
    stop_replica: Callable[[], None],
    stop_master: Callable[[], None],
) -> None:
    """Drive one kind of server through the moments the lines name, waiting (bounded) for each to be logged.

    Two replicas: the first is shut down (the master logs losing it), the second sees the master go."""
    wait_for(
        lambda: all(r.info("replication")["master_link_status"] == "up" for r in replicas),
        20.0,
        what="the replicas' links",
    )
    _wait_logged(master_log, MASTER_LINES[3], "the master", times=2)
    master.set("k", "v")
    # (the snapshot a sync forked may not have been reaped yet: BGSAVE would be refused while it runs)
    wait_for(lambda: master.info("persistence")["rdb_bgsave_in_progress"] == 0, 15.0, what="no fork child")
    saved = len(re.findall(MASTER_LINES[5], master_log()))  # (a disk-based sync may have saved already)
    master.bgsave()
    _wait_logged(master_log, MASTER_LINES[5], "the master", times=saved + 1)
    master.save()
    master.bgrewriteaof()
    _wait_logged(master_log, MASTER_LINES[8], "the master")
    stop_replica()
    _wait_logged(master_log, MASTER_LINES[9], "the master")
    stop_master()


def _missing(text: str, patterns: list[str]) -> list[str]:
    return [pattern for pattern in patterns if not re.search(pattern, text)]


def test_a_node_logs_redis_s_sentences_where_redis_server_logs_them(
    tmp_path: Path,
    redis_servers: Callable[..., RedisServer],
    node_factory: Callable[..., NodeProcess],
) -> None:
    missing: dict[str, list[str]] = {}

    # The reference: a redis-server master (with a save point, so SIGTERM saves) and two replicas.
    rdir = tmp_path / "redis-m"
    for sub in ("redis-m", "redis-r1", "redis-r2"):
        (tmp_path / sub).mkdir()
    rm = redis_servers(rdir, "--save", "3600 1", "--repl-diskless-sync-delay", "0")
    rr1, rr2 = (
        redis_servers(tmp_path / sub, "--replicaof", f"127.0.0.1 {rm.port}")
        for sub in ("redis-r1", "redis-r2")
    )

    def stop_redis(server: RedisServer) -> None:
        server.client.close()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)

    _scenario(
        rm.client,
        [rr1.client, rr2.client],
        rm.log_path.read_text,
        lambda: rr1.client.shutdown(nosave=True),
        lambda: stop_redis(rm),
    )
    _wait_logged(rr2.log_path.read_text, REPLICA_LINES[-1], "redis-server's replica")
    restarted = redis_servers(rdir)
    missing["redis-server master"] = _missing(rm.log_path.read_text(), MASTER_LINES)
    missing["redis-server master, restarted"] = _missing(restarted.log_path.read_text(), RESTART_LINES)
    missing["redis-server replica"] = _missing(rr2.log_path.read_text(), REPLICA_LINES)

    # The same on three nodes.
    nm: NodeProcess = node_factory("m", save="3600 1", repl_diskless_sync_delay="0")
    nr1, nr2 = (node_factory(name, replicaof=f"127.0.0.1 {nm.port}") for name in ("r1", "r2"))
    master_log_before = ""

    def stop_node_master() -> None:
        nonlocal master_log_before
        nm.stop()
        master_log_before = nm.log()

    _scenario(
        nm.client(),
        [nr1.client(), nr2.client()],
        nm.log,
        lambda: nr1.client().shutdown(nosave=True),
        stop_node_master,
    )
    _wait_logged(nr2.log, REPLICA_LINES[-1], "the replica node")
    nm.start()
    missing["node master"] = _missing(master_log_before, MASTER_LINES)
    missing["node master, restarted"] = _missing(nm.log()[len(master_log_before) :], RESTART_LINES)
    missing["node replica"] = _missing(nr2.log(), REPLICA_LINES)

    assert not any(missing.values()), {who: lines for who, lines in missing.items() if lines}


# What a replica logs when repl-timeout passes with nothing from its master, in the handshake and once online.
HANDSHAKE_TIMEOUT = r"Timeout connecting to the MASTER\.\.\."
ONLINE_TIMEOUT = r"MASTER timeout: no data nor PING received\.\.\."


@pytest.mark.parametrize("kind", ["redactor", "redis"])
def test_a_replica_whose_master_stops_logs_redis_s_timeout_sentences(
    kind: str,
    tmp_path: Path,
    redis_servers: Callable[..., RedisServer],
    node_factory: Callable[..., NodeProcess],
) -> None:
    """The master is stopped (SIGSTOP: all its threads) while the replica waits for its snapshot (the master
    delays it, repl-diskless-sync-delay), and again once the replica is online."""
    directives = {"repl-timeout": "2", "repl-ping-replica-period": "1"}
    if kind == "redis":
        for sub in ("m", "r"):
            (tmp_path / sub).mkdir()
        args = [arg for key, value in directives.items() for arg in (f"--{key}", value)]
        rm, rr = redis_servers(tmp_path / "m", *args), redis_servers(tmp_path / "r", *args)
        master, replica, master_proc = rm.client, rr.client, rm.proc
        replica_log = rr.log_path.read_text
    else:
        options = {key.replace("-", "_"): value for key, value in directives.items()}
        nm, nr = node_factory("m", **options), node_factory("r", **options)
        assert nm.proc is not None
        master, replica, master_proc, replica_log = nm.client(), nr.client(), nm.proc, nr.log
    master.config_set("repl-diskless-sync-delay", 60)
    replica.execute_command("REPLICAOF", "127.0.0.1", master.connection_pool.connection_kwargs["port"])
    wait_for(lambda: replica.execute_command("ROLE")[3] == b"handshake", 10, what="the replica's handshake")
    master_proc.send_signal(signal.SIGSTOP)
    try:
        _wait_logged(replica_log, HANDSHAKE_TIMEOUT, f"the {kind} replica")
    finally:
        master_proc.send_signal(signal.SIGCONT)
    master.config_set("repl-diskless-sync-delay", 0)
    wait_for(lambda: replica.info("replication")["master_link_status"] == "up", 20, what="the replica online")
    master_proc.send_signal(signal.SIGSTOP)
    try:
        _wait_logged(replica_log, ONLINE_TIMEOUT, f"the {kind} replica")
    finally:
        master_proc.send_signal(signal.SIGCONT)
