"""RDB persistence on real nodes: SAVE / BGSAVE / save points / SHUTDOWN / SIGTERM, loading and -LOADING."""

from __future__ import annotations

import os
import resource
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import hiredis
import redis

from actors.data.keyspace import Keyspace
from protocol import errors
from protocol.client import NativeClient
from tests.harness import NodeProcess, wait_for
from tests.persistence_helpers import (
    RawFactory,
    all_types_keyspace,
    background_writes,
    child_pids,
    dataset_digest_of,
    error_text,
    persistence_info,
    raw_connections_fixture,
    rdb_file_digest,
    write_rdb,
)

NodeFactory = Callable[..., NodeProcess]


raw = raw_connections_fixture()


def _wait_no_child(client: redis.Redis, timeout_s: float = 15.0) -> None:
    def idle() -> bool:
        info = persistence_info(client)
        return info["rdb_bgsave_in_progress"] == 0 and info["aof_rewrite_in_progress"] == 0

    wait_for(idle, timeout_s, what="the fork child to finish")


def _started_on_an_rdb(node_factory: NodeFactory) -> tuple[NodeProcess, redis.Redis, Keyspace]:
    """A node started on a dump.rdb of every value type; checked to serve exactly that dataset."""
    node = node_factory("n", start=False)
    keyspace = all_types_keyspace()
    expected = write_rdb(node.dir / "dump.rdb", keyspace)
    node.start()
    r = node.client()
    assert dataset_digest_of(r) == expected
    return node, r, keyspace


def test_every_type_survives_save_and_restart(node_factory: NodeFactory, raw: RawFactory) -> None:
    node, r, keyspace = _started_on_an_rdb(node_factory)
    assert r.pttl("str") > 0 and r.ttl("empty") == -1
    r.set("added", "after load")
    r.select(5)
    r.delete("str")
    expected = dataset_digest_of(r)
    conn = raw(node.port)
    assert conn.call("SAVE") == b"OK"
    assert persistence_info(r)["rdb_changes_since_last_save"] == 0
    assert rdb_file_digest(node.dir / "dump.rdb") == expected
    node.stop()
    node.start()
    r = node.client()
    assert dataset_digest_of(r) == expected
    info = persistence_info(r)
    assert info["rdb_last_load_keys_loaded"] == len(keyspace.dbs[0].data) + 1 + 1 + 1
    assert conn.closed_by_peer()


def test_debug_reload_keeps_the_dataset_and_other_clients_get_loading(
    node_factory: NodeFactory, raw: RawFactory
) -> None:
    node = node_factory("n", start=False)
    expected = write_rdb(node.dir / "dump.rdb", all_types_keyspace())
    node.start()
    r = node.client()
    caller, other = raw(node.port), raw(node.port)
    assert caller.call("DEBUG", "SET-LOAD-DELAY", "1500") == b"OK"
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(caller.call("DEBUG", "RELOAD")))
    thread.start()
    try:

        def refused() -> object:
            reply = other.call("GET", "str")
            return reply if isinstance(reply, hiredis.ReplyError) else None

        loading = wait_for(refused, 5, what="a -LOADING reply while DEBUG RELOAD loads")
        assert error_text(loading) == "LOADING Redis is loading the dataset in memory"
        info = persistence_info(r)
        assert info["loading"] == 1 and info["loading_total_bytes"] == os.path.getsize(node.dir / "dump.rdb")
        assert "loading_eta_seconds" in info and info["async_loading"] == 0
    finally:
        thread.join(10)
    assert result == [b"OK"]
    assert other.call("GET", "str") == b"hello"
    assert dataset_digest_of(r) == expected
    assert persistence_info(r)["loading"] == 0


def test_bgsave_writes_exactly_the_dataset_at_fork_time(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n")
    r = node.client()
    for start in range(0, 20_000, 1000):
        r.mset({f"key:{i}": f"value:{i}" for i in range(start, start + 1000)})
    conn = raw(node.port)
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "400") == b"OK"
    with background_writes(node, "key:", 20_000, "counter:", 50) as acked:
        wait_for(lambda: acked[0] > 100, 10, what="the writer to get going")
        digest, reply = conn.pipeline(["DEBUG", "DIGEST"], ["BGSAVE"])
        at_fork = acked[0]
        assert reply == b"Background saving started"
        _wait_no_child(r)
        assert acked[0] > at_fork, "no write happened while the child was saving"
    info = persistence_info(r)
    assert info["rdb_last_bgsave_status"] == "ok" and info["rdb_saves"] == 1
    assert info["rdb_last_cow_size"] > 0 and info["rdb_last_bgsave_time_sec"] >= 0
    assert r.info("stats")["total_forks"] == 1 and r.info("stats")["latest_fork_usec"] > 0
    assert rdb_file_digest(node.dir / "dump.rdb") == digest
    assert dataset_digest_of(r) != digest


def test_bgsave_conflicts_failures_and_scheduling(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n")
    r = node.client()
    conn = raw(node.port)
    r.set("k", "v1")
    assert conn.call("SAVE") == b"OK"
    saved = (node.dir / "dump.rdb").read_bytes()
    r.set("k", "v2")
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "60000") == b"OK"
    assert conn.call("BGSAVE") == b"Background saving started"
    assert error_text(conn.call("BGSAVE")) == "ERR Background save already in progress"
    assert error_text(conn.call("SAVE")) == "ERR Background save already in progress"
    assert error_text(conn.call("BGSAVE", "NOW")) == "ERR syntax error"
    assert conn.call("BGREWRITEAOF") == b"Background append only file rewriting scheduled"
    info = persistence_info(r)
    assert info["rdb_bgsave_in_progress"] == 1 and info["aof_rewrite_scheduled"] == 1
    assert info["rdb_current_bgsave_time_sec"] >= 0

    # A BGSAVE child killed by a signal fails the save: status err, the old file untouched.
    (child,) = wait_for(lambda: child_pids(node.pid), 5, what="the BGSAVE child")
    os.kill(child, signal.SIGKILL)
    wait_for(
        lambda: persistence_info(r)["rdb_last_bgsave_status"] == "err", 10, what="rdb_last_bgsave_status:err"
    )
    assert (node.dir / "dump.rdb").read_bytes() == saved
    assert not any(name.startswith("temp-") and name.endswith(".rdb") for name in os.listdir(node.dir))

    # The scheduled rewrite starts once no child runs; meanwhile BGSAVE needs SCHEDULE.
    wait_for(lambda: persistence_info(r)["aof_rewrite_in_progress"] == 1, 10, what="the scheduled rewrite")
    assert error_text(conn.call("BGSAVE")) == (
        "ERR Another child process is active (AOF?): can't BGSAVE right now. "
        "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."
    )
    assert (
        error_text(conn.call("BGREWRITEAOF"))
        == "ERR Background append only file rewriting already in progress"
    )
    assert conn.call("BGSAVE", "SCHEDULE") == b"Background saving scheduled"
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "0") == b"OK"
    (child,) = child_pids(node.pid)
    os.kill(child, signal.SIGKILL)
    wait_for(
        lambda: persistence_info(r)["aof_last_bgrewrite_status"] == "err", 10, what="the rewrite to fail"
    )
    wait_for(lambda: persistence_info(r)["rdb_saves"] == 2, 10, what="the scheduled BGSAVE to run")
    info = persistence_info(r)
    assert info["rdb_last_bgsave_status"] == "ok" and info["rdb_changes_since_last_save"] == 0
    assert rdb_file_digest(node.dir / "dump.rdb") == dataset_digest_of(r)


def test_save_points_trigger_a_bgsave(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n")
    r = node.client()
    before = r.lastsave()
    assert r.config_set("save", "1 1")
    assert r.config_get("save") == {"save": "1 1"}
    r.set("k", "v")
    wait_for(lambda: r.lastsave() > before, 10, what="LASTSAVE to change after the save point")
    wait_for(lambda: persistence_info(r)["rdb_bgsave_in_progress"] == 0, 10)
    info = persistence_info(r)
    assert info["rdb_changes_since_last_save"] == 0 and info["rdb_last_bgsave_status"] == "ok"
    assert rdb_file_digest(node.dir / "dump.rdb") == dataset_digest_of(r)


def test_shutdown_save_nosave_and_sigterm(node_factory: NodeFactory, raw: RawFactory) -> None:
    saving = node_factory("saving")
    saving.client().set("k", "v")
    conn = raw(saving.port)
    conn.send("SHUTDOWN", "SAVE")
    assert conn.closed_by_peer()
    assert saving.wait_exit() == 0
    assert (saving.dir / "dump.rdb").exists()
    saving.start()
    assert saving.client().get("k") == b"v"

    nosave = node_factory("nosave")
    assert nosave.client().config_set("save", "3600 1")
    nosave.client().set("k", "v")
    conn = raw(nosave.port)
    conn.send("SHUTDOWN", "NOSAVE")
    assert conn.closed_by_peer()
    assert nosave.wait_exit() == 0
    assert not (nosave.dir / "dump.rdb").exists()

    term = node_factory("term")
    assert term.client().config_set("save", "3600 1")
    term.client().set("k", "v")
    term.signal(signal.SIGTERM)
    assert term.wait_exit() == 0
    assert rdb_file_digest(term.dir / "dump.rdb") != b"0" * 40
    assert "persistence_shut_down" in term.log()


def test_lastsave_and_info_persistence_fields(node: NodeProcess, raw: RawFactory) -> None:
    r = node.client()
    conn = raw(node.port)
    assert isinstance(conn.call("LASTSAVE"), int)
    fields = list(persistence_info(r))
    assert fields == [
        "loading",
        "async_loading",
        "current_cow_peak",
        "current_cow_size",
        "current_cow_size_age",
        "current_fork_perc",
        "current_save_keys_processed",
        "current_save_keys_total",
        "rdb_changes_since_last_save",
        "rdb_bgsave_in_progress",
        "rdb_last_save_time",
        "rdb_last_bgsave_status",
        "rdb_last_bgsave_time_sec",
        "rdb_current_bgsave_time_sec",
        "rdb_saves",
        "rdb_last_cow_size",
        "rdb_last_load_keys_expired",
        "rdb_last_load_keys_loaded",
        "aof_enabled",
        "aof_rewrite_in_progress",
        "aof_rewrite_scheduled",
        "aof_last_rewrite_time_sec",
        "aof_current_rewrite_time_sec",
        "aof_last_bgrewrite_status",
        "aof_rewrites",
        "aof_rewrites_consecutive_failures",
        "aof_last_write_status",
        "aof_last_cow_size",
        "module_fork_in_progress",
        "module_fork_last_cow_size",
    ]
    r.set("a", "1")
    r.incr("a")
    assert persistence_info(r)["rdb_changes_since_last_save"] == 2


def test_a_node_started_on_an_rdb_serves_it_over_resp_and_the_bus_with_its_actors_running(
    node_factory: NodeFactory,
) -> None:
    # The dataset loads while the actors start (launcher/node.py): both must be done before the node serves.
    node, r, keyspace = _started_on_an_rdb(node_factory)
    actors = r.info("actors")
    assert actors["replication"]["state"] == "running" and actors["persistence"]["state"] == "running"
    assert r.info("replication")["role"] == "master"
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=3000, retries=1) as native:
        assert native.call("GET", "str") == b"hello"
        assert native.call("DBSIZE") == len(keyspace.dbs[0].data)


def test_expired_keys_in_the_rdb_are_dropped_on_load(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory("n", start=False)
    keyspace = all_types_keyspace()
    keyspace.dbs[0].expires[b"int"] = 1000  # long gone
    write_rdb(node.dir / "dump.rdb", keyspace)
    node.start()
    r = node.client()
    assert r.exists("int") == 0 and r.get("str") == b"hello"
    assert persistence_info(r)["rdb_last_load_keys_expired"] == 1


def test_bgsave_inside_multi_is_scheduled(node: NodeProcess, raw: RawFactory) -> None:
    r = node.client()
    conn = raw(node.port)
    replies = conn.pipeline(["MULTI"], ["SET", "k", "v"], ["BGSAVE"], ["EXEC"])
    assert replies == [b"OK", b"QUEUED", b"QUEUED", [b"OK", b"Background saving scheduled"]]
    wait_for(lambda: persistence_info(r)["rdb_saves"] == 1, 10, what="the scheduled BGSAVE")
    wait_for(lambda: persistence_info(r)["rdb_bgsave_in_progress"] == 0, 10)
    assert rdb_file_digest(node.dir / "dump.rdb") == dataset_digest_of(r)


def test_a_failed_bgsave_with_save_points_refuses_writes_with_misconf(
    node_factory: NodeFactory, raw: RawFactory
) -> None:
    node = node_factory("n", save="3600 1")  # a save point that will not come due during the test
    r = node.client()
    conn, queued = raw(node.port), raw(node.port)
    r.set("k", "v")
    assert queued.pipeline(["MULTI"], ["SET", "queued", "1"]) == [b"OK", b"QUEUED"]
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "60000") == b"OK"
    assert conn.call("BGSAVE") == b"Background saving started"
    (child,) = wait_for(lambda: child_pids(node.pid), 5, what="the BGSAVE child")
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: persistence_info(r)["rdb_last_bgsave_status"] == "err", 10, what="the BGSAVE to fail")

    misconf = errors.MISCONF_RDB
    assert misconf.startswith("MISCONF Redis is configured to save RDB snapshots, but it's currently unable")
    assert error_text(conn.call("SET", "k", "w")) == misconf
    assert error_text(conn.call("DEL", "k")) == misconf
    assert error_text(conn.call("PING")) == misconf  # as Redis: health checks see it too
    assert conn.call("GET", "k") == b"v"  # reads go on
    assert error_text(queued.call("EXEC")) == f"EXECABORT Transaction discarded because of: {misconf}"
    replies = conn.pipeline(["MULTI"], ["SET", "k", "w"], ["EXEC"])
    assert error_text(replies[1]) == misconf
    assert error_text(replies[2]) == "EXECABORT Transaction discarded because of previous errors."
    assert conn.pipeline(["MULTI"], ["GET", "k"], ["EXEC"]) == [b"OK", b"QUEUED", [b"v"]]

    # The settings that make it so, taken back and given again; then a save that works ends it.
    assert conn.call("CONFIG", "SET", "stop-writes-on-bgsave-error", "no") == b"OK"
    assert conn.call("SET", "k", "w") == b"OK"
    assert conn.call("CONFIG", "SET", "stop-writes-on-bgsave-error", "yes") == b"OK"
    assert error_text(conn.call("SET", "k", "x")) == misconf
    assert conn.call("CONFIG", "SET", "save", "") == b"OK"
    assert conn.call("PING") == b"PONG"
    assert conn.call("CONFIG", "SET", "save", "3600 1") == b"OK"
    assert error_text(conn.call("PING")) == misconf
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "0") == b"OK"
    assert conn.call("BGSAVE") == b"Background saving started"
    wait_for(lambda: persistence_info(r)["rdb_last_bgsave_status"] == "ok", 10, what="a BGSAVE to succeed")
    assert conn.call("SET", "k", "x") == b"OK" and r.get("k") == b"x"


def test_a_failing_aof_write_refuses_writes_until_it_is_written(
    node_factory: NodeFactory, raw: RawFactory
) -> None:
    node = node_factory("n", appendonly="yes", appendfsync="everysec")
    r = node.client()
    conn = raw(node.port)
    r.set("big", "x" * (1 << 20))  # the AOF is now much larger than the node's log
    aof_size = int(persistence_info(r)["aof_current_size"])
    limit = aof_size + 1000
    assert (node.dir / "node.log").stat().st_size < limit // 2
    # RLIMIT_FSIZE on the node: its next AOF write beyond the limit fails with EFBIG ("File too large").
    soft, hard = resource.prlimit(node.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(node.pid, resource.RLIMIT_FSIZE, (limit, hard))  # the soft limit: it can be raised back
    try:
        assert conn.call("SET", "during", "y" * 5000) == b"OK"  # executed before its write failed, as Redis
        misconf = "MISCONF Errors writing to the AOF file: File too large"
        wait_for(lambda: error_text(conn.call("SET", "k", "v")) == misconf, 5, what="writes refused")
        assert error_text(conn.call("PING")) == misconf
        assert persistence_info(r)["aof_last_write_status"] == "err"
        assert conn.call("GET", "during") == b"y" * 5000
    finally:
        resource.prlimit(node.pid, resource.RLIMIT_FSIZE, (soft, hard))
    # The cron writes what is pending and writes are accepted again; nothing acknowledged was lost.
    wait_for(lambda: conn.call("PING") == b"PONG", 5, what="the AOF write to be retried")
    assert persistence_info(r)["aof_last_write_status"] == "ok"
    assert conn.call("SET", "after", "z") == b"OK"
    node.kill()
    node.start()
    r = node.client()
    assert r.get("during") == b"y" * 5000 and r.get("after") == b"z" and r.exists("k") == 0


def test_a_replica_full_sync_waits_for_a_running_bgsave_one_child_at_a_time(
    node_factory: NodeFactory, raw: RawFactory
) -> None:
    """Redis's hasActiveChildProcess: a replica's snapshot child is not forked while a BGSAVE child runs; it
    is forked once the BGSAVE is reaped, and the replica then converges."""
    master = node_factory("m")
    r = master.client()
    r.mset({f"key:{i}": f"value:{i}" for i in range(2000)})
    conn = raw(master.port)
    replica = node_factory("r")  # started before the BGSAVE: a start under load could outlast its delay
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "2500") == b"OK"
    assert conn.call("BGSAVE") == b"Background saving started"
    replica.client().replicaof("127.0.0.1", master.port)
    wait_for(lambda: "slave0" in r.info("replication"), 10, what="the replica to ask for a full sync")
    most_children = 0
    while persistence_info(r)["rdb_bgsave_in_progress"] == 1:
        most_children = max(most_children, len(child_pids(master.pid)))
        assert most_children <= 1, "a snapshot child was forked beside the BGSAVE child"
    assert most_children == 1
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "0") == b"OK"
    expected = dataset_digest_of(r)
    wait_for(lambda: replica.client().info("replication")["master_link_status"] == "up", 20, what="the sync")
    wait_for(lambda: dataset_digest_of(replica.client()) == expected, 10, what="the replica to converge")
    assert persistence_info(r)["rdb_last_bgsave_status"] == "ok"
