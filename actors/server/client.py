"""One client's state: a RESP connection, a native-protocol peer, or the replication link from a master.

The master actor owns every Client; commands read and change them through the ``client`` argument. The
transport (socket or ZeroMQ identity) is not here: ``push`` and ``deliver`` are set by whoever serves the
client, so commands can send pub/sub messages and wake blocked clients without knowing the transport.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.server import Server

_next_id = itertools.count(1)


class ClientKind(Enum):
    RESP = "resp"  # a TCP connection speaking RESP2/RESP3
    NATIVE = "native"  # a ZeroMQ peer speaking the msgpack envelope
    MASTER = "master"  # on a replica: the stream of writes from its master (never refused, never replied to)
    INTERNAL = "internal"  # AOF loading and tests: no transport at all


class Client:
    def __init__(
        self, server: Server, kind: ClientKind = ClientKind.INTERNAL, addr: str = "", laddr: str = ""
    ) -> None:
        self.id = next(_next_id)
        self.server = server
        self.kind = kind
        self.addr = addr
        self.laddr = laddr
        self.db: Database = server.keyspace.dbs[0]
        # RESP3 after HELLO 3: maps, sets, doubles and push messages get their own types.
        self.resp3 = False
        self.name = b""
        self.lib_name = ""
        self.lib_ver = ""
        self.authenticated = not server.config["requirepass"]
        self.created_s = time.monotonic()
        self.last_interaction_s = self.created_s
        self.last_command = "NULL"
        # Cluster mode (actors/cluster/routing.py): ASKING lets the next command into an importing slot;
        # READONLY lets a replica serve reads of its master's slots.
        self.asking = False
        self.cluster_readonly = False
        # MULTI: None outside a transaction, else the queued argv lists.
        self.multi: list[tuple[Any, list[bytes]]] | None = None
        # A command failed to queue (unknown, wrong arity): EXEC will answer EXECABORT.
        self.multi_error = False
        # A WATCHed key changed: EXEC will answer nil. Set by Keyspace.touch.
        self.dirty_cas = False
        self.watched: list[tuple[Database, bytes]] = []
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        # A write whose effect is not a pure function of its arguments (SET EX, INCRBYFLOAT, SPOP, ...) sets
        # the commands to propagate instead of its own argv.
        self.propagate_as: list[list[bytes]] | None = None
        # Set by QUIT, CLIENT KILL and protocol errors: the connection closes once pending replies are sent.
        self.close_requested = False
        # Blocking commands (BLPOP, ...): state kept by the command family while the client waits.
        self.blocked: Any = None
        # Sends an out-of-band message (pub/sub) to this client; set by its transport.
        self.push: Callable[[Any], None] = lambda value: None
        # Sends the reply of a command that blocked, and resumes this client's queued commands.
        self.deliver: Callable[[Any], None] = lambda value: None
        # Native protocol: the id of the request being answered (a blocked command's reply needs it later).
        self.native_request_id = 0
        # Closes the transport (CLIENT KILL).
        self.kill: Callable[[], None] = lambda: None
        # Sends bytes as they are, not as a reply (the RDB payload of SYNC); set by a RESP transport.
        self.write_raw: Callable[[bytes], None] = lambda data: None
        # REPLCONF rdb-only 1: this client wants a snapshot from SYNC/PSYNC, not a replication stream.
        self.rdb_only = False

    @property
    def db_index(self) -> int:
        return self.db.id

    @property
    def in_pubsub(self) -> bool:
        return bool(self.channels or self.patterns)

    def select(self, index: int) -> None:
        self.db = self.server.keyspace.dbs[index]

    def describe(self) -> str:
        """One line of CLIENT LIST, with Redis's fields."""
        now = time.monotonic()
        flags = ""
        if self.kind is ClientKind.MASTER:
            flags += "M"
        if self.multi is not None:
            flags += "x"
        if self.blocked is not None:
            flags += "b"
        if self in self.server.monitors:
            flags += "O"
        if self.in_pubsub:
            flags += "P"
        if self.watched and self.dirty_cas:
            flags += "d"
        flags = flags or "N"
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={self.name.decode('utf-8', 'replace')} "
            f"age={int(now - self.created_s)} idle={int(now - self.last_interaction_s)} flags={flags} "
            f"db={self.db.id} sub={len(self.channels)} psub={len(self.patterns)} ssub=0 "
            f"multi={-1 if self.multi is None else len(self.multi)} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 "
            f"rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={self.last_command} user=default "
            f"redir=-1 resp={3 if self.resp3 else 2} lib-name={self.lib_name} lib-ver={self.lib_ver}"
        )
