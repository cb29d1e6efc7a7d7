"""LATENCY: the latency monitor's reports (LATEST, HISTORY, RESET, GRAPH, DOCTOR, HELP), as Redis 7.0's latency.c.

The samples are kept by actors/server/latency.py. GRAPH draws Redis's sparkline (sparkline.c: 80 columns, 4
rows, filled, labels of how long ago each sample was); DOCTOR writes Redis's report for the events redactor
records (``command`` and ``fast-command``) with the advice Redis gives for them. HISTOGRAM replies the
per-command histograms of actors/server/latencystats.py (latency-tracking).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.server.latency import LatencySeries, events
from actors.server.latencystats import histogram_reply
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

_ARITY = {b"doctor": 2, b"graph": 3, b"history": 3, b"latest": 2, b"reset": -2, b"histogram": -2, b"help": 2}
# Redis's LATENCY_GRAPH_COLS and the sparkline's rows and characters (sparkline.c, SPARKLINE_FILL).
GRAPH_COLUMNS = 80
GRAPH_ROWS = 4
_FILL_CHARS = "_o#"

_HELP = [
    b"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR",
    b"    Return a human readable latency analysis report.",
    b"GRAPH <event>",
    b"    Return an ASCII latency graph for the <event> class.",
    b"HISTORY <event>",
    b"    Return time-latency samples for the <event> class.",
    b"LATEST",
    b"    Return the latest latency samples for all events.",
    b"RESET [<event> ...]",
    b"    Reset latency data of one or more <event> classes.",
    b"    (default: reset all data for all event classes)",
    b"HISTOGRAM [COMMAND ...]",
    b"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    b"    If no commands are specified then all histograms are replied.",
    b"HELP",
    b"    Prints this help.",
]


@command(
    "latency",
    -2,
    "admin noscript loading stale",
    (0, 0, 0),
    "server",
    "A container for latency diagnostics commands",
    subcommands=("doctor", "graph", "history", "latest", "reset", "histogram", "help"),
)
def cmd_latency(client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    arity = _ARITY.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "latency")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"latency|{sub.decode()}")
    server = client.server
    known = events(server)
    if sub == b"latest":
        return [
            [name.encode(), series.samples[-1][0], series.samples[-1][1], series.max_ms]
            for name, series in known.items()
            if series.samples
        ]
    if sub == b"history":
        found = known.get(argv[2].decode("utf-8", "replace"))
        return [] if found is None else [[when, ms] for when, ms in found.samples]
    if sub == b"reset":
        if len(argv) == 2:
            count = len(known)
            known.clear()
            return count
        reset = 0
        for raw in argv[2:]:
            if known.pop(raw.decode("utf-8", "replace"), None) is not None:
                reset += 1
        return reset
    if sub == b"graph":
        name = argv[2].decode("utf-8", "replace")
        found = known.get(name)
        if found is None or not found.samples:
            raise CommandError(f"ERR No samples available for event '{name}'")
        return Verbatim(graph(name, found, int(time.time())).encode())
    if sub == b"doctor":
        return Verbatim(doctor(server, known, int(time.time())).encode())
    if sub == b"histogram":
        return histogram_reply(server, argv[2:])
    return list(_HELP)


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def graph(name: str, series: LatencySeries, now_s: int) -> str:
    """Redis's latencyCommandGenSparkeline: a header, a rule, then the filled sparkline with its labels."""
    values = [ms for _, ms in series.samples]
    labels = [_ago(now_s - when) for when, _ in series.samples]
    low, high = min(values), max(values)
    out = [
        f"{name} - high {high} ms, low {low} ms (all time high {series.max_ms} ms)\n",
        "-" * GRAPH_COLUMNS + "\n",
    ]
    for start in range(0, len(values), GRAPH_COLUMNS):
        if start:
            out.append("\n")
        out.append(_sparkline(values, labels, start, min(GRAPH_COLUMNS, len(values) - start), low, high))
    return "".join(out)


def _sparkline(values: list[int], labels: list[str], offset: int, length: int, low: int, high: int) -> str:
    """sparklineRenderRange with SPARKLINE_FILL; the sequence's min and max are over every sample."""
    steps = len(_FILL_CHARS) * GRAPH_ROWS
    relmax = (high - low) or 1
    lines = []
    row = 0
    while True:
        drawn = False
        chars = [" "] * length
        for j in range(length):
            step = int((values[offset + j] - low) * steps / relmax)
            step = min(max(step, 0), steps - 1)
            if row < GRAPH_ROWS:
                drawn = True
                charidx = step - (GRAPH_ROWS - row - 1) * len(_FILL_CHARS)
                if 0 <= charidx < len(_FILL_CHARS):
                    chars[j] = _FILL_CHARS[charidx]
                elif charidx >= len(_FILL_CHARS):
                    chars[j] = "|"
            else:
                if row - GRAPH_ROWS < 1:  # the blank line between the graph and its labels
                    drawn = True
                    break
                label = labels[offset + j]
                position = row - GRAPH_ROWS - 1
                if len(label) > position:
                    drawn = True
                    chars[j] = label[position]
        if not drawn:
            break
        row += 1
        lines.append("".join(chars) + "\n")
    return "".join(lines)


def _stats(series: LatencySeries, now_s: int) -> tuple[int, int, int, float]:
    """analyzeLatencyForEvent: samples, average, mean absolute deviation (ms), seconds per sample."""
    values = [ms for _, ms in series.samples]
    count = len(values)
    if not count:
        return 0, 0, 0, 0.0
    avg = sum(values) // count
    period = now_s - min(when for when, _ in series.samples) or 1
    mad = sum(abs(avg - v) for v in values) // count
    return count, avg, mad, period / count


def doctor(server: Server, known: dict[str, LatencySeries], now_s: int) -> str:
    """Redis's createLatencyReport for the events redactor records."""
    threshold_ms = server.config["latency-monitor-threshold"]
    if not known and threshold_ms == 0:
        return (
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
            '"CONFIG SET latency-monitor-threshold <milliseconds>." in order to enable it. If we weren\'t in a '
            "deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
        )
    if not known:
        return (
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest "
            "bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
        )
    report = [
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you "
        "Dave?\n\n"
    ]
    slowlog_enable = slowlog_tuning = slowlog_inspect = large_objects = scheduler = False
    for number, (name, series) in enumerate(known.items(), 1):
        count, avg, mad, period = _stats(series, now_s)
        report.append(
            f"{number}. {name}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period "
            f"{period:.2f} sec). Worst all time event {series.max_ms}ms.\n"
        )
        if name == "command":
            slower_than_us = server.config["slowlog-log-slower-than"]
            if slower_than_us < 0 or server.config["slowlog-max-len"] == 0:
                slowlog_enable = True
            elif slower_than_us // 1000 > threshold_ms:
                slowlog_tuning = True
            slowlog_inspect = large_objects = True
        if name == "fast-command":
            scheduler = True
    if not (slowlog_enable or slowlog_tuning or slowlog_inspect or large_objects or scheduler):
        report.append(
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis "
            "community to get some help, providing this report in your help request.\n"
        )
        return "".join(report)
    report.append("\nI have a few advices for you:\n\n")
    if slowlog_enable:
        report.append(
            "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log "
            f"Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold_ms * 1000}'. If the "
            "Slow log is disabled Redis is not able to log slow commands execution for you.\n"
        )
    if slowlog_tuning:
        report.append(
            "- Your current Slow Log configuration only logs events that are slower than your configured latency "
            f"monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_ms * 1000}'.\n"
        )
    if slowlog_inspect:
        report.append(
            "- Check your Slow Log to understand what are the commands you are running which are too slow to "
            "execute. Please check https://redis.io/commands/slowlog for more information.\n"
        )
    if scheduler:
        report.append(
            "- The system is slow to execute Redis code paths not containing system calls. This usually means the "
            "system does not provide Redis CPU time to run for long periods. You should try to:\n"
            "  1) Lower the system load.\n"
            "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
            '  3) Check if you have a "noisy neighbour" problem.\n'
            "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
            "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are "
            "using Jemalloc. However this may create fragmentation problems.\n"
        )
    if large_objects:
        report.append(
            "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking "
            "operation. If you have very large objects that are often deleted, expired, or evicted, try to "
            "fragment those objects into multiple smaller objects.\n"
        )
    return "".join(report)
