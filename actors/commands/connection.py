"""Connection commands: PING, ECHO, QUIT, AUTH, HELLO, RESET, TIME."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.commands.clients import validate_client_name
from actors.commands.info import server_redis_version
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client


@command("ping", -1, "fast pubsub-ok", (0, 0, 0), "connection", "Ping the server")
def cmd_ping(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise errors.wrong_arity("ping")
    if (client.channels or client.patterns) and not client.resp3:  # client.in_pubsub, without the call
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else "PONG"


@command("echo", 2, "fast stale loading", (0, 0, 0), "connection", "Echo the given string")
def cmd_echo(client: Client, argv: list[bytes]) -> Any:
    return argv[1]


@command(
    "quit",
    -1,
    "fast stale loading no-auth pubsub-ok no-multi",
    (0, 0, 0),
    "connection",
    "Close the connection",
)
def cmd_quit(client: Client, argv: list[bytes]) -> Any:
    client.close_requested = True
    return OK


_NO_DEFAULT_PASSWORD = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)


def _authenticate(client: Client, username: bytes, password: bytes, argv0: bytes) -> None:
    """ACL users: the client runs as ``username`` from now on, or WRONGPASS (and an ACL LOG entry)."""
    if not client.server.acl.authenticate(client, username, password, argv0):
        raise CommandError(errors.WRONGPASS)


@command("auth", -2, "fast stale loading no-auth", (0, 0, 0), "connection", "Authenticate to the server")
def cmd_auth(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        if client.server.acl.default.nopass:
            raise CommandError(_NO_DEFAULT_PASSWORD)
        _authenticate(client, b"default", argv[1], argv[0])
    else:
        _authenticate(client, argv[1], argv[2], argv[0])
    return OK


@command("hello", -1, "fast stale loading no-auth", (0, 0, 0), "connection", "Handshake with Redis")
def cmd_hello(client: Client, argv: list[bytes]) -> Any:
    version = 3 if client.resp3 else 2
    i = 1
    if len(argv) > 1:
        try:
            version = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        i = 2
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    name: bytes | None = None
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"auth" and i + 2 < len(argv):
            _authenticate(client, argv[i + 1], argv[i + 2], argv[0])
            i += 3
        elif opt == b"setname" and i + 1 < len(argv):
            name = argv[i + 1]
            validate_client_name(name)
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{echoed(argv[i])}'")
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
            "<user> <pass> option can be used to authenticate the client and select the RESP protocol "
            "version at the same time"
        )
    if name is not None:
        client.name = name
    client.resp3 = version == 3
    server = client.server
    return {
        b"server": b"redis",
        b"version": server_redis_version(server).encode(),
        b"proto": version,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"replica" if server.is_replica else b"master",
        b"modules": [],
    }


@command(
    "reset",
    1,
    "fast stale loading no-auth pubsub-ok no-multi",
    (0, 0, 0),
    "connection",
    "Reset the connection",
)
def cmd_reset(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    client.multi = None
    client.multi_error = False
    client.dirty_cas = False
    for db, key in client.watched:
        watchers = db.watched.get(key)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del db.watched[key]
    client.watched.clear()
    server.remove_monitor(client)
    for hook in server.client_removed_hooks:
        hook(client)  # pub/sub and blocked-client families forget this client
    client.channels.clear()
    client.patterns.clear()
    client.select(0)
    client.resp3 = False
    client.name = b""
    client.user = server.acl.default
    client.authenticated = not server.acl.auth_required_by_default()
    return "RESET"


@command("time", 1, "fast loading stale", (0, 0, 0), "server", "Return the current server time")
def cmd_time(client: Client, argv: list[bytes]) -> Any:
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]
