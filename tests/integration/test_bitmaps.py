"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP. Redis is the reference, so the main test runs
the same random commands against redis-server and redactor and compares every reply, errors included."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import NodeProcess, RedisServer
from tests.integration.shared import error_of, reply_or_error

NodeFactory = Callable[..., NodeProcess]


def random_command(rng: random.Random) -> list[Any]:
    key = rng.choice(["a", "b", "c", "missing", "h"])
    number = lambda: rng.choice([rng.randrange(-20, 21), rng.randrange(-3, 4), "x", 2**40])  # noqa: E731
    unit = lambda: rng.choice(["BYTE", "BIT", "bit", "byte", "BITS"])  # noqa: E731
    kind = rng.randrange(9)
    if kind >= 7:
        return random_bitfield(rng, key)
    if kind == 0:
        return ["SETBIT", key, rng.choice([rng.randrange(0, 100), -1, "x"]), rng.choice([0, 1, 1, 2])]
    if kind == 1:
        return ["GETBIT", key, rng.choice([rng.randrange(0, 100), -1])]
    if kind == 2:
        return ["BITCOUNT", key, *[number() for _ in range(rng.choice([0, 2, 2, 1, 3]))]][:4] + (
            [unit()] if rng.random() < 0.3 else []
        )
    if kind == 3:
        extra = [number() for _ in range(rng.choice([0, 1, 2, 2]))]
        if len(extra) == 2 and rng.random() < 0.5:
            extra.append(unit())
        return ["BITPOS", key, rng.choice([0, 1, 1, 0, 2]), *extra]
    if kind == 4:
        op = rng.choice(["AND", "OR", "XOR", "NOT", "nand"])
        sources = rng.sample(["a", "b", "c", "missing"], k=rng.choice([1, 1, 2, 3]))
        return ["BITOP", op, rng.choice(["d", "a", "h"]), *sources]
    if kind == 5:
        return [
            "SET",
            key,
            bytes(rng.choice([0, 255, rng.randrange(256)]) for _ in range(rng.randrange(0, 9))),
        ]
    return ["GET", rng.choice(["a", "b", "c", "d"])]


def random_bitfield(rng: random.Random, key: str) -> list[Any]:
    args: list[Any] = [rng.choice(["BITFIELD", "BITFIELD", "BITFIELD_RO"]), key]
    for _ in range(rng.randrange(0, 4)):
        sub = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
        if sub == "OVERFLOW":
            args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL", "sat", "bogus"])]
            continue
        kind = rng.choice(["i", "u", "I"])
        bits = rng.choice([1, 3, 5, 8, 13, 16, 32, 63, 64, 0, 65])
        offset = rng.choice([rng.randrange(0, 70), f"#{rng.randrange(0, 5)}", -1, "x"])
        args += [sub, f"{kind}{bits}", offset]
        if sub != "GET":
            args.append(rng.choice([rng.randrange(-300, 300), 2**63 - 1, -(2**63), 2**64, 1]))
    if rng.random() < 0.05:
        args.append("GET")
    return args


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_random_bitmap_commands_reply_as_redis_server_does(
    node: NodeProcess,
    redis_servers: Callable[..., RedisServer],
    tmp_path: Path,
    seed: int,
) -> None:
    server = redis_servers(tmp_path)
    ours = node.client()
    theirs = server.client
    rng = random.Random(seed)
    for client in (ours, theirs):
        client.hset("h", "f", "v")  # a key of another type: WRONGTYPE
    for step in range(3000):
        args = random_command(rng)
        want, got = reply_or_error(theirs, *args), reply_or_error(ours, *args)
        assert got == want, f"step {step}: {args}: redis-server {want!r}, redactor {got!r}"
    for key in ("a", "b", "c", "d"):
        assert ours.get(key) == theirs.get(key)


def test_setbit_grows_the_string_keeps_the_ttl_and_checks_its_arguments(node: NodeProcess) -> None:
    r = node.client()
    r.set("k", "\x00", ex=100)
    assert r.setbit("k", 17, 1) == 0
    assert r.get("k") == b"\x00\x00\x40" and r.ttl("k") > 0
    assert r.getbit("k", 17) == 1 and r.getbit("k", 10**6) == 0
    assert r.bitcount("k") == 1 and r.bitpos("k", 1) == 17
    assert error_of(r.setbit, "k", -1, 1) == "bit offset is not an integer or out of range"
    assert error_of(r.setbit, "k", 2**32, 1) == "bit offset is not an integer or out of range"
    assert error_of(r.execute_command, "SETBIT", "k", 1, 2) == "bit is not an integer or out of range"
    r.config_set("proto-max-bulk-len", 1024 * 1024)
    assert error_of(r.setbit, "k", 8 * 1024 * 1024, 1) == "bit offset is not an integer or out of range"


def test_bitop_writes_the_longest_length_and_deletes_on_empty(node: NodeProcess) -> None:
    r = node.client()
    r.set("x", b"\xff\x0f")
    r.set("y", b"\x0f")
    assert r.bitop("AND", "d", "x", "y") == 2 and r.get("d") == b"\x0f\x00"
    assert r.bitop("OR", "d", "x", "y") == 2 and r.get("d") == b"\xff\x0f"
    assert r.bitop("XOR", "d", "x", "y") == 2 and r.get("d") == b"\xf0\x0f"
    assert r.bitop("NOT", "d", "y") == 1 and r.get("d") == b"\xf0"
    assert r.bitop("AND", "d", "missing", "also-missing") == 0 and r.exists("d") == 0
    assert error_of(r.bitop, "NOT", "d", "x", "y") == "BITOP NOT must be called with a single source key."
