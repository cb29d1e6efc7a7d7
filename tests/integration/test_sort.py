"""SORT and SORT_RO. Redis is the reference: random SORTs over lists, sets and sorted sets with BY, GET,
LIMIT, ALPHA, DESC and STORE run against redis-server and redactor, and every reply is compared."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer
from tests.integration.shared import error_of, reply_or_error


def populate(client: redis.Redis, rng: random.Random) -> None:
    """The same data on both servers: numbers and words, weights and hash fields for BY and GET."""
    numbers = [str(rng.randrange(-50, 50)) for _ in range(12)] + ["3.5", "-0.25", "1e2", "010"]
    words = [f"w{rng.randrange(1000)}" for _ in range(10)]
    client.rpush("nums", *numbers)
    client.rpush("words", *words)
    client.rpush("mixed", *numbers[:5], "abc")
    client.sadd("numset", *set(numbers))
    client.zadd("z", {w: rng.randrange(100) for w in words})
    names = sorted(set(numbers) | set(words))
    # Distinct weights: ALPHA ties on BY weights are in qsort's (unspecified) order, numeric ones are not.
    weights, fields = rng.sample(range(1000), len(names)), rng.sample(range(1000), len(names))
    for n, weight, field in zip(names, weights, fields, strict=True):
        client.set(f"weight_{n}", str(weight))
        client.hset(f"obj_{n}", mapping={"w": field, "name": f"name-{n}"})
        client.set(f"name_{n}", f"N{n}")
    client.set("weight_w0", "not-a-number")
    client.hset("h", "f", "v")


def random_sort(rng: random.Random) -> list[Any]:
    key = rng.choice(["nums", "words", "mixed", "numset", "z", "missing", "h"])
    args: list[Any] = [rng.choice(["SORT", "SORT", "SORT_RO"]), key]
    if rng.random() < 0.4:
        args += ["BY", rng.choice(["weight_*", "obj_*->w", "nosort", "missing_*", "obj_*->nofield"])]
    if rng.random() < 0.4:
        args += ["LIMIT", rng.choice([0, 1, 3, -2, 20]), rng.choice([0, 2, 5, -1, 100])]
    for _ in range(rng.choice([0, 0, 1, 2])):
        args += ["GET", rng.choice(["#", "name_*", "obj_*->name", "missing_*", "obj_*->w"])]
    if rng.random() < 0.4:
        args.append("ALPHA")
    if rng.random() < 0.4:
        args.append(rng.choice(["DESC", "ASC"]))
    if rng.random() < 0.2:
        args += ["STORE", "dest"]
    if rng.random() < 0.03:
        args.append("BOGUS")
    return args


def comparable(args: list[Any]) -> bool:
    """Leave out what Redis itself leaves unspecified: a set in its own (hash table) order, and ALPHA ties
    on BY weights that are missing (qsort is not stable)."""
    if args[1] == "numset" and ("nosort" in args or "missing_*" in args) and "STORE" not in args:
        return False
    by = args[args.index("BY") + 1] if "BY" in args else None
    return not ("ALPHA" in args and by in ("missing_*", "obj_*->nofield"))


@pytest.mark.compat
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_random_sorts_reply_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    server = redis_servers(tmp_path)
    ours, theirs = node.client(), server.client
    rng = random.Random(seed)
    data_seed = rng.randrange(1 << 30)
    populate(ours, random.Random(data_seed))
    populate(theirs, random.Random(data_seed))
    checked = 0
    for step in range(1500):
        args = random_sort(rng)
        if not comparable(args):
            continue
        want, got = reply_or_error(theirs, *args), reply_or_error(ours, *args)
        assert got == want, f"step {step}: {args}: redis-server {want!r}, redactor {got!r}"
        if "STORE" in args:
            assert ours.lrange("dest", 0, -1) == theirs.lrange("dest", 0, -1), f"step {step}: {args}"
            assert ours.exists("dest") == theirs.exists("dest")
        checked += 1
    assert checked > 1000


def test_sort_basics_and_errors(node: NodeProcess) -> None:
    r = node.client()
    r.rpush("l", 3, 1, 2)
    assert r.sort("l") == [b"1", b"2", b"3"]
    assert r.sort("l", desc=True, start=0, num=2) == [b"3", b"2"]
    assert r.sort("l", store="out") == 3 and r.lrange("out", 0, -1) == [b"1", b"2", b"3"]
    r.rpush("bad", "x")
    assert error_of(r.sort, "bad") == "One or more scores can't be converted into double"
    assert error_of(r.execute_command, "SORT_RO", "l", "STORE", "x") == "syntax error"
    assert (
        error_of(r.execute_command, "SORT", "l", "LIMIT", "a", "1")
        == "value is not an integer or out of range"
    )
    r.set("s", "v")
    assert error_of(r.sort, "s").startswith("WRONGTYPE")
    assert r.sort("missing", store="out") == 0 and r.exists("out") == 0
