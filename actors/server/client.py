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

from actors.server.client_memory import usage
from actors.server.reply_mode import ReplyMode

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.acl_rules import User
    from actors.server.server import Server

_next_id = itertools.count(1)


class ClientKind(Enum):
    RESP = "resp"  # a TCP connection speaking RESP2/RESP3
    NATIVE = "native"  # a ZeroMQ peer speaking the msgpack envelope
    MASTER = "master"  # on a replica: the stream of writes from its master (never refused, never replied to)
    INTERNAL = "internal"  # AOF loading and tests: no transport at all


# A master's replication stream and the AOF loader run as no user at all (Redis: c->user is NULL).
_ACL_EXEMPT_KINDS = (ClientKind.MASTER, ClientKind.INTERNAL)


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
        # The ACL user this client runs as (actors/server/acl.py); "default" until AUTH says otherwise.
        self._user = server.acl.default
        self._authenticated = not server.acl.auth_required_by_default()
        # The dispatcher's per-client test on its fast paths: authenticated as a user no ACL rule can refuse,
        # so neither NOAUTH nor NOPERM applies. Kept by the ``user``/``authenticated`` setters and by
        # ``Acl.changed`` (a user's rules changed): one restricted user costs only its own clients the fast path.
        self.unchecked = self._authenticated and (self._user.permissive or kind in _ACL_EXEMPT_KINDS)
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
        self.shard_channels: set[bytes] = set()  # SSUBSCRIBE (actors/commands/pubsub_shard.py)
        # A write whose effect is not a pure function of its arguments (SET EX, INCRBYFLOAT, SPOP, ...) sets
        # the commands to propagate instead of its own argv.
        self.propagate_as: list[list[bytes]] | None = None
        # The replication offset right after this client's last propagated write: what WAIT waits for (Redis's
        # c->woff), so a REPLCONF GETACK or another client's write later on the stream does not move it.
        self.woff = 0
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
        # Closes it at once, dropping unsent replies (client eviction, output buffer limit).
        self.abort: Callable[[], None] = lambda: None
        # (query buffer bytes, the room it holds, unsent reply bytes) of its transport (client_memory.py).
        self.buffers: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)
        # Sends bytes as they are, not as a reply (the RDB payload of SYNC); set by a RESP transport.
        self.write_raw: Callable[[bytes], None] = lambda data: None
        # REPLCONF rdb-only 1: this client wants a snapshot from SYNC/PSYNC, not a replication stream.
        self.rdb_only = False
        # REPLCONF rdb-filter-only: None (the whole RDB), or whether the function libraries are included in an
        # RDB that leaves the dataset out.
        self.rdb_functions_only: bool | None = None
        # What a Redis replica said with REPLCONF before its PSYNC: listening-port, ip-address, capa.
        self.repl_listening_port = 0
        self.repl_ip = ""
        self.repl_capa: set[bytes] = set()
        # Hands the connection's socket over (PSYNC of a RESP replica): returns a duplicate of its file
        # descriptor and any reply bytes not yet written, and forgets the client; None if it cannot.
        self.detach: Callable[[], tuple[int, bytes] | None] = lambda: None
        # CLIENT REPLY: ON, OFF or SKIP_NEXT (actors/server/reply_mode.py swallows the replies).
        self.reply_mode = ReplyMode.ON
        # CLIENT NO-EVICT on: excluded from client eviction (flag "e" in CLIENT LIST).
        self.no_evict = False
        # CLIENT TRACKING state (actors/server/tracking.py), None while tracking is off.
        self.tracking: Any = None
        # Connected through the unixsocket (flag "U"): local, as a loopback address is.
        self.unix_socket = False

    @property
    def user(self) -> User:
        return self._user

    @user.setter
    def user(self, value: User) -> None:
        self._user = value
        self.refresh_unchecked()

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        self._authenticated = value
        self.refresh_unchecked()

    def refresh_unchecked(self) -> None:
        self.unchecked = self._authenticated and (self._user.permissive or self.kind in _ACL_EXEMPT_KINDS)

    @property
    def db_index(self) -> int:
        return self.db.id

    @property
    def in_pubsub(self) -> bool:
        return bool(self.channels or self.patterns or self.shard_channels)

    def select(self, index: int) -> None:
        self.db = self.server.keyspace.dbs[index]

    def describe(self, argv: list[bytes] | None = None) -> str:
        """One line of CLIENT LIST, with Redis's fields (``argv``: the command running, CLIENT LIST's caller)."""
        now = time.monotonic()
        mem = usage(self, argv)
        # The caller's request stays in Redis's query buffer while it runs (unpipelined): its RESP size.
        qbuf = mem.qbuf + (_request_bytes(argv) if argv else 0)
        flags = ""  # in Redis's order (getClientInfoString)
        if self in self.server.monitors:
            flags += "O"
        if self.kind is ClientKind.MASTER:
            flags += "M"
        if self.in_pubsub:
            flags += "P"
        if self.multi is not None:
            flags += "x"
        if self.blocked is not None:
            flags += "b"
        tracking = self.tracking
        if tracking is not None:
            flags += tracking.flag_letters()
        if self.watched and self.dirty_cas:
            flags += "d"
        if self.close_requested:
            flags += "c"
        if self.unix_socket:
            flags += "U"
        if self.cluster_readonly:
            flags += "r"
        if self.no_evict:
            flags += "e"
        flags = flags or "N"
        redir = tracking.redirect if tracking is not None else -1
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={self.name.decode('utf-8', 'replace')} "
            f"age={int(now - self.created_s)} idle={int(now - self.last_interaction_s)} flags={flags} "
            f"db={self.db.id} sub={len(self.channels)} psub={len(self.patterns)} ssub={len(self.shard_channels)} "
            f"multi={-1 if self.multi is None else len(self.multi)} qbuf={qbuf} qbuf-free=0 argv-mem={mem.argv_mem} "
            f"multi-mem={mem.multi_mem} rbs=0 rbp=0 obl=0 oll=0 omem={mem.omem} tot-mem={mem.total} events=r "
            f"cmd={self.last_command} user={self.user.name} "
            f"redir={redir} resp={3 if self.resp3 else 2} lib-name={self.lib_name} lib-ver={self.lib_ver}"
        )


def _request_bytes(argv: list[bytes]) -> int:
    """A request's size in RESP (``*2 $6 client $4 list``: 26)."""
    return len(b"*%d\r\n" % len(argv)) + sum(len(b"$%d\r\n" % len(arg)) + len(arg) + 2 for arg in argv)
