"""Crash durability: SIGKILL under write load, torn AOF tails, corrupt files, a crashing persistence actor.

Seeded (the ``seed`` fixture prints it), bounded in time, and checked against invariants rather than timings:
with ``appendfsync always`` every acknowledged write survives; a torn tail loads up to the tear; a damaged
file stops the node (exit 1) and stays byte-for-byte as it was.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from actors.persistence.aof.replay import iter_commands
from protocol.resp import encode_command
from tests.harness import NodeProcess, wait_for
from tests.persistence_helpers import all_types_keyspace, write_rdb

pytestmark = pytest.mark.chaos

NodeFactory = Callable[..., NodeProcess]
WRITERS = 3
INCR_FILE = "appendonly.aof.1.incr.aof"


class Writers:
    """Threads writing ``w<t>:<n> = n`` in order; each remembers when every write was acknowledged."""

    def __init__(self, node: NodeProcess, count: int = WRITERS) -> None:
        self.node = node
        self.acked: list[list[float]] = [[] for _ in range(count)]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(count)]

    def _run(self, index: int) -> None:
        client = redis.Redis(port=self.node.port, socket_timeout=5)
        acked = self.acked[index]
        try:
            while not self.stop.is_set():
                n = len(acked)
                client.set(f"w{index}:{n}", n)
                acked.append(time.monotonic())
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the node was killed under us: the last write is unacknowledged
        finally:
            client.close()

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def total(self) -> int:
        return sum(len(a) for a in self.acked)


def _missing(node: NodeProcess, writers: Writers) -> list[tuple[str, float]]:
    """Acknowledged writes absent after restart, with their acknowledgement time."""
    client = node.client()
    missing = []
    for index, acked in enumerate(writers.acked):
        keys = [f"w{index}:{n}" for n in range(len(acked))]
        for start in range(0, len(keys), 1000):
            values = client.mget(keys[start : start + 1000])
            for offset, value in enumerate(values):
                n = start + offset
                if value != str(n).encode():
                    missing.append((keys[n], acked[n]))
    return missing


def _kill_under_load(node: NodeProcess, seed: int) -> tuple[Writers, float]:
    rng = random.Random(seed)
    with Writers(node) as writers:
        wait_for(lambda: writers.total() > 200, 15, what="writes to flow")
        time.sleep(rng.uniform(0.2, 1.0))  # a seeded moment to crash at (not waiting for any state)
        node.kill()
        killed_at = time.monotonic()
    return writers, killed_at


def test_sigkill_with_appendfsync_always_loses_no_acknowledged_write(
    node_factory: NodeFactory, seed: int
) -> None:
    node = node_factory("n", appendonly="yes", appendfsync="always")
    writers, _ = _kill_under_load(node, seed)
    node.start()
    assert writers.total() > 200
    assert _missing(node, writers) == []


def test_sigkill_with_appendfsync_everysec_loses_at_most_the_last_seconds(
    node_factory: NodeFactory, seed: int
) -> None:
    node = node_factory("n", appendonly="yes", appendfsync="everysec")
    writers, killed_at = _kill_under_load(node, seed)
    node.start()
    missing = _missing(node, writers)
    # A killed process loses nothing the kernel has (the loop write()s every tick); only an OS crash could
    # lose the ~1-2 s not yet fsynced. Either way nothing older than that window may be missing.
    assert [key for key, acked_at in missing if killed_at - acked_at > 2.0] == []


def test_a_crashing_persistence_actor_loses_no_write(node_factory: NodeFactory, seed: int) -> None:
    node = node_factory("n", appendonly="yes", appendfsync="everysec")
    admin = node.client()
    with Writers(node) as writers:
        wait_for(lambda: writers.total() > 100, 15)
        assert admin.execute_command("DEBUG", "CRASH-ACTOR", "persistence") == b"OK"
        wait_for(
            lambda: admin.info("actors")["persistence"]["restarts"] == 1,
            10,
            what="the persistence actor to be restarted",
        )
        before = writers.total()
        wait_for(lambda: writers.total() > before + 100, 15, what="writes after the restart")
        assert admin.info("persistence")["aof_last_write_status"] == "ok"
    node.kill()
    node.start()
    assert _missing(node, writers) == []


def _incr_path(node: NodeProcess) -> Path:
    return node.dir / "appendonlydir" / INCR_FILE


def test_a_torn_aof_tail_loads_up_to_the_tear(node_factory: NodeFactory, seed: int) -> None:
    rng = random.Random(seed)
    node = node_factory("n", appendonly="yes")
    client = node.client()
    for i in range(50):
        client.set(f"k{i}", i)
    node.kill()
    path = _incr_path(node)
    data = path.read_bytes()
    ends = [end for _, end in iter_commands(data, 0, len(data))]
    last_start = ends[-2]
    cut = rng.randrange(last_start + 1, len(data))  # inside the last command (SET k49 49)
    path.write_bytes(data[:cut])
    node.start()
    client = node.client()
    assert client.get("k48") == b"48" and client.exists("k49") == 0
    assert path.stat().st_size == last_start
    log = node.log()
    assert "aof_truncated_tail_dropped" in log and f'"offset": {last_start}' in log
    assert f'"dropped_bytes": {cut - last_start}' in log


def test_a_multi_block_the_file_ends_inside_is_dropped(node_factory: NodeFactory) -> None:
    node = node_factory("n", appendonly="yes")
    node.client().set("before", "1")
    node.kill()
    path = _incr_path(node)
    intact = path.stat().st_size
    with path.open("ab") as fh:
        fh.write(encode_command([b"MULTI"]) + encode_command([b"SET", b"half", b"done"]))
    node.start()
    client = node.client()
    assert client.get("before") == b"1" and client.exists("half") == 0
    assert path.stat().st_size == intact
    assert "aof_incomplete_multi_reverted" in node.log()


def test_a_torn_tail_with_aof_load_truncated_no_stops_the_node(node_factory: NodeFactory, seed: int) -> None:
    rng = random.Random(seed)
    node = node_factory("n", appendonly="yes", aof_load_truncated="no")
    node.client().set("k", "v" * 100)
    node.kill()
    path = _incr_path(node)
    data = path.read_bytes()
    torn = data[: rng.randrange(len(data) - 100, len(data))]
    path.write_bytes(torn)
    node.start(wait=False)
    assert node.wait_exit() == 1
    assert path.read_bytes() == torn
    assert "Unexpected end of file reading the append only file" in node.log()


def test_damage_in_the_middle_of_the_aof_stops_the_node_and_changes_nothing(
    node_factory: NodeFactory, seed: int
) -> None:
    rng = random.Random(seed)
    node = node_factory("n", appendonly="yes")
    client = node.client()
    for i in range(20):
        client.set(f"k{i}", i)
    node.kill()
    path = _incr_path(node)
    data = bytearray(path.read_bytes())
    ends = [end for _, end in iter_commands(bytes(data), 0, len(data))]
    victim = ends[rng.randrange(3, 15)]  # the '*' of a command in the middle
    data[victim] = ord("?")
    path.write_bytes(bytes(data))
    node.start(wait=False)
    assert node.wait_exit() == 1
    assert path.read_bytes() == bytes(data)
    log = node.log()
    assert f"Bad file format reading the append only file {INCR_FILE} at offset {victim}" in log


def test_a_corrupt_rdb_stops_the_node_and_is_left_untouched(node_factory: NodeFactory, seed: int) -> None:
    rng = random.Random(seed)
    node = node_factory("n", start=False)
    write_rdb(node.dir / "dump.rdb", all_types_keyspace())
    path = node.dir / "dump.rdb"
    data = bytearray(path.read_bytes())
    position = rng.randrange(20, len(data) - 9)
    data[position] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    node.start(wait=False)
    assert node.wait_exit() == 1
    assert path.read_bytes() == bytes(data)
    assert "dataset_load_failed" in node.log() and "dump.rdb" in node.log()
