"""The order of set replies where Redis 7.0 has one: an intset (at most set-max-intset-entries integers) is
kept sorted, so SMEMBERS of it, and SINTER / SUNION / SDIFF results that are intsets, ascend (applications
and tests compare such replies as lists). Seeded random sets, compared with redis-server in RESP2 and RESP3,
exactly where the reply is an intset and as sets otherwise (hash order is each server's own).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def _members(rng: random.Random) -> list[str]:
    kind = rng.choice(["small", "negative", "big", "mixed", "over"])
    count = {"over": 600}.get(kind, rng.randint(1, 40))
    if kind == "mixed":
        return [rng.choice([str(rng.randint(-50, 50)), f"m{rng.randint(0, 50)}"]) for _ in range(count)]
    if kind == "big":
        return [str(rng.randint(-(2**63), 2**63 - 1)) for _ in range(count)]
    if kind == "negative":
        return [str(rng.randint(-1000, -1)) for _ in range(count)]
    return [str(rng.randint(0, 2000)) for _ in range(count)]


def _intset(members: list[str]) -> bool:
    """Would Redis keep these members as an intset (canonical integers, at most set-max-intset-entries)?"""
    try:
        canonical = all(str(int(m)) == m for m in members)
    except ValueError:
        return False
    return canonical and len(set(members)) <= 512


def test_set_replies_come_in_redis_s_order(
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    (tmp_path / "redis").mkdir()
    server = redis_servers(tmp_path / "redis")
    node = node_factory("node")
    for protocol in (2, 3):
        clients = [
            redis.Redis(port=server.port, protocol=protocol, socket_timeout=10),
            node.client(protocol=protocol),
        ]
        for _ in range(40):
            sets = [_members(rng) for _ in range(3)]
            for client in clients:
                client.delete("a", "b", "c")
                for key, members in zip("abc", sets, strict=True):
                    client.sadd(key, *members)
            ordered = {  # the replies Redis reads off an intset (the rest come in each server's hash order)
                "SMEMBERS": _intset(sets[0]),
                "SINTER": _intset(min(sets[:2], key=lambda m: len(set(m)))),
                "SUNION": _intset(sets[0] + sets[1] + sets[2]),
                "SDIFF": all(_intset(m) for m in sets[:2]),
            }
            for command in (
                ["SMEMBERS", "a"],
                ["SINTER", "a", "b"],
                ["SUNION", "a", "b", "c"],
                ["SDIFF", "a", "b"],
            ):
                replies = [list(client.execute_command(*command)) for client in clients]
                if ordered[command[0]]:
                    assert replies[1] == replies[0], (protocol, command, sets)
                else:
                    assert sorted(replies[1]) == sorted(replies[0]), (protocol, command, sets)
        for client in clients:
            client.close()
