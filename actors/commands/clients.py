"""CLIENT and its subcommands (ID, INFO, LIST, KILL, SETNAME, REPLY, UNBLOCK, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import clients_modes, command
from actors.commands._util import parse_int
from actors.commands.server import check_subcommand
from actors.server.client import ClientKind
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK, Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client


# -- CLIENT ----------------------------------------------------------------------------------------------


def validate_client_name(name: bytes) -> None:
    if any(c < 0x21 or c > 0x7E for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")


def _client_type(client: Client) -> str:
    if client.kind is ClientKind.MASTER:
        return "master"
    if getattr(client, "is_replica_link", False):
        return "replica"
    if client.in_pubsub:
        return "pubsub"
    return "normal"


# Redis 7.0's CLIENT HELP, plus SETINFO and NO-TOUCH (Redis 7.2's, which clients such as redis-py send).
_CLIENT_HELP = [
    b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CACHING (YES|NO)",
    b"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    b"GETREDIR",
    b"    Return the client ID we are redirecting to when tracking is enabled.",
    b"GETNAME",
    b"    Return the name of the current connection.",
    b"ID",
    b"    Return the ID of the current connection.",
    b"INFO",
    b"    Return information about the current client connection.",
    b"KILL <ip:port>",
    b"    Kill connection made from <ip:port>.",
    b"KILL <option> <value> [<option> <value> [...]]",
    b"    Kill connections. Options are:",
    b"    * ADDR (<ip:port>|<unixsocket>:0)",
    b"      Kill connections made from the specified address",
    b"    * LADDR (<ip:port>|<unixsocket>:0)",
    b"      Kill connections made to specified local address",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    b"      Kill connections by type.",
    b"    * USER <username>",
    b"      Kill connections authenticated by <username>.",
    b"    * SKIPME (YES|NO)",
    b"      Skip killing current connection (default: yes).",
    b"LIST [options ...]",
    b"    Return information about client connections. Options:",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    b"      Return clients of specified type.",
    b"UNPAUSE",
    b"    Stop the current client pause, resuming traffic.",
    b"PAUSE <timeout> [WRITE|ALL]",
    b"    Suspend all, or just write, clients for <timeout> milliseconds.",
    b"REPLY (ON|OFF|SKIP)",
    b"    Control the replies sent to the current connection.",
    b"SETNAME <name>",
    b"    Assign the name <name> to the current connection.",
    b"SETINFO <option> <value>",
    b"    Set client meta attr. Options are:",
    b"    * LIB-NAME: the client lib name.",
    b"    * LIB-VER: the client lib version.",
    b"UNBLOCK <clientid> [TIMEOUT|ERROR]",
    b"    Unblock the specified blocked client.",
    b"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    b"         [OPTIN] [OPTOUT] [NOLOOP]",
    b"    Control server assisted client side caching.",
    b"TRACKINGINFO",
    b"    Report tracking status for the current connection.",
    b"NO-EVICT (ON|OFF)",
    b"    Protect current client connection from eviction.",
    b"NO-TOUCH (ON|OFF)",
    b"    Will not touch LRU/LFU stats when this mode is on.",
    b"HELP",
    b"    Prints this help.",
]


@command(
    "client",
    -2,
    "stale loading",
    (0, 0, 0),
    "connection",
    "A container for client connection commands",
    subcommands=(
        "id",
        "info",
        "kill",
        "list",
        "getname",
        "setname",
        "setinfo",
        "no-evict",
        "no-touch",
        "pause",
        "unpause",
        "tracking",
        "caching",
        "trackinginfo",
        "getredir",
        "reply",
        "unblock",
        "help",
    ),
)
def cmd_client(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    sub = check_subcommand("client", argv)
    if sub == b"id" and len(argv) == 2:
        return client.id
    if sub == b"getname" and len(argv) == 2:
        return client.name or None
    if sub == b"setname" and len(argv) == 3:
        validate_client_name(argv[2])
        client.name = argv[2]
        return OK
    if sub == b"setinfo" and len(argv) == 4:
        attr = argv[2].lower()
        value = argv[3].decode("utf-8", "replace")
        if any(c in value for c in " \n\r"):
            raise CommandError(
                f"ERR {argv[2].decode()} cannot contain spaces, newlines or special characters."
            )
        if attr == b"lib-name":
            client.lib_name = value
        elif attr == b"lib-ver":
            client.lib_ver = value
        else:
            raise CommandError(f"ERR Unrecognized option '{echoed(argv[2])}'")
        return OK
    if sub == b"info" and len(argv) == 2:
        return Verbatim(client.describe(argv).encode() + b"\n")
    if sub == b"list":
        # A client CLIENT KILL closed is gone for Redis (freed at once), here once its socket's close is
        # processed, maybe after the next command: it is not listed meanwhile.
        chosen = [c for c in server.clients.values() if c is client or not c.close_requested]
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"type" and i + 1 < len(argv):
                wanted = argv[i + 1].lower().decode()
                wanted = {"slave": "replica"}.get(wanted, wanted)
                if wanted not in ("normal", "master", "replica", "pubsub"):
                    raise CommandError(f"ERR Unknown client type '{echoed(argv[i + 1])}'")
                chosen = [c for c in chosen if _client_type(c) == wanted]
                i += 2
            elif opt == b"id" and i + 1 < len(argv):
                ids = {parse_int(raw, "ERR Invalid client ID") for raw in argv[i + 1 :]}
                chosen = [c for c in chosen if c.id in ids]
                i = len(argv)
            else:
                raise CommandError(errors.SYNTAX)
        return Verbatim("".join(c.describe(argv if c is client else None) + "\n" for c in chosen).encode())
    if sub == b"kill":
        return _client_kill(client, argv)
    if sub == b"no-touch" and len(argv) == 3:
        if argv[2].lower() not in (b"on", b"off"):
            raise CommandError(errors.SYNTAX)
        return OK
    handled = clients_modes.run(client, sub, argv)  # PAUSE, UNPAUSE, REPLY, NO-EVICT, TRACKING, ...
    if handled is not clients_modes.NOT_MINE:
        return handled
    if sub == b"unblock" and len(argv) in (3, 4):
        # CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: the blocked-client registry (actors/blocking.py) ends the wait.
        with_error = False
        if len(argv) == 4:
            reason = argv[3].lower()
            if reason not in (b"timeout", b"error"):
                raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            with_error = reason == b"error"
        from actors.server.blocking import unblock_client

        target = client.server.clients.get(parse_int(argv[2]))
        return 1 if target is not None and unblock_client(client.server, target, with_error) else 0
    if sub == b"help" and len(argv) == 2:
        return _CLIENT_HELP
    raise errors.unknown_subcommand(errors.echoed(argv[1]), "client")


def _client_kill(client: Client, argv: list[bytes]) -> Any:
    """CLIENT KILL addr | CLIENT KILL filter value ...: clients already killed (closing) are not matched."""
    server = client.server
    if len(argv) == 3:
        addr = argv[2].decode("utf-8", "replace")
        for other in list(server.clients.values()):
            if other.addr == addr and not other.close_requested:
                other.kill()
                return OK
        raise CommandError("ERR No such client")
    if len(argv) % 2 != 0:
        raise CommandError(errors.SYNTAX)
    filters: list[tuple[bytes, bytes]] = []
    skipme = True
    for i in range(2, len(argv), 2):
        opt, value = argv[i].lower(), argv[i + 1]
        if opt == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(errors.SYNTAX)
            skipme = value.lower() == b"yes"
        elif opt in (b"id", b"addr", b"laddr", b"type", b"user"):
            if opt == b"id" and parse_int(value, "ERR client-id should be greater than 0") <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            if opt == b"type" and value.lower() not in (
                b"normal",
                b"master",
                b"replica",
                b"slave",
                b"pubsub",
            ):
                raise CommandError(f"ERR Unknown client type '{echoed(value)}'")
            if opt == b"user" and value.decode("utf-8", "surrogateescape") not in server.acl.users:
                raise CommandError(f"ERR No such user '{echoed(value)}'")
            filters.append((opt, value))
        else:
            raise CommandError(errors.SYNTAX)
    killed = 0
    for other in list(server.clients.values()):
        if (skipme and other is client) or (other.close_requested and other is not client):
            # Redis frees a killed client at once; ours leaves the table when its socket closes, a loop
            # iteration later, and a second KILL in between must not count it again.
            continue
        if all(_client_matches(other, opt, value) for opt, value in filters):
            other.kill()
            killed += 1
    # Replicas are not the loop's clients (their links belong to the replication actor): TYPE replica alone
    # drops them all there, and they reconnect, as Redis's killed replicas do.
    if [opt for opt, _ in filters] == [b"type"] and filters[0][1].lower() in (b"replica", b"slave"):
        replication = server.replication
        if replication is not None:
            killed += replication.kill_replicas()
    return killed


def _client_matches(client: Client, opt: bytes, value: bytes) -> bool:
    text = value.decode("utf-8", "replace")
    if opt == b"id":
        return client.id == int(value)
    if opt == b"addr":
        return client.addr == text
    if opt == b"laddr":
        return client.laddr == text
    if opt == b"type":
        return _client_type(client) == {"slave": "replica"}.get(text.lower(), text.lower())
    return client.user.name == text  # user
