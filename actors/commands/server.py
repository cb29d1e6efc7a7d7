"""Server commands: COMMAND, SHUTDOWN, MONITOR, and the container-subcommand check the other containers share
(CLIENT, CONFIG, SLOWLOG: ``check_subcommand``). PING & co. are in connection.py, CLIENT in clients.py, INFO in
info.py, CONFIG in config.py, DEBUG in debug.py, SLOWLOG in slowlog.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import COMMANDS, Command, command
from actors.commands._util import glob_match
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client


# -- subcommands -----------------------------------------------------------------------------------------

# Redis 7.0's arity of each container subcommand (same convention as a command's: -n means at least n).
SUBCOMMAND_ARITY: dict[str, dict[bytes, int]] = {
    "client": {
        b"id": 2,
        b"info": 2,
        b"kill": -3,
        b"list": -2,
        b"getname": 2,
        b"setname": 3,
        b"setinfo": 4,
        b"no-evict": 3,
        b"no-touch": 3,
        b"reply": 3,
        b"unblock": -3,
        b"help": 2,
    },
    "command": {b"count": 2, b"docs": -2, b"info": -2, b"list": -2, b"getkeys": -4, b"help": 2},
    "config": {b"get": -3, b"set": -4, b"resetstat": 2, b"help": 2},
    "slowlog": {b"get": -2, b"len": 2, b"reset": 2, b"help": 2},
}


def check_subcommand(container: str, argv: list[bytes]) -> bytes:
    """The lowered subcommand of ``argv``, after Redis's checks: it exists, then its arity."""
    sub = argv[1].lower()
    arity = SUBCOMMAND_ARITY[container].get(sub)
    if arity is None:
        raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), container)
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"{container}|{sub.decode()}")
    return sub


# -- COMMAND ---------------------------------------------------------------------------------------------


def _command_info(cmd: Command) -> list[Any]:
    flags = [f for f in sorted(cmd.flags) if f not in ("pubsub-ok", "no-multi")]
    return [
        cmd.name.encode(),
        cmd.arity,
        [f.encode() for f in flags],
        cmd.first_key,
        cmd.last_key,
        cmd.key_step,
        [],
        [],
        [],
        [[f"{cmd.name}|{s}".encode(), -2, [], 0, 0, 0, [], [], [], []] for s in cmd.subcommands],
    ]


def _command_docs(cmd: Command) -> dict[bytes, Any]:
    doc: dict[bytes, Any] = {
        b"summary": cmd.summary.encode(),
        b"since": b"1.0.0",
        b"group": cmd.group.encode(),
    }
    if cmd.subcommands:
        doc[b"subcommands"] = {
            f"{cmd.name}|{s}".encode(): {b"summary": b"", b"since": b"1.0.0", b"group": cmd.group.encode()}
            for s in cmd.subcommands
        }
    return doc


@command(
    "command",
    -1,
    "loading stale",
    (0, 0, 0),
    "server",
    "Get array of Redis command details",
    subcommands=("count", "docs", "info", "list", "getkeys", "help"),
)
def cmd_command(client: Client, argv: list[bytes]) -> Any:
    if len(argv) == 1:
        return [_command_info(c) for c in COMMANDS.values()]
    sub = check_subcommand("command", argv)
    if sub == b"count" and len(argv) == 2:
        return len(COMMANDS)
    if sub == b"info":
        names = argv[2:] or [c.encode() for c in (x.name for x in COMMANDS.values())]
        return [_command_info(COMMANDS[n.lower()]) if n.lower() in COMMANDS else None for n in names]
    if sub == b"docs":
        names = [n.lower() for n in argv[2:]] or list(COMMANDS)
        return {n: _command_docs(COMMANDS[n]) for n in names if n in COMMANDS}
    if sub == b"list":
        pattern = None
        if len(argv) == 5 and argv[2].lower() == b"filterby" and argv[3].lower() == b"pattern":
            pattern = argv[4]
        elif len(argv) != 2:
            raise CommandError(errors.SYNTAX)
        return [n for n in COMMANDS if pattern is None or glob_match(pattern, n)]
    if sub == b"getkeys" and len(argv) >= 3:
        target = COMMANDS.get(argv[2].lower())
        if target is None:
            raise CommandError("ERR Invalid command specified")
        args = argv[2:]
        if (target.arity > 0 and len(args) != target.arity) or len(args) < -target.arity:
            raise CommandError("ERR Invalid number of arguments specified for command")
        if target.first_key == 0:
            raise CommandError("ERR The command has no key arguments")
        last = target.last_key if target.last_key >= 0 else len(args) + target.last_key
        return [args[i] for i in range(target.first_key, min(last, len(args) - 1) + 1, target.key_step)]
    if sub == b"help":
        return [
            b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"(no subcommand)",
            b"COUNT",
            b"DOCS [<command-name> ...]",
            b"GETKEYS <full-command>",
            b"INFO [<command-name> ...]",
            b"LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            b"HELP",
        ]
    raise errors.unknown_subcommand(argv[1].decode("utf-8", "replace"), "command")


# -- SHUTDOWN --------------------------------------------------------------------------------------------


@command(
    "shutdown",
    -1,
    "admin loading stale deny-multi",
    (0, 0, 0),
    "server",
    "Synchronously save the dataset to disk and then shut down the server",
)
def cmd_shutdown(client: Client, argv: list[bytes]) -> Any:
    save: bool | None = None
    for raw in argv[1:]:
        opt = raw.lower()
        if opt == b"nosave":
            save = False
        elif opt == b"save":
            save = True
        elif opt in (b"now", b"force", b"abort"):
            continue
        else:
            raise CommandError(errors.SYNTAX)
    from actors.commands import BLOCKED

    error = client.server.request_shutdown(save)
    if error:
        raise CommandError(error)
    # No reply: the node exits and clients see the connection close, as with Redis (redis-py expects that).
    return BLOCKED


@command(
    "monitor", 1, "admin noscript loading stale deny-multi", (0, 0, 0), "server", "Listen for all requests"
)
def cmd_monitor(client: Client, argv: list[bytes]) -> Any:
    """From now on the client gets every command the node runs, one status line each (Redis's format);
    administrative commands are not shown, nor commands refused before they run."""
    if client.kind is not ClientKind.RESP:
        raise CommandError("ERR MONITOR is only available over RESP")
    client.server.add_monitor(client)
    return OK
