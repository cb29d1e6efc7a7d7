"""Per-command latency histograms (``latency-tracking``): LATENCY HISTOGRAM and INFO latencystats, as Redis 7.0.

Redis records each call's duration (whole microseconds, as nanoseconds) in an HdrHistogram per command with two
significant digits; LATENCY HISTOGRAM replies its cumulative counts at powers of two from 1024 ns, and INFO
latencystats prints the ``latency-tracking-info-percentiles`` of each. This module keeps the same buckets and
computes the same figures from them.

What it owns: the counting and the reports. Where the counts live: on each ``Command`` of the server's table
(``latency_us``: one counter per whole microsecond below ``SMALL_US``; ``latency_large``: HdrHistogram buckets
above), so ``Server.call`` pays one list bump per command (``duration_us < server.latency_small_us``, which is 0
while latency-tracking is off) and the fast lane one bump per run of GETs or SETs. Only the rare command slower
than ``SMALL_US`` calls ``record``. The histograms are per ``Command``, and a container's subcommands have records of their own
(actors/server/cmdstats.py), as Redis keeps one per subcommand. Loop thread only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from actors.server import cmdstats

if TYPE_CHECKING:
    from actors.commands import Command
    from actors.server.server import Server

# Durations below this many microseconds are counted exactly, one list slot each (Command.latency_us).
SMALL_US = 256
# HdrHistogram with 2 significant digits: 256 sub-buckets, so a value's bucket is 2^(bit_length - 8) wide.
_SUB_BUCKET_BITS = 8
# LATENCY HISTOGRAM's first reporting level (hdr_iter_log_init(..., 1024, 2)) and Redis's trackable range.
_FIRST_LEVEL_NS = 1024
_HIGHEST_NS = 1_000_000_000


def _shift(value_ns: int) -> int:
    return max(0, value_ns.bit_length() - _SUB_BUCKET_BITS)


def lowest_equivalent(value_ns: int) -> int:
    shift = _shift(value_ns)
    return (value_ns >> shift) << shift


def highest_equivalent(value_ns: int) -> int:
    shift = _shift(value_ns)
    return ((value_ns >> shift) << shift) + (1 << shift) - 1


def _as_ns(duration_us: int) -> int:
    """The value Redis records for a call of ``duration_us``, clamped to its histograms' range [1 ns, 1 s]."""
    return min(max(duration_us * 1000, 1), _HIGHEST_NS)


def record(cmd: Command, duration_us: int, count: int = 1) -> None:
    """Count ``count`` calls of ``duration_us`` (the dispatcher's inline bump covers those below SMALL_US)."""
    if duration_us < SMALL_US:
        cmd.latency_us[duration_us] += count
        return
    bucket = lowest_equivalent(_as_ns(duration_us))
    cmd.latency_large[bucket] = cmd.latency_large.get(bucket, 0) + count


def reset(cmd: Command) -> None:
    """CONFIG RESETSTAT (Redis frees the histograms with the other command stats)."""
    cmd.latency_us[:] = [0] * SMALL_US
    cmd.latency_large.clear()


def _values(cmd: Command) -> list[tuple[int, int]]:
    """(bucket's lowest value in ns, count) in increasing order, every call of ``cmd`` counted once."""
    small = [(lowest_equivalent(_as_ns(us)), n) for us, n in enumerate(cmd.latency_us) if n]
    return small + sorted(cmd.latency_large.items())


def total_calls(cmd: Command) -> int:
    return sum(cmd.latency_us) + sum(cmd.latency_large.values())


def cumulative_usec(cmd: Command) -> dict[int, int]:
    """LATENCY HISTOGRAM's ``histogram_usec``: cumulative counts at 1024 ns x 2^k (in whole microseconds of
    each level's highest equivalent value), only the levels where the count grows (Redis's fillCommandCDF)."""
    values = _values(cmd)
    total = sum(n for _, n in values)
    reply: dict[int, int] = {}
    level = _FIRST_LEVEL_NS
    seen = index = 0
    while seen < total:
        ceiling = highest_equivalent(level)
        before = seen
        while index < len(values) and values[index][0] <= ceiling:
            seen += values[index][1]
            index += 1
        if seen > before:
            reply[ceiling // 1000] = seen
        level *= 2
    return reply


def value_at_percentile(cmd: Command, percentile: float) -> int:
    """hdr_value_at_percentile, in nanoseconds."""
    values = _values(cmd)
    total = sum(n for _, n in values)
    wanted = max(int(min(percentile, 100.0) / 100 * total + 0.5), 1)
    seen = 0
    for value, n in values:
        seen += n
        if seen >= wanted:
            return value if percentile == 0.0 else highest_equivalent(value)
    return 0


# -- configuration ------------------------------------------------------------------------------------------


def attach(server: Server) -> None:
    """Follow latency-tracking: ``server.latency_small_us`` is what Server.call compares each duration with."""

    def tracking_changed(value: Any) -> None:
        server.latency_tracking = bool(value)
        server.latency_small_us = SMALL_US if value else 0

    tracking_changed(server.config["latency-tracking"])
    server.config.on_change("latency-tracking", tracking_changed)


# -- reports ------------------------------------------------------------------------------------------------


def _tracked(server: Server) -> Iterable[Command]:
    # Aliases share one Command; a container's subcommands have records of their own (cmdstats.py).
    return (cmd for cmd in cmdstats.unique_commands(server) if total_calls(cmd))


def histogram_reply(server: Server, names: list[bytes]) -> dict[bytes, Any]:
    """LATENCY HISTOGRAM [command ...]: every command with calls, or the named ones that have some."""
    if names:
        # A container's name brings its subcommands' histograms too (Redis: "client" gives client|id ...).
        chosen = cmdstats.with_subcommands(
            cmd for cmd in (cmdstats.find(server, raw) for raw in names) if cmd is not None
        )
        commands = [cmd for cmd in chosen if total_calls(cmd)]
    else:
        commands = list(_tracked(server))
    reply: dict[bytes, Any] = {}
    for cmd in commands:
        reply[cmd.name.encode()] = {
            b"calls": total_calls(cmd),
            b"histogram_usec": cumulative_usec(cmd),
        }
    return reply


def info_section(server: Server) -> list[tuple[str, Any]]:
    """INFO latencystats: ``latency_percentiles_usec_<command>:p50=...,p99=...`` (empty while tracking is off)."""
    if not server.latency_tracking:
        return []
    percentiles = [(name, float(name)) for name in server.config["latency-tracking-info-percentiles"]]
    lines = []
    for cmd in _tracked(server):
        figures = ",".join(f"p{name}={value_at_percentile(cmd, p) / 1000:.3f}" for name, p in percentiles)
        lines.append((f"latency_percentiles_usec_{cmd.name}", figures))
    return lines
