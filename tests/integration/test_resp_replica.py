"""A redis-server replica of a redactor master, over Redis's own PSYNC (issue 19, the way back from redactor).

Real processes: a redactor node, a Debian redis-server started with ``--replicaof`` it (or told REPLICAOF),
raw sockets for the protocol forms a redis-server replica does not use (SYNC, a PSYNC without ``capa eof``).
Convergence is judged by DEBUG DIGEST, which both compute the same way.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.harness import NodeProcess, RedisServer, wait_for


def _fill(r: redis.Redis, rng: random.Random, count: int) -> None:
    """A mix of every type, so the snapshot and the stream carry each encoding."""
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        kind = rng.randrange(6)
        key = f"k:{kind}:{i}"
        if kind == 0:
            pipe.set(key, rng.randbytes(rng.randrange(1, 64)))
        elif kind == 1:
            pipe.rpush(key, *[str(rng.random()) for _ in range(rng.randrange(1, 8))])
        elif kind == 2:
            pipe.hset(key, mapping={f"f{j}": j for j in range(rng.randrange(1, 8))})
        elif kind == 3:
            pipe.zadd(key, {f"m{j}": rng.random() for j in range(rng.randrange(1, 8))})
        elif kind == 4:
            pipe.sadd(key, *[str(rng.randrange(1000)) for _ in range(rng.randrange(1, 8))])
        else:
            pipe.xadd(key, {"a": str(i)})
        if rng.random() < 0.1:
            pipe.expire(key, 1000)
    pipe.execute()


def _digest(client: redis.Redis) -> bytes:
    return bytes(client.execute_command("DEBUG", "DIGEST"))


def _link_up(replica: RedisServer) -> bool:
    return replica.client.info("replication").get("master_link_status") == "up"


def _converged(master: redis.Redis, replica: RedisServer) -> bool:
    return _link_up(replica) and _digest(master) == replica.digest()


def _start_replica(
    redis_servers: Callable[..., RedisServer], tmp_path: Path, master: NodeProcess, *args: str
) -> RedisServer:
    directory = tmp_path / f"redis-replica-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    return redis_servers(directory, "--replicaof", "127.0.0.1", str(master.port), *args)


def test_a_redis_server_replica_full_syncs_then_follows_the_stream(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    master = node_factory("master")
    r = master.client()
    _fill(r, rng, 2000)
    r3 = master.client(db=3)
    r3.set("in-db-3", "yes")  # the stream has db 3 selected at the snapshot (repl-stream-db)
    replica = _start_replica(redis_servers, tmp_path, master)
    wait_for(lambda: _converged(r, replica), 30, what="the redis-server replica to load the snapshot")
    assert replica.client.dbsize() == r.dbsize()

    # The stream: writes after the sync, in several databases, with WAIT counting the Redis replica.
    r3.set("in-db-3", "still")
    _fill(r, rng, 300)
    r.delete("k:0:1", "k:1:2")
    r.incrbyfloat("float", 1.5)
    assert r.wait(1, 5000) == 1
    wait_for(lambda: _converged(r, replica), 20, what="the replica to apply the stream")
    info = r.info("replication")
    assert info["connected_slaves"] == 1
    assert info["slave0"]["state"] == "online"
    assert info["slave0"]["port"] == replica.port
    # Offsets agree: the replica reports what the master counts (acks come once a second).
    wait_for(
        lambda: r.info("replication")["slave0"]["offset"] == r.info("replication")["master_repl_offset"],
        10,
        what="the replica's ack to reach the master's offset",
    )
    assert replica.client.info("replication")["master_repl_offset"] == info["master_repl_offset"]
    assert r.info("stats")["sync_full"] == 1


def test_a_dropped_link_continues_with_a_partial_resync(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    master = node_factory("master")
    r = master.client()
    _fill(r, rng, 500)
    replica = _start_replica(redis_servers, tmp_path, master)
    wait_for(lambda: _converged(r, replica), 30, what="the first sync")
    assert replica.client.client_kill_filter(_type="master") == 1
    _fill(r, rng, 200)  # written while the link is down or coming back
    wait_for(lambda: _converged(r, replica), 20, what="the replica to catch up after the drop")
    stats = r.info("stats")
    assert stats["sync_partial_ok"] == 1, stats
    assert stats["sync_full"] == 1, stats
    assert r.wait(1, 5000) == 1


def test_client_kill_type_replica_drops_every_replica_and_they_resync_partially(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    """CLIENT KILL TYPE replica (or slave) closes every replica's link, as in Redis (a node's replicas are not
    the loop's clients: the replication actor holds them), counts them, and they come back partially."""
    rng = random.Random(seed)
    master = node_factory("master")
    ours = node_factory("replica", replicaof=f"127.0.0.1 {master.port}")
    r = master.client()
    _fill(r, rng, 200)
    theirs = _start_replica(redis_servers, tmp_path, master)
    wait_for(lambda: _converged(r, theirs), 30, what="the first sync")
    wait_for(lambda: r.info("replication")["connected_slaves"] == 2, 10, what="both replicas")
    assert r.client_kill_filter(_type="slave") == 2
    _fill(r, rng, 100)
    wait_for(lambda: _converged(r, theirs), 20, what="the redis-server replica to come back")
    wait_for(lambda: _digest(ours.client()) == _digest(r), 20, what="the node replica to come back")
    stats = r.info("stats")
    assert stats["sync_partial_ok"] == 2 and stats["sync_full"] == 2, stats
    assert r.client_kill_filter(_type="replica", skipme=True) == 2


def test_pings_in_the_stream_keep_offsets_equal_with_a_bus_replica_beside(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    master = node_factory("master", repl_ping_replica_period=1)
    r = master.client()
    r.set("a", "1")
    theirs = _start_replica(redis_servers, tmp_path, master)
    ours = node_factory("ours", replicaof=f"127.0.0.1 {master.port}")
    ours_r = ours.client()
    wait_for(lambda: _converged(r, theirs), 30, what="the Redis replica's sync")
    wait_for(lambda: ours_r.info("replication").get("master_link_status") == "up", 30, what="our replica")
    start = r.info("replication")["master_repl_offset"]
    # No writes: the master's PINGs alone move the offset, on every replica alike.
    wait_for(
        lambda: r.info("replication")["master_repl_offset"] >= start + 2 * len(b"*1\r\n$4\r\nPING\r\n"),
        10,
        what="two heartbeat PINGs in the stream",
    )
    r.set("b", "2")
    assert r.wait(2, 5000) == 2
    end = r.info("replication")["master_repl_offset"]

    def all_at_end() -> bool:
        return (
            theirs.client.info("replication")["master_repl_offset"] >= end
            and ours_r.info("replication")["master_repl_offset"] >= end
        )

    wait_for(all_at_end, 10, what="both replicas to reach the master's offset")
    assert _digest(r) == theirs.digest() == _digest(ours_r)
    # The PINGs are for the replicas: the master's own AOF-free stream did not change its data.
    assert r.dbsize() == 2


def test_a_master_restarted_from_its_aof_resyncs_its_redis_replica(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    master = node_factory("master", appendonly="yes", appendfsync="always")
    r = master.client()
    _fill(r, rng, 300)
    replica = _start_replica(redis_servers, tmp_path, master)
    wait_for(lambda: _converged(r, replica), 30, what="the first sync")
    master.stop()
    master.start()
    r = master.client()
    _fill(r, rng, 100)
    wait_for(lambda: _converged(r, replica), 30, what="the replica to resync with the restarted master")


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed; had {bytes(buf)!r}")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def _read_exact(sock: socket.socket, buf: bytearray, size: int) -> bytes:
    while len(buf) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside the payload")
        buf += chunk
    data = bytes(buf[:size])
    buf[:] = buf[size:]
    return data


def _command(sock: socket.socket, *args: bytes) -> None:
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))


def test_sync_and_a_psync_without_capa_eof_get_a_sized_snapshot_then_the_stream(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master")
    r = master.client()
    r.set("x", "1")
    for old_protocol in (True, False):
        with socket.create_connection(("127.0.0.1", master.port), timeout=10) as sock:
            buf = bytearray()
            _command(sock, b"REPLCONF", b"listening-port", b"1")
            assert _read_line(sock, buf) == b"+OK"
            if old_protocol:
                _command(sock, b"SYNC")
            else:
                _command(sock, b"PSYNC", b"?", b"-1")
                # Keep-alive newlines may come first, as from Redis (a replica skips them).
                line = _read_line(sock, buf).lstrip(b"\n")
                assert line.startswith(b"+FULLRESYNC "), line
            header = _read_line(sock, buf).lstrip(b"\n")
            assert header.startswith(b"$") and not header.startswith(b"$EOF:"), header
            payload = _read_exact(sock, buf, int(header[1:]))
            assert payload.startswith(b"REDIS") and b"x" in payload
            r.set("after", "snapshot")
            expected = b"*3\r\n$3\r\nset\r\n$5\r\nafter\r\n$8\r\nsnapshot\r\n"

            def streamed(
                buf: bytearray = buf, sock: socket.socket = sock, expected: bytes = expected
            ) -> bool:
                buf += sock.recv(65536)
                return expected in bytes(buf).lower()

            wait_for(streamed, 10, what="the write to arrive on the replication stream")


def _first_streamed_commands(port: int, writes: int) -> list[bytes]:
    """SYNC on a raw socket, skip the snapshot, make ``writes`` writes: the stream's bytes up to the last."""
    r = redis.Redis(port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buf = bytearray()
        _command(sock, b"SYNC")
        header = _read_line(sock, buf).lstrip(b"\n")
        _read_exact(sock, buf, int(header[1:]))
        for i in range(writes):
            r.set(f"w{i}", "v")
        last = b"$2\r\nw%d\r\n$1\r\nv\r\n" % (writes - 1)

        def streamed() -> bool:
            if last not in buf:
                buf.extend(sock.recv(65536))
            return last in buf

        wait_for(streamed, 10, what="the writes to arrive on the replication stream")
    r.close()
    return bytes(buf).lower().split(b"*")[1:]


def test_every_full_sync_selects_the_database_before_the_first_write_as_redis(
    node_factory: Callable[..., NodeProcess], redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    node = node_factory("master")
    reference = redis_servers(tmp_path)
    for port in (node.port, reference.port):
        # The second SYNC comes after the stream already selected database 0 for the first one: as Redis
        # (replicationSetupSlaveForFullResync), it still starts with a SELECT.
        for _ in range(2):
            commands = _first_streamed_commands(port, 2)
            assert commands == [
                b"2\r\n$6\r\nselect\r\n$1\r\n0\r\n",
                *[b"3\r\n$3\r\nset\r\n$2\r\nw%d\r\n$1\r\nv\r\n" % i for i in range(2)],
            ], port


def test_psync_is_refused_on_a_replica_without_its_master_link(
    node_factory: Callable[..., NodeProcess],
) -> None:
    lonely = node_factory("lonely", replicaof="127.0.0.1 1")  # nothing listens there
    with socket.create_connection(("127.0.0.1", lonely.port), timeout=10) as sock:
        buf = bytearray()
        _command(sock, b"PSYNC", b"?", b"-1")
        assert _read_line(sock, buf) == b"-NOMASTERLINK Can't SYNC while not connected with my master"


def test_a_redis_server_told_replicaof_a_redactor_node_converges_and_promotes(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    master = node_factory("master")
    r = master.client()
    _fill(r, rng, 500)
    directory = tmp_path / "standalone"
    directory.mkdir()
    theirs = redis_servers(directory)
    theirs.client.set("only-on-theirs", "gone after the sync")
    theirs.client.replicaof("127.0.0.1", master.port)
    wait_for(lambda: _converged(r, theirs), 30, what="REPLICAOF to converge")
    assert theirs.client.exists("only-on-theirs") == 0
    theirs.client.replicaof("no", "one")
    theirs.client.set("written-after-promotion", "1")
    assert theirs.client.dbsize() == r.dbsize() + 1
    info: Any = theirs.client.info("replication")
    assert info["role"] == "master"


def test_a_hostile_replica_is_dropped_and_the_node_stays_responsive(
    node_factory: Callable[..., NodeProcess],
) -> None:
    master = node_factory("master")
    r = master.client()
    r.set("x", "1")
    with socket.create_connection(("127.0.0.1", master.port), timeout=10) as sock:
        _command(sock, b"PSYNC", b"?", b"-1")
        wait_for(lambda: r.info("replication")["connected_slaves"] == 1, 10, what="the replica to attach")
        try:
            sock.sendall(b"x" * (2 * 1024 * 1024))  # no command end: more than a replica may send unread
        except OSError:
            pass  # the node may already have closed it
        wait_for(lambda: r.info("replication")["connected_slaves"] == 0, 10, what="the replica to be dropped")
    assert r.get("x") == b"1"
    assert "link_lost" in master.log()


def test_a_sync_reader_sees_select_first_and_no_script_flush(
    node_factory: Callable[..., NodeProcess],
) -> None:
    """As Redis: after a full sync the stream names its database before the first write, even for a second
    reader of a backlog that had selected it already (Redis's Tcl tests attach this way), and SCRIPT FLUSH is
    not propagated (scripts replicate by effects)."""
    master = node_factory("master")
    r = master.client()
    for reader in range(2):
        with socket.create_connection(("127.0.0.1", master.port), timeout=10) as sock:
            buf = bytearray()
            _command(sock, b"SYNC")
            header = _read_line(sock, buf).lstrip(b"\n")
            _read_exact(sock, buf, int(header[1:]))
            r.script_load("return 1")
            r.script_flush()
            r.set(f"after{reader}", "2")
            key = b"after%d" % reader
            expected = (
                b"*2\r\n$6\r\nselect\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$6\r\n" + key + b"\r\n$1\r\n2\r\n"
            )

            def streamed(buf: bytearray = buf, sock: socket.socket = sock, key: bytes = key) -> bool:
                buf.extend(sock.recv(65536))
                return key in bytes(buf)

            wait_for(streamed, 10, what="the write to arrive on the replication stream")
            assert bytes(buf).lower().lstrip(b"\n") == expected, reader
