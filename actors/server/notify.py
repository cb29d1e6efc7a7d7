"""Keyspace notifications: publishes the events commands report to ``__keyspace@<db>__:<key>`` and
``__keyevent@<db>__:<event>``, as Redis's notify.c.

Where events come from: each write command reports its own event by name, as Redis's commands do
(``keyspace.notify(db, events.LIST, b"lpush", key)``), right after its change; the keyspace itself reports
``new`` (a key created), ``expired`` (lazy and active expiry), and ``keymiss`` (a read that found nothing);
maxmemory eviction calls ``notify_evicted``. ``install`` wires the keyspace to the ``notify-keyspace-events``
directive: while it names no channel kind (K or E) or no class, ``keyspace.notify_flags`` is 0 and every hook is
a single attribute test. While it is on, the node is marked restricted (``Server.restrict``), so plain GET/SET
leave the fast lane (which reports nothing) for the dispatcher, where their events are published.

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands.pubsub import publish
from actors.data import events

if TYPE_CHECKING:
    from actors.server.server import Server

# The name under which notifications keep the dispatcher off its fast paths (Server.restrict).
RESTRICTION = "keyspace-events"


def install(server: Server) -> None:
    """Follow ``notify-keyspace-events`` (now and on every CONFIG SET) and publish the keyspace's events."""
    keyspace = server.keyspace

    def on_event(db_index: int, event: bytes, key: bytes) -> None:
        flags = keyspace.notify_flags
        if flags & events.KEYSPACE:
            publish(server, b"__keyspace@%d__:%s" % (db_index, key), event)
        if flags & events.KEYEVENT:
            publish(server, b"__keyevent@%d__:%s" % (db_index, event), key)

    def on_config(value: Any) -> None:
        flags = (
            value.flags if isinstance(value, events.EventClasses) else events.flags_from_string(str(value))
        )
        flags = flags or 0
        keyspace.notify_flags = events.effective(flags)
        server.restrict(RESTRICTION, keyspace.notify_flags != 0)

    keyspace.on_event = on_event
    server.config.on_change("notify-keyspace-events", on_config)
    on_config(server.config["notify-keyspace-events"])


def notify_evicted(server: Server, db_index: int, key: bytes) -> None:
    """Maxmemory deleted ``key``: the ``evicted`` event (class e), as Redis's performEvictions."""
    keyspace = server.keyspace
    if keyspace.notify_flags & events.EVICTED:
        keyspace.on_event(db_index, b"evicted", key)
