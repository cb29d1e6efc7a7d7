"""The append-only file on real nodes: round trips, BGREWRITEAOF, CONFIG SET appendonly, upgrades, layout."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from actors.persistence.rdb import writer as rdb_writer
from protocol.resp import encode_command
from tests.harness import NodeProcess, wait_for
from tests.persistence_helpers import (
    RawFactory,
    all_types_keyspace,
    background_writes,
    dataset_digest_of,
    error_text,
    persistence_info,
    raw_connections_fixture,
    write_rdb,
)

NodeFactory = Callable[..., NodeProcess]
MANIFEST = "appendonly.aof.manifest"
# Commands a command-format base needs for each collection type (RPUSH/SADD/ZADD/HMSET on replay).
REBUILD_COMMANDS = {"list": "rpush", "set": "sadd", "zset": "zadd", "hash": "hmset"}


raw = raw_connections_fixture()


def _aof_dir(node: NodeProcess) -> Path:
    return node.dir / "appendonlydir"


def _files(node: NodeProcess) -> list[str]:
    return sorted(p.name for p in _aof_dir(node).iterdir())


def _wait_rewrite_done(client: redis.Redis) -> None:
    wait_for(
        lambda: persistence_info(client)["aof_rewrite_in_progress"] == 0, 15, what="the AOF rewrite to finish"
    )


def _writes_of_every_kind(r: redis.Redis) -> None:
    """Writes through the string and key commands, with TTLs, several databases and an expiry."""
    r.set("s", "v")
    r.append("s", "more")
    r.incr("counter")
    r.incrby("counter", 41)
    r.incrbyfloat("float", "1.5")
    r.execute_command("SETEX", "ttl", 3600, "x")
    r.set("px", "y", px=3_600_000)
    r.expire("str", 7200)
    r.persist("int")
    r.mset({"m1": "1", "m2": "2"})
    r.rename("m1", "renamed")
    r.delete("m2", "binary")
    r.setrange("compressible", 3, "XYZ")
    r.getdel("negative")
    with r.pipeline(transaction=True) as tx:  # MULTI/EXEC reaches the AOF as one block
        tx.incr("in-multi")
        tx.set("also-in-multi", "x")
        tx.execute()
    r.set("gone-soon", "z", px=30)
    wait_for(lambda: r.get("gone-soon") is None, 5, what="gone-soon to expire")  # a DEL is propagated
    db7 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=7)
    db7.set("in db7", "yes")
    db7.swapdb(7, 8)
    db7.close()


def test_aof_round_trip_from_a_dump_keeps_every_write(node_factory: NodeFactory) -> None:
    node = node_factory("n", start=False, appendonly="yes")
    write_rdb(node.dir / "dump.rdb", all_types_keyspace())
    node.start()
    r = node.client()
    assert r.get("str") == b"hello", "appendonly yes with no AOF must load dump.rdb"
    assert _files(node) == ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", MANIFEST]
    assert (_aof_dir(node) / MANIFEST).read_text() == (
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    )
    _writes_of_every_kind(r)
    expected = dataset_digest_of(r)
    info = persistence_info(r)
    assert info["aof_enabled"] == 1 and info["aof_last_write_status"] == "ok"
    incr_size = (_aof_dir(node) / "appendonly.aof.1.incr.aof").stat().st_size
    base_size = (_aof_dir(node) / "appendonly.aof.1.base.rdb").stat().st_size
    assert info["aof_current_size"] == base_size + incr_size and info["aof_base_size"] == base_size
    node.kill()  # SIGKILL: only what reached the AOF counts
    (node.dir / "dump.rdb").unlink()
    node.start()
    r = node.client()
    assert dataset_digest_of(r) == expected
    assert r.get("counter") == b"42" and r.ttl("ttl") > 3000 and r.exists("gone-soon") == 0
    info = persistence_info(r)
    assert info["aof_current_size"] == base_size + incr_size
    assert info["rdb_changes_since_last_save"] > 0  # as Redis: replayed writes count as changes


def test_bgrewriteaof_under_writes_then_restart(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n", appendonly="yes")
    r = node.client()
    for start in range(0, 5000, 500):
        r.mset({f"k:{i}": f"v:{i}" for i in range(start, start + 500)})
    conn = raw(node.port)
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "300") == b"OK"
    with background_writes(node, "k:", 5000, "c:", 10) as written:
        wait_for(lambda: written[0] > 50, 10)
        assert conn.call("BGREWRITEAOF") == b"Background append only file rewriting started"
        assert persistence_info(r)["aof_rewrite_in_progress"] == 1
        _wait_rewrite_done(r)
        during = written[0]
        wait_for(lambda: written[0] > during + 50, 10, what="writes after the rewrite")
    info = persistence_info(r)
    assert info["aof_last_bgrewrite_status"] == "ok" and info["aof_rewrites"] == 1
    assert info["aof_last_cow_size"] > 0
    wait_for(
        lambda: _files(node) == ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", MANIFEST],
        5,
        what="the history files to be removed",
    )
    wait_for(
        lambda: (
            (_aof_dir(node) / MANIFEST).read_text()
            == ("file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n")
        ),
        5,
        what="the manifest without history lines",
    )
    expected = dataset_digest_of(r)
    node.kill()
    node.start()
    assert dataset_digest_of(node.client()) == expected


def test_config_set_appendonly_at_runtime(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n")
    r = node.client()
    r.set("before", "1")
    conn = raw(node.port)
    # The INCR queued in the same tick as the switch is in the first base, and must not be logged twice.
    replies = conn.pipeline(["INCR", "c"], ["CONFIG", "SET", "appendonly", "yes"], ["INCR", "c"])
    assert replies == [1, b"OK", 2]
    wait_for(lambda: persistence_info(r)["aof_rewrites"] == 1, 10)
    _wait_rewrite_done(r)
    assert persistence_info(r)["aof_enabled"] == 1
    r.incr("c")
    assert _files(node) == ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", MANIFEST]
    expected = dataset_digest_of(r)
    assert r.config_set("appendonly", "no")
    info = persistence_info(r)
    assert info["aof_enabled"] == 0 and "aof_current_size" not in info
    incr = _aof_dir(node) / "appendonly.aof.1.incr.aof"
    size = incr.stat().st_size
    r.set("not logged", "x")
    assert incr.stat().st_size == size
    node.stop()
    node.directives["appendonly"] = "yes"
    node.start()
    r = node.client()
    assert dataset_digest_of(r) == expected and r.get("c") == b"3"


def test_command_format_base_when_rdb_preamble_is_off(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n", start=False, appendonly="yes", aof_use_rdb_preamble="no")
    keyspace = all_types_keyspace()
    # A command-format base replays collections through RPUSH/SADD/ZADD/HMSET: use the types that exist.
    probe = node_factory("probe")
    known = raw(probe.port).call("COMMAND", "INFO", *REBUILD_COMMANDS.values())
    probe.stop()
    missing = {kind for kind, info in zip(REBUILD_COMMANDS, known, strict=True) if not info}
    type_names = {"list": b"list", "set": b"set", "zset": b"zset", "hash": b"hash"}
    for db in keyspace.dbs:
        for key in [
            k for k, v in db.data.items() if keyspace.type_name(v) in {type_names[m] for m in missing}
        ]:
            del db.data[key]
            db.expires.pop(key, None)
    write_rdb(node.dir / "dump.rdb", keyspace)
    node.start()
    r = node.client()
    assert _files(node) == ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", MANIFEST]
    assert (_aof_dir(node) / "appendonly.aof.1.base.aof").read_bytes().startswith(b"*2\r\n$6\r\nSELECT\r\n")
    r.set("more", "x")
    expected = dataset_digest_of(r)
    node.kill()
    (node.dir / "dump.rdb").unlink()
    node.start()
    assert dataset_digest_of(node.client()) == expected


def test_automatic_rewrite_when_the_aof_grows(node_factory: NodeFactory) -> None:
    node = node_factory(
        "n", appendonly="yes", auto_aof_rewrite_percentage="100", auto_aof_rewrite_min_size="4096"
    )
    r = node.client()
    for i in range(100):
        r.set(f"key:{i % 5}", "x" * 100)
    wait_for(lambda: persistence_info(r)["aof_rewrites"] >= 1, 10, what="an automatic rewrite")
    _wait_rewrite_done(r)
    info = persistence_info(r)
    assert info["aof_last_bgrewrite_status"] == "ok"

    # The new base holds the 5 live keys only. (aof_base_size, as in Redis, also counts what clients wrote to
    # the new incr file while the child ran, which on a busy machine can be most of the 100 writes.)
    # The old base is a history file, deleted in the background after the switch (Redis's bio does the same),
    # and the writes made during the rewrite may start another one: wait for the settled state.
    def one_compacted_base() -> bool:
        bases = [(p.name, p.stat().st_size) for p in _aof_dir(node).iterdir() if ".base." in p.name]
        settled = persistence_info(r)["aof_rewrite_in_progress"] == 0
        return settled and len(bases) == 1 and bases[0][1] < 4096

    wait_for(one_compacted_base, 10, what="one compacted base file")
    expected = dataset_digest_of(r)
    node.kill()
    node.start()
    assert dataset_digest_of(node.client()) == expected


@pytest.mark.parametrize("preamble", [False, True], ids=["commands", "rdb-preamble"])
def test_a_pre_7_appendonly_aof_is_moved_into_the_aof_dir(node_factory: NodeFactory, preamble: bool) -> None:
    node = node_factory("n", start=False, appendonly="yes")
    head = rdb_writer.dumps(all_types_keyspace().dbs) if preamble else b""
    commands = [[b"SELECT", b"0"], [b"SET", b"old", b"style"], [b"SELECT", b"2"], [b"INCR", b"n"]]
    (node.dir / "appendonly.aof").write_bytes(head + b"".join(encode_command(c) for c in commands))
    node.start()
    r = node.client()
    assert r.get("old") == b"style"
    assert r.exists("str") == int(preamble)
    assert not (node.dir / "appendonly.aof").exists()
    assert _files(node) == ["appendonly.aof", "appendonly.aof.1.incr.aof", MANIFEST]
    assert (_aof_dir(node) / MANIFEST).read_text() == (
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    )
    r.set("new", "1")
    expected = dataset_digest_of(r)
    node.kill()
    node.start()
    assert dataset_digest_of(node.client()) == expected


def test_a_file_missing_from_the_manifest_stops_start_up(node_factory: NodeFactory) -> None:
    node = node_factory("n", appendonly="yes")
    node.client().set("k", "v")
    node.stop()
    (_aof_dir(node) / "appendonly.aof.1.incr.aof").unlink()
    manifest = (_aof_dir(node) / MANIFEST).read_bytes()
    node.start(wait=False)
    assert node.wait_exit() == 1
    assert "appendonly.aof.1.incr.aof" in node.log() and "dataset_load_failed" in node.log()
    assert (_aof_dir(node) / MANIFEST).read_bytes() == manifest


def test_bgrewriteaof_with_appendonly_off_writes_a_base(node_factory: NodeFactory, raw: RawFactory) -> None:
    node = node_factory("n")
    r = node.client()
    r.set("k", "v")
    conn = raw(node.port)
    assert conn.call("BGREWRITEAOF") == b"Background append only file rewriting started"
    _wait_rewrite_done(r)
    assert _files(node) == ["appendonly.aof.1.base.rdb", MANIFEST]
    assert (
        error_text(conn.call("BGREWRITEAOF", "now"))
        == "ERR wrong number of arguments for 'bgrewriteaof' command"
    )


def _loadaof_workload(r: redis.Redis) -> None:
    """Strings, a TTL, a stream with groups (a NOACK consumer, one without pending entries), a deletion."""
    r.set("s", "v")
    r.set("ttl", "x", ex=3600)
    r.xadd("st", {"f": "1"}, id="1-1")
    r.xadd("st", {"f": "2"}, id="2-1")
    r.xgroup_create("st", "g", id="0")
    r.xreadgroup("g", "alice", {"st": ">"}, count=1)
    r.xreadgroup("g", "bob", {"st": ">"}, noack=True)
    r.execute_command("XGROUP", "CREATECONSUMER", "st", "g", "carol")
    r.xdel("st", "2-1")
    r.rpush("l", "a", "b")
    r.delete("l")


def test_debug_loadaof_reloads_the_dataset_from_the_aof_as_redis_does(
    node_factory: NodeFactory, redis_servers: Callable[..., Any], tmp_path: Path
) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    reference = redis_servers(directory, "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    node = node_factory("n", appendonly="yes", **{"aof-use-rdb-preamble": "no"})
    r = node.client()
    replies = {}
    for name, client in (("node", r), ("redis", reference.client)):
        _loadaof_workload(client)
        # After a rewrite, the dataset comes from the new base and the new incr file.
        assert client.bgrewriteaof()
        _wait_rewrite_done(client)
        client.set("after-rewrite", "1")
        groups_before = client.xinfo_groups("st")
        client.execute_command("SET", "volatile", "1")
        assert client.execute_command("DEBUG", "LOADAOF") == b"OK"
        assert client.xinfo_groups("st") == groups_before
        replies[name] = (
            sorted(client.keys("*")),
            client.execute_command("DEBUG", "DIGEST"),
            [c["name"] for c in client.xinfo_consumers("st", "g")],
            client.ttl("ttl") > 0,
        )
    assert replies["node"] == replies["redis"]
    assert replies["node"][2] == [b"alice", b"bob", b"carol"]
    # With the AOF off, Redis 7.0 still loads the files it left (debug.c: it only skips the flush): the same
    # dataset comes back on both.
    after_off = {}
    for name, client in (("node", r), ("redis", reference.client)):
        assert client.config_set("appendonly", "no")
        assert client.execute_command("DEBUG", "LOADAOF") == b"OK"
        after_off[name] = (client.get("s"), client.execute_command("DEBUG", "DIGEST"))
    assert after_off["node"] == after_off["redis"]
    assert after_off["node"][0] == b"v"


def test_debug_aof_flush_sleep_delays_each_write_of_the_buffer(node_factory: NodeFactory) -> None:
    """DEBUG AOF-FLUSH-SLEEP <us> (Redis's test hook): the node sleeps that long before it writes a tick's AOF
    buffer, and the reply still leaves only after the write (Redis's aof unit races a reply against it)."""
    node = node_factory("flushsleep", appendonly="yes")
    r = node.client()
    aof = node.dir / "appendonlydir"
    r.execute_command("DEBUG", "AOF-FLUSH-SLEEP", 300_000)
    before = sum(f.stat().st_size for f in aof.glob("*.incr.aof"))
    started = time.monotonic()
    assert r.incr("counter") == 1
    assert time.monotonic() - started >= 0.3  # the write waited, and the reply waited for the write
    assert sum(f.stat().st_size for f in aof.glob("*.incr.aof")) > before
    assert r.get("counter") == b"1"
    r.execute_command("DEBUG", "AOF-FLUSH-SLEEP", 0)
    assert r.incr("counter") == 2


def test_aof_timestamp_annotations(node_factory: NodeFactory) -> None:
    """aof-timestamp-enabled yes (Redis 7.0): "#TS:<unix seconds>" lines before the first write of each new
    second, and at the head of a command-format base; the node loads such files, and redis-check-aof reads
    them (it can truncate an AOF to a timestamp: point-in-time recovery)."""
    node = node_factory("ts", appendonly="yes", aof_use_rdb_preamble="no")
    r = node.client()
    r.config_set("aof-timestamp-enabled", "yes")
    aof = node.dir / "appendonlydir"
    r.set("foo", "bar")
    r.set("foo2", "bar2")  # (the same second, most likely: at most one more annotation)
    (incr,) = aof.glob("*.incr.aof")
    lines = incr.read_bytes().split(b"\r\n")
    assert lines[0].startswith(b"#TS:") and abs(int(lines[0][4:]) - time.time()) < 5
    assert 1 <= sum(line.startswith(b"#TS:") for line in lines) <= 2
    r.bgrewriteaof()
    wait_for(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, 15, what="the rewrite")
    wait_for(lambda: len(list(aof.glob("*.base.aof"))) == 1, 15, what="the new base")
    (base,) = aof.glob("*.base.aof")
    assert base.read_bytes().startswith(b"#TS:")
    r.set("after", "rewrite")
    node.stop()
    node.start()
    assert node.client().mget("foo", "foo2", "after") == [b"bar", b"bar2", b"rewrite"]
    if shutil.which("redis-check-aof"):
        manifest = next(aof.glob("*.manifest"))
        done = subprocess.run(["redis-check-aof", str(manifest)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "is valid" in done.stdout, done.stdout + done.stderr


AofPair = list[tuple[redis.Redis, Path]]


@pytest.fixture
def aof_pair(node_factory: NodeFactory, tmp_path: Path) -> Iterator[AofPair]:
    """redis-server and a node, both with appendonly yes: [(client, its appendonlydir)], redis-server first."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from tests.harness import RedisServer

    node = node_factory("aofpair", appendonly="yes")  # (first: node_factory stops it whatever happens next)
    (tmp_path / "redis").mkdir()
    reference = RedisServer(tmp_path / "redis", "--appendonly", "yes")
    try:
        yield [
            (reference.client, tmp_path / "redis" / "appendonlydir"),
            (node.client(), node.dir / "appendonlydir"),
        ]
    finally:
        reference.stop()


def wait_rewritten(client: redis.Redis) -> None:
    wait_for(
        lambda: (
            client.info("persistence")["aof_rewrite_in_progress"] == 0
            and client.info("persistence")["aof_rewrite_scheduled"] == 0
        ),
        15,
        what="the rewrite",
    )


def manifests(pair: AofPair) -> list[str]:
    return [(d / "appendonly.aof.manifest").read_text() for _, d in pair]


def test_aof_disable_auto_gc_keeps_history_files_as_redis(aof_pair: AofPair) -> None:
    """aof-disable-auto-gc yes (it was refused): the files a rewrite replaces stay, listed as ``type h`` in the
    manifest; setting it back to no removes them. Each step's manifest is compared with redis-server's."""

    def files() -> list[list[str]]:
        return [sorted(p.name for p in d.iterdir() if "manifest" not in p.name) for _, d in aof_pair]

    def rewrite() -> None:
        for client, _ in aof_pair:
            client.set("k", "v")
            client.bgrewriteaof()
        for client, _ in aof_pair:
            wait_rewritten(client)

    for client, _ in aof_pair:
        client.config_set("aof-disable-auto-gc", "yes")
    rewrite()
    rewrite()
    theirs, ours = manifests(aof_pair)
    assert ours == theirs and " type h" in ours
    assert files()[0] == files()[1]
    for client, _ in aof_pair:
        client.config_set("aof-disable-auto-gc", "no")
    wait_for(lambda: files()[0] == files()[1] and len(files()[1]) == 2, 10, what="the history files to go")
    theirs, ours = manifests(aof_pair)
    assert ours == theirs and " type h" not in ours


def test_incr_sequence_after_aof_off_rewrite_loadaof_on_as_redis(aof_pair: AofPair) -> None:
    """AOF off, BGREWRITEAOF (a base alone), DEBUG LOADAOF (Redis re-reads the manifest from disk), AOF on: the
    new incr file's sequence number starts over at 1, on both servers (Redis's aof-multi-part unit)."""
    for client, _ in aof_pair:
        client.set("k", "v")
        client.bgrewriteaof()
        wait_rewritten(client)
        client.config_set("appendonly", "no")
        client.bgrewriteaof()
        wait_rewritten(client)
        client.execute_command("DEBUG", "LOADAOF")
        client.config_set("appendonly", "yes")
        wait_rewritten(client)
    theirs, ours = manifests(aof_pair)
    assert ours == theirs
    assert "appendonly.aof.1.incr.aof seq 1 type i" in ours
