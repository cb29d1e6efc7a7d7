"""The fast lane in cluster mode (issue 15 part C, contract C-11): plain GET/SET whose slot this node owns run
inline; a pipeline that mixes them with keys of another node's slot, of a MIGRATING slot (ASK / served) and of a
node whose cluster is down gets Redis's replies, byte for byte and in order. Two-master clusters of redactor nodes
and of redis-servers get the same pipelines; their replies are compared with the other node's port masked."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from protocol.slots import keyslot
from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = [pytest.mark.compat]
HALF = 8192  # node A serves slots 0..8191, node B 8192..16383


def join(a: redis.Redis, b: redis.Redis, b_port: int) -> None:
    assert a.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, HALF - 1) == b"OK"
    assert b.execute_command("CLUSTER", "ADDSLOTSRANGE", HALF, 16383) == b"OK"
    assert a.execute_command("CLUSTER", "MEET", "127.0.0.1", b_port) == b"OK"

    def both_ok() -> bool:
        return all(
            b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
            and len(c.execute_command("CLUSTER", "NODES").splitlines()) == 2
            for c in (a, b)
        )

    wait_for(both_ok, 30, interval_s=0.1, what="both nodes at cluster_state:ok, knowing each other")


def pipeline(client: redis.Redis, commands: list[tuple[Any, ...]], other_port: int) -> list[Any]:
    """One write of every command (redis-py packs a non-transactional pipeline), the replies in order, errors
    as their class and text (redis-py strips MOVED / ASK into the class) with the other node's port masked."""
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    replies = pipe.execute(raise_on_error=False)
    return [
        f"{type(r).__name__} {r}".replace(str(other_port), "PORT") if isinstance(r, Exception) else r
        for r in replies
    ]


def raw_pipeline(port: int, commands: list[tuple[Any, ...]], other_port: int) -> list[bytes]:
    """The same in one sendall on a raw socket: each reply's exact bytes (+OK, $n, $-1, -MOVED ...), with the
    other node's port masked."""
    out = b""
    for args in commands:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        out += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(out)
        reader = sock.makefile("rb")
        for _ in commands:
            line = reader.readline()
            if line.startswith(b"$") and not line.startswith(b"$-1"):
                line += reader.read(int(line[1:-2]) + 2)
            replies.append(line.replace(b":%d" % other_port, b":PORT"))
    return replies


def script(rng: random.Random) -> tuple[list[tuple[Any, ...]], list[bytes], list[bytes]]:
    """A mixed pipeline of SET/GET over keys of both halves (plus GETs of keys never written), in random order."""
    mine = [k for k in (b"k:%d" % i for i in range(200)) if keyslot(k) < HALF][:20]
    theirs = [k for k in (b"k:%d" % i for i in range(200)) if keyslot(k) >= HALF][:20]
    commands: list[tuple[Any, ...]] = []
    for _ in range(120):
        key = rng.choice(mine + theirs + [b"never:%d" % rng.randrange(4)])
        if rng.random() < 0.5:
            commands.append(("SET", key, b"v%d" % rng.randrange(1000)))
        else:
            commands.append(("GET", key))
        if rng.random() < 0.05:
            commands.append(("set", rng.choice(mine), b"lower"))  # the lane takes lower case too
    return commands, mine, theirs


def test_pipelined_get_set_mixing_owned_and_foreign_slots_match_a_redis_cluster(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    commands, mine, theirs = script(rng)
    ours_a = node_factory("a", cluster_enabled="yes", cluster_node_timeout=5000)
    ours_b = node_factory("b", cluster_enabled="yes", cluster_node_timeout=5000)
    (tmp_path / "ra").mkdir()
    (tmp_path / "rb").mkdir()
    ref_a = redis_servers(tmp_path / "ra", "--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
    ref_b = redis_servers(tmp_path / "rb", "--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
    pairs = [
        (ours_a.client(protocol=2), ours_b.client(protocol=2), ours_b.port),
        (ref_a.client, ref_b.client, ref_b.port),
    ]
    for a, b, b_port in pairs:
        join(a, b, b_port)

    # 1. Owned and foreign keys interleaved: owned ones served (inline), each foreign one a MOVED in its place.
    got, want = (pipeline(a, commands, b_port) for a, _, b_port in pairs)
    assert got == want
    assert any(isinstance(r, str) and r.startswith("MovedError") for r in got)
    assert any(r is True for r in got)  # redis-py reads SET's +OK as True
    # Byte for byte too, on a raw socket: the same pipeline again (now with the keys it wrote).
    got_raw, want_raw = (raw_pipeline(a.connection_pool.connection_kwargs["port"], commands, b_port)
                         for a, _, b_port in pairs)  # fmt: skip
    assert got_raw == want_raw
    assert b"-MOVED %d 127.0.0.1:PORT\r\n" % keyslot(theirs[0]) in got_raw or not any(
        c[1] == theirs[0] for c in commands
    )
    # The per-slot key index is kept by the lane's SETs: counts per slot and the listing agree with Redis.
    for key in mine:
        slot = keyslot(key)
        got_count, want_count = (a.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) for a, _, _ in pairs)
        assert got_count == want_count
        got_keys, want_keys = (
            sorted(a.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)) for a, _, _ in pairs
        )
        assert got_keys == want_keys
    assert pairs[0][0].dbsize() == pairs[1][0].dbsize()

    # 2. One owned slot MIGRATING to B: its existing key is served, a missing one gets ASK (GET and SET alike);
    # keys of other owned slots stay on the lane around them.
    migrating_key = mine[0]
    slot = keyslot(migrating_key)
    other = next(k for k in mine if keyslot(k) != slot)
    missing = b"{%s}missing" % migrating_key
    assert keyslot(missing) == slot
    moving = [
        ("SET", migrating_key, b"here"),
        ("GET", other),
        ("GET", missing),
        ("SET", missing, b"x"),
        ("GET", migrating_key),
        ("SET", other, b"y"),
        ("get", missing),
        ("GET", other),
    ]
    results = []
    for a, b, b_port in pairs:
        b_id = b.execute_command("CLUSTER", "MYID")
        assert a.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", b_id) == b"OK"
        results.append(pipeline(a, moving, b_port))
        assert a.execute_command("CLUSTER", "SETSLOT", slot, "STABLE") == b"OK"
    assert results[0] == results[1]
    assert results[0][2] == f"AskError {slot} 127.0.0.1:PORT"

    # 3. ASKING lets exactly the next command through on the importing node, pipelined or not.
    results = []
    for a, b, _ in pairs:
        a_id = a.execute_command("CLUSTER", "MYID")
        assert b.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", a_id) == b"OK"
        a_port = a.connection_pool.connection_kwargs["port"]
        results.append(
            pipeline(
                b,
                [("ASKING",), ("SET", missing, b"asked"), ("GET", missing), ("ASKING",), ("GET", missing)],
                a_port,
            )
        )
        assert b.execute_command("CLUSTER", "SETSLOT", slot, "STABLE") == b"OK"
    assert results[0] == results[1]
    assert results[0][1] is True and results[0][2] == f"MovedError {slot} 127.0.0.1:PORT"
