"""Replication commands: REPLICAOF (SLAVEOF), ROLE, WAIT, REPLCONF.

They are thin: the work is done by the loop-side replication facade (actors/replication.py, reached as
``server.replication``). Replies and error strings are Redis 7.0's (replication.c ``replicaofCommand``,
``roleCommand``, ``waitCommand``, ``replconfCommand``). INFO replication is the facade's ``info`` section.

REPLCONF exists for tools that send it over RESP; redactor's own replicas speak to their master over the node
bus, so the options are accepted and have no effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.replication import WAIT_ON_REPLICA
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.client import Client
    from actors.replication import Replication

INVALID_MASTER_PORT = "ERR Invalid master port"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
_REPLCONF_OPTIONS = (
    b"listening-port",
    b"ip-address",
    b"capa",
    b"rdb-only",
    b"ack",
    b"getack",
    b"rdb-filter-only",
)


def _replication(client: Client) -> Replication:
    replication = client.server.replication
    if replication is None:
        raise CommandError("ERR replication is not available on this node")
    return replication


@command(
    "replicaof",
    3,
    "admin noscript stale",
    (0, 0, 0),
    "replication",
    "Make the server a replica of another instance, or promote it as master",
)
def cmd_replicaof(client: Client, argv: list[bytes]) -> Any:
    replication = _replication(client)
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        replication.unset_master()
        return OK
    port = parse_int(argv[2], INVALID_MASTER_PORT)
    if not 0 <= port <= 65535:
        raise CommandError(INVALID_MASTER_PORT)
    return replication.set_master(argv[1].decode("utf-8", "replace"), port)


@command(
    "slaveof",
    3,
    "admin noscript stale",
    (0, 0, 0),
    "replication",
    "Make the server a replica of another instance, or promote it as master",
)
def cmd_slaveof(client: Client, argv: list[bytes]) -> Any:
    return cmd_replicaof(client, argv)


@command(
    "role",
    1,
    "noscript loading stale fast",
    (0, 0, 0),
    "replication",
    "Return the role of the instance in the context of replication",
)
def cmd_role(client: Client, argv: list[bytes]) -> Any:
    return _replication(client).role()


@command(
    "wait",
    3,
    "noscript",
    (0, 0, 0),
    "generic",
    "Wait for the synchronous replication of all the write commands sent in the context of the current "
    "connection",
)
def cmd_wait(client: Client, argv: list[bytes]) -> Any:
    replication = _replication(client)
    if client.server.is_replica:
        raise CommandError(WAIT_ON_REPLICA)
    numreplicas = parse_int(argv[1])
    timeout_ms = parse_int(argv[2], TIMEOUT_NOT_INTEGER)
    if timeout_ms < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    return replication.wait(client, numreplicas, timeout_ms)


@command(
    "replconf",
    -1,
    "admin noscript loading stale",
    (0, 0, 0),
    "server",
    "An internal command for configuring the replication stream",
)
def cmd_replconf(client: Client, argv: list[bytes]) -> Any:
    if len(argv) % 2 == 0:
        raise CommandError(errors.SYNTAX)
    for index in range(1, len(argv), 2):
        if argv[index].lower() not in _REPLCONF_OPTIONS:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {argv[index].decode('utf-8', 'replace')}")
    return OK
