"""Replies issue #16 found wrong, each compared with a real redis-server: SWAPDB and blocked clients, WATCH
with SMOVE and with SWAPDB of expired keys, a negative multibulk count, RESET after MONITOR, GEOPOS in RESP3,
OBJECT ENCODING under the *-max-listpack-* / set-max-intset-entries limits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, wait_for

pytestmark = pytest.mark.compat


def _conversation(port: int, steps: list[bytes], settle_s: float = 0.0) -> list[bytes]:
    """Send each step on one connection and collect what came back after each (until the socket is idle)."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for step in steps:
            sock.sendall(step)
            sock.settimeout(0.3 + settle_s)
            got = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    sock.settimeout(0.15)
            except TimeoutError:
                pass
            replies.append(got)
    return replies


@pytest.fixture
def pair(node: NodeProcess, redis_servers: Any, tmp_path: Path) -> tuple[int, int]:
    reference = redis_servers(tmp_path)
    return node.port, reference.port


def _both(pair: tuple[int, int], run: Callable[[redis.Redis], Any]) -> None:
    ours, theirs = (redis.Redis(port=p, socket_timeout=10, protocol=2) for p in pair)
    try:
        got, want = run(ours), run(theirs)
        assert got == want
    finally:
        ours.close()
        theirs.close()


def test_swapdb_wakes_a_client_blocked_on_a_swapped_key(pair: tuple[int, int]) -> None:
    def run(r: redis.Redis) -> Any:
        r.flushall()
        r.select(1)
        r.rpush("k", "v")
        results: list[Any] = []
        blocked = redis.Redis(port=r.connection_pool.connection_kwargs["port"], socket_timeout=10, protocol=2)
        waiter = threading.Thread(target=lambda: results.append(blocked.brpop("k", 5)))
        waiter.start()
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, 10, what="the client to block")
        started = time.monotonic()
        r.swapdb(0, 1)
        waiter.join(10)
        blocked.close()
        assert time.monotonic() - started < 3, "woken by SWAPDB, not by its timeout"
        return results

    _both(pair, run)


def test_watch_then_smove_of_a_member_already_in_the_destination_keeps_exec(pair: tuple[int, int]) -> None:
    def run(r: redis.Redis) -> Any:
        r.flushall()
        r.sadd("src", "a", "b")
        r.sadd("dst", "a")
        with r.pipeline() as pipe:
            pipe.watch("dst")
            r.smove("src", "dst", "a")
            pipe.multi()
            pipe.ping()
            try:
                return pipe.execute()
            except redis.WatchError:
                return "aborted"

    _both(pair, run)


@pytest.mark.parametrize("case", ["stale-to-none", "none-to-stale", "stale-to-stale", "live-to-none"])
def test_swapdb_of_expired_keys_touches_watch_as_redis_does(pair: tuple[int, int], case: str) -> None:
    results = []
    for port in pair:
        r = redis.Redis(port=port, socket_timeout=10, protocol=2, single_connection_client=True)
        try:
            r.flushall()
            r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            for db, mode in ((1, case.split("-to-")[0]), (0, case.split("-to-")[1])):
                r.execute_command("SELECT", db)
                if mode == "stale":
                    r.set("x", "foo", px=1)
                elif mode == "live":
                    r.set("x", "foo")
            time.sleep(0.01)  # the keys set with px=1 expire (no state to wait on: time itself)
            r.execute_command("SELECT", 1)
            r.execute_command("WATCH", "x")
            r.execute_command("SWAPDB", 0, 1)
            r.execute_command("MULTI")
            r.execute_command("PING")
            results.append(r.execute_command("EXEC"))
        finally:
            r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            r.close()
    assert results[0] == results[1]
    assert (results[1] is None) == (case == "live-to-none")


def test_a_negative_multibulk_count_is_skipped(pair: tuple[int, int]) -> None:
    steps = [b"*-10\r\n", b"*1\r\n$4\r\nPING\r\n", b"*-3\r\n*1\r\n$4\r\nPING\r\n", b"*-10\r\nPING\r\n"]
    assert (
        _conversation(pair[0], steps)
        == _conversation(pair[1], steps)
        == [b"", b"+PONG\r\n"] + [b"+PONG\r\n"] * 2
    )


def test_reset_after_monitor_replies_reset_alone(pair: tuple[int, int]) -> None:
    steps = [b"MONITOR\r\n", b"RESET\r\n", b"PING\r\n"]
    got, want = _conversation(pair[0], steps), _conversation(pair[1], steps)
    assert got == want == [b"+OK\r\n", b"+RESET\r\n", b"+PONG\r\n"]


def test_geo_coordinates_are_doubles_in_resp3(pair: tuple[int, int]) -> None:
    steps = [
        b"HELLO 3\r\n",
        b"GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania\r\n",
        b"GEOPOS g Palermo nx\r\n",
        b"GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHCOORD WITHHASH ASC\r\n",
        b"GEORADIUS g 15 37 200 km WITHDIST WITHCOORD ASC\r\n",
        b"HELLO 2\r\n",
        b"GEOPOS g Palermo nx\r\n",
    ]
    got, want = _conversation(pair[0], steps), _conversation(pair[1], steps)
    assert got[1:5] + got[6:] == want[1:5] + want[6:]
    assert b",13.36138933897018433\r\n" in got[2]


def test_object_encoding_follows_the_configured_limits(pair: tuple[int, int]) -> None:
    def run(r: redis.Redis) -> Any:
        r.flushall()
        seen = []
        r.config_set("hash-max-listpack-entries", 4)
        r.config_set("hash-max-ziplist-value", 8)  # the alias
        r.config_set("zset-max-listpack-entries", 3)
        r.config_set("zset-max-listpack-value", 10)
        r.config_set("set-max-intset-entries", 5)
        try:
            r.hset("h1", mapping={f"f{i}": "v" for i in range(4)})
            r.hset("h2", mapping={f"f{i}": "v" for i in range(5)})
            r.hset("h3", "f", "123456789")
            r.zadd("z1", {"a": 1, "b": 2, "c": 3})
            r.zadd("z2", {"a": 1, "b": 2, "c": 3, "d": 4})
            r.zadd("z3", {"a" * 11: 1})
            r.sadd("s1", *range(5))
            r.sadd("s2", *range(6))
            for key in ("h1", "h2", "h3", "z1", "z2", "z3", "s1", "s2"):
                seen.append((key, r.object("encoding", key)))
            seen.append(r.config_get("*-max-*"))
        finally:
            r.config_set("hash-max-listpack-entries", 512)
            r.config_set("hash-max-listpack-value", 64)
            r.config_set("zset-max-listpack-entries", 128)
            r.config_set("zset-max-listpack-value", 64)
            r.config_set("set-max-intset-entries", 512)
        return seen

    ours, theirs = (redis.Redis(port=p, socket_timeout=10, protocol=2) for p in pair)
    try:
        got, want = run(ours), run(theirs)
        assert got[:-1] == want[:-1]
        limits = {k: v for k, v in want[-1].items() if "listpack" in k or "ziplist" in k or "intset" in k}
        limits = {k: v for k, v in limits.items() if not k.startswith("list-")}
        assert {k: got[-1].get(k) for k in limits} == limits
    finally:
        ours.close()
        theirs.close()
