"""CLIENT PAUSE / CLIENT UNPAUSE: clients' commands wait (they are not refused) until the pause ends.

As Redis 7.0's ``pauseClients``: ``CLIENT PAUSE ms WRITE`` holds every command that may change the dataset or
be propagated (write commands, and EVAL / EVALSHA / FCALL / PUBLISH / PFCOUNT / ...; EXEC of a transaction
that queued one); ``ALL`` (the default) holds every command, ``CLIENT UNPAUSE`` from another client included.
The master's replication stream and the AOF loader are never held. A second pause keeps the stronger mode and
the later end. While paused, expired keys read as missing but are not deleted, lazily or actively, so the
dataset stays constant (a failover's point).

How a command waits without blocking the loop: ``Server.execute`` asks ``holds`` (only while a pause is on:
the pause turns the dispatcher's fast paths off through ``Server.restrict``); a held command is recorded here
with the client marked blocked (``client.blocked``), and ``execute`` answers ``BLOCKED``, so the connection
queues whatever the client pipelines behind it. When the pause ends (a timer on the loop, CLIENT UNPAUSE, or
the next command past the deadline) the held commands run in arrival order through ``execute`` and their
replies are delivered with ``client.deliver``, which then runs the client's queued commands.

Runs on the master actor's event-loop thread only.
"""

from __future__ import annotations

import time
from collections import deque
from enum import Enum
from typing import TYPE_CHECKING, Any

from actors.commands import BLOCKED, Command
from actors.commands.script_flags import declares_writes
from actors.server.client import Client, ClientKind

if TYPE_CHECKING:
    import asyncio

    from actors.server.server import Server

# Server.restrict's name for a pause in force.
RESTRICTION = "client-pause"
# Commands without the write flag that Redis 7.0 marks may-replicate: a WRITE pause holds them too.
MAY_REPLICATE = frozenset(("eval", "evalsha", "fcall", "publish", "spublish", "pfcount", "pfdebug"))
# Their read-only forms, which a WRITE pause lets through.
_READ_ONLY_FORMS = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))
# FUNCTION's subcommands that change the libraries (flagged write in Redis; the read ones and SCRIPT's run).
_FUNCTION_WRITES = frozenset((b"load", b"delete", b"flush", b"restore"))


class PauseMode(Enum):
    OFF = 0  # no pause: every command runs
    WRITE = 1  # commands that may write or propagate wait; reads run
    ALL = 2  # every command from a normal client waits


class Postponed:
    """``client.blocked`` while the client's command waits for the pause to end."""

    __slots__ = ("argv",)

    def __init__(self, argv: list[bytes]) -> None:
        self.argv = argv

    def __repr__(self) -> str:
        return "POSTPONED"


class ClientPause:
    """The node's pause state and the commands it holds."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.mode = PauseMode.OFF
        # When the pause ends, in time.monotonic() milliseconds.
        self.end_ms = 0.0
        # Held commands, in arrival order: (client, argv).
        self.held: deque[tuple[Client, list[bytes]]] = deque()
        # The loop timer that ends the pause (None: no loop, as in unit tests; the next command checks).
        self._timer: asyncio.TimerHandle | None = None
        server.client_removed_hooks.append(self._forget)

    @property
    def active(self) -> bool:
        return self.mode is not PauseMode.OFF

    def pause(self, mode: PauseMode, timeout_ms: int) -> None:
        """Start (or extend) a pause: the stronger mode and the later end win, as in Redis."""
        now = time.monotonic() * 1000
        end = now + timeout_ms
        if self.mode is PauseMode.OFF or end > self.end_ms:
            self.end_ms = end
        if mode.value > self.mode.value:
            self.mode = mode
        self.server.keyspace.expiry_paused = True
        self.server.restrict(RESTRICTION, True)
        self._arm_timer()

    def unpause(self) -> None:
        """End the pause and run the held commands in arrival order."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.mode is PauseMode.OFF:
            return
        self.mode = PauseMode.OFF
        self.server.keyspace.expiry_paused = False
        self.server.restrict(RESTRICTION, False)
        held, self.held = self.held, deque()
        for client, argv in held:
            if not isinstance(client.blocked, Postponed):
                continue  # gone, or unblocked meanwhile
            client.blocked = None
            reply = self.server.execute(client, argv)
            if reply is not BLOCKED:
                client.deliver(reply)

    def holds(self, client: Client, cmd: Command, argv: list[bytes]) -> bool:
        """Whether ``cmd`` from ``client`` must wait for the pause (ending it first if its time passed)."""
        if time.monotonic() * 1000 >= self.end_ms:
            self.unpause()
            return False
        if client.kind is ClientKind.MASTER or client.kind is ClientKind.INTERNAL:
            return False
        if getattr(client, "is_replica_link", False):
            return False
        if self.mode is PauseMode.ALL:
            return True
        return _may_replicate(cmd, client, argv)

    def postpone(self, client: Client, argv: list[bytes]) -> Any:
        client.blocked = Postponed(argv)
        self.held.append((client, argv))
        return BLOCKED

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        master = self.server.master_actor
        loop = master.loop if master is not None else None
        if loop is None:
            return
        delay_s = max(0.0, self.end_ms / 1000 - time.monotonic())
        self._timer = loop.call_later(delay_s, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if time.monotonic() * 1000 >= self.end_ms:
            self.unpause()
        else:
            self._arm_timer()

    def _forget(self, client: Client) -> None:
        if isinstance(client.blocked, Postponed):
            client.blocked = None
            self.held = deque(entry for entry in self.held if entry[0] is not client)


def _may_replicate(cmd: Command, client: Client, argv: list[bytes]) -> bool:
    """Redis's is_may_replicate_command: writes, may-replicate commands, and EXEC of a transaction with one.

    As in Redis 7.0.1+, a script or function that declares ``no-writes`` is judged by its flags, not by
    EVAL / FCALL's: it runs during a WRITE pause (alone or queued in a transaction).
    """
    if cmd.name == "exec" and client.multi:
        return any(
            _command_may_replicate(client, queued, queued_argv) for queued, queued_argv in client.multi
        )
    return _command_may_replicate(client, cmd, argv)


def _command_may_replicate(client: Client, cmd: Command, argv: list[bytes]) -> bool:
    declared = declares_writes(client, cmd, argv)  # a script's declared flags replace EVAL's may-replicate
    if declared is not None:
        return declared
    if cmd.is_write or cmd.name in MAY_REPLICATE:
        return True
    if cmd.name == "function":
        return len(argv) > 1 and argv[1].lower() in _FUNCTION_WRITES
    return False
