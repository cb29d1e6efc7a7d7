"""Replication commands: REPLICAOF (SLAVEOF), ROLE, WAIT, REPLCONF, and SYNC/PSYNC for snapshots.

They are thin: the work is done by the loop-side replication facade (actors/replication/loop_side.py, reached as
``server.replication``, a ``ReplicationPort``). Replies and error strings are Redis 7.0's (replication.c
``replicaofCommand``, ``roleCommand``, ``waitCommand``, ``replconfCommand``). INFO replication is the
facade's ``info`` section.

redactor's own replicas speak to their master over the node bus. Over RESP, SYNC and PSYNC serve Redis
replicas (redis-server ``--replicaof`` this node): REPLCONF records listening-port, ip-address and capa,
and PSYNC hands the connection to the replication actor (actors/replication/resp_feed.py and
resp_replica.py), which answers as Redis's master does (+FULLRESYNC or +CONTINUE, the snapshot, the stream).
After ``REPLCONF rdb-only 1`` they send only a snapshot (``redis-cli --rdb``) from a BGSAVE, as Redis's
disk-based sync does, and close.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED, command
from actors.commands._util import parse_int
from actors.server.client import ClientKind
from actors.server.ports import WAIT_ON_REPLICA
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.config import Config
    from actors.server.client import Client
    from actors.server.ports import ReplicationPort

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
    b"redactor-probe",
)
# A replica's link asks this before anything else: a redactor master says so, and the link goes over the node
# bus; a Redis master refuses the option and the link speaks Redis's PSYNC (actors/replication/redis_master.py).
REDACTOR_PROBE_REPLY = "REDACTOR"  # a status reply: +REDACTOR <bus port>


def _replication(client: Client) -> ReplicationPort:
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
    if client.server.cluster is not None:
        raise CommandError("ERR REPLICAOF not allowed in cluster mode.")
    replication = _replication(client)
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        replication.unset_master()
        return OK
    port = parse_int(argv[2], INVALID_MASTER_PORT)
    if not 0 <= port <= 65535:
        raise CommandError(INVALID_MASTER_PORT)
    return replication.set_master(argv[1].decode("utf-8", "replace"), port)


@command(
    "failover",
    -1,
    "admin noscript stale",
    (0, 0, 0),
    "server",
    "Start a coordinated failover between this server and one of its replicas.",
)
def cmd_failover(client: Client, argv: list[bytes]) -> Any:
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (actors/replication/failover.py): arguments checked
    as Redis's failoverCommand checks them, in its order."""
    if client.server.cluster is not None:
        raise CommandError("ERR FAILOVER not allowed in cluster mode.")
    replication = _replication(client)
    if len(argv) == 2 and argv[1].lower() == b"abort":
        if not replication.failover_abort():
            raise CommandError("ERR No failover in progress.")
        return OK
    timeout_ms = 0
    host: str | None = None
    port = 0
    force = False
    index = 1
    while index < len(argv):
        word = argv[index].lower()
        if word == b"timeout" and index + 1 < len(argv) and not timeout_ms:
            timeout_ms = parse_int(argv[index + 1])
            if timeout_ms <= 0:
                raise CommandError("ERR FAILOVER timeout must be greater than 0")
            index += 2
        elif word == b"to" and index + 2 < len(argv) and host is None:
            port = parse_int(argv[index + 2])
            host = argv[index + 1].decode("utf-8", "replace")
            index += 3
        elif word == b"force" and not force:
            force = True
            index += 1
        else:
            raise CommandError(errors.SYNTAX)
    replication.failover(host, port, timeout_ms, force)
    return OK


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
        option = argv[index].lower()
        if option not in _REPLCONF_OPTIONS:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {echoed(argv[index])}")
        value = argv[index + 1]
        if option == b"rdb-only":
            flag = parse_int(value, errors.NOT_INTEGER)
            if flag not in (0, 1):
                raise CommandError("ERR value is out of range, value must between 0 and 1")
            client.rdb_only = bool(flag)
        elif option == b"rdb-filter-only":
            # Redis's include filters: the dataset is left out, and "functions" keeps the libraries ("" keeps
            # nothing). They shape an rdb-only SYNC's RDB (_sync). A replica's SYNC (redis-cli --replica sends
            # "", then discards the RDB) still gets the whole snapshot: the replication actor writes it.
            words = value.split()
            for word in words:
                if word.lower() != b"functions":
                    raise CommandError(f"ERR Unsupported rdb-filter-only option: {echoed(word)}")
            client.rdb_functions_only = bool(words)
        elif option == b"listening-port":
            client.repl_listening_port = parse_int(value, errors.NOT_INTEGER)
        elif option == b"ip-address":
            client.repl_ip = value.decode("utf-8", "replace")
        elif option == b"redactor-probe":
            return f"{REDACTOR_PROBE_REPLY} {_own_bus_port(client.server.config)}"
        elif option == b"capa":
            client.repl_capa.add(value.lower())
        elif option == b"getack" and client.kind is ClientKind.MASTER:
            _replication(client).getack_in_stream()  # in the stream of a Redis master: ack now
    return OK


SYNC_NEEDS_RDB_ONLY = (
    "ERR SYNC and PSYNC over RESP only send a snapshot: send REPLCONF rdb-only 1 first (as redis-cli --rdb "
    "does). redactor replicas replicate over the node bus: use REPLICAOF"
)
SYNC_FAILED = b"-ERR Background save for SYNC failed: see the node's log\r\n"


@command("sync", 1, "admin noscript deny-multi", (0, 0, 0), "server", "Internal command used for replication")
def cmd_sync(client: Client, argv: list[bytes]) -> Any:
    if not client.rdb_only and client.kind is ClientKind.RESP:
        return _replication(client).attach_resp_replica(client, "?", -1, True)
    return _sync(client, b"")


@command(
    "psync", -3, "admin noscript deny-multi", (0, 0, 0), "server", "Internal command used for replication"
)
def cmd_psync(client: Client, argv: list[bytes]) -> Any:
    replication = _replication(client)
    if not client.rdb_only and client.kind is ClientKind.RESP:
        # A Redis replica (redis-server --replicaof this node): it gets the snapshot, then the stream.
        offset = parse_int(argv[2], errors.NOT_INTEGER)
        return replication.attach_resp_replica(client, argv[1].decode("utf-8", "replace"), offset, False)
    # Always a full resync: a snapshot is all an rdb-only client gets (replicationSetupSlaveForFullResync).
    return _sync(client, b"+FULLRESYNC %s %d\r\n" % (replication.replid.encode(), client.server.repl_offset))


class _SnapshotWait:
    """``client.blocked`` while SYNC waits for its BGSAVE: the client's next commands wait behind it."""


def _bulk(rdb: bytes) -> bytes:
    return b"$%d\r\n" % len(rdb) + rdb


def _sync(client: Client, preamble: bytes) -> Any:
    """An rdb-only SYNC/PSYNC: dump.rdb as a BGSAVE writes it, sent as ``$<length>\r\n<bytes>`` (after the
    ``preamble``), then the connection closes: Redis's disk-based sync to a client that wants the RDB only."""
    if not client.rdb_only or client.kind is not ClientKind.RESP:
        raise CommandError(SYNC_NEEDS_RDB_ONLY)
    persistence = client.server.persistence
    if persistence is None:
        raise CommandError("ERR persistence is not available on this node")
    if client.rdb_functions_only is not None:  # no keys: made now, no BGSAVE to wait for
        client.write_raw(preamble + _bulk(persistence.filtered_rdb(client.rdb_functions_only)))
        client.kill()
        return BLOCKED
    path = os.path.abspath(persistence.rdb_path)
    waiting = _SnapshotWait()
    client.blocked = waiting

    def done(ok: bool) -> None:
        if client.blocked is not waiting:
            return
        client.blocked = None
        payload = None
        if ok:
            try:
                with open(path, "rb") as f:
                    payload = f.read()
            except OSError:
                payload = None
        client.write_raw(SYNC_FAILED if payload is None else preamble + _bulk(payload))
        client.kill()  # rdb-only: nothing follows the snapshot; the connection closes once it is sent

    persistence.snapshot_for_sync(done)
    return BLOCKED


def _own_bus_port(config: Config) -> int:
    """The bus port a replica is to reach this node at: the one it listens on, or the one a cluster node
    announces to its peers (cluster-announce-bus-port)."""
    if config["cluster-enabled"] and config["cluster-announce-bus-port"]:
        return int(config["cluster-announce-bus-port"])
    return config.bus_port()
