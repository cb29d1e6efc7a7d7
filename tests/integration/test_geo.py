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


def test_unsorted_searches_return_members_in_redis_order(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path, seed: int
) -> None:
    """Without ASC/DESC a search returns its matches in the order Redis scans its geohash cells (the centre's,
    then its neighbours) and ANY stops where Redis stops: the same replies, in order, on the whole globe and
    near the poles (a 5,000 km search from 65 N reaches across the pole)."""
    server = redis_servers(tmp_path)
    rng = random.Random(seed)
    ours, theirs = node.client(), server.client
    args: list[Any] = []
    for j in range(300):
        args += [round(rng.uniform(-180, 180), 6), round(rng.uniform(-85, 85), 6), f"p{j}"]
    for client in (ours, theirs):
        client.geoadd("g", args)
        client.execute_command("GEOADD", "pole", 45, 65, "n1", -135, 85.05, "n2")
    queries: list[list[Any]] = [["GEORADIUSBYMEMBER", "pole", "n1", 5009431, "m"]]
    for _ in range(60):
        lon, lat = round(rng.uniform(-180, 180), 4), round(rng.uniform(-85, 85), 4)
        size = rng.choice([50, 300, 1500, 6000])
        shape = rng.choice([["BYRADIUS", size, "km"], ["BYBOX", size, rng.choice([size, size // 3]), "km"]])
        extra = rng.choice([[], ["COUNT", 3, "ANY"], ["WITHDIST"]])
        queries.append(["GEOSEARCH", "g", "FROMLONLAT", lon, lat, *shape, *extra])
        queries.append(["GEORADIUS", "g", lon, lat, size, "km", *extra])
    for query in queries:
        assert ours.execute_command(*query) == theirs.execute_command(*query), query
