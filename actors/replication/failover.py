"""FAILOVER: a coordinated switch of roles between this master and one of its replicas (Redis 6.2+).

As Redis's failoverCommand / updateFailoverStatus: FAILOVER holds writes (CLIENT PAUSE WRITE's hold), asks the
replicas for their offsets and waits, in ``FailoverState.WAITING_FOR_SYNC``, for the target (``TO host
port``) or else the first replica to acknowledge the whole stream; then hands over. Past ``TIMEOUT`` it gives
up and serves writes again, unless FORCE (with TO and TIMEOUT), which hands over anyway.

The handover differs from Redis's in its means, not its effect: Redis demotes itself and sends the target a
``PSYNC ... FAILOVER`` that makes it promote itself; here the master opens a client connection to the target's
RESP port, authenticates as a replica would (masteruser / masterauth) and sends ``REPLICAOF NO ONE``, then, once
it is answered OK, follows the target (REPLICAOF target): the target continues the history (its replid2 is
ours), so this node and its other replicas continue partially. Writes stay held on this node until then, so
no client write lands on both. A target that refuses (or does not answer within ``HANDOVER_TIMEOUT_S``)
aborts the failover: this node stays master and writes resume. The same RESP exchange works whether the
target is a redactor node or a redis-server.

Runs on the master actor's loop thread; the handover's connection is an asyncio task on that loop.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import TYPE_CHECKING

import structlog

from actors.replication.states import ReplicaState, ReplicaView
from actors.server.pause import PauseMode
from protocol.errors import CommandError
from protocol.resp import encode_command

if TYPE_CHECKING:
    from actors.replication.loop_side import Replication

log = structlog.get_logger("redactor.replication")

# How long the target may take to answer AUTH and REPLICAOF NO ONE.
HANDOVER_TIMEOUT_S = 5.0
# Held writes wait this long at most (the failover ends them sooner; this only bounds a pause nobody ends).
PAUSE_MS = 3600 * 1000


class FailoverState(Enum):
    NONE = "no-failover"  # no coordinated failover under way (INFO's master_failover_state values)
    WAITING_FOR_SYNC = "waiting-for-sync"  # writes held; waiting for the target to acknowledge the stream
    IN_PROGRESS = "failover-in-progress"  # handing over: the target is being promoted


class Failover:
    """The node's coordinated failover (``Replication.failover``)."""

    def __init__(self, replication: Replication) -> None:
        self.replication = replication
        self.server = replication.server
        self.state = FailoverState.NONE
        self.target: tuple[str, int] | None = None  # TO host port, or the replica chosen once caught up
        self.deadline_s = 0.0  # 0: no TIMEOUT
        self.force = False
        self._task: asyncio.Task[None] | None = None

    # -- the command ----------------------------------------------------------------------------------------

    def start(self, host: str | None, port: int, timeout_ms: int, force: bool) -> None:
        """FAILOVER [TO host port [FORCE]] [TIMEOUT ms], its arguments parsed (actors/commands/replication.py);
        raises CommandError with Redis's checks, in Redis's order."""
        replication = self.replication
        if self.state is not FailoverState.NONE:
            raise CommandError("ERR FAILOVER already in progress.")
        if replication.master_host is not None:
            raise CommandError("ERR FAILOVER is not valid when server is a replica.")
        if not replication.replicas_view:
            raise CommandError("ERR FAILOVER requires connected replicas.")
        if force and (not timeout_ms or host is None):
            raise CommandError(
                "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
            )
        if host is not None:
            replica = self._find(host, port)
            if replica is None:
                raise CommandError("ERR FAILOVER target HOST and PORT is not a replica.")
            if replica.state is not ReplicaState.ONLINE:
                raise CommandError("ERR FAILOVER target replica is not online.")
            self.target = (host, port)
        else:
            self.target = None
        log.info(
            "failover_requested", target=f"{host}:{port}" if host else "any replica", timeout_ms=timeout_ms
        )
        self.deadline_s = time.monotonic() + timeout_ms / 1000 if timeout_ms else 0.0
        self.force = force
        self.state = FailoverState.WAITING_FOR_SYNC
        self.server.client_pause.pause(PauseMode.WRITE, PAUSE_MS)
        replication.request_acks()

    # -- progress (the replication cron, each tick) -----------------------------------------------------------

    def cron(self) -> None:
        """updateFailoverStatus: hand over once the target caught up; give up (or, FORCE, hand over) at TIMEOUT."""
        if self.state is not FailoverState.WAITING_FOR_SYNC:
            return
        if self.deadline_s and time.monotonic() >= self.deadline_s:
            if self.force and self.target is not None:
                log.warning("failover_forced", target=_addr(self.target), reason="time out exceeded")
                self._hand_over()
            else:
                self.abort("Replica never caught up before timeout")
            return
        offset = self.server.repl_offset
        if self.target is not None:
            replica = self._find(*self.target)
            if replica is None or replica.ack_offset != offset:
                return
        else:
            caught_up = [r for r in self.replication.replicas_view if r.ack_offset == offset]
            if not caught_up:
                return
            self.target = (caught_up[0].ip, caught_up[0].port)
        log.info("failover_target_synced", target=_addr(self.target))
        self._hand_over()

    def abort(self, reason: str) -> None:
        """Back to a serving master: writes resume (a promotion under way is not waited for)."""
        log.warning("failover_aborted", reason=reason)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._clear()

    def _clear(self) -> None:
        self.state = FailoverState.NONE
        self.target = None
        self.deadline_s = 0.0
        self.force = False
        self.server.client_pause.unpause()

    # -- the handover -----------------------------------------------------------------------------------------

    def _hand_over(self) -> None:
        self.state = FailoverState.IN_PROGRESS
        master = self.replication.master
        assert master.loop is not None and self.target is not None
        self._task = master.loop.create_task(self._promote(self.target))

    async def _promote(self, target: tuple[str, int]) -> None:
        """REPLICAOF NO ONE to the target, then follow it; any failure aborts the failover."""
        try:
            await asyncio.wait_for(self._send_promotion(target), HANDOVER_TIMEOUT_S)
        except (TimeoutError, OSError, CommandError) as exc:  # (a cancel, by ABORT, goes through)
            self._task = None
            self.abort(f"Failover target rejected the promotion: {exc}")
            return
        self._task = None
        host, port = target
        self.replication.set_master(host, port)
        log.info("failover_done", new_master=_addr(target))
        self._clear()

    async def _send_promotion(self, target: tuple[str, int]) -> None:
        config = self.server.config
        commands: list[list[bytes]] = []
        password = config["masterauth"]
        if password:
            user = config["masteruser"]
            commands.append(
                [b"AUTH", user.encode(), password.encode()] if user else [b"AUTH", password.encode()]
            )
        commands.append([b"REPLICAOF", b"NO", b"ONE"])
        reader, writer = await asyncio.open_connection(*target)
        try:
            writer.write(b"".join(encode_command(command) for command in commands))
            await writer.drain()
            for _ in commands:
                line = await reader.readline()
                if not line.startswith(b"+"):
                    raise CommandError(line.decode("utf-8", "replace").strip() or "connection closed")
        finally:
            writer.close()

    # -- helpers ------------------------------------------------------------------------------------------

    def _find(self, host: str, port: int) -> ReplicaView | None:
        for replica in self.replication.replicas_view:
            if replica.ip == host and replica.port == port:
                return replica
        return None


def _addr(target: tuple[str, int]) -> str:
    return f"{target[0]}:{target[1]}"
