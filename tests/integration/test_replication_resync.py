"""Replication when things go wrong: links that drop, nodes that stop, restart, die mid-sync or get promoted.

Each test makes its own nodes (they are killed, stopped and restarted). Timeouts are small (repl-timeout 2 s)
so that a lost replica or master is noticed quickly.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for
from tests.integration.test_replication import digest, info, wait_converged

REPL = {"repl_timeout": 2, "repl_ping_replica_period": 1}


def stats(client: redis.Redis) -> tuple[int, int, int]:
    data = client.info("stats")
    return data["sync_full"], data["sync_partial_ok"], data["sync_partial_err"]


def attach(replica: NodeProcess, master: NodeProcess) -> redis.Redis:
    client = replica.client()
    assert client.execute_command("REPLICAOF", "127.0.0.1", master.port) == b"OK"
    wait_for(lambda: info(client)["master_link_status"] == "up", 15, what=f"{replica.name} linked")
    return client


def link_up(client: redis.Redis) -> bool:
    return bool(info(client).get("master_link_status") == "up")


def wait_acked(master: redis.Redis) -> dict[str, Any]:
    """Wait until every replica acknowledged the master's whole stream; its INFO replication then.

    A shutdown stops at once after that; before it, it first asks the replicas for their offsets (a REPLCONF
    GETACK on the stream, as Redis's sendGetackToReplicas), which moves the offset these tests compare."""

    def acked() -> dict[str, Any] | None:
        now = info(master)
        offsets = [now[f"slave{i}"]["offset"] for i in range(int(now["connected_slaves"]))]
        return now if offsets and all(offset == now["master_repl_offset"] for offset in offsets) else None

    return wait_for(acked, 10, what="the replicas to acknowledge the whole stream")


def write_some(client: redis.Redis, prefix: str, count: int, size: int = 10) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"{prefix}:{i}", f"{i}".ljust(size, "x"))
    pipe.execute()


def test_replica_stopped_past_repl_timeout_resyncs_partially(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    write_some(mc, "before", 100)
    rc = attach(replica, master)
    wait_converged(mc, rc)
    full, partial_ok, _ = stats(mc)
    replica.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: info(mc)["connected_slaves"] == 0, 15, what="the master to drop the stopped replica")
        write_some(mc, "while-stopped", 200)
    finally:
        replica.signal(signal.SIGCONT)
    wait_for(lambda: stats(mc)[1] == partial_ok + 1, 15, what="a partial resync")
    wait_converged(mc, rc)
    assert stats(mc)[0] == full
    assert rc.get("while-stopped:199") == b"199xxxxxxx"
    assert '"event": "partial_resync_accepted"' in master.log()
    assert '"event": "link_lost"' in replica.log()


def test_writes_past_the_backlog_while_away_force_a_full_sync(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", repl_backlog_size=16384, **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    rc = attach(replica, master)
    write_some(mc, "a", 10)
    wait_converged(mc, rc)
    full, _, partial_err = stats(mc)
    replica.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: info(mc)["connected_slaves"] == 0, 15, what="the master to drop the stopped replica")
        write_some(mc, "b", 500, size=100)  # ~60 KB: far more than the 16 KB backlog
        # The backlog is filled by the replication actor at the end of each tick: poll, do not read once.
        wait_for(lambda: info(mc)["repl_backlog_histlen"] == 16384, 10, what="the backlog to fill up")
    finally:
        replica.signal(signal.SIGCONT)
    wait_for(lambda: stats(mc)[0] == full + 1, 15, what="a full sync")
    wait_converged(mc, rc)
    assert stats(mc)[2] == partial_err + 1
    assert "offset" in master.log() and '"event": "partial_resync_refused"' in master.log()


def test_promoted_replica_takes_the_other_replica_partially(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("master", **REPL)
    r1 = node_factory("r1", **REPL)
    r2 = node_factory("r2", **REPL)
    mc = master.client()
    c1, c2 = attach(r1, master), attach(r2, master)
    write_some(mc, "k", 50)
    mc.execute_command("SELECT", 0)
    m7 = master.client(db=7)
    m7.set("db7", "x")  # the stream's selected database is 7 when the promotion happens
    wait_converged(mc, c1, c2)
    old = wait_acked(mc)
    master.stop()
    assert c1.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    promoted = info(c1)
    assert promoted["role"] == "master"
    assert promoted["master_replid2"] == old["master_replid"]
    assert promoted["second_repl_offset"] == old["master_repl_offset"] + 1
    assert promoted["master_replid"] != old["master_replid"]
    assert c2.execute_command("REPLICAOF", "127.0.0.1", r1.port) == b"OK"
    wait_for(lambda: link_up(c2), 15, what="r2 linked to the promoted r1")
    assert stats(c1) == (0, 1, 0)  # r2 continued partially with the old id (PSYNC2)
    c1.set("after-promotion", "1")  # db 0: the new master SELECTs it
    r1.client(db=7).set("db7-after", "y")
    wait_converged(c1, c2)
    assert c2.get("after-promotion") == b"1"
    assert r2.client(db=7).get("db7-after") == b"y"
    assert info(c2)["master_replid"] == promoted["master_replid"]
    assert '"event": "replica_promoted"' in r1.log()


def test_master_restarted_from_its_rdb_resyncs_replicas_partially(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    rc = attach(replica, master)
    write_some(mc, "k", 100)
    master.client(db=2).set("in-two", "2")
    wait_converged(mc, rc)
    before = wait_acked(mc)
    try:
        mc.shutdown(save=True)
    except redis.ConnectionError:
        pass
    master.wait_exit()
    wait_for(lambda: not link_up(rc), 10, what="the replica to see its master go")
    assert rc.get("k:99") == b"99xxxxxxxx"  # a replica serves its data while its master is away
    master.start()
    mc = master.client()
    restarted = info(mc)
    assert restarted["master_replid2"] == before["master_replid"]
    assert restarted["second_repl_offset"] == before["master_repl_offset"] + 1
    assert restarted["master_repl_offset"] == before["master_repl_offset"]
    wait_for(lambda: link_up(rc) and stats(mc)[1] == 1, 15, what="a partial resync with the restarted master")
    assert stats(mc) == (0, 1, 0)
    master.client(db=2).set("in-two-later", "2")
    mc.set("k:100", "new")
    wait_converged(mc, rc)
    assert replica.client(db=2).get("in-two-later") == b"2"


def test_keys_that_expired_while_the_master_was_down_are_deleted_on_its_replicas(
    node_factory: Callable[..., NodeProcess],
) -> None:
    """Redis 7.0's psync2-master-restart "with expire": a master restarted from its RDB drops the keys whose
    time passed while it was down and sends their DELs in the history its replicas continue (a partial
    resync), so their datasets stay the same (they kept those keys, hidden, for the master's DELs)."""
    master = node_factory("master", enable_debug_command="yes", **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    rc = attach(replica, master)
    mc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # no DELs before the restart
    for db in range(3):
        pipe = master.client(db=db).pipeline(transaction=False)
        for i in range(50):
            pipe.set(f"short:{i}", "v", px=50)
        pipe.set("kept", "v")
        pipe.execute()
    wait_converged(mc, rc)
    wait_acked(mc)
    assert int(rc.execute_command("DBSIZE")) == 51
    try:
        mc.shutdown(save=True)
    except redis.ConnectionError:
        pass
    master.wait_exit()
    master.start()  # (the keys' 50 ms passed while it started)
    mc = master.client()
    assert mc.info("persistence")["rdb_last_load_keys_expired"] == 150
    wait_for(lambda: link_up(rc) and stats(mc)[1] == 1, 15, what="a partial resync with the restarted master")
    wait_for(lambda: int(rc.execute_command("DBSIZE")) == 1, 10, what="the DELs to reach the replica")
    assert [int(replica.client(db=db).execute_command("DBSIZE")) for db in range(3)] == [1, 1, 1]
    wait_converged(mc, rc)
    assert stats(mc) == (0, 1, 0)


def test_replica_restarted_after_shutdown_save_resyncs_partially(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    replica = node_factory("replica", start=False, replicaof=f"127.0.0.1 {master.port}", **REPL)
    replica.start()
    mc, rc = master.client(), replica.client()
    wait_for(lambda: link_up(rc), 15, what="the replica linked")
    write_some(mc, "k", 100)
    master.client(db=4).set("four", "4")
    wait_converged(mc, rc)
    full, partial_ok, _ = stats(mc)
    assert full == 1
    try:
        rc.shutdown(save=True)
    except redis.ConnectionError:
        pass
    replica.wait_exit()
    write_some(mc, "later", 100)
    master.client(db=4).set("four-later", "4")
    replica.start()
    rc = replica.client()
    wait_for(lambda: stats(mc)[1] == partial_ok + 1, 15, what="a partial resync of the restarted replica")
    wait_converged(mc, rc)
    assert stats(mc)[0] == full
    assert replica.client(db=4).get("four-later") == b"4"


def _snapshot_temp_files(node: NodeProcess) -> list[str]:
    return [name for name in os.listdir(node.dir) if name.startswith("temp-repl-")]


def test_replica_killed_during_full_sync_is_dropped_and_others_sync(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    doomed = node_factory("doomed", **REPL)
    mc = master.client()
    write_some(mc, "k", 1000)
    mc.execute_command("DEBUG", "SET-SAVE-DELAY", 1500)  # the snapshot child sleeps before writing
    doomed.client().execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for(lambda: info(mc).get("slave0", {}).get("state") == "wait_bgsave", 10, what="a sync in progress")
    doomed.kill()
    mc.set("meanwhile", "1")
    wait_for(lambda: info(mc)["connected_slaves"] == 0, 15, what="the master to drop the dead replica")
    wait_for(lambda: not _snapshot_temp_files(master), 15, what="the orphaned snapshot file to be removed")
    mc.execute_command("DEBUG", "SET-SAVE-DELAY", 0)
    survivor = node_factory("survivor", **REPL)
    sc = attach(survivor, master)
    wait_converged(mc, sc)
    assert sc.get("meanwhile") == b"1"


def test_master_killed_during_full_sync_then_restarted(node_factory: Callable[..., NodeProcess]) -> None:
    master = node_factory("master", appendonly="yes", **REPL)
    replica = node_factory("replica", **REPL)
    mc, rc = master.client(), replica.client()
    rc.set("old", "data")
    write_some(mc, "k", 500)
    mc.execute_command("DEBUG", "SET-SAVE-DELAY", 1000)
    rc.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for(
        lambda: info(rc)["master_sync_in_progress"] == 1, 10, what="the replica to wait for its snapshot"
    )
    master.kill()
    wait_for(lambda: info(rc)["master_sync_in_progress"] == 0, 15, what="the replica to give up this sync")
    assert info(rc)["master_link_status"] == "down"
    assert rc.get("old") == b"data"  # still serving what it had (replica-serve-stale-data yes)
    master.start()  # recovers its data from the AOF; a new history, so the replica syncs in full
    mc = master.client()
    wait_converged(mc, rc, timeout_s=20)
    assert rc.get("old") is None
    assert rc.get("k:499") == b"499xxxxxxx"


def test_chained_replica_gets_the_masters_stream_with_the_same_offsets(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    middle = node_factory("middle", **REPL)
    leaf = node_factory("leaf", **REPL)
    mc = master.client()
    write_some(mc, "k", 100)
    midc = attach(middle, master)
    leafc = attach(leaf, middle)
    master.client(db=3).set("three", "3")
    mc.incr("counter")
    wait_converged(mc, midc, leafc)
    assert info(leafc)["master_replid"] == info(mc)["master_replid"]
    assert leaf.client(db=3).get("three") == b"3"
    assert stats(midc)[0] == 1  # the leaf was served by the middle replica


def test_replica_serve_stale_data_no_answers_masterdown(node_factory: Callable[..., NodeProcess]) -> None:
    lonely = node_factory("lonely", replica_serve_stale_data="no", **REPL)
    client = lonely.client()
    client.set("k", "v")
    nowhere = NodeProcess(lonely.dir.parent, "nowhere")  # a free port nobody listens on
    assert client.execute_command("REPLICAOF", "127.0.0.1", nowhere.port) == b"OK"
    error: Any = None
    try:
        client.get("k")
    except redis.ResponseError as exc:
        error = exc
    assert str(error) == "Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    # As in Redis 7.0, only commands flagged "stale" (INFO, REPLICAOF, ...) run; PING is not one of them.
    with pytest.raises(redis.ResponseError, match="^Link with MASTER is down"):
        client.ping()
    assert client.info("replication")["master_link_status"] == "down"
    assert client.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    assert client.get("k") == b"v"
    assert digest(client) != b"0" * 40


def test_a_crashed_replication_actor_is_restarted_and_replication_resumes(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    rc = attach(replica, master)
    write_some(mc, "a", 50)
    wait_converged(mc, rc)
    for node, client in ((replica, rc), (master, mc)):
        restarts = client.info("actors")["replication"]["restarts"]
        full, partial, _ = stats(mc)
        assert client.execute_command("DEBUG", "CRASH-ACTOR", "replication") == b"OK"
        wait_for(
            lambda c=client, n=restarts: c.info("actors")["replication"]["restarts"] == n + 1,
            10,
            what=f"the {node.name}'s replication actor to restart",
        )
        # Write only once the replica has synced again: right after the crash the old link can still look up,
        # and writes made before the restarted master actor has a backlog cannot be replayed from it.
        wait_for(
            lambda f=full, p=partial: sum(stats(mc)[:2]) > f + p and link_up(rc),
            15,
            what="the replica to sync again",
        )
        wait_for(lambda: info(mc)["connected_slaves"] == 1, 15, what="the link back up")
        write_some(mc, f"after-{node.name}-crash", 50)
        wait_converged(mc, rc)
    # The restarted actors lost their state (backlog, link), not the loop's: both links resumed partially.
    assert stats(mc)[0] == 1


def test_backlog_is_freed_after_repl_backlog_ttl_without_replicas(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master", repl_backlog_ttl=1, **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    rc = attach(replica, master)
    mc.set("k", "v")
    wait_converged(mc, rc)
    history = info(mc)["master_replid"]
    assert info(mc)["repl_backlog_active"] == 1
    assert rc.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    wait_for(lambda: info(mc)["repl_backlog_active"] == 0, 10, what="the backlog to be freed")
    # Without a backlog the history cannot be continued: the master starts a new one (a new id).
    assert info(mc)["master_replid"] != history
    assert info(mc)["connected_slaves"] == 0
    assert '"event": "replication_backlog_freed"' in master.log()


def test_a_replica_killed_and_restarted_is_listed_once_on_its_master(
    node_factory: Callable[..., NodeProcess],
) -> None:
    # A long repl-timeout: the master must not need it to forget the dead link (it has no disconnect signal).
    master = node_factory("master", repl_timeout=60)
    replica = node_factory("replica", repl_timeout=60, replicaof=f"127.0.0.1 {master.port}")
    mc = master.client()
    wait_for(lambda: info(mc)["connected_slaves"] == 1, 10, what="the replica attached")
    replica.kill()
    replica.start()
    rc = replica.client()
    wait_for(lambda: link_up(rc), 10, what="the restarted replica's link")
    lines = wait_for(
        lambda: [v for k, v in info(mc).items() if k.startswith("slave")], 10, what="slave lines"
    )
    assert info(mc)["connected_slaves"] == 1, lines
    assert lines[0]["port"] == replica.port


def test_save_during_a_full_syncs_snapshot_is_refused_as_redis_refuses_it(
    node_factory: Callable[..., NodeProcess],
) -> None:
    # The snapshot child sleeps per key (rdb-key-save-delay, µs): it is still writing when SAVE comes.
    master = node_factory("master", rdb_key_save_delay=20_000, **REPL)
    replica = node_factory("replica", **REPL)
    mc = master.client()
    write_some(mc, "k", 200)  # ~4 s of snapshot
    assert replica.client().execute_command("REPLICAOF", "127.0.0.1", master.port) == b"OK"
    wait_for(lambda: mc.info("persistence")["rdb_bgsave_in_progress"] == 1, 10, what="the snapshot child")
    for command in (("SAVE",), ("BGSAVE",), ("BGSAVE", "SCHEDULE")):
        with pytest.raises(redis.ResponseError, match="Background save already in progress"):
            mc.execute_command(*command)
