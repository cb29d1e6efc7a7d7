"""Server commands: COMMAND, SHUTDOWN, MONITOR, and the container-subcommand check the other containers share
(CLIENT, CONFIG, SLOWLOG, CLUSTER without cluster mode: ``check_subcommand``). PING & co. are in connection.py, CLIENT in clients.py, INFO in
info.py, CONFIG in config.py, DEBUG in debug.py, SLOWLOG in slowlog.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.server.client import ClientKind
from actors.server.shutdown import NO_SHUTDOWN, ShutdownFlags
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
        b"pause": -3,
        b"unpause": 2,
        b"tracking": -3,
        b"caching": 3,
        b"trackinginfo": 2,
        b"getredir": 2,
        b"help": 2,
    },
    "config": {b"get": -3, b"set": -4, b"resetstat": 2, b"rewrite": 2, b"help": 2},
    "slowlog": {b"get": -2, b"len": 2, b"reset": 2, b"help": 2},
}


def check_subcommand(container: str, argv: list[bytes]) -> bytes:
    """The lowered subcommand of ``argv``, after Redis's checks: it exists, then its arity. A container not in
    SUBCOMMAND_ARITY (CLUSTER, checked only on its error path) takes its arities from Redis's command table."""
    sub = argv[1].lower()
    arities = SUBCOMMAND_ARITY.get(container)
    if arities is None:
        from actors.commands.keyspecs import INFO  # (a big table: loaded by the first such check only)

        prefix = len(container) + 1  # "cluster|"
        arities = SUBCOMMAND_ARITY[container] = {entry[0][prefix:]: entry[1] for entry in INFO[container][9]}
    arity = arities.get(sub)
    if arity is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), container)
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"{container}|{sub.decode()}")
    return sub


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
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] (actors/server/shutdown.py): no reply when the node stops
    (the connection closes, as with Redis); the client waits while the node waits for its replicas."""
    words = {raw.lower() for raw in argv[1:]}
    if words - {b"nosave", b"save", b"now", b"force", b"abort"}:
        raise CommandError(errors.SYNTAX)
    abort = b"abort" in words
    if (abort and len(words) > 1) or {b"save", b"nosave"} <= words:
        raise CommandError(errors.SYNTAX)  # Redis's illegal combinations
    server = client.server
    if abort:
        if not server.abort_shutdown():
            raise CommandError(NO_SHUTDOWN)
        return OK
    save = True if b"save" in words else False if b"nosave" in words else None
    flags = ShutdownFlags(save, b"now" in words, b"force" in words)
    from actors.commands import BLOCKED

    error = server.request_shutdown(flags, client)
    if error:
        raise CommandError(error)
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
