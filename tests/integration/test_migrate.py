"""MIGRATE does not hold the node while its target is slow or dead: the exchange runs on the loop (asyncio RESP
client), only the client that sent MIGRATE waits, and a target that never answers gets Redis's IOERR reply
after the timeout; a live target (a redis-server) gets the key, which leaves the source."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = [pytest.mark.compat]

TIMEOUT_MS = 3000


def _migrate_reply(port: int, target_port: int, key: str) -> tuple[str, float]:
    with redis.Redis(port=port, socket_timeout=30) as client:
        started = time.monotonic()
        try:
            reply = str(client.execute_command("MIGRATE", "127.0.0.1", target_port, key, 0, TIMEOUT_MS))
        except redis.ResponseError as exc:
            reply = f"ERR-REPLY: {exc}"
        return reply, time.monotonic() - started


def test_migrate_to_a_silent_target_blocks_only_its_client_and_times_out_as_redis(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
) -> None:
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    reference = redis_servers(ref_dir)
    node = node_factory("m")
    with socket.socket() as silent:  # accepts connections (the backlog does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        silent_port = silent.getsockname()[1]
        replies: dict[str, tuple[str, float]] = {}
        for label, port in (("redactor", node.port), ("redis", reference.port)):
            with redis.Redis(port=port, socket_timeout=10) as other:
                other.set("k", "v")
                result: list[tuple[str, float]] = []
                thread = threading.Thread(
                    target=lambda p=port, out=result: out.append(_migrate_reply(p, silent_port, "k")),
                    daemon=True,
                )
                thread.start()
                if label == "redactor":
                    # While MIGRATE waits on the silent target, other clients are served at once.
                    wait_for(
                        lambda: any(c["cmd"] == "migrate" for c in other.client_list()),
                        10,
                        what="MIGRATE to be waiting",
                    )
                    for i in range(20):
                        assert other.set(f"other:{i}", i)
                        assert other.get("k") == b"v"
                    assert not result, "MIGRATE returned before its timeout"
                thread.join(30)
                assert result, f"{label}: MIGRATE never returned"
                replies[label] = result[0]
                assert other.get("k") == b"v"  # nothing moved
    assert replies["redis"][0] == "ERR-REPLY: IOERR error or timeout reading to target instance"
    assert replies["redactor"][0] == replies["redis"][0], replies
    assert replies["redactor"][1] >= TIMEOUT_MS / 1000 * 0.9, replies

    # A live target: the key moves and leaves the source (its DEL is what a replica would see).
    with redis.Redis(port=node.port) as source, redis.Redis(port=reference.port) as target:
        target.delete("k")
        source.set("k", "moved", px=100_000)
        source.set("k2", "copied")
        assert source.execute_command("MIGRATE", "127.0.0.1", reference.port, "k", 0, TIMEOUT_MS) in (
            b"OK",
            True,
        )
        assert source.get("k") is None and target.get("k") == b"moved" and 0 < target.pttl("k") <= 100_000
        assert source.execute_command(
            "MIGRATE", "127.0.0.1", reference.port, "", 0, TIMEOUT_MS, "COPY", "KEYS", "k2", "nokey"
        ) in (b"OK", True)
        assert source.get("k2") == b"copied" and target.get("k2") == b"copied"
        assert source.execute_command("MIGRATE", "127.0.0.1", reference.port, "nokey", 0, TIMEOUT_MS) in (
            b"NOKEY",
            "NOKEY",
        )
        with pytest.raises(redis.ResponseError, match="BUSYKEY"):
            source.execute_command("MIGRATE", "127.0.0.1", reference.port, "k2", 0, TIMEOUT_MS)
        assert source.get("k2") == b"copied"

    # The connection to a target is kept for the next MIGRATE (Redis's cached migrate sockets), SELECT follows
    # the database asked for, and a kept connection the target closed meanwhile is replaced without an error.
    with (
        redis.Redis(port=node.port) as source,
        redis.Redis(port=reference.port) as target,
        redis.Redis(port=reference.port, db=1) as target_db1,
    ):
        before = target.info("stats")["total_connections_received"]
        for i in range(6):
            source.set(f"c{i}", i)
            reply = source.execute_command("MIGRATE", "127.0.0.1", reference.port, f"c{i}", i % 2, TIMEOUT_MS)
            assert reply in (b"OK", True)
        assert target.info("stats")["total_connections_received"] - before <= 1
        assert [target.get(f"c{i}") for i in range(0, 6, 2)] == [b"0", b"2", b"4"]
        assert [target_db1.get(f"c{i}") for i in range(1, 6, 2)] == [b"1", b"3", b"5"]
        target.client_kill_filter(_type="normal", skipme=True)  # the kept connection goes too
        source.set("c6", 6)
        assert source.execute_command("MIGRATE", "127.0.0.1", reference.port, "c6", 0, TIMEOUT_MS) in (
            b"OK",
            True,
        )
        assert target.get("c6") == b"6"
