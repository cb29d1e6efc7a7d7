"""LCS compared with redis-server: seeded random strings, every option, RESP2 and RESP3, and the errors."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess

pytestmark = pytest.mark.compat


def _reply(r: redis.Redis, *args: Any) -> Any:
    try:
        return r.execute_command(*args)
    except redis.ResponseError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("protocol", [2, 3])
def test_lcs_matches_redis_on_random_strings(
    node: NodeProcess, redis_servers: Any, tmp_path: Path, seed: int, protocol: int
) -> None:
    rng = random.Random(seed)
    reference = redis.Redis(port=redis_servers(tmp_path).port, protocol=protocol)
    ours = node.client(protocol=protocol)
    option_sets: list[tuple[Any, ...]] = [
        (),
        ("LEN",),
        ("IDX",),
        ("IDX", "WITHMATCHLEN"),
        ("IDX", "MINMATCHLEN", 2),
        ("IDX", "MINMATCHLEN", 3, "WITHMATCHLEN"),
        ("IDX", "MINMATCHLEN", -5),
    ]
    try:
        for _ in range(60):
            alphabet = "ab" if rng.random() < 0.5 else "ACGT"
            a = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
            b = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
            for r in (ours, reference):
                r.set("a", a)
                r.set("b", b)
            for options in option_sets:
                args = ("LCS", "a", "b", *options)
                assert _reply(ours, *args) == _reply(reference, *args), (a, b, options)
        for r in (ours, reference):
            r.delete("missing")
            r.rpush("list", "x")
        for args in [
            ("LCS", "a", "missing"),
            ("LCS", "missing", "missing", "IDX"),
            ("LCS", "a", "list"),
            ("LCS", "a", "b", "LEN", "IDX"),
            ("LCS", "a", "b", "BOGUS"),
            ("LCS", "a", "b", "MINMATCHLEN"),
            ("LCS", "a", "b", "MINMATCHLEN", "x"),
            ("LCS", "a"),
        ]:
            assert _reply(ours, *args) == _reply(reference, *args), args
    finally:
        reference.close()


def test_lcs_long_strings_match_redis_and_answer_fast(
    node: NodeProcess, redis_servers: Any, tmp_path: Path, seed: int
) -> None:
    """Long strings: replies equal redis-server's, and 4,000 x 4,000 bytes answer in well under a second.

    The table was a pure-Python O(N*M) loop (about 4 s for this size); the bit-parallel rows take tens of
    milliseconds, so 2 s tolerates a loaded machine and still fails the old way.
    """
    rng = random.Random(seed)
    reference = redis.Redis(port=redis_servers(tmp_path).port)
    ours = node.client()
    try:
        for size in (300, 1000):
            a = "".join(rng.choice("ACGT") for _ in range(size))
            b = "".join(rng.choice("ACGT") for _ in range(size + rng.randrange(-50, 50)))
            for r in (ours, reference):
                r.set("a", a)
                r.set("b", b)
            for options in [(), ("LEN",), ("IDX", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", 4)]:
                args = ("LCS", "a", "b", *options)
                assert _reply(ours, *args) == _reply(reference, *args), (size, options)
        ours.set("a", "".join(rng.choice("ACGT") for _ in range(4000)))
        ours.set("b", "".join(rng.choice("ACGT") for _ in range(4000)))
        started = time.monotonic()
        reply = ours.execute_command("LCS", "a", "b", "IDX")
        elapsed_s = time.monotonic() - started
        fields = dict(zip(reply[::2], reply[1::2], strict=True))  # RESP2: matches, [...], len, N
        assert fields[b"len"] > 2000
        assert elapsed_s < 2.0, f"LCS of two 4,000-byte strings took {elapsed_s:.2f} s"
    finally:
        reference.close()
