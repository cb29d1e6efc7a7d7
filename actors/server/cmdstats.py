"""Per-subcommand statistics, as Redis 7.0 keeps them: a container command's calls (CONFIG, CLIENT, XINFO ...)
are counted, timed and named per subcommand (``cmdstat_config|set``, LATENCY HISTOGRAM's ``client|id``,
CLIENT LIST's ``cmd=client|list``), never on the container itself.

What it owns: each container's table of subcommand records (``Command.sub_stats``: a copy of the container's
``Command`` under the full name, with counters of its own, made on the subcommand's first call), and the
walks over them for INFO commandstats / latencystats, LATENCY HISTOGRAM, CONFIG RESETSTAT and
total_commands_processed. Server.call swaps in the record (one truth test of ``cmd.subcommands`` per call;
the data commands of the fast paths have no subcommands). An unknown subcommand stays on the container, whose
function replies the error. Loop thread only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.commands import Command
    from actors.server.server import Server


# Commands whose "subcommands" exist here for ACL rules only (``+debug|digest``): Redis 7.0 gives DEBUG no
# subcommand table, so its calls count as ``debug``.
_FLAT = frozenset(("debug",))


def subcommand(cmd: Command, argv: list[bytes]) -> Command:
    """The record ``argv`` counts on: its subcommand's (made on first use), else ``cmd`` itself."""
    if len(argv) < 2 or cmd.name in _FLAT:
        return cmd
    sub = argv[1].lower().decode("utf-8", "replace")
    table = cmd.sub_stats
    if table is None:
        table = cmd.sub_stats = {}
    found = table.get(sub)
    if found is None:
        if sub not in cmd.subcommands:
            return cmd
        found = table[sub] = replace(
            cmd,
            name=f"{cmd.name}|{sub}",
            subcommands=[],
            sub_stats=None,
            calls=0,
            usec=0,
            failed_calls=0,
            rejected_calls=0,
            latency_us=[0] * len(cmd.latency_us),
            latency_large={},
        )
    return found


def with_subcommands(commands: Iterable[Command]) -> Iterator[Command]:
    """Each command, then its subcommands' records (in first-call order)."""
    for cmd in commands:
        yield cmd
        if cmd.sub_stats:
            yield from cmd.sub_stats.values()


def unique_commands(server: Server) -> list[Command]:
    """The server's commands once each (aliases share one Command), with their subcommands' records."""
    unique = {id(cmd): cmd for cmd in server.commands.values()}
    return list(with_subcommands(unique.values()))


def find(server: Server, name: bytes) -> Command | None:
    """LATENCY HISTOGRAM's argument: ``get`` or ``config|set`` (a subcommand never called has no record)."""
    base, _, sub = name.lower().partition(b"|")
    cmd = server.commands.get(base)
    if cmd is None or not sub:
        return cmd
    table = cmd.sub_stats or {}
    return table.get(sub.decode("utf-8", "replace"))
