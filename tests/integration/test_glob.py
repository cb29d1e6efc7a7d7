"""Glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, HSCAN ...): Redis's stringmatchlen semantics, and no pattern
that can freeze the node.

The old matcher translated a glob into one regex, which backtracks exponentially in the number of stars:
`KEYS a*a*...a*b` with 20 stars against a 40-byte key held the loop for minutes. Matching now takes
O(pattern x subject) at worst (actors/commands/_util.py, compile_glob).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer
from tests.integration.shared import module_node_fixture, resp2_client_fixture

node = module_node_fixture()
r = resp2_client_fixture()

# Bytes the random patterns and keys are drawn from: the glob's special characters and a small alphabet, so
# that classes, ranges, escapes and stars meet real matches often.
PATTERN_ALPHABET = "ab*?[]^-\\"
KEY_ALPHABET = "ab-]^\\[*?"
# A bound far above what a linear matcher needs, far below what the exponential one took (minutes).
PATHOLOGICAL_BUDGET_S = 2.0


def test_many_stars_do_not_freeze_the_node(node: NodeProcess, r: redis.Redis) -> None:
    r.set("a" * 40, "v")
    r.set(("a" * 39) + "b", "v")
    other = node.client()
    pattern = "a*" * 20 + "c"
    started = time.monotonic()
    assert r.keys(pattern) == []
    assert list(r.scan_iter(match=pattern)) == []
    assert r.keys("a*" * 20 + "b") == [b"a" * 39 + b"b"]
    assert time.monotonic() - started < PATHOLOGICAL_BUDGET_S
    assert other.ping()


def test_a_pattern_subscriber_with_many_stars_costs_publish_nothing(
    node: NodeProcess, r: redis.Redis
) -> None:
    sub = node.client().pubsub()
    sub.psubscribe("a*" * 20 + "c")
    started = time.monotonic()
    assert r.publish("a" * 40, "m") == 0
    assert time.monotonic() - started < PATHOLOGICAL_BUDGET_S
    sub.close()


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        (b"[a-]", [b"]", b"^", b"a"]),  # Redis reads "a-]" as the range ']'..'a'
        (b"[z-a]", [b"a", b"b", b"m", b"z"]),  # a reversed range is swapped
        (b"[ab", [b"a", b"b"]),  # an unterminated class ends with the pattern
        (b"[]", []),
        (b"[^]", [b"-", b"]", b"^", b"a", b"b", b"m", b"\\", b"z", b"[", b"*", b"?"]),
        (b"\\", [b"\\"]),  # a trailing backslash matches itself
        (b"*\\*", [b"*"]),
        (b"[\\]]", [b"]"]),
    ],
)
def test_edge_cases_read_as_stringmatchlen_reads_them(
    r: redis.Redis, pattern: bytes, matches: list[bytes]
) -> None:
    keys = [b"-", b"]", b"^", b"a", b"b", b"m", b"\\", b"z", b"[", b"*", b"?"]
    r.mset({k: "1" for k in keys})
    assert sorted(r.keys(pattern)) == sorted(matches)


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_random_patterns_match_as_redis_server(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    server = redis_servers(tmp_path)
    ours, theirs = node.client(), server.client
    ours.flushall()
    rng = random.Random(seed)
    keys = {"".join(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(0, 6))) for _ in range(300)}
    for client in (ours, theirs):
        client.mset({k: "1" for k in keys})
    for step in range(400):
        pattern = "".join(rng.choice(PATTERN_ALPHABET) for _ in range(rng.randint(0, 7)))
        want, got = sorted(theirs.keys(pattern)), sorted(ours.keys(pattern))
        assert got == want, f"step {step}: KEYS {pattern!r}: redis-server {want!r}, redactor {got!r}"
