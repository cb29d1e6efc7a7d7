"""LOLWUT compared with redis-server: the banner, VERSION 5's Schotter (its unshaken top rows are byte for byte
Redis's drawing), the clamped sizes and the errors."""

from __future__ import annotations

import random
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


def _shaken(args: tuple[Any, ...]) -> bool:
    """Whether Redis randomises part of this drawing: VERSION 5 with more than two rows of squares."""
    if len(args) < 3 or args[2] != 5:
        return False
    try:
        per_col = int(args[5]) if len(args) > 5 else 12
    except ValueError:
        return False
    return max(1, min(per_col, 200)) > 2


def _shape(reply: Any) -> Any:
    if not isinstance(reply, bytes):
        return reply
    art, _, caption = reply.partition(b"\n\n")
    return [len(line) for line in art.split(b"\n")], caption


def test_lolwut_draws_what_redis_draws(
    node: NodeProcess, redis_servers: Any, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    reference = redis.Redis(port=redis_servers(tmp_path).port, protocol=2)
    ours = node.client(protocol=2)
    try:
        cases: list[tuple[Any, ...]] = [
            ("LOLWUT",),
            ("LOLWUT", "VERSION", 7),
            ("LOLWUT", "VERSION", 4),
            ("LOLWUT", "VERSION", "x"),
            ("LOLWUT", "VERSION", 5, "x"),
            ("LOLWUT", "VERSION", 5, 0),
            ("LOLWUT", "VERSION", 5, -5, -3, 1),
            ("LOLWUT", "VERSION", 5, 3000, 300, 2),
        ]
        cases += [
            ("LOLWUT", "VERSION", 5, rng.randrange(1, 120), rng.randrange(1, 30), rng.randrange(1, 3))
            for _ in range(20)
        ]
        for args in cases:
            mine, theirs = _reply(ours, *args), _reply(reference, *args)
            if _shaken(args):
                # Rows below the second are displaced by each server's own random generator: compare the
                # drawing's shape (lines and their widths) and the caption, not its pixels.
                assert _shape(mine) == _shape(theirs), args
            else:
                assert mine == theirs, args
        art = ours.execute_command("LOLWUT", "VERSION", 5)
        assert b"Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n" in art
        assert art.count(b"\n") == reference.execute_command("LOLWUT", "VERSION", 5).count(b"\n")
    finally:
        reference.close()
