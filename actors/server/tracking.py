"""Client-side caching (CLIENT TRACKING), as Redis 7.0's tracking.c.

Default mode: the keys a tracking client reads (the key specs of each read-only command it runs,
actors/commands/getkeys.py) are remembered in one table, key -> client ids, shared by all databases as in
Redis. When such a key changes (``Keyspace.touch``: writes, expiry, eviction) every client that read it gets one
invalidation and forgets it until it reads it again. OPTIN remembers only after ``CLIENT CACHING yes``, OPTOUT
skips after ``CLIENT CACHING no`` (for the next command; a transaction counts as one). NOLOOP: no invalidation
for a change the client made itself. BCAST: nothing is remembered; every change of a key under one of the
client's prefixes (the empty prefix: all keys) is sent, gathered per prefix and sent once per loop tick.

Delivery (``_send``): a RESP3 client gets ``>2 invalidate [keys]``; with REDIRECT the message goes to the
other client, as a RESP3 push, or, to a RESP2 client in pub/sub mode, as a message on
``__redis__:invalidate``; a redirect to a client that is gone marks the tracking broken (flag ``R``; RESP3
clients are told ``tracking-redir-broken``). FLUSHDB / FLUSHALL send a null invalidation (everything) to every
tracking client and empty the table. An invalidation caused by the client's own command is sent after that
command's reply, as Redis 7.0 does. ``tracking-table-max-keys`` bounds the table: past it, random keys are
invalidated and forgotten.

Scripts: when a script's redis.call runs a read, the keys the script's caller declared are remembered for it
(the script engine's ``on_command`` hook), as Redis 7.0's call() does with the script caller's command.

Cost: nothing while no client tracks. While one does, the keyspace's ``on_invalidate`` hook is set, the
dispatcher's fast paths are off (``Server.restrict``) and ``Server.execute`` is wrapped (actors/server/wrappers.py)
to remember the keys read and to send the invalidations due to the current client after its reply.

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED
from actors.commands.getkeys import get_keys
from actors.server.blocking import registry
from actors.server.wrappers import ExecuteFn, set_wrapper
from protocol.errors import CommandError
from protocol.resp import MultiReply, Push

if TYPE_CHECKING:
    from actors.commands import Command
    from actors.data.keyspace import Database
    from actors.server.client import Client
    from actors.server.server import Server

RESTRICTION = "client-tracking"
INVALIDATE_CHANNEL = b"__redis__:invalidate"
# Commands that keep CLIENT CACHING's flag for the command after them (Redis: prevcmd == clientCommand).
_KEEPS_CACHING = b"client"
_FLUSHES = frozenset((b"flushdb", b"flushall"))


class ClientTracking:
    """One client's tracking options (``client.tracking`` while tracking is on)."""

    __slots__ = ("bcast", "optin", "optout", "noloop", "redirect", "prefixes", "caching", "broken")

    def __init__(self) -> None:
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        # The client id invalidations go to (0: this connection).
        self.redirect = 0
        # BCAST prefixes, in the order given (TRACKINGINFO sorts them as Redis's rax does).
        self.prefixes: list[bytes] = []
        # CLIENT CACHING yes (OPTIN) / no (OPTOUT) was given for the next command.
        self.caching = False
        # The redirect target went away.
        self.broken = False

    def flag_letters(self) -> str:
        """CLIENT LIST's letters: t, then R (broken redirect), B (broadcast)."""
        return "t" + ("R" if self.broken else "") + ("B" if self.bcast else "")

    def info_flags(self) -> list[bytes]:
        flags = [b"on"]
        if self.bcast:
            flags.append(b"bcast")
        if self.optin:
            flags.append(b"optin")
            if self.caching:
                flags.append(b"caching-yes")
        if self.optout:
            flags.append(b"optout")
            if self.caching:
                flags.append(b"caching-no")
        if self.noloop:
            flags.append(b"noloop")
        if self.broken:
            flags.append(b"broken_redirect")
        return flags


class Tracking:
    """The node's tracking tables; see the module docstring."""

    def __init__(self, server: Server) -> None:
        self.server = server
        # key -> ids of the clients that read it (default mode).
        self.table: dict[bytes, set[int]] = {}
        # prefix -> ids of the BCAST clients that registered it.
        self.prefixes: dict[bytes, set[int]] = {}
        # prefix -> changed key -> id of the client whose command changed it (0: none), sent at the tick's end.
        self.pending_bcast: dict[bytes, dict[bytes, int]] = {}
        self._bcast_scheduled = False
        # Clients with tracking on (INFO tracking_clients).
        self.clients = 0
        # The client whose command is running (NOLOOP, and invalidations sent after its reply).
        self.current: Client | None = None
        # Invalidations due to the current client, sent after its reply (None: the null "everything").
        self.after_reply: list[bytes | None] = []
        # client id -> invalidations its woken (unblocked) command caused, sent after that command's reply.
        self.held: dict[int, list[bytes | None]] = {}
        server.client_removed_hooks.append(self._forget)
        server.config.on_change("tracking-table-max-keys", self._limit_changed)

    # -- CLIENT TRACKING ---------------------------------------------------------------------------------

    def enable(self, client: Client, options: ClientTracking, prefixes: list[bytes]) -> None:
        state = client.tracking
        if state is None:
            state = client.tracking = ClientTracking()
            self.clients += 1
        state.bcast, state.optin, state.optout = options.bcast, options.optin, options.optout
        state.noloop, state.redirect, state.broken = options.noloop, options.redirect, False
        if state.bcast:
            for prefix in prefixes or [b""]:
                if prefix not in state.prefixes:
                    state.prefixes.append(prefix)
                    self.prefixes.setdefault(prefix, set()).add(client.id)
        self._install()

    def disable(self, client: Client) -> None:
        state = client.tracking
        if state is None:
            return
        for prefix in state.prefixes:
            ids = self.prefixes.get(prefix)
            if ids is not None:
                ids.discard(client.id)
                if not ids:
                    del self.prefixes[prefix]
                    self.pending_bcast.pop(prefix, None)
        client.tracking = None
        self.clients -= 1
        self._install()

    def _install(self) -> None:
        server = self.server
        on = self.clients > 0
        server.keyspace.set_on_invalidate(self._on_touched if on else None)
        set_wrapper(server, RESTRICTION, self._wrap if on else None)
        server.scripting.on_command = self._script_command if on else None
        server.restrict(RESTRICTION, on)
        blocking = registry(server)
        blocking.serve_as = self._serve_as if on else None
        blocking.after_delivery = self._after_delivery if on else None
        if not on:
            self.table.clear()
            self.held.clear()

    def _forget(self, client: Client) -> None:
        self.held.pop(client.id, None)
        if client.tracking is not None:
            self.disable(client)

    # -- remembering reads -------------------------------------------------------------------------------

    def _wrap(self, real: ExecuteFn) -> ExecuteFn:
        def execute(client: Client, argv: list[bytes]) -> Any:
            state = client.tracking
            name = argv[0].lower()
            queued = client.multi if self.server.renamed.get(name, name) == b"exec" else None
            outer = self.current
            self.current = client
            try:
                reply = real(client, argv)
                if _flushed(name, reply, client, queued):
                    self.invalidate_all()  # the flushing client's own null invalidation follows its reply
            finally:
                self.current = outer
            # A command queued in MULTI reads nothing yet: its keys are remembered when EXEC runs it.
            if state is not None and client.tracking is state and not state.bcast and client.multi is None:
                self._remember(client, state, argv, queued)
            if self.after_reply and outer is None:
                return self._after_reply(client, reply)
            return reply

        return execute

    def _serve_as(self, client: Client, serve: Callable[[], Any]) -> Any:
        """A blocked client's command, woken by another client's write, runs as its own: NOLOOP applies to
        it, and what it invalidates for itself waits for its reply (``_after_delivery``)."""
        outer, outer_pending = self.current, self.after_reply
        self.current, self.after_reply = client, []
        try:
            return serve()
        finally:
            if self.after_reply:
                self.held.setdefault(client.id, []).extend(self.after_reply)
            self.current, self.after_reply = outer, outer_pending

    def _after_delivery(self, client: Client) -> None:
        for key in self.held.pop(client.id, ()):
            self._deliver(client, [key] if key is not None else None)

    def _after_reply(self, client: Client, reply: Any) -> Any:
        """The invalidations the client's own command caused, after its reply (RESP3 on this connection)."""
        pending, self.after_reply = self.after_reply, []
        messages: list[Any] = []
        state = client.tracking
        for key in pending:
            keys = [key] if key is not None else None  # None: FLUSHDB / FLUSHALL's "everything"
            if state is None or state.redirect or reply is BLOCKED:
                self._deliver(client, keys)
            elif client.resp3:
                messages.append(Push([b"invalidate", keys]))
        return MultiReply([reply, *messages]) if messages else reply

    def _remember(
        self, client: Client, state: ClientTracking, argv: list[bytes], queued: list[Any] | None
    ) -> None:
        """trackingRememberKeys for the command just run (each read of an EXEC'd transaction)."""
        name = argv[0].lower()
        if (state.optin and not state.caching) or (state.optout and state.caching):
            pass
        else:
            runs = queued if queued is not None else [(self.server.commands.get(name), argv)]
            for cmd, args in runs:
                if cmd is None or "readonly" not in cmd.flags:
                    continue
                if cmd.name in ("eval_ro", "evalsha_ro", "fcall_ro"):
                    continue
                for index in get_keys(cmd, args):
                    self._add(args[index], client.id)
        if state.caching and client.multi is None and name != _KEEPS_CACHING:
            state.caching = False

    def _script_command(self, caller: Client, cmd: Command, declared: list[bytes]) -> None:
        """A script's redis.call ran ``cmd``: if it reads, the keys the script's caller declared (EVAL's, FCALL's
        numkeys) are remembered for the caller. Redis 7.0's call() hands trackingRememberKeys the script
        caller, whose own command (EVAL ...) names the keys: keys a script reads without declaring them are
        not tracked, declared ones are, once the script reads anything (redis-server 7.0.15 does exactly so)."""
        state = caller.tracking
        if state is None or state.bcast or not declared or "readonly" not in cmd.flags:
            return
        if (state.optin and not state.caching) or (state.optout and state.caching):
            return
        for key in declared:
            self._add(key, caller.id)

    def _add(self, key: bytes, client_id: int) -> None:
        ids = self.table.get(key)
        if ids is None:
            limit = int(self.server.config["tracking-table-max-keys"])
            if limit and len(self.table) >= limit:
                self._evict_one()
            self.table[key] = {client_id}
        else:
            ids.add(client_id)

    def _limit_changed(self, limit: Any) -> None:
        """CONFIG SET tracking-table-max-keys below the table's size: evict down to it now (Redis gets there
        over a few event loop iterations, in trackingLimitUsedSlots; the invalidations sent are the same)."""
        limit = int(limit)
        while limit and len(self.table) > limit:
            self._evict_one()

    def _evict_one(self) -> None:
        """The table is full: invalidate and forget a random key (Redis's trackingLimitUsedSlots)."""
        victim = random.choice(list(self.table))
        self._invalidate(victim, bcast=False, by_current=False)  # no client changed it: NOLOOP does not apply

    # -- invalidation ------------------------------------------------------------------------------------

    def _on_touched(self, db: Database, key: bytes) -> None:
        # An expired key's deletion is a change by no client: NOLOOP does not hide it (Redis 7.0 signals it
        # with a NULL client), though one found by the current client's read still follows its reply.
        keyspace = self.server.keyspace
        if keyspace.evicting:  # before the command runs: sent at once, ahead of its reply (as Redis)
            self._invalidate(key, bcast=True, by_current=False, now=True)
        else:
            self._invalidate(key, bcast=True, by_current=not keyspace.deleting_expired)

    def _invalidate(self, key: bytes, bcast: bool, by_current: bool = True, now: bool = False) -> None:
        if bcast and self.prefixes:
            self._remember_for_broadcast(key, by_current)
        ids = self.table.pop(key, None)
        if not ids:
            return
        clients = self.server.clients
        current = self.current
        for client_id in ids:
            target = clients.get(client_id)
            state = target.tracking if target is not None else None
            if target is None or state is None or state.bcast:
                continue
            if target is current and not now:
                if state.noloop and by_current:
                    continue
                self.after_reply.append(key)
                continue
            self._deliver(target, [key])

    def invalidate_all(self) -> None:
        """FLUSHDB / FLUSHALL: a null invalidation to every tracking client; the table empties."""
        current = self.current
        for client in list(self.server.clients.values()):
            if client.tracking is None:
                continue
            if client is current:
                self.after_reply.append(None)
            else:
                self._deliver(client, None)
        self.table.clear()

    def _remember_for_broadcast(self, key: bytes, by_current: bool) -> None:
        modifier = self.current.id if self.current is not None and by_current else 0
        for prefix in self.prefixes:
            if key.startswith(prefix):
                self.pending_bcast.setdefault(prefix, {})[key] = modifier
        if self.pending_bcast and not self._bcast_scheduled:
            master = self.server.master_actor
            loop = master.loop if master is not None else None
            if loop is not None:
                self._bcast_scheduled = True
                loop.call_soon(self.broadcast)

    def broadcast(self) -> None:
        """Send each prefix's changed keys to its BCAST clients (Redis: once per event loop iteration)."""
        self._bcast_scheduled = False
        pending, self.pending_bcast = self.pending_bcast, {}
        clients = self.server.clients
        for prefix, keys in pending.items():
            for client_id in self.prefixes.get(prefix, ()):
                target = clients.get(client_id)
                if target is None or target.tracking is None:
                    continue
                if target.tracking.noloop:
                    chosen = [key for key, modifier in keys.items() if modifier != client_id]
                else:
                    chosen = list(keys)
                if chosen:
                    self._deliver(target, chosen)

    def _deliver(self, client: Client, keys: list[bytes] | None) -> None:
        """sendTrackingMessage: to the client (RESP3), or to its redirect target (RESP3, or a RESP2 client in
        pub/sub mode on __redis__:invalidate); a redirect to a client that is gone breaks the tracking."""
        state = client.tracking
        if state is not None and state.redirect:
            target = self.server.clients.get(state.redirect)
            if target is None:
                state.broken = True
                if client.resp3:
                    client.push(Push([b"tracking-redir-broken", state.redirect]))
                return
            if target.resp3:
                target.push(Push([b"invalidate", keys]))
            elif target.channels or target.patterns:
                target.push(Push([b"message", INVALIDATE_CHANNEL, keys]))
            return
        if client.resp3:
            client.push(Push([b"invalidate", keys]))


def _flushed(name: bytes, reply: Any, client: Client, queued: list[Any] | None) -> bool:
    """Whether the command just run emptied a database: FLUSHDB / FLUSHALL run (not queued in MULTI: the
    transaction may never run), or an EXEC whose transaction ran one without an error."""
    if name in _FLUSHES:
        return client.multi is None and type(reply) is not CommandError
    if queued is None or type(reply) is not list:
        return False
    return any(
        cmd is not None and cmd.name.encode() in _FLUSHES and type(result) is not CommandError
        for (cmd, _), result in zip(queued, reply, strict=False)
    )


_by_server: weakref.WeakKeyDictionary[Server, Tracking] = weakref.WeakKeyDictionary()


def tracking(server: Server) -> Tracking:
    """The server's Tracking, made on first use."""
    found = _by_server.get(server)
    if found is None:
        found = _by_server[server] = Tracking(server)
    return found


def tracking_stats(server: Server) -> list[tuple[str, int]]:
    """INFO stats' tracking_total_keys (keys in the table), _items (key-client pairs), _prefixes (BCAST)."""
    found = _by_server.get(server)
    if found is None:
        return [("tracking_total_keys", 0), ("tracking_total_items", 0), ("tracking_total_prefixes", 0)]
    items = sum(len(ids) for ids in found.table.values())
    return [
        ("tracking_total_keys", len(found.table)),
        ("tracking_total_items", items),
        ("tracking_total_prefixes", len(found.prefixes)),
    ]


def tracking_clients(server: Server) -> int:
    """INFO clients' tracking_clients."""
    found = _by_server.get(server)
    return found.clients if found is not None else 0
