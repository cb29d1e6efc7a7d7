"""LATENCY, latency-monitor-threshold and the per-command histograms (latency-tracking: LATENCY HISTOGRAM, INFO
latencystats), compared with redis-server (DEBUG SLEEP makes the spikes)."""

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
    _histograms_match(node, reference)


# LATENCY HISTOGRAM's levels: the highest value equivalent to 1024 ns x 2^k in HdrHistogram's 2 significant
# digits, in microseconds (what redis-server prints: 1 2 4 8 16 33 66 132 264 ...).
_LEVELS_US = {((1024 << k) + (1 << max(0, k + 3)) - 1) // 1000 for k in range(20)}
_PERCENTILES = re.compile(r"p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}")


def _histograms(r: redis.Redis, *names: str) -> dict[bytes, Any]:
    reply = r.execute_command("LATENCY", "HISTOGRAM", *names)
    assert isinstance(reply, dict), reply  # RESP3: a map of maps
    return reply


def _histograms_match(node: NodeProcess, reference_client: redis.Redis) -> None:
    ours = node.client(protocol=3)
    reference = redis.Redis(port=reference_client.connection_pool.connection_kwargs["port"], protocol=3)
    for r in (ours, reference):
        assert r.config_get("latency-tracking*") == {
            "latency-tracking": "yes",
            "latency-tracking-info-percentiles": "50 99 99.9",
        }
        r.config_resetstat()
        pipe = r.pipeline(transaction=False)  # the fast lane's runs, on our side
        for i in range(40):
            pipe.set(f"h:{i}", i)
        for i in range(40):
            pipe.get(f"h:{i}")
        pipe.execute()
        for i in range(5):
            r.set("one", i)  # one at a time: the dispatcher's path
            r.hset("hash", "f", i)
        r.execute_command("DEBUG", "SLEEP", "0.003")  # a call in the milliseconds
    replies = [_histograms(r, "set", "GET", "nosuch", "debug", "hset") for r in (ours, reference)]
    assert [list(reply) for reply in replies] == [[b"set", b"get", b"debug", b"hset"]] * 2
    for reply in replies:
        assert {name: h[b"calls"] for name, h in reply.items()} == {
            b"set": 45,
            b"get": 40,
            b"debug": 1,
            b"hset": 5,
        }
        for name, h in reply.items():
            assert list(h) == [b"calls", b"histogram_usec"]
            levels = list(h[b"histogram_usec"].items())
            assert set(dict(levels)) <= _LEVELS_US, (name, levels)
            assert [level for level, _ in levels] == sorted(dict(levels))
            counts = [count for _, count in levels]
            assert counts == sorted(counts) and counts[-1] == h[b"calls"], (name, levels)
        assert min(reply[b"debug"][b"histogram_usec"]) >= 2048  # 3 ms: in the 4 ms level or above
    assert _histograms(ours, "nosuch") == _histograms(reference, "nosuch") == {}
    for r in (ours, reference):  # a container's calls are its subcommand's, as Redis 7.0 keys them
        everything = _histograms(r)
        assert {b"set", b"get", b"debug", b"hset", b"latency|histogram"} <= set(everything)
        assert b"latency" not in everything
    # INFO latencystats: one line per command with calls, the configured percentiles, in microseconds.
    for r in (ours, reference):
        lines = r.info("latencystats")
        assert _PERCENTILES.fullmatch(_as_line(lines["latency_percentiles_usec_set"])), lines
        assert {"latency_percentiles_usec_get", "latency_percentiles_usec_debug"} <= set(lines)
        assert not any(key.startswith("latency_percentiles") for key in r.info())  # not a default section
    for bad in ("101", "x", "-1"):
        errors = {
            _reply(r, "CONFIG", "SET", "latency-tracking-info-percentiles", bad) for r in (ours, reference)
        }
        assert len(errors) == 1 and next(iter(errors)).startswith("error: CONFIG SET failed"), errors
    for r in (ours, reference):
        r.config_set("latency-tracking-info-percentiles", "50.0 99.90 0")
        assert r.config_get("latency-tracking-info-percentiles") == {
            "latency-tracking-info-percentiles": "50 99.9 0"
        }
        line = _as_line(r.info("latencystats")["latency_percentiles_usec_set"])
        assert re.fullmatch(r"p50=\d+\.\d{3},p99\.9=\d+\.\d{3},p0=\d+\.\d{3}", line), line
        # latency-tracking no: nothing is counted (and INFO latencystats is empty) until it is on again.
        r.config_set("latency-tracking", "no")
        r.set("off", 1)
        assert not any(key.startswith("latency_percentiles") for key in r.info("latencystats"))
        r.config_set("latency-tracking", "yes")
        r.config_set("latency-tracking-info-percentiles", "50 99 99.9")
    assert _histograms(ours, "set")[b"set"][b"calls"] == _histograms(reference, "set")[b"set"][b"calls"] == 45
    for r in (ours, reference):
        r.config_resetstat()
        assert b"set" not in _histograms(r, "set")
    ours.close()
    reference.close()


def _as_line(value: Any) -> str:
    """redis-py parses ``p50=1.003,p99=...`` into a dict; put the line back together."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
    return str(value)
