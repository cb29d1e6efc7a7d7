"""Transactions: MULTI, EXEC, DISCARD, and optimistic locking with WATCH / UNWATCH, as Redis 7.0 does them.

Queuing happens in the dispatcher (``Server.execute``): while ``client.multi`` is a list, a command that passes
every check is appended to it and answered ``+QUEUED``; a command refused while queuing (unknown, wrong arity,
READONLY, "not allowed inside a transaction", ...) sets ``client.multi_error``, and EXEC then answers EXECABORT.
MULTI, EXEC, DISCARD, WATCH, QUIT and RESET carry the ``no-multi`` flag: they run at once instead of queuing.
The dispatcher also checks EXEC against the flags of the commands it would run (a queued write on what has
become a read-only replica aborts the transaction), as Redis's ``processCommand`` does.

WATCH: ``Database.watched`` maps a key to the clients watching it and ``Keyspace.touch`` sets their
``dirty_cas`` on every change of the key (``touch_all`` for FLUSHDB / FLUSHALL / SWAPDB), so EXEC answers nil.
EXEC also fails when a watched key has logically expired since WATCH even if nothing deleted it yet
(multi.c ``isWatchedKeyExpired``). A key that had already expired when WATCH was called counts as missing
(Redis flags it ``expired`` and ignores its deletion later): on a master WATCH deletes it there and then,
which is what any read of the key would do, so its absence is what is watched; on a replica, which must wait
for its master's DEL, the key is remembered and skipped by the expiry check at EXEC.

Propagation: EXEC runs the queued commands with ``server.stream.exec_writes`` collecting their writes, then
propagates them wrapped in MULTI ... EXEC when there is more than one, or the single write alone (Redis 7's
``propagatePendingCommands``). ``exec_writes`` is also how other families know they run inside EXEC
(blocking commands do not block there).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.server.errorstats import count_error_reply
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY, OK

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

EXECABORT = "EXECABORT Transaction discarded because of previous errors."
EXECABORT_BECAUSE = "EXECABORT Transaction discarded because of: {}"

# Replica only: the (db index, key) pairs a client watched while they were already expired (see the module
# docstring). Weak, so a client that goes away takes its entry with it.
_expired_at_watch: weakref.WeakKeyDictionary[Client, set[tuple[int, bytes]]] = weakref.WeakKeyDictionary()


def unwatch_all(client: Client) -> None:
    """Forget every key ``client`` watches (Redis's ``unwatchAllKeys``; clearing dirty_cas is up to the caller)."""
    for db, key in client.watched:
        watchers = db.watched.get(key)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del db.watched[key]
    client.watched.clear()
    _expired_at_watch.pop(client, None)


def discard_transaction(client: Client) -> None:
    """Leave MULTI: drop the queue and the error/dirty flags, and unwatch everything."""
    client.multi = None
    client.multi_error = False
    client.dirty_cas = False
    unwatch_all(client)


def exec_refusal(server: Server, client: Client, queued: list[tuple[Any, list[bytes]]]) -> str | None:
    """Why EXEC may not run the queued commands now (None: it may), judged by their flags as Redis judges EXEC.

    Each command passed these checks when it was queued; what can have changed since is the node: it became
    a read-only replica, lost its good replicas (min-replicas-to-write), failed to persist (MISCONF), lost its
    master link with replica-serve-stale-data no, or started loading.
    """
    from actors.server.client import ClientKind

    from_master = client.kind is ClientKind.MASTER
    if not from_master and any(cmd.is_write for cmd, _ in queued):
        if server.disk_error is not None:
            return server.disk_error
        if server.write_refusal is not None:
            return server.write_refusal
        if server.is_replica and server.replica_read_only:
            return "READONLY You can't write against a read only replica."
    if server.refuse_stale and not from_master and any(not cmd.allowed_when_stale for cmd, _ in queued):
        return "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    if server.loading and any(not cmd.allowed_while_loading for cmd, _ in queued):
        return "LOADING Redis is loading the dataset in memory"
    return None


def _watched_key_expired(client: Client) -> bool:
    """True if a watched key has expired since WATCH (it may still sit in the database, unnoticed)."""
    if not client.watched:
        return False
    server = client.server
    keyspace = server.keyspace
    if keyspace.ignore_ttl or server.loading:
        return False
    now_ms = keyspace.clock()
    skipped = _expired_at_watch.get(client)
    for db, key in client.watched:
        when_ms = db.expires.get(key)
        if when_ms is not None and when_ms <= now_ms:
            if skipped is not None and (db.id, key) in skipped:
                continue
            return True
    return False


def _propagate_transaction(server: Server, writes: list[tuple[int, list[bytes], bool]]) -> None:
    """Send EXEC's writes on: one alone, several wrapped in MULTI ... EXEC.

    MULTI goes out in the first write's database and EXEC in the last one's, so the stream selects a database
    only where a write needs it (as Redis does). A write flagged for the replicas only (PUBLISH) goes to them
    in its place and is left out of the AOF (propagatePendingCommands, with each command's targets).
    """
    if not writes:
        return
    if len(writes) > 1:
        server.propagate(writes[0][0], [b"MULTI"])
    for db_index, argv, replicas_only in writes:
        if replicas_only:
            server.propagate_to_replicas(db_index, argv)
        else:
            server.propagate(db_index, argv)
    if len(writes) > 1:
        server.propagate(writes[-1][0], [b"EXEC"])


@command(
    "multi",
    1,
    "noscript loading stale fast no-multi",
    (0, 0, 0),
    "transactions",
    "Mark the start of a transaction block",
)
def cmd_multi(client: Client, argv: list[bytes]) -> Any:
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    return OK


@command(
    "discard",
    1,
    "noscript loading stale fast no-multi",
    (0, 0, 0),
    "transactions",
    "Discard all commands issued after MULTI",
)
def cmd_discard(client: Client, argv: list[bytes]) -> Any:
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    discard_transaction(client)
    return OK


@command(
    "exec",
    1,
    "noscript loading stale no-multi",
    (0, 0, 0),
    "transactions",
    "Execute all commands issued after MULTI",
)
def cmd_exec(client: Client, argv: list[bytes]) -> Any:
    queued = client.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    if not client.dirty_cas and _watched_key_expired(client):
        client.dirty_cas = True
    if client.multi_error:
        discard_transaction(client)
        raise CommandError(EXECABORT)
    if client.dirty_cas:
        discard_transaction(client)
        return NULL_ARRAY
    # Out of MULTI (and unwatched) before the commands run, as Redis unwatches ASAP: nothing they do can
    # dirty this transaction any more, and none of them queues.
    discard_transaction(client)
    server = client.server
    stream = server.stream
    outer = stream.exec_writes
    writes: list[tuple[int, list[bytes], bool]] = []
    stream.exec_writes = writes
    replies: list[Any] = []
    try:
        for cmd, cmd_argv in queued:
            # ACL rules may have changed since the command was queued (Redis checks again here).
            refusal = server.acl.exec_refusal(client, cmd, cmd_argv) if server.acl.enforcing else None
            reply = server.call(client, cmd, cmd_argv) if refusal is None else CommandError(refusal)
            if isinstance(reply, CommandError):
                # As Redis: every error reply counts in errorstats, inside EXEC's array too.
                count_error_reply(server, reply)
            replies.append(reply)
    finally:
        stream.exec_writes = outer
    _propagate_transaction(server, writes)
    # The writes went out above: the dispatcher must not propagate "EXEC" itself.
    client.propagate_as = []
    client.last_command = "exec"
    return replies


@command(
    "watch",
    -2,
    "noscript loading stale fast no-multi",
    (1, -1, 1),
    "transactions",
    "Watch the given keys to determine execution of the MULTI/EXEC block",
)
def cmd_watch(client: Client, argv: list[bytes]) -> Any:
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    if client.dirty_cas:
        return OK  # EXEC will fail anyway: no point watching more
    server = client.server
    keyspace = server.keyspace
    db = client.db
    for key in argv[1:]:
        watchers = db.watched.get(key)
        if watchers is not None and client in watchers:
            continue
        when_ms = db.expires.get(key)
        expired = (
            when_ms is not None
            and when_ms <= keyspace.clock()
            and not keyspace.ignore_ttl
            and not server.loading
        )
        if expired and not keyspace.is_replica:
            keyspace.lookup(db, key)  # deletes it (and propagates the DEL), as a read would
            watchers = db.watched.get(key)
        elif keyspace.is_replica:
            # Overwrites what an earlier WATCH of this key (before UNWATCH or RESET) recorded.
            skipped = _expired_at_watch.setdefault(client, set())
            if expired:
                skipped.add((db.id, key))
            else:
                skipped.discard((db.id, key))
        if watchers is None:
            watchers = db.watched[key] = set()
        watchers.add(client)
        client.watched.append((db, key))
    return OK


@command(
    "unwatch", 1, "noscript loading stale fast", (0, 0, 0), "transactions", "Forget about all watched keys"
)
def cmd_unwatch(client: Client, argv: list[bytes]) -> Any:
    unwatch_all(client)
    client.dirty_cas = False
    return OK
