"""LATENCY and latency-monitor-threshold, compared with redis-server (DEBUG SLEEP makes the spikes)."""

from __future__ import annotations

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


def _digits_out(value: Any) -> Any:
    """Timings and timestamps differ between two servers: compare the shape, with numbers masked."""
    if isinstance(value, bytes | str):
        text = value.decode() if isinstance(value, bytes) else value
        return re.sub(r"\d+(\.\d+)?", "N", text)
    if isinstance(value, int):
        return "N"
    if isinstance(value, list):
        return [_digits_out(v) for v in value]
    return value


def test_latency_reports_match_redis(node: NodeProcess, redis_servers: Any, tmp_path: Path) -> None:
    reference = redis_servers(tmp_path).client
    ours = node.client()
    for r in (ours, reference):
        r.config_set("latency-monitor-threshold", 0)
    fixed = [
        ("LATENCY", "DOCTOR"),
        ("LATENCY", "HELP"),
        ("LATENCY", "LATEST"),
        ("LATENCY", "HISTORY", "command"),
        ("LATENCY", "GRAPH", "command"),
        ("LATENCY", "RESET"),
        ("LATENCY", "BOGUS"),
        ("LATENCY", "HISTORY"),
        ("LATENCY", "GRAPH"),
    ]
    for args in fixed:
        assert _reply(ours, *args) == _reply(reference, *args), args
    for r in (ours, reference):
        r.config_set("latency-monitor-threshold", 100)
    assert ours.config_get("latency-monitor-threshold") == {"latency-monitor-threshold": "100"}
    assert _reply(ours, "LATENCY", "DOCTOR") == _reply(reference, "LATENCY", "DOCTOR")
    for r in (ours, reference):
        r.execute_command("DEBUG", "SLEEP", "0")  # under the threshold: no event
        r.execute_command("DEBUG", "SLEEP", "0.15")
    latest = ours.execute_command("LATENCY", "LATEST")
    assert len(latest) == 1 and latest[0][0] == b"command" and 150 <= latest[0][2] == latest[0][3] < 1000
    for args in [
        ("LATENCY", "LATEST"),
        ("LATENCY", "HISTORY", "command"),
        ("LATENCY", "GRAPH", "command"),
        ("LATENCY", "DOCTOR"),
        ("LATENCY", "RESET", "command", "nope"),
        ("LATENCY", "LATEST"),
    ]:
        assert _digits_out(_reply(ours, *args)) == _digits_out(_reply(reference, *args)), args
    for r in (ours, reference):
        r.config_set("latency-monitor-threshold", 0)
