"""Shebang and function flags checked before a script runs (Redis 7.0's scriptPrepareForRun), in its order and
words: no-cluster in cluster mode, and OOM without allow-oom (processCommand's words: the flags make EVAL a
denyoom command there). The same steps run on redis-server and a node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import NodeProcess, RedisServer

KINDS = ["redis", "redactor"]
LIBRARY = (
    "#!lua name=flagged\n"
    "redis.register_function{function_name='nocluster', callback=function() return 1 end, flags={'no-cluster'}}\n"
    "redis.register_function{function_name='plain', callback=function() return 2 end}\n"
)


def _server(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
    *args: str,
) -> redis.Redis:
    if kind == "redactor":
        directives = {args[i].lstrip("-").replace("-", "_"): args[i + 1] for i in range(0, len(args), 2)}
        return node_factory("node", **directives).client()
    return redis.Redis(port=redis_servers(tmp_path, *args).port)


@pytest.mark.parametrize("kind", KINDS)
def test_no_cluster_scripts_and_functions_are_refused_in_cluster_mode(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    client = _server(kind, tmp_path, node_factory, redis_servers, "--cluster-enabled", "yes")
    refused = "Can not run script on cluster, 'no-cluster' flag is set."
    with pytest.raises(redis.ResponseError, match=f"^{refused}$"):
        client.eval("#!lua flags=no-cluster\nreturn 1", 0)
    assert client.eval("#!lua\nreturn 1", 0) == 1
    client.function_load(LIBRARY)
    with pytest.raises(redis.ResponseError, match=f"^{refused}$"):
        client.fcall("nocluster", 0)
    assert client.fcall("plain", 0) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_script_that_may_write_is_refused_over_maxmemory_unless_allow_oom(
    kind: str,
    tmp_path: Path,
    node_factory: Callable[..., NodeProcess],
    redis_servers: Callable[..., RedisServer],
) -> None:
    client = _server(kind, tmp_path, node_factory, redis_servers)
    client.set("k", "x" * 100_000)
    client.config_set("maxmemory", 1)
    with pytest.raises(
        redis.exceptions.OutOfMemoryError,
        match="^command not allowed when used memory > 'maxmemory'.$",
    ):
        client.eval("#!lua\nreturn 1", 0)
    assert client.eval("#!lua flags=allow-oom\nreturn 1", 0) == 1
    assert client.eval("#!lua flags=no-writes\nreturn 1", 0) == 1
