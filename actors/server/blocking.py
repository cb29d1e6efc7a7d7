"""Blocked clients: BLPOP, BLMOVE, BZPOPMIN and friends wait here without blocking the node.

A blocking command that cannot be served at once calls ``block()``: the client is recorded as waiting on its
keys (per database, in arrival order), a timer is armed on the master actor's loop, and the command returns
``actors.server.server.BLOCKED`` so the connection sends nothing and queues whatever the client pipelines behind it.

Wake-ups follow Redis's ``handleClientsBlockedOnKeys``: every change to a key goes through
``Keyspace.touch``, whose ``on_modified`` hook marks the key *ready* when someone waits on it. Once the
current command has finished, ``Server.execute`` calls ``Server.after_command`` (set here while keys are
ready), and the waiters of each ready key are served in arrival order while the key still has data of the
type they wait for. Serving pops the data, propagates the non-blocking equivalent (``LPOP key``,
``LMOVE ...``, ``ZPOPMIN key``) and counts a write; the replies are delivered after every ready key has been
served, so a woken client's pipelined commands run after the other waiters had their turn, as in Redis.

Redis 7.0 semantics kept here: a key deleted or replaced by another type leaves its waiters waiting; a
blocking command inside MULTI (or EXEC) behaves as its non-blocking form with an immediate timeout; timeout
``0`` waits forever; disconnecting (and RESET) forgets a blocked client without a reply; a master that turns
replica (REPLICAOF host port in or out of cluster mode, CLUSTER REPLICATE, a failover that took its slots)
releases every blocked client with ``-UNBLOCKED ... (master -> replica?)`` and closes it after the reply, as
Redis's disconnectAllBlockedClients does (clients held by CLIENT PAUSE are not blocked that way).

Everything here runs on the master actor's event-loop thread.
"""

from __future__ import annotations

import functools
import math
import re
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.server.client import Client, ClientKind
from actors.server.errorstats import count_error_reply
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.data.keyspace import Database
    from actors.server.server import Server

# Redis reads timeouts with string2ld, which refuses longer input (MAX_LONG_DOUBLE_CHARS).
MAX_TIMEOUT_CHARS = 5 * 1024
# Deadlines further away than this are treated as "never" (Redis's own arithmetic overflows past them, and
# the event loop's timer heap has no use for centuries).
FOREVER_THRESHOLD_MS = 100 * 365 * 24 * 3600 * 1000
_LLONG_MAX = 2**63 - 1
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
UNBLOCKED_ERROR = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

# What strtold accepts: decimal and hexadecimal floats, inf/infinity; no leading space, nothing trailing.
_LONG_DOUBLE_RE = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?)\Z",
    re.IGNORECASE,
)

# A serve function pops what a blocked client waits for from ``key`` (known to exist, have the waited-for
# type and hold data), propagates and counts the write, and returns the client's reply.
ServeFn = Callable[[Client, "Database", bytes, Any], Any]


@dataclass(eq=False, slots=True)
class BlockedState:
    """One blocked command: what it waits on, how to serve it, what to answer when its time runs out."""

    client: Client
    db_index: int
    keys: list[bytes]
    # Only a key holding this type (collections.deque or ZSet) can serve the client; others leave it waiting.
    value_type: type
    serve: ServeFn
    # The reply when the timeout fires (or CLIENT UNBLOCK): Redis 7.0 sends a null array for every list and
    # sorted-set wait, BLMOVE and BRPOPLPUSH included (RESP2 ``*-1``).
    timeout_reply: Any
    # The loop timer (asyncio.TimerHandle), None when waiting forever or when no loop runs (unit tests).
    timer: Any = None
    # Set once served, timed out or forgotten: the state may still sit in other keys' queues until removed.
    done: bool = False
    # The command that blocked (for logs and introspection).
    command: str = ""
    # Streams (XREAD, XREADGROUP): whether this waiter can be served from ``(db, key, value)`` now, since that
    # depends on the waiter (the ID it reads past, its group), not only on the key holding data. None for
    # lists and sorted sets. It may answer True for a missing key or group: serve then replies an error.
    ready: Callable[[Database, bytes, Any], bool] | None = None
    # The command as sent and how long its first run took: a served waiter's SLOWLOG entry shows them, with the
    # serving time added (Redis's updateStatsOnUnblock); a wait that times out is not logged, as in Redis 7.0.
    argv: list[bytes] | None = None
    first_run_us: int = 0


def parse_timeout_ms(raw: bytes) -> int:
    """A blocking command's timeout in seconds (a float), as milliseconds; 0 means wait forever.

    As Redis's getTimeoutFromObjectOrReply: the seconds are rounded *up* to whole milliseconds, so any positive
    timeout is at least 1 ms; a value whose millisecond count does not fit a signed 64-bit integer (inf,
    1e20) reads as negative, because that is what the C conversion produces.
    """
    if not raw or len(raw) > MAX_TIMEOUT_CHARS or _LONG_DOUBLE_RE.match(raw) is None:
        raise CommandError(TIMEOUT_NOT_FLOAT)
    body = raw.lstrip(b"+-")
    if body[:2].lower() == b"0x":
        seconds = float.fromhex(raw.decode("ascii"))
    else:
        seconds = float(raw)
    if math.isnan(seconds):
        raise CommandError(TIMEOUT_NOT_FLOAT)
    if math.isinf(seconds):
        raise CommandError(TIMEOUT_NEGATIVE)
    timeout_ms = math.ceil(seconds * 1000.0)
    if timeout_ms < 0 or timeout_ms > _LLONG_MAX:
        raise CommandError(TIMEOUT_NEGATIVE)
    return int(timeout_ms)


def can_block(client: Client) -> bool:
    """False where Redis sets CLIENT_DENY_BLOCKING: inside MULTI/EXEC, the master's stream, while loading."""
    server = client.server
    return not (
        client.multi is not None
        or server.stream.exec_writes is not None
        or client.kind is ClientKind.MASTER
        or server.loading
    )


class BlockingRegistry:
    """Who waits on which key, which keys got data, and the serving loop. One per Server."""

    def __init__(self, server: Server) -> None:
        self.server = server
        # (db index, key) -> states waiting on it, in arrival order: the order Redis serves them in.
        self.waiting: dict[tuple[int, bytes], deque[BlockedState]] = {}
        # Keys that changed while someone waits on them, in signal order (a dict is an ordered set).
        self.ready: dict[tuple[int, bytes], None] = {}
        # True while the serving loop runs: a nested call (from a woken client's queued commands) only
        # leaves its keys in ``ready`` for the running loop to pick up.
        self.serving = False
        # The keyspace hook is installed only while someone waits (see _hook_while_waiting): every write pays
        # for it, and the fast lane (actors/fastlane.py) runs only when no hook is set. It chains to a hook
        # installed before it, so other families keep their notifications.
        self._previous_hook = server.keyspace.on_modified
        server.client_removed_hooks.append(self.forget)
        # Set by client tracking (actors/server/tracking.py) while a client tracks keys: ``serve_as(client, fn)``
        # runs a woken client's command as that client's own (the invalidations it causes held for it), and
        # ``after_delivery(client)`` sends them once its reply is out, as Redis does for an unblocked command.
        self.serve_as: Callable[[Client, Callable[[], Any]], Any] | None = None
        self.after_delivery: Callable[[Client], None] | None = None

    # -- signals ---------------------------------------------------------------------------------------

    def _hook_while_waiting(self) -> None:
        """Install the keyspace hook when the first client waits; take it away when the last one is done."""
        keyspace = self.server.keyspace
        if self.waiting:
            if keyspace.on_modified is self._previous_hook:
                keyspace.set_on_modified(self._on_modified)
        elif keyspace.on_modified == self._on_modified:
            keyspace.set_on_modified(self._previous_hook)

    def _on_modified(self, db: Database, key: bytes) -> None:
        if self._previous_hook is not None:
            self._previous_hook(db, key)
        slot = (db.id, key)
        if slot in self.waiting:
            self.ready[slot] = None
            self.server.after_command = self.serve_ready

    def signal_key_ready(self, db: Database, key: bytes) -> None:
        """Mark ``key`` as having data for its waiters (writes that bypass ``Keyspace.touch`` call this)."""
        slot = (db.id, key)
        if slot in self.waiting:
            self.ready[slot] = None
            self.server.after_command = self.serve_ready

    # -- blocking --------------------------------------------------------------------------------------

    def block(
        self,
        client: Client,
        keys: list[bytes],
        value_type: type,
        timeout_ms: int,
        timeout_reply: Any,
        serve: ServeFn,
        ready: Callable[[Database, bytes, Any], bool] | None = None,
    ) -> BlockedState:
        """Record ``client`` as waiting on ``keys`` of its current database; arm its timeout."""
        state = BlockedState(
            client, client.db.id, list(dict.fromkeys(keys)), value_type, serve, timeout_reply
        )
        state.command = client.last_command
        state.ready = ready
        for key in state.keys:
            queue = self.waiting.get((state.db_index, key))
            if queue is None:
                queue = self.waiting[(state.db_index, key)] = deque()
            queue.append(state)
        self._hook_while_waiting()
        client.blocked = state
        if timeout_ms > 0 and timeout_ms < FOREVER_THRESHOLD_MS:
            master = self.server.master_actor
            loop = getattr(master, "loop", None) if master is not None else None
            if loop is not None:
                state.timer = loop.call_later(timeout_ms / 1000.0, self._on_timeout, state)
        return state

    def _release(self, state: BlockedState) -> None:
        """Take ``state`` out of every queue and clear the client's blocked mark."""
        state.done = True
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        for key in state.keys:
            slot = (state.db_index, key)
            queue = self.waiting.get(slot)
            if queue is None:
                continue
            try:
                queue.remove(state)
            except ValueError:
                pass
            if not queue:
                del self.waiting[slot]
        self._hook_while_waiting()
        if state.client.blocked is state:
            state.client.blocked = None

    def _on_timeout(self, state: BlockedState) -> None:
        if state.done:
            return
        self._release(state)
        state.client.deliver(state.timeout_reply)

    def forget(self, client: Client) -> None:
        """The client went away (disconnect, CLIENT KILL, RESET): drop its wait without a reply."""
        state = client.blocked
        if isinstance(state, BlockedState):
            self._release(state)

    def unblock(self, client: Client, with_error: bool) -> bool:
        """CLIENT UNBLOCK: end the wait now, with the timeout reply or an UNBLOCKED error. False if not blocked."""
        state = client.blocked
        if not isinstance(state, BlockedState):
            return False
        self._release(state)
        if with_error:
            error = CommandError(UNBLOCKED_ERROR)
            _count_failed(self.server, client, error)
            client.deliver(error)
        else:
            client.deliver(state.timeout_reply)
        return True

    def blocked_count(self) -> int:
        return sum(1 for c in self.server.clients.values() if isinstance(c.blocked, BlockedState))

    # -- serving ---------------------------------------------------------------------------------------

    def serve_ready(self) -> None:
        """Serve the waiters of every ready key (runs after the command that gave them data)."""
        server = self.server
        server.after_command = None
        if self.serving:
            return
        self.serving = True
        try:
            while self.ready:
                deliveries: list[tuple[Client, Any]] = []
                while self.ready:
                    slot = next(iter(self.ready))
                    del self.ready[slot]
                    self._serve_key(slot, deliveries)
                # Replies last: delivering runs each woken client's queued commands, which may make more keys
                # ready (served by the next round of this loop).
                for client, reply in deliveries:
                    if isinstance(reply, CommandError):
                        _count_failed(server, client, reply)
                    client.deliver(reply)
                    if self.after_delivery is not None:
                        self.after_delivery(client)
        finally:
            self.serving = False
            server.after_command = None

    def _serve_key(self, slot: tuple[int, bytes], deliveries: list[tuple[Client, Any]]) -> None:
        queue = self.waiting.get(slot)
        if not queue:
            return
        keyspace = self.server.keyspace
        db_index, key = slot
        db = keyspace.dbs[db_index]
        for state in list(queue):
            if state.done:
                continue
            value = keyspace.lookup(db, key)
            if state.ready is not None:
                if not state.ready(db, key, value):
                    continue
            elif value is None or not value:
                return
            elif type(value) is not state.value_type:
                continue  # Redis 7.0: a waiter for another type keeps waiting
            self._release(state)
            client = state.client
            serve = state.serve
            started_ns = time.perf_counter_ns()
            try:
                if self.serve_as is not None:
                    reply: Any = self.serve_as(client, functools.partial(serve, client, db, key, value))
                else:
                    reply = serve(client, db, key, value)
            except CommandError as exc:
                reply = exc
            if state.argv is not None:
                total_us = state.first_run_us + (time.perf_counter_ns() - started_ns) // 1000
                if total_us >= self.server.slowlog_threshold_us >= 0:
                    self.server._log_slow(client, state.argv, total_us)
            deliveries.append((client, reply))


def _count_failed(server: Server, client: Client, error: CommandError) -> None:
    """A blocked command answered with an error when it was woken: counted as an error reply (INFO errorstats)
    and a failed call of that command, as Redis's updateStatsOnUnblock does (its call counted when it ran)."""
    count_error_reply(server, error)
    cmd = server.orig_commands.get(client.last_command.encode())
    if cmd is not None:
        cmd.failed_calls += 1


_registries: weakref.WeakKeyDictionary[Server, BlockingRegistry] = weakref.WeakKeyDictionary()


def hold_for_slowlog(client: Client, argv: list[bytes], duration_us: int) -> bool:
    """A command just blocked (Server.call got BLOCKED): if it waits on keys, keep what its SLOWLOG entry will
    show once served and answer True (Server.call does not log it now); False for other waits (WAIT)."""
    state = client.blocked
    if not isinstance(state, BlockedState):
        return False
    state.argv = argv
    state.first_run_us = duration_us
    return True


def registry(server: Server) -> BlockingRegistry:
    """The server's blocking registry, created (and hooked into the keyspace) on first use."""
    found = _registries.get(server)
    if found is None:
        found = _registries[server] = BlockingRegistry(server)
    return found


def signal_swapped_dbs(server: Server, db_ids: tuple[int, ...]) -> None:
    """SWAPDB: every key waited on in these databases that now holds data is ready (no-op when nobody ever
    blocked); the serving loop then checks each one's type, as after any write."""
    found = _registries.get(server)
    if found is None:
        return
    dbs = server.keyspace.dbs
    for db_id, key in list(found.waiting):
        if db_id in db_ids and key in dbs[db_id].data:
            found.signal_key_ready(dbs[db_id], key)


def waited_keys_present(server: Server, db_ids: tuple[int, ...]) -> list[tuple[Database, bytes]]:
    """The keys of these databases that someone waits on and that hold a value (before FLUSHDB/FLUSHALL)."""
    found = _registries.get(server)
    if found is None or not found.waiting:
        return []
    dbs = server.keyspace.dbs
    return [(dbs[db_id], key) for db_id, key in found.waiting if db_id in db_ids and key in dbs[db_id].data]


def signal_flushed_keys(server: Server, gone: list[tuple[Database, bytes]]) -> None:
    """FLUSHDB/FLUSHALL emptied these waited-on keys: their waiters are looked at again, as after a DEL
    (Redis 7.0's scanDatabaseForDeletedStreams: a blocked XREADGROUP gets -UNBLOCKED, the others wait on)."""
    for db, key in gone:
        signal_key_ready(server, db, key)


def signal_key_ready(server: Server, db: Database, key: bytes) -> None:
    """Tell waiters of ``key`` that it may have data (no-op when nobody ever blocked)."""
    found = _registries.get(server)
    if found is not None:
        found.signal_key_ready(db, key)


def unblock_client(server: Server, client: Client, with_error: bool) -> bool:
    """CLIENT UNBLOCK: end ``client``'s wait (timeout reply, or an UNBLOCKED error). False if it is not waiting."""
    found = _registries.get(server)
    return found is not None and found.unblock(client, with_error)


UNBLOCKED_ROLE_CHANGE = (
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
)


def blocked_states(server: Server) -> list[BlockedState]:
    """Every client blocked on keys, once each (a client waiting on several keys is in several queues)."""
    states: dict[int, BlockedState] = {}
    for queue in registry(server).waiting.values():
        for state in queue:
            if not state.done:
                states[id(state)] = state
    return list(states.values())


def release_with_error(server: Server, client: Client, error: str) -> None:
    """Unblock ``client`` with ``error`` as its reply (a redirect, CLUSTERDOWN, UNBLOCKED)."""
    registry(server).forget(client)  # out of every queue, timer cancelled, no reply
    client.deliver(CommandError(error))


def unblock_on_role_change(server: Server) -> None:
    """This master became a replica (REPLICAOF host port in or out of cluster mode, CLUSTER REPLICATE, a
    failover that took its slots): every client blocked on keys gets UNBLOCKED, then its connection closes
    (Redis's disconnectAllBlockedClients, from replicationSetMaster). Called by replication's role change
    (actors/replication/loop_side.py), which releases the clients blocked in WAIT the same way."""
    if not registry(server).waiting:
        return
    for blocked in blocked_states(server):
        client = blocked.client
        client.close_requested = True  # before the reply: nothing it pipelined behind runs
        release_with_error(server, client, UNBLOCKED_ROLE_CHANGE)
