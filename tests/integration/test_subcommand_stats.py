"""A container command's calls are counted and named per subcommand, as Redis 7.0 does (tests/unit/latency-monitor.tcl
and introspection.tcl rely on it): INFO commandstats' ``cmdstat_config|resetstat``, LATENCY HISTOGRAM's
``client|id`` (asked for by ``client`` or by the full name), CLIENT LIST's ``cmd=client|list`` (and the
caller's ``qbuf``); DEBUG, which
has no subcommand table in Redis, stays ``debug``. Compared with redis-server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.harness import NodeProcess, RedisServer


def _observe(r: redis.Redis) -> dict[str, Any]:
    r.config_resetstat()
    r.execute_command("CLIENT", "ID")
    r.execute_command("CLIENT", "ID")
    listing = r.execute_command("CLIENT", "LIST", "ID", r.execute_command("CLIENT", "ID"))
    r.execute_command("CONFIG", "GET", "maxmemory")
    r.execute_command("DEBUG", "SLEEP", "0")
    stats = r.info("commandstats")
    by_client = r.execute_command("LATENCY", "HISTOGRAM", "client")
    by_name = r.execute_command("LATENCY", "HISTOGRAM", "client|id", "config")
    return {
        "listing": re.search(r"cmd=(\S+)", listing.decode()).group(1),  # type: ignore[union-attr]
        # The caller's qbuf: its CLIENT LIST request's bytes, still in the query buffer while it runs.
        "qbuf": re.search(r"qbuf=(\d+)", listing.decode()).group(1),  # type: ignore[union-attr]
        "stats": sorted((name, fields["calls"]) for name, fields in stats.items()),
        "by_client": sorted((k, v[b"calls"]) for k, v in by_client.items()),
        "by_name": sorted((k, v[b"calls"]) for k, v in by_name.items()),
    }


def test_subcommand_stats_match_redis(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> None:
    reference = redis_servers(tmp_path)
    ours = _observe(node.client(protocol=3))
    theirs = _observe(redis.Redis(port=reference.port, protocol=3))
    assert ours["listing"] == "client|list"
    assert ("cmdstat_config|resetstat", 1) in ours["stats"] and ("cmdstat_debug", 1) in ours["stats"]
    assert ours == theirs
