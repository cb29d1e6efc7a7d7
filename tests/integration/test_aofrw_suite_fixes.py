"""AOF rewrite details Redis's aofrw.tcl relies on, side by side with redis-server: DEBUG LOADAOF with the AOF
turned off loads the files a BGREWRITEAOF left, and a rewrite without the RDB preamble keeps the function
libraries (as FUNCTION LOAD commands)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.compat

LIBRARY = "#!lua name=test\nredis.register_function('test', function() return 1 end)"


@pytest.fixture
def servers(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> list[tuple[str, int]]:
    ref = tmp_path / "ref"
    ref.mkdir()
    return [("redactor", node.port), ("redis", redis_servers(ref).port)]


def rewrite_done(client: redis.Redis) -> bool:
    info = client.info("persistence")
    return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]


def test_debug_loadaof_with_appendonly_off_loads_what_bgrewriteaof_wrote(
    servers: list[tuple[str, int]],
) -> None:
    """(aofrw.tcl runs DEBUG LOADAOF after turning the AOF off; Redis loads the files all the same.)"""
    seen = {}
    for name, port in servers:
        client = redis.Redis(port=port, decode_responses=True)
        client.rpush("l", "a", "b", "c")
        client.bgrewriteaof()
        wait_for(partial(rewrite_done, client), what=f"{name}: the rewrite")
        client.delete("l")
        client.execute_command("DEBUG", "LOADAOF")
        seen[name] = (client.config_get("appendonly")["appendonly"], client.lrange("l", 0, -1))
    assert seen["redactor"] == seen["redis"] == ("no", ["a", "b", "c"])


def test_a_rewrite_without_preamble_keeps_the_functions(servers: list[tuple[str, int]]) -> None:
    seen = {}
    for name, port in servers:
        client = redis.Redis(port=port, decode_responses=True)
        client.config_set("aof-use-rdb-preamble", "no")
        client.execute_command("FUNCTION", "LOAD", LIBRARY)
        client.set("k", "v")
        client.bgrewriteaof()
        wait_for(partial(rewrite_done, client), what=f"{name}: the rewrite")
        client.execute_command("FUNCTION", "FLUSH")
        client.delete("k")
        client.execute_command("DEBUG", "LOADAOF")
        seen[name] = (client.execute_command("FCALL", "test", "0"), client.get("k"))
    assert seen["redactor"] == seen["redis"] == (1, "v")
