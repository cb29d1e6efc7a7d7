"""The latency monitor: per-event time series of latency spikes, as Redis 7.0's latency.c keeps them.

``Server.call`` reports a command that ran for at least ``latency-monitor-threshold`` milliseconds (0: off) as a
``command`` event (``fast-command`` for commands flagged fast), and the loop's cron an active expire cycle that
long as an ``expire-cycle`` event. Each event keeps the last 160 samples, at most one
per second (a second spike in the same second keeps the larger), and its all-time maximum. LATENCY
(actors/commands/latency.py) reads and resets them. Loop thread only.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.server.server import Server

# Samples kept per event (Redis's LATENCY_TS_LEN).
SAMPLES_PER_EVENT = 160


class LatencySeries:
    """One event's samples, oldest first: (unix time in seconds, latency in milliseconds)."""

    def __init__(self, samples: list[tuple[int, int]] | None = None, max_ms: int = 0) -> None:
        self.samples: list[tuple[int, int]] = [] if samples is None else samples
        # all-time high, kept across the samples that fall off
        self.max_ms: int = max_ms


_events: weakref.WeakKeyDictionary[Server, dict[str, LatencySeries]] = weakref.WeakKeyDictionary()


def events(server: Server) -> dict[str, LatencySeries]:
    """The server's events, by name, in the order they first happened."""
    found = _events.get(server)
    if found is None:
        found = _events[server] = {}
    return found


def add_sample(server: Server, event: str, latency_ms: int, now_s: int | None = None) -> None:
    """Record a spike of ``latency_ms`` for ``event`` (Redis's latencyAddSample)."""
    series = events(server).setdefault(event, LatencySeries())
    now = int(time.time()) if now_s is None else now_s
    if latency_ms > series.max_ms:
        series.max_ms = latency_ms
    samples = series.samples
    if samples and samples[-1][0] == now:
        if latency_ms > samples[-1][1]:
            samples[-1] = (now, latency_ms)
        return
    samples.append((now, latency_ms))
    if len(samples) > SAMPLES_PER_EVENT:
        del samples[0]


def expire_cycle_ran(server: Server, duration_us: int) -> None:
    """An active expire cycle ended: an ``expire-cycle`` sample when it took at least the threshold.

    Redis's activeExpireCycle ends with latencyAddSampleIfNeeded("expire-cycle", ...): freeing a big expired
    key shows there.
    """
    if duration_us >= server.latency_threshold_us > 0:
        add_sample(server, "expire-cycle", duration_us // 1000)


def command_ran(server: Server, fast: bool, duration_us: int) -> None:
    """A command took at least the threshold: a ``command`` or ``fast-command`` sample."""
    add_sample(server, "fast-command" if fast else "command", duration_us // 1000)
