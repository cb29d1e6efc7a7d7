"""Replication between real node processes: one master and two replicas shared by the module's tests.

Tests that kill, stop or restart nodes live in test_replication_resync.py; these only write and read, so one
trio serves them all (each test leaves the trio as it found it: both replicas online).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for

# Small timeouts keep the tests bounded; a replica pings/acks every second anyway.
REPL_DIRECTIVES = {"repl_timeout": 3, "repl_ping_replica_period": 1}
READONLY = "You can't write against a read only replica."


def raw_info(port: int, section: str = "replication") -> list[tuple[str, str]]:
    """INFO <section> as (field, value) pairs in the order the node prints them (redis-py's dict loses it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"$"):
                header, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(header[1:]) + 2:
                    break
    body = data.partition(b"\r\n")[2].decode()
    pairs = []
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            pairs.append((key, value))
    return pairs


def raw_reply(port: int, *argv: str) -> bytes:
    """The raw first reply line of one command (redis-py maps some replies, e.g. SLAVEOF's, to booleans)."""
    request = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in argv)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def info(client: redis.Redis) -> dict[str, Any]:
    return client.info("replication")  # type: ignore[no-any-return]


def digest(client: redis.Redis) -> bytes:
    return client.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def wait_converged(master: redis.Redis, *replicas: redis.Redis, timeout_s: float = 15) -> None:
    def converged() -> bool:
        expected = digest(master)
        offset = info(master)["master_repl_offset"]
        return all(digest(r) == expected and info(r)["slave_repl_offset"] == offset for r in replicas)

    wait_for(converged, timeout_s, what="replicas to reach the master's digest and offset")


def online_replicas(master: redis.Redis) -> int:
    data = info(master)
    return sum(
        1
        for key, value in data.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


def has_command(client: redis.Redis, name: str) -> bool:
    return name in (client.execute_command("COMMAND", "INFO", name) or {})


class Trio:
    def __init__(self, base: Path) -> None:
        self.m = NodeProcess(base, "master", **REPL_DIRECTIVES)
        self.r1 = NodeProcess(base, "replica1", **REPL_DIRECTIVES)
        self.r2 = NodeProcess(base, "replica2", **REPL_DIRECTIVES)

    def start(self) -> None:
        for node in (self.m, self.r1, self.r2):
            node.start(wait=False)
        for node in (self.m, self.r1, self.r2):
            node.wait_ready()
        self.mc, self.c1, self.c2 = self.m.client(), self.r1.client(), self.r2.client()

    def stop(self) -> None:
        for node in (self.r2, self.r1, self.m):
            node.stop()


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    nodes = Trio(tmp_path_factory.mktemp("replication"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def replicated(trio: Trio) -> Trio:
    """The seed scenario's set-up: both replicas REPLICAOF the master, online."""
    trio.mc.set("seed", "before-sync")
    assert trio.c1.execute_command("REPLICAOF", "127.0.0.1", trio.m.port) == b"OK"
    assert trio.c2.execute_command("REPLICAOF", "127.0.0.1", trio.m.port) == b"OK"
    wait_for(lambda: online_replicas(trio.mc) == 2, 15, what="two replicas online")
    # Online on the master means the snapshot was sent; the replica's link is up once it has loaded it.
    wait_for(
        lambda: all(info(c)["master_link_status"] == "up" for c in (trio.c1, trio.c2)),
        15,
        what="both replicas' links up",
    )
    return trio


def test_seed_scenario_writes_reach_replicas_which_refuse_writes(replicated: Trio) -> None:
    t = replicated
    assert t.c1.get("seed") == b"before-sync"  # came with the full sync
    t.mc.set("greeting", "hello")
    t.mc.incr("counter")
    wait_for(
        lambda: t.c1.get("counter") == b"1" and t.c2.get("counter") == b"1",
        10,
        what="the writes on both replicas",
    )
    assert t.c1.get("greeting") == t.c2.get("greeting") == b"hello"  # written before the counter
    with pytest.raises(redis.ReadOnlyError, match=READONLY):
        t.c1.set("x", "1")
    with pytest.raises(redis.ReadOnlyError, match=READONLY):
        t.c2.incr("counter")
    data = info(t.mc)
    assert data["role"] == "master"
    assert data["connected_slaves"] == 2
    ports = sorted(data[f"slave{i}"]["port"] for i in range(2))
    assert ports == sorted([t.r1.port, t.r2.port])  # the replicas' RESP ports, as Redis shows them
    assert {data[f"slave{i}"]["state"] for i in range(2)} == {"online"}
    assert {data[f"slave{i}"]["ip"] for i in range(2)} == {"127.0.0.1"}


def test_info_replication_fields_are_redis_fields_in_redis_order(replicated: Trio) -> None:
    t = replicated
    master_fields = [key for key, _ in raw_info(t.m.port)]
    assert master_fields == [
        "role",
        "connected_slaves",
        "slave0",
        "slave1",
        "master_failover_state",
        "master_replid",
        "master_replid2",
        "master_repl_offset",
        "second_repl_offset",
        "repl_backlog_active",
        "repl_backlog_size",
        "repl_backlog_first_byte_offset",
        "repl_backlog_histlen",
    ]
    replica = dict(raw_info(t.r1.port))
    assert [key for key, _ in raw_info(t.r1.port)] == [
        "role",
        "master_host",
        "master_port",
        "master_link_status",
        "master_last_io_seconds_ago",
        "master_sync_in_progress",
        "slave_read_repl_offset",
        "slave_repl_offset",
        "slave_priority",
        "slave_read_only",
        "replica_announced",
        "connected_slaves",
        "master_failover_state",
        "master_replid",
        "master_replid2",
        "master_repl_offset",
        "second_repl_offset",
        "repl_backlog_active",
        "repl_backlog_size",
        "repl_backlog_first_byte_offset",
        "repl_backlog_histlen",
    ]
    assert replica["role"] == "slave"
    assert replica["master_host"] == "127.0.0.1"
    assert replica["master_port"] == str(t.m.port)
    assert replica["master_link_status"] == "up"
    assert replica["master_sync_in_progress"] == "0"
    assert replica["slave_read_only"] == "1"
    assert replica["repl_backlog_active"] == "1"
    master = dict(raw_info(t.m.port))
    assert replica["master_replid"] == master["master_replid"]
    assert master["master_replid2"] == "0" * 40 and master["second_repl_offset"] == "-1"
    assert master["repl_backlog_active"] == "1" and master["repl_backlog_size"] == "1048576"
    wait_converged(t.mc, t.c1, t.c2)
    slave0 = dict(item.split("=") for item in dict(raw_info(t.m.port))["slave0"].split(","))
    assert set(slave0) == {"ip", "port", "state", "offset", "lag"}


def test_role_replies_as_redis_does(replicated: Trio) -> None:
    t = replicated
    t.mc.set("role-probe", "1")
    wait_converged(t.mc, t.c1, t.c2)
    assert t.mc.execute_command("WAIT", 2, 5000) == 2
    # WAIT's REPLCONF GETACK travels in the stream (as Redis's does) and the ack it asks for counts the
    # stream before it: the replicas' next periodic acks (every second) reach the master's offset.
    offset = info(t.mc)["master_repl_offset"]
    wait_for(
        lambda: all(entry[2] == str(offset).encode() for entry in t.mc.execute_command("ROLE")[2]),
        10,
        what="both replicas' acks at the master's offset",
    )
    role, offset, replicas = t.mc.execute_command("ROLE")
    assert role == b"master"
    assert offset == info(t.mc)["master_repl_offset"]
    assert sorted(replicas) == sorted(
        [[b"127.0.0.1", str(r.port).encode(), str(offset).encode()] for r in (t.r1, t.r2)]
    )
    assert t.c1.execute_command("ROLE") == [b"slave", b"127.0.0.1", t.m.port, b"connected", offset]


def test_a_command_a_replica_cannot_run_is_logged_in_redis_s_words(replicated: Trio) -> None:
    """DEBUG REPLICATE (Redis's test hook) sends a command only the replicas run; one they refuse is logged as
    Redis logs it ("== CRITICAL == ..."), and the stream goes on."""
    trio = replicated
    assert trio.mc.execute_command("DEBUG", "REPLICATE", "fake-command-1") == b"OK"
    trio.mc.set("after-fake", "1")
    for node, client in ((trio.r1, trio.c1), (trio.r2, trio.c2)):
        wait_for(lambda c=client: c.get("after-fake") == b"1", 10, what="the stream to go on")
        wait_for(
            lambda n=node: (
                "== CRITICAL == This replica is sending an error to its master: "
                "'ERR unknown command 'fake-command-1'" in n.log()
            ),
            10,
            what="the replica's CRITICAL line",
        )
    assert trio.mc.execute_command("WAIT", 2, 5000) == 2


def test_replicaof_the_same_master_again_is_a_no_op(replicated: Trio) -> None:
    t = replicated
    assert (
        t.c1.execute_command("REPLICAOF", "127.0.0.1", t.m.port)
        == b"OK Already connected to specified master"
    )
    assert (
        raw_reply(t.r1.port, "SLAVEOF", "127.0.0.1", str(t.m.port))
        == b"+OK Already connected to specified master\r\n"
    )
    with pytest.raises(redis.ResponseError, match="^Invalid master port$"):
        t.c1.execute_command("REPLICAOF", "127.0.0.1", "port")
    with pytest.raises(redis.ResponseError, match="^Invalid master port$"):
        t.c1.execute_command("REPLICAOF", "127.0.0.1", "70000")
    assert t.mc.execute_command("REPLICAOF", "NO", "ONE") == b"OK"  # a master stays one
    assert info(t.mc)["role"] == "master"


def _random_writes(client: redis.Redis, rng: random.Random, count: int) -> None:
    """Writes of every type the node has, in several databases, some of them with expiry times."""
    types = ["string"] + [
        name
        for name, cmd in (("hash", "hset"), ("list", "rpush"), ("set", "sadd"), ("zset", "zadd"))
        if has_command(client, cmd)
    ]
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        db = rng.choice([0, 0, 0, 3, 9])
        pipe.execute_command("SELECT", db)
        key = f"k{rng.randrange(60)}"
        kind = rng.choice(types)
        if rng.random() < 0.05:
            pipe.delete(key)
        if kind == "string":
            op = rng.randrange(4)
            if op == 0:
                pipe.set(key, rng.randbytes(rng.randrange(1, 40)))
            elif op == 1:
                pipe.set(key, i, ex=rng.randrange(100, 1000))
            elif op == 2:
                # Expires during the test: the master's DEL is what removes it from the replicas.
                pipe.set(key, i, px=rng.randrange(1, 40))
            else:
                pipe.append(key, b"+")
        elif kind == "hash":
            pipe.delete(key)
            pipe.hset(key, mapping={f"f{j}": rng.randrange(1000) for j in range(rng.randrange(1, 6))})
        elif kind == "list":
            pipe.delete(key)
            pipe.rpush(key, *[rng.randrange(100) for _ in range(rng.randrange(1, 6))])
        elif kind == "set":
            pipe.delete(key)
            pipe.sadd(key, *[rng.randrange(100) for _ in range(rng.randrange(1, 6))])
        else:
            pipe.delete(key)
            pipe.zadd(key, {f"m{j}": rng.random() for j in range(rng.randrange(1, 6))})
        if rng.random() < 0.1:
            pipe.pexpire(key, rng.randrange(1, 2000))
        if rng.random() < 0.03:
            pipe.persist(key)
    pipe.execute_command("SELECT", 0)
    pipe.execute(raise_on_error=False)  # WRONGTYPE errors (APPEND to a hash, say) are part of the mix


def test_replicas_converge_by_digest_after_many_mixed_writes(replicated: Trio, seed: int) -> None:
    t = replicated
    rng = random.Random(seed)
    _random_writes(t.mc, rng, 3000)
    t.mc.execute_command("SWAPDB", 3, 9)
    wait_converged(t.mc, t.c1, t.c2)
    masters = [t.m.client(db=db) for db in (0, 3, 9)]
    replicas = [t.r1.client(db=db) for db in (0, 3, 9)]

    def sizes_at_one_offset() -> tuple[list[int], list[int]] | None:
        # Keys with millisecond TTLs keep expiring on the master (each a DEL in the stream): compare sizes only
        # across a moment when no offset moved, so a DEL landing between two DBSIZEs is not taken for a loss.
        before = info(t.mc)["master_repl_offset"]
        ours = [m.dbsize() for m in masters]
        caught_up = info(t.c1)["slave_repl_offset"] == before
        theirs = [r.dbsize() for r in replicas]
        after = info(t.mc)["master_repl_offset"]
        if not caught_up or before != after or info(t.c1)["slave_repl_offset"] != after:
            return None
        return ours, theirs

    ours, theirs = wait_for(sizes_at_one_offset, 15, what="a moment with no offset moving")
    assert ours == theirs


def test_databases_other_than_0_and_flushall_replicate(replicated: Trio) -> None:
    t = replicated
    m5, r5 = t.m.client(db=5), t.r2.client(db=5)
    m5.set("in-five", "5")
    t.mc.set("in-zero", "0")
    wait_for(
        lambda: r5.get("in-five") == b"5" and t.c2.get("in-zero") == b"0", 10, what="writes in db 5 and 0"
    )
    assert t.c2.get("in-five") is None
    m5.flushdb()
    wait_for(lambda: r5.dbsize() == 0, 10, what="FLUSHDB on db 5")
    assert t.c2.get("in-zero") == b"0"
    t.mc.flushall()
    wait_for(lambda: t.c1.dbsize() == 0 and t.c2.dbsize() == 0, 10, what="FLUSHALL on the replicas")
    wait_converged(t.mc, t.c1, t.c2)


def test_multi_exec_is_applied_on_replicas_as_a_unit(replicated: Trio) -> None:
    t = replicated
    if not has_command(t.mc, "multi"):
        pytest.skip("MULTI/EXEC is not implemented on this node yet")
    t.mc.mset({"tx-a": 0, "tx-b": 0})
    wait_for(lambda: t.c1.get("tx-b") == b"0", 10)
    stop = threading.Event()
    torn: list[tuple[bytes, bytes]] = []

    def read_pairs() -> None:
        reader = t.r1.client()
        while not stop.is_set():
            a, b = reader.mget("tx-a", "tx-b")
            if a != b:
                torn.append((a, b))

    thread = threading.Thread(target=read_pairs)
    thread.start()
    try:
        for _ in range(300):
            pipe = t.mc.pipeline(transaction=True)
            pipe.incr("tx-a")
            pipe.incr("tx-b")
            pipe.execute()
    finally:
        wait_for(lambda: t.c1.get("tx-a") == b"300", 10, what="all transactions on the replica")
        stop.set()
        thread.join(10)
    assert torn == []
    assert t.c1.get("tx-b") == b"300"


def test_expired_keys_stay_on_replicas_until_the_master_deletes_them(replicated: Trio) -> None:
    t = replicated
    t.mc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    try:
        t.mc.flushall()
        t.mc.set("short", "lived", px=150)
        wait_for(lambda: t.c1.dbsize() == 1, 10, what="the key on the replica")
        wait_for(lambda: t.c1.get("short") is None, 10, what="the key to read as expired on the replica")
        assert t.c1.dbsize() == 1  # logically expired, not deleted: a replica waits for the master's DEL
        assert t.mc.get("short") is None  # the master deletes it lazily and propagates DEL
        wait_for(
            lambda: t.c1.dbsize() == 0 and t.c2.dbsize() == 0, 10, what="the master's DEL on the replicas"
        )
    finally:
        t.mc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)


def test_wait_counts_replicas_that_acked_and_blocks_only_its_client(replicated: Trio) -> None:
    t = replicated
    t.mc.set("waited", "1")
    assert t.mc.execute_command("WAIT", 2, 5000) == 2
    assert t.mc.execute_command("WAIT", 0, 0) == 2
    other = t.m.client()
    result: list[Any] = []
    started = time.monotonic()
    waiter = threading.Thread(target=lambda: result.append(t.m.client().execute_command("WAIT", 3, 800)))
    waiter.start()
    assert other.ping() is True  # the node keeps serving while a client waits
    other.set("during-wait", "1")
    waiter.join(10)
    assert result == [2]
    assert time.monotonic() - started >= 0.75
    with pytest.raises(redis.ResponseError, match="^timeout is negative$"):
        t.mc.execute_command("WAIT", 1, -1)
    with pytest.raises(redis.ResponseError, match="^timeout is not an integer or out of range$"):
        t.mc.execute_command("WAIT", 1, "soon")
    with pytest.raises(redis.ResponseError, match="^WAIT cannot be used with replica instances"):
        t.c1.execute_command("WAIT", 1, 10)


def test_wait_waits_for_the_clients_own_last_write_only(replicated: Trio) -> None:
    """Redis's c->woff: WAIT counts the replicas that acked the client's own last write, so a client that
    wrote nothing is answered at once while a stopped replica lags behind another client's write."""
    t = replicated
    writer, idle = t.m.client(), t.m.client()
    writer.set("woff", "1")
    assert writer.execute_command("WAIT", 2, 5000) == 2
    assert t.r2.proc is not None
    os.kill(t.r2.proc.pid, signal.SIGSTOP)
    try:
        writer.set("woff", "2")
        started = time.monotonic()
        assert idle.execute_command("WAIT", 2, 5000) == 2
        assert time.monotonic() - started < 4  # answered without waiting for the stopped replica
        assert writer.execute_command("WAIT", 2, 300) == 1
    finally:
        os.kill(t.r2.proc.pid, signal.SIGCONT)
    assert writer.execute_command("WAIT", 2, 10000) == 2


def test_min_replicas_to_write_refuses_writes_without_enough_good_replicas(replicated: Trio) -> None:
    t = replicated
    t.mc.config_set("min-replicas-max-lag", 10)
    t.mc.config_set("min-replicas-to-write", 3)
    try:
        with pytest.raises(redis.ResponseError, match="^NOREPLICAS Not enough good replicas to write.$"):
            t.mc.set("refused", "1")
        assert t.mc.get("refused") is None  # reads are not refused
        assert info(t.mc)["min_slaves_good_slaves"] == 2
        t.mc.config_set("min-replicas-to-write", 2)
        assert t.mc.set("accepted", "1") is True
    finally:
        t.mc.config_set("min-replicas-to-write", 0)
    assert t.mc.set("accepted", "2") is True
    assert "min_slaves_good_slaves" not in info(t.mc)


def test_replconf_accepts_known_options_only(replicated: Trio) -> None:
    t = replicated
    assert t.mc.execute_command("REPLCONF", "listening-port", 1234) == b"OK"
    with pytest.raises(redis.ResponseError, match="^Unrecognized REPLCONF option: bogus$"):
        t.mc.execute_command("REPLCONF", "bogus", 1)
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        t.mc.execute_command("REPLCONF", "listening-port")
