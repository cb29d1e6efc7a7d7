"""LOLWUT compared with redis-server: the banner, VERSION 5's Schotter (its unshaken top rows are byte for byte
Redis's drawing), VERSION 6's random skyline (by shape), the clamped sizes and the errors."""

from __future__ import annotations

import random
import re
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


_SKY = b"\x1b[0;97;107m \x1b[0m"
_CELL = re.compile(rb"\x1b\[0;(?:30;40|90;100|37;47|97;107)m \x1b\[0m")


def _skyline_shape(reply: Any) -> Any:
    """VERSION 6: the caption, and per row its width in cells; every cell one of the four greys, and the top
    row (which no tower reaches) all sky."""
    if not isinstance(reply, bytes):
        return reply
    lines = reply.split(b"\n")
    art, caption = lines[:-3], lines[-3:]
    widths = []
    for row in art:
        cells = _CELL.findall(row)
        assert b"".join(cells) == row, row[:80]
        widths.append(len(cells))
    if len(art) > 1:
        assert art[0] == _SKY * widths[0]
    return widths, caption


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
        skylines: list[tuple[Any, ...]] = [
            ("LOLWUT", "VERSION", 6),
            ("LOLWUT", "VERSION", 6, "x"),
            ("LOLWUT", "VERSION", 6, 10, "y"),
            ("LOLWUT", "VERSION", 6, -5, 0),
            ("LOLWUT", "VERSION", 6, 3000, 3),
        ]
        skylines += [("LOLWUT", "VERSION", 6, rng.randrange(1, 150), rng.randrange(1, 60)) for _ in range(8)]
        for args in skylines:
            assert _skyline_shape(_reply(ours, *args)) == _skyline_shape(_reply(reference, *args)), args
        art = ours.execute_command("LOLWUT", "VERSION", 5)
        assert b"Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n" in art
        assert art.count(b"\n") == reference.execute_command("LOLWUT", "VERSION", 5).count(b"\n")
    finally:
        reference.close()
