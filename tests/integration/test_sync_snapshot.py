"""SYNC/PSYNC over RESP for snapshots: ``redis-cli --rdb`` takes a backup of a running node, as from Redis
(REPLCONF rdb-only 1, then a BGSAVE's dump.rdb as ``$<length>`` and the bytes, then the connection closes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.data.digest import dataset_digest
from actors.data.keyspace import Keyspace
from actors.persistence.rdb import reader as rdb_reader
from tests.harness import NodeProcess, wait_for
from tests.persistence_helpers import (
    RawFactory,
    all_types_keyspace,
    child_pids,
    dataset_digest_of,
    error_text,
    persistence_info,
    raw_connections_fixture,
    write_rdb,
)

NodeFactory = Callable[..., NodeProcess]
raw = raw_connections_fixture()


def file_digest(path: Path) -> bytes:
    keyspace = Keyspace(16)
    keyspace.dbs = rdb_reader.load_file(str(path), 16).dbs
    return dataset_digest(keyspace)


def read_all(sock: socket.socket) -> bytes:
    """Everything the node sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def rdb_only_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"REPLCONF rdb-only 1\r\n")
    assert sock.recv(5) == b"+OK\r\n"
    return sock


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_redis_cli_rdb_takes_a_backup_that_redis_check_rdb_accepts(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory("n", start=False)
    write_rdb(node.dir / "dump.rdb", all_types_keyspace())
    node.start()
    r = node.client()
    r.set("written-after-start", "yes")
    backup = tmp_path / "backup.rdb"
    done = subprocess.run(
        ["redis-cli", "-p", str(node.port), "--rdb", str(backup)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Transfer finished with success" in done.stderr
    assert file_digest(backup) == dataset_digest_of(r)
    check = subprocess.run(["redis-check-rdb", str(backup)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout
    assert r.get("written-after-start") == b"yes"  # the node goes on serving


def test_psync_sends_fullresync_then_the_snapshot_then_closes(node_factory: NodeFactory) -> None:
    node = node_factory("n")
    r = node.client()
    r.mset({f"k{i}": f"v{i}" for i in range(1000)})
    sock = rdb_only_socket(node.port)
    with sock:
        sock.sendall(b"PSYNC ? -1\r\n")
        received = read_all(sock)
    line, rest = received.split(b"\r\n", 1)
    word, replid, offset = line.split(b" ")
    assert word == b"+FULLRESYNC" and len(replid) == 40 and int(offset) >= 0
    header, payload = rest.split(b"\r\n", 1)
    assert header == b"$%d" % len(payload) and payload.startswith(b"REDIS0010")
    loaded = rdb_reader.load(payload, 16)
    assert len(loaded.dbs[0].data) == 1000 and loaded.dbs[0].data[b"k7"] == b"v7"
    assert persistence_info(r)["rdb_last_bgsave_status"] == "ok"  # as Redis's disk-based sync: a BGSAVE


def test_rdb_only_checks_its_value(node: NodeProcess, raw: RawFactory) -> None:
    # Without rdb-only, SYNC makes the connection a replica (test_resp_replica.py).
    conn = raw(node.port)
    assert error_text(conn.call("REPLCONF", "rdb-only", "5")) == (
        "ERR value is out of range, value must between 0 and 1"
    )
    assert error_text(conn.call("REPLCONF", "rdb-only", "x")) == "ERR value is not an integer or out of range"
    assert conn.call("REPLCONF", "rdb-only", "1") == b"OK"
    assert error_text(conn.pipeline(["MULTI"], ["SYNC"])[1]) == "ERR Command not allowed inside a transaction"


def test_sync_waits_for_a_bgsave_in_progress_and_a_failed_one_is_an_error(
    node_factory: NodeFactory, raw: RawFactory
) -> None:
    node = node_factory("n")
    r = node.client()
    r.set("k", "v")
    conn = raw(node.port)
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "60000") == b"OK"
    assert conn.call("BGSAVE") == b"Background saving started"
    (child,) = wait_for(lambda: child_pids(node.pid), 5, what="the BGSAVE child")
    sock = rdb_only_socket(node.port)
    with sock:
        sock.sendall(b"SYNC\r\n")
        wait_for(lambda: "flags=b" in _line_of(r, "cmd=sync"), 5, what="SYNC to wait for the BGSAVE")
        assert r.get("k") == b"v"  # other clients are served meanwhile
        os.kill(child, signal.SIGKILL)  # the BGSAVE it waits for fails
        assert read_all(sock) == b"-ERR Background save for SYNC failed: see the node's log\r\n"
    assert conn.call("DEBUG", "SET-SAVE-DELAY", "0") == b"OK"
    sock = rdb_only_socket(node.port)
    with sock:
        sock.sendall(b"SYNC\r\n")
        received = read_all(sock)
    header, payload = received.split(b"\r\n", 1)
    assert header == b"$%d" % len(payload) and rdb_reader.load(payload, 16).dbs[0].data == {b"k": b"v"}


def _line_of(r: Any, needle: str) -> str:
    """The CLIENT LIST line with ``needle`` in it ("" if none)."""
    return next(
        (line for line in r.execute_command("CLIENT", "LIST").decode().splitlines() if needle in line), ""
    )


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_cli_functions_rdb_dumps_the_libraries_only_as_from_redis(
    node_factory: NodeFactory, redis_servers: Callable[..., Any], tmp_path: Path
) -> None:
    """``redis-cli --functions-rdb`` (REPLCONF rdb-filter-only functions): an RDB with the function libraries
    and no key, which a node and redis-server both start on; unknown filters are refused with Redis's words."""
    library = "#!lua name=mylib\nredis.register_function('f', function() return 1 end)"
    (tmp_path / "redis").mkdir()
    server = redis_servers(tmp_path / "redis")
    node = node_factory("n")
    for port, client in ((server.port, server.client), (node.port, node.client())):
        client.function_load(library)
        client.set("k", "v")
        out = tmp_path / f"functions-{port}.rdb"
        done = subprocess.run(
            ["redis-cli", "-p", str(port), "--functions-rdb", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "Transfer finished with success" in done.stderr, done.stderr
        # The file holds the library and no key: a fresh node starts on it.
        fresh = node_factory(f"fresh-{port}", start=False)
        shutil.copy(out, fresh.dir / "dump.rdb")
        fresh.start()
        fc = fresh.client()
        assert fc.dbsize() == 0 and fc.fcall("f", 0) == 1
        fresh.stop()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"REPLCONF rdb-filter-only bogus\r\n")
            assert sock.recv(200) == b"-ERR Unsupported rdb-filter-only option: bogus\r\n"
