"""oom-score-adj / oom-score-adj-values act on /proc/<pid>/oom_score_adj as redis-server's do: per role,
relative or absolute, put back when turned off; their errors are Redis's."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/oom_score_adj")


def _score(pid: int) -> int:
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _reply(client: redis.Redis, *args: object) -> str:
    try:
        reply = client.execute_command(*args)
        return str(sorted(reply.items()) if isinstance(reply, dict) else reply)
    except redis.ResponseError as exc:
        return f"error: {exc}"


def _scores(client: redis.Redis) -> list[tuple[tuple[object, ...], str, int]]:
    """What each step does to the score, relative to the one the process started with."""
    pid = int(client.info("server")["process_id"])
    base = _score(pid)
    seen: list[tuple[tuple[object, ...], str, int]] = []
    for step in (
        ("CONFIG", "SET", "oom-score-adj-values", "10 20 30", "oom-score-adj", "yes"),
        ("CONFIG", "SET", "oom-score-adj-values", "15 20 30"),
        ("REPLICAOF", "localhost", "1"),
        ("REPLICAOF", "NO", "ONE"),
        ("CONFIG", "SET", "oom-score-adj", "absolute"),
        ("CONFIG", "SET", "oom-score-adj", "relative"),
        ("CONFIG", "SET", "oom-score-adj-values", "2001 0 0"),
        ("CONFIG", "SET", "oom-score-adj-values", "1 2"),
        ("CONFIG", "SET", "oom-score-adj-values", "a b c"),
        ("CONFIG", "SET", "oom-score-adj", "maybe"),
        ("CONFIG", "SET", "oom-score-adj-values", "1500 0 0"),
        ("CONFIG", "GET", "oom-score-adj*"),
        ("CONFIG", "SET", "oom-score-adj", "no"),
    ):
        seen.append((step[2:], _reply(client, *step), _score(pid) - base))
    client.config_set("oom-score-adj-values", "1 2 7")
    client.config_set("oom-score-adj", "yes")
    client.set("k", "v")
    client.config_set("rdb-key-save-delay", 1_000_000)
    client.bgsave()
    wait_for(lambda: len(_children(pid)) == 1, 10)
    child = _children(pid)[0]
    wait_for(lambda: _score(child) == base + 7, 10, what="the fork child's score")
    client.config_set("rdb-key-save-delay", 0)
    client.config_set("oom-score-adj", "no")
    client.flushall()  # stops the child
    assert _score(pid) == base
    return seen


def test_oom_score_adj_acts_as_in_redis_server(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    want = _scores(redis_servers(tmp_path).client)
    assert want[2][2] == 20 and want[-1][2] == 0  # a real check: the replica class, then put back
    assert _scores(node.client()) == want
