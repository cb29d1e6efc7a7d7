"""SLOWLOG GET / LEN / RESET / HELP over ``server.slowlog`` (entries are made in Server.call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.server import check_subcommand
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client


_SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


@command(
    "slowlog",
    -2,
    "admin random loading stale",
    (0, 0, 0),
    "server",
    "A container for slow log commands",
    subcommands=("get", "len", "reset", "help"),
)
def cmd_slowlog(client: Client, argv: list[bytes]) -> Any:
    """SLOWLOG GET [count] | LEN | RESET | HELP: commands that ran for slowlog-log-slower-than microseconds
    or more (timed in Server.call; the fast lane's plain GET/SET are not timed one by one)."""
    server = client.server
    sub = check_subcommand("slowlog", argv)
    if sub == b"help":
        return _SLOWLOG_HELP
    if sub == b"len":
        return len(server.slowlog)
    if sub == b"reset":
        server.slowlog.clear()
        return OK
    if sub == b"get" and len(argv) <= 3:
        count = 10
        if len(argv) == 3:
            count = parse_int(argv[2], "ERR count should be greater than or equal to -1")
            if count < -1:
                raise CommandError("ERR count should be greater than or equal to -1")
        entries = list(server.slowlog) if count == -1 else list(server.slowlog)[:count]
        return [
            [entry_id, ts, usec, list(args), addr, name] for entry_id, ts, usec, args, addr, name in entries
        ]
    raise CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{echoed(argv[1])[:128]}'. "
        "Try SLOWLOG HELP."
    )
