"""A node loading a large dump.rdb with the helper process (actors/persistence/rdb/helper.py) on a second core: the launcher
starts the helper before the node's imports, the load merges its runs, and no helper outlives the load, nor a
node that fails to start."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.data.keyspace import Keyspace
from actors.persistence.rdb import helper as rdbhelper
from tests.harness import NodeProcess
from tests.persistence_helpers import DAY_MS, dataset_digest_of, persistence_info, write_rdb

NodeFactory = Callable[..., NodeProcess]

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the load helper is only used with two CPUs or more"
)


def large_keyspace() -> Keyspace:
    """~6 MiB of string keys (some with TTLs, some already expired), a few other types, two databases."""
    keyspace = Keyspace(16)
    now_ms = int(time.time() * 1000)
    db0, db4 = keyspace.dbs[0], keyspace.dbs[4]
    for i in range(120_000):
        db0.data[b"key:%d" % i] = b"value:%d:" % i + bytes(30)
    for i in range(0, 120_000, 7):
        db0.expires[b"key:%d" % i] = now_ms + DAY_MS
    for i in range(3, 120_000, 1000):
        db0.expires[b"key:%d" % i] = 1000  # long gone: a master drops them on load
    db0.data[b"hash"] = {b"f": b"v"}
    db4.data.update({b"other:%d" % i: b"%d" % i for i in range(30_000)})
    db4.data[b"set"] = {b"a", b"b"}
    return keyspace


def helpers_reading(path: Path) -> list[int]:
    """Pids of processes whose stdin is ``path``: load helpers still running on that file."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/fd/0") == str(path):
                    pids.append(int(entry))
            except OSError:
                continue  # gone, or not ours to look at
    return pids


def test_a_large_rdb_loads_through_the_helper_and_the_helper_is_gone(node_factory: NodeFactory) -> None:
    node = node_factory("n", start=False)
    keyspace = large_keyspace()
    dump = node.dir / "dump.rdb"
    write_rdb(dump, keyspace)
    assert dump.stat().st_size >= rdbhelper.MIN_FILE_BYTES
    for i in range(3, 120_000, 1000):  # what the node must serve: the expired keys dropped
        del keyspace.dbs[0].data[b"key:%d" % i], keyspace.dbs[0].expires[b"key:%d" % i]
    expected = write_rdb(node.dir / "expected.rdb", keyspace)
    node.start()
    r = node.client()
    assert dataset_digest_of(r) == expected
    assert r.ttl("key:7") > 0 and r.ttl("key:8") == -1 and r.get("key:8") == b"value:8:" + bytes(30)
    info = persistence_info(r)
    assert info["rdb_last_load_keys_expired"] == 120
    assert info["rdb_last_load_keys_loaded"] == 120_000 - 120 + 1 + 30_000 + 1
    line = next(line for line in node.log().splitlines() if "load_helper_finished" in line)
    assert '"keys": ' in line and int(line.split('"keys": ')[1].split(",")[0]) > 140_000
    assert helpers_reading(dump) == []


def test_a_node_that_cannot_start_leaves_no_helper_behind(node_factory: NodeFactory) -> None:
    first = node_factory("first")
    node = node_factory("n", start=False, port=first.port)  # the port is taken: the node exits with 1
    dump = node.dir / "dump.rdb"
    write_rdb(dump, large_keyspace())
    node.start(wait=False)
    assert node.wait_exit(15) == 1
    assert helpers_reading(dump) == []  # stopped and reaped before the node exited, not left to find out


def test_a_node_on_the_aof_does_not_start_a_helper_on_dump_rdb(node_factory: NodeFactory) -> None:
    node = node_factory("n", appendonly="yes")
    node.client().set("k", "v")
    node.stop()
    write_rdb(node.dir / "dump.rdb", large_keyspace())  # stale: the AOF is the dataset
    node.start()
    r = node.client()
    assert r.dbsize() == 1 and r.get("k") == b"v"
    assert "load_helper" not in node.log()
