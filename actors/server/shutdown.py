"""How a node shuts down: SHUTDOWN's flags, the signals' (shutdown-on-sigterm / -sigint), and the wait for
lagging replicas before it stops (Redis 7.0's prepareForShutdown, finishShutdown and abortShutdown).

A shutdown without NOW, while ``shutdown-timeout`` is not 0 and some replica has not acknowledged the node's
whole stream, first waits: writes are paused (CLIENT PAUSE WRITE's hold, which reads pass), the replicas are
asked for their offsets, and the node stops once all of them caught up or ``shutdown-timeout`` seconds
passed, whichever is first (a replica promoted then has every write the clients were answered for). The
clients that sent SHUTDOWN wait meanwhile; ``SHUTDOWN ABORT`` ends the wait, lifts the pause and answers
them an error, as a save that fails does (unless FORCE: the node then exits anyway). Stopping itself (saving,
closing the AOF, stopping the loop) is the node's (launcher/node.py), handed in as ``finish``.

Runs on the master actor's loop thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import structlog

from actors.server.pause import PauseMode
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.server import Server

log = structlog.get_logger("redactor.node")

# What a waiting SHUTDOWN client is answered when the shutdown is aborted or fails (Redis's words).
SHUTDOWN_ERRORS = "ERR Errors trying to SHUTDOWN. Check logs."
NO_SHUTDOWN = "ERR No shutdown in progress."


@dataclass(frozen=True)
class ShutdownFlags:
    """SHUTDOWN's options (and shutdown-on-sigterm's / -sigint's words)."""

    save: bool | None = None  # True SAVE, False NOSAVE, None: save iff save points are configured
    now: bool = False  # NOW: do not wait for lagging replicas
    force: bool = False  # FORCE: exit even if saving the dataset fails

    @classmethod
    def from_words(cls, words: str) -> ShutdownFlags:
        """From a shutdown-on-sig* value ("default", "nosave now", ...: already validated by the config)."""
        parts = set(words.split())
        save = True if "save" in parts else False if "nosave" in parts else None
        return cls(save, "now" in parts, "force" in parts)


class ShutdownState(Enum):
    RUNNING = "running"  # serving; no shutdown asked for (or the last one was aborted or failed)
    WAITING = "waiting"  # asked for; writes paused until the replicas catch up or shutdown-timeout passes
    STOPPING = "stopping"  # finishing: the dataset is saved and the loop stops; the process then exits


class Shutdown:
    """The node's shutdown state (``server.request_shutdown`` / ``server.abort_shutdown`` are its methods)."""

    def __init__(self, server: Server, finish: Callable[[ShutdownFlags], str | None]) -> None:
        self.server = server
        # Save, close and stop (the node's): an error message if the node must keep running, else None.
        self._finish = finish
        self.state = ShutdownState.RUNNING
        self.flags = ShutdownFlags()
        self.deadline_s = 0.0
        # True while this shutdown holds writes (its wait for replicas): lifted if it is aborted or fails.
        self.paused = False
        # SHUTDOWN's clients waiting with it (each blocked: their later commands queue behind).
        self.clients: list[Client] = []
        server.client_removed_hooks.append(self._forget)
        server.shutdown_in_ms = self.remaining_ms

    def remaining_ms(self) -> int | None:
        """INFO's shutdown_in_milliseconds: how long a shutdown waiting for replicas still waits (None: none)."""
        if self.state is not ShutdownState.WAITING:
            return None
        return max(0, int((self.deadline_s - time.monotonic()) * 1000))

    def request(self, flags: ShutdownFlags, client: Client | None = None) -> str | None:
        """Shut down (SHUTDOWN, a signal). None: stopping, or waiting for replicas (``client`` waits too);
        else the error to answer, the node still serving."""
        if self.state is not ShutdownState.RUNNING:
            self._hold(client)  # already under way: this one waits for the same end
            return None
        self.flags = flags  # (a save is skipped while loading: Persistence.prepare_shutdown's rule)
        log.warning(
            "shutdown_requested",
            save=flags.save,
            now=flags.now,
            force=flags.force,
            message="User requested shutdown...",
        )
        timeout_s = self.server.config["shutdown-timeout"]
        replication = self.server.replication
        if not flags.now and timeout_s and replication is not None and not replication.replicas_caught_up():
            self.state = ShutdownState.WAITING
            self.deadline_s = time.monotonic() + timeout_s
            # Held writes wait past the deadline: the node stops before they would run.
            self.server.client_pause.pause(PauseMode.WRITE, (timeout_s + 3600) * 1000)
            self.paused = True
            replication.request_acks()
            self._hold(client)
            log.info(
                "shutdown_waiting_for_replicas",
                timeout_s=timeout_s,
                message="Waiting for replicas before shutting down.",
            )
            return None
        return self._stop()

    def abort(self) -> bool:
        """SHUTDOWN ABORT: end a wait for replicas (False: there is none)."""
        if self.state is not ShutdownState.WAITING:
            return False
        log.warning("shutdown_aborted", message="Shutdown manually aborted.")
        self._resume()
        return True

    def insist(self) -> None:
        """A second SIGINT while waiting: stop now, without waiting any longer (Redis exits at once, unsaved;
        here the shutdown's own save still runs)."""
        if self.state is ShutdownState.WAITING:
            log.warning("shutdown_insisted", detail="You insist... exiting now.")
            self._stop()

    def cron(self) -> None:
        """Each cron tick: a waiting shutdown proceeds once the replicas caught up or its time is up."""
        if self.state is not ShutdownState.WAITING:
            return
        replication = self.server.replication
        caught_up = replication is None or replication.replicas_caught_up()
        if caught_up or time.monotonic() >= self.deadline_s:
            self._stop()

    def _stop(self) -> str | None:
        self.state = ShutdownState.STOPPING
        replication = self.server.replication
        if replication is not None:  # Redis's finishShutdown: each lagging replica, then the count in sync
            lagging = replication.lagging_replicas()
            for line in lagging:
                log.warning("shutdown_replica_lagging", message=line)
            total = replication.replica_count()
            if total:
                log.info(
                    "shutdown_replicas_counted",
                    message=f"{total - len(lagging)} of {total} replicas are in sync when shutting down.",
                )
        error = self._finish(self.flags)
        if error is not None:
            log.error(
                "shutdown_failed",
                reason=error,
                message="Errors trying to shut down the server. Check the logs for more information.",
            )
            self._resume()
        return error

    def _resume(self) -> None:
        """Serve again: the pause lifted, the waiting SHUTDOWN clients answered an error."""
        self.state = ShutdownState.RUNNING
        clients, self.clients = self.clients, []
        if self.paused:
            self.paused = False
            self.server.client_pause.unpause()
        for client in clients:
            if client.blocked is self:
                client.blocked = None
                client.deliver(CommandError(SHUTDOWN_ERRORS))

    def _hold(self, client: Client | None) -> None:
        if client is not None:
            client.blocked = self
            self.clients.append(client)

    def _forget(self, client: Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
