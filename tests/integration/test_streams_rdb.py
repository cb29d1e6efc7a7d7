"""Streams in RDB and AOF form, against redis-server 7.0: its DUMP payloads and dump files load into redactor
with every XINFO STREAM FULL field equal (delivery and seen times are stored absolute, so they match too), and
ours load into redis-server (RESTORE, DEBUG RELOAD of a file we saved, redis-check-rdb) with equal digests;
an AOF rewrite in command form emits the commands redis-server's rewriteStreamObject emits, and replays to
the state redis-server replays its own to.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.test_streams import call

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def _script(rng: random.Random) -> list[list[Any]]:
    """Commands building two streams with tombstones, trims, groups, consumers and pending entries."""
    out: list[list[Any]] = []
    for key in ("s1", "s2"):
        ms = 1
        for _ in range(rng.randint(150, 350)):
            ms += rng.choice([0, 1, 3])
            fields = ["f", str(rng.randint(0, 999)), "g", "x" * rng.randint(0, 40)]
            if rng.random() < 0.3:
                fields = ["other", "v"] + fields
            out.append(["XADD", key, f"{ms}-*"] + fields)
            if rng.random() < 0.1:
                out.append(["XDEL", key, f"{rng.randint(1, ms)}-0"])
        out.append(["XTRIM", key, "MAXLEN", "~", rng.randint(50, 150)])
        out.append(["XGROUP", "CREATE", key, "g1", "0"])
        out.append(["XGROUP", "CREATE", key, "g2", "$"])
        out.append(["XGROUP", "CREATE", key, "g3", f"{ms // 2}-0", "ENTRIESREAD", "3"])
        for consumer in ("alice", "bob", "carol"):
            out.append(
                ["XREADGROUP", "GROUP", "g1", consumer, "COUNT", rng.randint(1, 30), "STREAMS", key, ">"]
            )
        out.append(["XREADGROUP", "GROUP", "g3", "dave", "NOACK", "COUNT", 5, "STREAMS", key, ">"])
        out.append(["XGROUP", "CREATECONSUMER", key, "g2", "idle"])
        out.append(["XACK", key, "g1"] + [f"{rng.randint(1, ms)}-0" for _ in range(10)])
        out.append(["XDEL", key] + [f"{rng.randint(1, ms)}-0" for _ in range(10)])
    out.append(["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"])
    return out


def _run(client: redis.Redis, commands: list[list[Any]]) -> None:
    for args in commands:
        reply = call(client, *args)
        assert not (isinstance(reply, str) and reply.startswith("error")), (args, reply)


def test_redis_payloads_and_files_load_into_redactor(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    server = redis_servers(tmp_path)
    theirs = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
    ours = node.client(protocol=2)
    ours.flushall()
    _run(theirs, _script(random.Random(seed)))
    for key in ("s1", "s2", "empty"):
        payload = theirs.dump(key)
        assert ours.restore(key, 0, payload)
        want = call(theirs, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
        assert call(ours, "XINFO", "STREAM", key, "FULL", "COUNT", "0") == want, key
        assert call(ours, "XINFO", "GROUPS", key) == call(theirs, "XINFO", "GROUPS", key)
    assert call(ours, "DEBUG", "DIGEST") == call(theirs, "DEBUG", "DIGEST")
    # The same data through a whole dump file: redis-server saves, a node starts from it.
    assert theirs.save()
    started = NodeProcess(tmp_path, "from-redis")
    shutil.copy(tmp_path / "dump.rdb", started.dir / "dump.rdb")
    started.start()
    try:
        loaded = started.client(protocol=2)
        assert call(loaded, "DEBUG", "DIGEST") == call(theirs, "DEBUG", "DIGEST")
        for key in ("s1", "s2", "empty"):
            want = call(theirs, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
            assert call(loaded, "XINFO", "STREAM", key, "FULL", "COUNT", "0") == want, key
        # Appends after loading land in the nodes Redis had: the same ~ trimming as redis-server's.
        for client in (loaded, theirs):
            for i in range(150):
                client.execute_command("XADD", "s1", "MAXLEN", "~", "120", f"{10**6 + i}-1", "f", "1")
        assert loaded.xlen("s1") == theirs.xlen("s1")
    finally:
        started.stop()


def test_redactor_payloads_and_files_load_into_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    server = redis_servers(tmp_path)
    theirs = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
    ours = node.client(protocol=2)
    ours.flushall()
    _run(ours, _script(random.Random(seed)))
    for key in ("s1", "s2", "empty"):
        assert theirs.restore(key, 0, ours.dump(key))
        want = call(ours, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
        got = call(theirs, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
        # Tombstones are not kept in memory, so Redis sees fewer deleted slots in its nodes: same content.
        assert got[:2] == want[:2] and got[6:] == want[6:], key
    assert call(theirs, "DEBUG", "DIGEST") == call(ours, "DEBUG", "DIGEST")
    assert ours.save()
    dump = node.dir / "dump.rdb"
    wait_for(dump.exists, 10, what="the node's dump file")
    result = subprocess.run(["redis-check-rdb", str(dump)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "RDB looks OK" in result.stdout, result.stdout + result.stderr
    shutil.copy(dump, tmp_path / "dump.rdb")
    assert theirs.execute_command("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert call(theirs, "DEBUG", "DIGEST") == call(ours, "DEBUG", "DIGEST")
    for key in ("s1", "s2", "empty"):
        assert call(theirs, "XINFO", "GROUPS", key) == call(ours, "XINFO", "GROUPS", key)


def _base_commands(directory: Path) -> dict[bytes, list[list[bytes]]]:
    """The commands of an AOF base file in command form, per key, with XCLAIM's TIME value blanked."""
    from actors.persistence.aof.replay import iter_commands

    (base,) = sorted(directory.glob("appendonlydir/*.base.aof"))
    data = base.read_bytes()
    per_key: dict[bytes, list[list[bytes]]] = {}
    for argv, _ in iter_commands(data, 0, len(data)):
        argv = list(argv)
        if argv[0].upper() == b"SELECT":
            continue
        key = argv[2] if argv[0].upper() == b"XGROUP" else argv[1]
        if argv[0].upper() == b"XCLAIM":
            argv[7] = b"<time>"
        per_key.setdefault(key, []).append(argv)
    return per_key


def test_aof_rewrite_emits_what_redis_emits_and_replays(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    (tmp_path / "redis").mkdir()
    server = redis_servers(tmp_path / "redis", "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    theirs = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
    node = node_factory("aof", appendonly="yes", aof_use_rdb_preamble="no")
    ours = node.client(protocol=2)
    script = _script(random.Random(seed))
    _run(theirs, script)
    _run(ours, script)
    digest = call(ours, "DEBUG", "DIGEST")
    assert digest == call(theirs, "DEBUG", "DIGEST")
    for client in (theirs, ours):
        client.bgrewriteaof()
    wait_for(lambda: theirs.info("persistence")["aof_rewrite_in_progress"] == 0, 30, what="redis's rewrite")
    wait_for(lambda: ours.info("persistence")["aof_rewrite_in_progress"] == 0, 30, what="our rewrite")
    wait_for(lambda: len(list((node.dir / "appendonlydir").glob("*.base.aof"))) == 1, 30, what="our base")
    assert _base_commands(node.dir) == _base_commands(tmp_path / "redis")
    node.stop()
    node.start()
    ours = node.client(protocol=2)
    assert call(ours, "DEBUG", "DIGEST") == digest
    assert theirs.execute_command("DEBUG", "LOADAOF") == b"OK"
    for key in ("s1", "s2", "empty"):
        want = call(theirs, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
        got = call(ours, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
        # Both replays re-create the nodes without tombstones and drop pending entries whose entry was
        # deleted (XCLAIM skips them); the clocks differ between the servers, so times are blanked.
        assert got[:16] == want[:16] and _without_times(got[17]) == _without_times(want[17]), key


def _without_times(groups: Any) -> Any:
    out = []
    for group in groups:
        group = list(group)
        group[11] = [entry[:2] + ["<time>"] + entry[3:] for entry in group[11]]
        consumers = []
        for consumer in group[13]:
            consumer = list(consumer)
            consumer[3] = "<seen>"
            consumer[7] = [entry[:1] + ["<time>"] + entry[2:] for entry in consumer[7]]
            consumers.append(consumer)
        group[13] = consumers
        out.append(group)
    return out
