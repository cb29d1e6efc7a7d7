"""Redis replicas on RESP connections, the loop thread's part: handing the connection over at PSYNC, and the
PING and ``REPLCONF GETACK *`` a Redis master puts inside its stream.

A redis-server replica reads its master's stream as commands and counts every byte in its offset, keep-alive
PINGs and GETACK requests included; so, as Redis's replicationCron and WAIT do, these go into the
propagation stream itself (for the replicas only: the AOF leaves them out). The bus replicas get them too,
byte for byte, and apply them as no-ops, so every replica of the node sees the same offsets and one backlog
serves both kinds. The keep-alive PING goes in while any replica is attached, as Redis's does: an idle
master's offset moves with it, and a cluster replica whose offset is still 0 is not listed in CLUSTER SLOTS
(isReplicaAvailable), so a replica that synced from a master with no writes since would stay hidden without
it. GETACK goes in when WAIT asks, for a Redis replica or a direct stream (the bus replicas ack on their own).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors.replication import messages as m
from actors.replication.direct import DIRECT_MARKER
from actors.replication.states import LinkState
from actors.server.server import BLOCKED
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.replication.loop_side import Replication
    from actors.server.client import Client

PING_ARGV = [b"PING"]
GETACK_ARGV = [b"REPLCONF", b"GETACK", b"*"]
NOMASTERLINK = "NOMASTERLINK Can't SYNC while not connected with my master"


class RespFeed:
    """The loop thread's side of Redis replicas (``Replication.resp``)."""

    def __init__(self, replication: Replication) -> None:
        self.replication = replication
        self.server = replication.server
        self._last_ping_s = time.monotonic()

    def attached(self) -> bool:
        """Whether a Redis replica is attached (the actor's published view says so)."""
        return any(view.resp for view in self.replication.replicas_view)

    def attach(self, client: Client, replid: str, offset: int, sync: bool) -> Any:
        """PSYNC / SYNC from a Redis replica: give its connection to the replication actor."""
        replication = self.replication
        if replication.master_host is not None and replication.link_view.state is not LinkState.CONNECTED:
            raise CommandError(NOMASTERLINK)
        if replid.startswith(DIRECT_MARKER):  # a redactor replica's direct stream socket (direct.py)
            return replication.direct.attach(client, replid[len(DIRECT_MARKER) :])
        detached = client.detach()
        if detached is None:
            raise CommandError("ERR the connection has unsent output: retry the PSYNC")
        fd, pending = detached
        host, _, port = client.addr.rpartition(":")
        replication.master.tell_bus(
            m.AttachRespReplica(
                fd=fd,
                pending=pending,
                ip=client.repl_ip or host.strip("[]"),
                port=client.repl_listening_port or int(port or 0),
                replid=replid,
                offset=offset,
                capa=frozenset(client.repl_capa),
                sync=sync,
            )
        )
        return BLOCKED  # nothing more is written on this connection by the loop

    def cron(self) -> None:
        """Redis's replicationCron: a PING in the stream every repl-ping-replica-period, with any replica."""
        if not self.replication.replicas_view or self.replication.master_host is not None:
            return  # a replica forwards its master's stream, pings included, byte for byte
        now = time.monotonic()
        if now - self._last_ping_s >= self.server.config["repl-ping-replica-period"]:
            self._last_ping_s = now
            self.server.stream.propagate_heartbeat(PING_ARGV)
            self.replication.master.schedule_flush()

    def request_acks(self) -> None:
        """WAIT asked for fresh acks: ``REPLCONF GETACK *`` follows the writes it is about in the stream."""
        replication = self.replication
        if (self.attached() or replication.direct.streaming()) and replication.master_host is None:
            self.server.stream.propagate_heartbeat(GETACK_ARGV)
            self.replication.master.schedule_flush()
