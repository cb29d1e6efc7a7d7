"""Geospatial commands against redis-server: the same random GEOADDs and queries on both servers, every
reply compared (positions, distances and hashes as text, searches sorted ASC or DESC: without an order Redis
leaves it unspecified)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hiredis
import pytest

from tests.harness import NodeProcess, RedisServer
from tests.persistence_helpers import Raw, RawFactory, raw_connections_fixture

raw = raw_connections_fixture()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def random_command(rng: random.Random, members: list[str]) -> list[Any]:
    # A cluster, so that searches match, with positions fine enough that no two members share one: Redis
    # sorts equal distances in qsort's (unspecified) order.
    lon = lambda: round(rng.uniform(-12, 12), rng.choice([4, 7]))  # noqa: E731
    lat = lambda: round(rng.uniform(40, 52), rng.choice([4, 7]))  # noqa: E731
    unit = lambda: rng.choice(["m", "km", "KM", "mi", "ft", "parsec"])  # noqa: E731
    member = lambda: rng.choice(members + ["missing"])  # noqa: E731
    kind = rng.randrange(9)
    if kind == 0:
        args: list[Any] = ["GEOADD", "g", *rng.choice([[], ["NX"], ["XX"], ["CH"], ["XX", "NX"]])]
        for _ in range(rng.choice([1, 3])):
            name = f"m{rng.randrange(60)}"
            members.append(name)
            args += [rng.choice([lon(), lon(), 200]), rng.choice([lat(), lat(), 89]), name]
        return args
    if kind == 1:
        return ["GEOPOS", rng.choice(["g", "missing-key"]), member(), member()]
    if kind == 2:
        return ["GEODIST", "g", member(), member(), *rng.choice([[], [unit()]])]
    if kind == 3:
        return ["GEOHASH", "g", member(), member()]
    order = [rng.choice(["ASC", "DESC"])]
    withs = rng.sample(["WITHCOORD", "WITHDIST", "WITHHASH"], k=rng.randrange(4))
    count = rng.choice([[], [], ["COUNT", rng.choice([1, 3, 0])]])
    if kind in (4, 5):
        origin = rng.choice([["FROMMEMBER", member()], ["FROMLONLAT", lon(), lat()]])
        shape = rng.choice(
            [
                ["BYRADIUS", rng.choice([50, 300, 900, -1]), unit()],
                ["BYBOX", rng.choice([400, 1500]), 800, unit()],
            ]
        )
        if kind == 4:
            return ["GEOSEARCH", rng.choice(["g", "missing-key"]), *origin, *shape, *order, *withs, *count]
        return [
            "GEOSEARCHSTORE",
            "dest",
            "g",
            *origin,
            *shape,
            *order,
            *count,
            *rng.choice([[], ["STOREDIST"]]),
        ]
    if kind == 6:
        return ["GEORADIUS", "g", lon(), lat(), rng.choice([100, 500]), unit(), *order, *withs, *count]
    if kind == 7:
        store = rng.choice([[], ["STORE", "dest"], ["STOREDIST", "dest"]])
        return ["GEORADIUSBYMEMBER", "g", member(), rng.choice([100, 500]), unit(), *order, *count, *store]
    return ["ZRANGE", "dest", 0, -1, "WITHSCORES"]


def exact(conn: Raw, *args: Any) -> Any:
    """The reply as it came over the wire (redis-py would turn some of it into floats)."""
    reply = conn.call(*args)
    return f"error: {reply}" if isinstance(reply, hiredis.ReplyError) else reply


def test_random_geo_commands_reply_as_redis_server_does(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int, raw: RawFactory
) -> None:
    server = redis_servers(tmp_path)
    ours, theirs = raw(node.port), raw(server.port)
    rng = random.Random(seed)
    members: list[str] = []
    for step in range(1500):
        args = random_command(rng, members)
        want, got = exact(theirs, *args), exact(ours, *args)
        assert got == want, f"step {step}: {args}: redis-server {want!r:.300}, redactor {got!r:.300}"
    assert ours.call("DEBUG", "DIGEST") == theirs.call("DEBUG", "DIGEST")
