"""A redactor replica of a redis-server master over Redis's PSYNC, and live migration both ways (issue 19).

Real processes: Debian's redis-server as the master (``repl-diskless-sync-delay 0`` so its full syncs start at
once), redactor nodes started with ``replicaof`` it or told REPLICAOF. Convergence is judged by DEBUG DIGEST.
The migration test moves a live dataset from redis-server to redactor and back under a writer whose every
write is confirmed with WAIT, and checks that none of those is lost.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import redis

from tests.harness import NodeProcess, RedisServer, wait_for
from tests.integration.test_resp_replica import _fill

REDIS_MASTER_ARGS = ("--repl-diskless-sync-delay", "0")


def _digest(client: redis.Redis) -> bytes:
    return bytes(client.execute_command("DEBUG", "DIGEST"))


def _up(client: redis.Redis) -> bool:
    return client.info("replication").get("master_link_status") == "up"


def _redis_master(redis_servers: Callable[..., RedisServer], tmp_path: Path, *args: str) -> RedisServer:
    directory = tmp_path / f"redis-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    return redis_servers(directory, *REDIS_MASTER_ARGS, *args)


def test_a_redactor_replica_full_syncs_from_redis_and_applies_its_stream(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    theirs = _redis_master(redis_servers, tmp_path)
    _fill(theirs.client, rng, 2000)
    redis.Redis(port=theirs.port, db=5).set("in-db-5", "x")  # the RDB's repl-stream-db is 5
    ours = node_factory("replica", replicaof=f"127.0.0.1 {theirs.port}")
    r = ours.client()
    wait_for(lambda: _up(r) and _digest(r) == theirs.digest(), 30, what="the full sync from redis-server")
    redis.Redis(port=theirs.port, db=5).set("in-db-5", "y")
    _fill(theirs.client, rng, 300)
    theirs.client.delete("k:0:3")
    # A Redis master's WAIT sends REPLCONF GETACK * in its stream: our replica acks at once.
    assert theirs.client.wait(1, 5000) == 1
    wait_for(lambda: _digest(r) == theirs.digest(), 20, what="the stream to be applied")
    info = theirs.client.info("replication")
    assert info["slave0"]["state"] == "online"
    wait_for(
        lambda: (
            theirs.client.info("replication")["slave0"]["offset"]
            == theirs.client.info("replication")["master_repl_offset"]
        ),
        10,
        what="our replica's acks to reach the master's offset",
    )
    assert (
        r.info("replication")["master_repl_offset"] == theirs.client.info("replication")["master_repl_offset"]
    )
    assert r.get("k:0:3") is None
    assert redis.Redis(port=ours.port, db=5).get("in-db-5") == b"y"


def test_a_dropped_link_to_a_redis_master_continues_partially_then_promotes(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    theirs = _redis_master(redis_servers, tmp_path)
    _fill(theirs.client, rng, 500)
    ours = node_factory("replica", replicaof=f"127.0.0.1 {theirs.port}")
    r = ours.client()
    wait_for(lambda: _up(r) and _digest(r) == theirs.digest(), 30, what="the first sync")
    assert theirs.client.client_kill_filter(_type="replica") == 1
    _fill(theirs.client, rng, 200)
    wait_for(lambda: _up(r) and _digest(r) == theirs.digest(), 20, what="the link to come back")
    stats = theirs.client.info("stats")
    assert stats["sync_partial_ok"] == 1, stats
    assert stats["sync_full"] == 1, stats
    # REPLICAOF NO ONE: the data stays, writes are taken.
    before = r.dbsize()
    assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    r.set("mine-now", "1")
    assert r.dbsize() == before + 1
    assert r.info("replication")["role"] == "master"


def test_a_redis_master_with_a_password(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    theirs = _redis_master(redis_servers, tmp_path)
    theirs.client.config_set("requirepass", "s3cret")
    client = redis.Redis(port=theirs.port, password="s3cret")
    _fill(client, rng, 300)
    ours = node_factory("replica", masterauth="s3cret", replicaof=f"127.0.0.1 {theirs.port}")
    r = ours.client()
    wait_for(lambda: _up(r) and _digest(r) == _digest(client), 30, what="the authenticated sync")
    assert client.wait(1, 5000) == 1


def test_live_migration_from_redis_to_redactor_and_back_loses_no_confirmed_write(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    source = _redis_master(redis_servers, tmp_path)
    _fill(source.client, rng, 1000)
    confirmed: list[str] = []

    def write_until(stop: threading.Event, target: redis.Redis, prefix: str) -> None:
        """A writer: every write confirmed by one replica (WAIT) is recorded as promised."""
        i = 0
        while not stop.is_set():
            key = f"{prefix}:{i}"
            target.set(key, i)
            if target.wait(1, 2000) >= 1:
                confirmed.append(key)
            i += 1

    # 1. redis-server -> redactor, under a writer.
    ours = node_factory("ours", replicaof=f"127.0.0.1 {source.port}")
    r = ours.client()
    stop = threading.Event()
    writer = threading.Thread(target=write_until, args=(stop, source.client, "to-redactor"))
    writer.start()
    try:
        wait_for(lambda: _up(r), 30, what="redactor to follow redis-server")
        wait_for(lambda: len(confirmed) >= 50, 30, what="confirmed writes through the first migration")
    finally:
        stop.set()
        writer.join(30)
    wait_for(lambda: _digest(r) == source.digest(), 20, what="redactor to catch up before the switch")
    assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"

    # 2. redactor -> a new redis-server, under a writer on redactor.
    back = _redis_master(redis_servers, tmp_path)
    back.client.replicaof("127.0.0.1", ours.port)
    stop = threading.Event()
    writer = threading.Thread(target=write_until, args=(stop, r, "to-redis"))
    writer.start()
    try:
        wait_for(lambda: _up(back.client), 30, what="redis-server to follow redactor")
        wait_for(
            lambda: sum(k.startswith("to-redis") for k in confirmed) >= 50,
            30,
            what="confirmed writes on redactor",
        )
    finally:
        stop.set()
        writer.join(30)
    wait_for(lambda: _digest(r) == back.digest(), 20, what="redis-server to catch up")
    back.client.replicaof("no", "one")
    missing = [key for key in confirmed if back.client.get(key) is None]
    assert not missing, f"{len(missing)} confirmed writes lost, e.g. {missing[:5]}"


def test_a_promoted_redis_master_continues_with_a_new_replication_id(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    """PSYNC2: redis R0 -> redis R1 -> redactor. R1 is promoted (new replid; it drops its replicas); ours
    asks to continue R1's old history and gets ``+CONTINUE <new id>``: a partial resync, no full one."""
    rng = random.Random(seed)
    r0 = _redis_master(redis_servers, tmp_path)
    _fill(r0.client, rng, 300)
    r1 = _redis_master(redis_servers, tmp_path, "--replicaof", "127.0.0.1", str(r0.port))
    wait_for(lambda: _up(r1.client) and r1.digest() == r0.digest(), 30, what="R1 to follow R0")
    ours = node_factory("ours", replicaof=f"127.0.0.1 {r1.port}")
    r = ours.client()
    wait_for(lambda: _up(r) and _digest(r) == r1.digest(), 30, what="ours to follow R1")
    r1.client.replicaof("no", "one")
    new_id = r1.client.info("replication")["master_replid"]
    r1.client.set("after-promotion", "1")
    wait_for(lambda: r.get("after-promotion") == b"1", 20, what="ours to follow the promoted R1")
    assert r.info("replication")["master_replid"] == new_id
    assert r1.client.info("stats")["sync_partial_ok"] >= 1
    assert r1.client.info("stats")["sync_full"] == 1  # only ours' first sync
    assert _digest(r) == r1.digest()
