"""ReplicationActor: replication's bus extension (bus thread). It owns the backlog, a mirror of the loop's
replication ids, the primary side (replicas attached to this node) and the replica side (the link to a master),
and publishes read-only views for the loop.

It is not an actor class of its own: the node's ``BusActor`` (actors/bus/bus.py) is built with it as an
extension and it registers what it handles: peer frames of ``PEER_FAMILY`` (protocol/peer.py), the loop's
typed messages (messages.py), the loader thread's ``Loaded``, a tick, a bulk sender (snapshot transfers) and
the bus's start and stop. A restarted bus builds a new one with empty state, which asks the loop for the role,
the ids and where the stream stands (``ActorStarted``). It never touches the keyspace: everything that
changes data goes to the loop as a message (``tell_loop``, FIFO).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from actors.replication import direct, resp_replica
from actors.replication import messages as m
from actors.replication.backlog import Backlog
from actors.replication.loop_side import Replication
from actors.replication.primary import PrimarySide
from actors.replication.redis_master import RespMasterEvent
from actors.replication.replica import ReplicaSide
from actors.replication.snapshot_loader import Loaded
from actors.replication.states import BacklogView, LinkView, ReplicaView
from protocol.peer import PEER_FAMILY

if TYPE_CHECKING:
    from actors.bus.bus import BusActor

log = structlog.get_logger("redactor.replication")

# Published state (INFO) is refreshed at least this often even when nothing changes.
PUBLISH_INTERVAL_S = 0.5


class ReplicationActor:
    """Backlog, attached replicas and the link to a master, on the bus thread (build with ``BusActor``)."""

    def __init__(self, bus: BusActor) -> None:
        self.bus = bus
        self.master = bus.master
        self.server = bus.master.server
        self.config = self.server.config
        facade = self.server.replication
        assert isinstance(facade, Replication), "create Replication(server, master) before the bus"
        self.facade: Replication = facade
        # Mirror of the loop's ids, updated in order with the stream (Ids messages).
        self.replid = facade.replid
        self.replid2 = facade.replid2
        self.second_offset = facade.second_offset
        self.backlog: Backlog | None = None
        # False until the loop has told this actor the node's ids and backlog (after loading the dataset):
        # until then a replica's PSYNC is answered LOADING, as Redis does.
        self.ready = False
        self.replicas_dirty = False  # replica states or acks changed since the last publish
        self._last_publish_s = 0.0
        self.primary = PrimarySide(self)
        self.replica = ReplicaSide(self)
        primary, replica = self.primary, self.replica
        bus.register_family(PEER_FAMILY, primary.on_peer_message)
        for kind, handler in (
            (m.Feed, self._on_feed),
            (m.Ids, self._on_ids),
            (m.ResetBacklog, self._on_reset_backlog),
            (m.Ready, self._on_ready),
            (m.Forked, primary.on_forked),
            (m.ForkFailed, primary.on_fork_failed),
            (m.SnapshotDone, primary.on_snapshot_done),
            (m.RequestAcks, primary.on_request_acks),
            (m.DropReplicas, primary.on_drop_replicas),
            (m.ReplicaOf, replica.on_replicaof),
            (m.LinkReady, replica.on_link_ready),
            (m.Relink, replica.on_relink),
            (m.AttachRespReplica, lambda msg: resp_replica.attach(primary, msg)),
            (m.GetAckInStream, replica.on_getack_in_stream),
            (m.DirectAttach, lambda msg: direct.on_attach(primary, msg)),
            (m.DirectLost, lambda msg: direct.on_lost(primary, msg)),
        ):
            bus.register_loop_message(kind, handler)
        bus.register_control(Loaded, replica.on_snapshot_loaded)
        bus.register_control(RespMasterEvent, replica.on_resp_master_event)
        for event in (resp_replica.RespAck, resp_replica.RespClosed):
            bus.register_control(event, lambda msg: resp_replica.on_event(primary, msg))
        bus.register_tick(self._tick)
        bus.register_bulk(primary.send_bulk)
        bus.register_lifecycle(started=self._started, stopping=self._stopping)
        bus.register_gone(primary.peers_gone)

    def tell_loop(self, message: m.ActorToLoop) -> None:
        self.master.call_threadsafe(self.facade.receive, message)

    # -- lifecycle ------------------------------------------------------------------------------------

    def _started(self) -> None:
        self.tell_loop(m.ActorStarted())

    def _stopping(self) -> None:
        said_bye = self.replica.say_bye()
        said_bye = self.primary.say_bye() or said_bye
        if said_bye:
            time.sleep(0.05)  # let ZeroMQ's I/O thread put the byes on the wire before the sockets close
        self.replica.close()
        self.primary.close()

    # -- messages from the loop ---------------------------------------------------------------------------

    def _on_ids(self, message: m.Ids) -> None:
        self.replid, self.replid2, self.second_offset = message.replid, message.replid2, message.second_offset

    def _on_ready(self, message: m.Ready) -> None:
        self.ready = True

    def _on_feed(self, message: m.Feed) -> None:
        backlog = self.backlog
        if backlog is None:
            return
        start, data = message.start, message.data
        if start != backlog.end_pos:
            if start + len(data) <= backlog.end_pos:
                return
            log.error("replication_backlog_gap", backlog_end=backlog.end_pos, feed_start=start)
            self.backlog = backlog = Backlog(self.config["repl-backlog-size"], start, -1)
            for replica in list(self.primary.replicas.values()):
                self.primary.drop_replica(replica, "stream gap")
        backlog.append(data, message.selects)
        self.primary.on_feed(start, data)
        self.replica.on_feed(backlog.end_pos)

    def _on_reset_backlog(self, message: m.ResetBacklog) -> None:
        start, force = message.start, message.force
        backlog = self.backlog
        if not force and backlog is not None and backlog.end_pos == start:
            return
        self.backlog = Backlog(self.config["repl-backlog-size"], start, message.db)
        for replica in list(self.primary.replicas.values()):
            if force or (replica.stream_pos is not None and replica.stream_pos != start):
                self.primary.drop_replica(replica, "replication history changed")
        self.publish(force=True)

    # -- timers and publishing -------------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        self.primary.tick(now)
        self.replica.tick(now)
        self.publish()

    def publish(self, force: bool = False, link_changed: bool = False, gen: int = -1) -> None:
        """Hand the loop fresh read-only views (INFO, ROLE, WAIT, min-replicas) of what changed.

        Views are immutable objects replaced whole, so the loop reads them without a lock; only changes that
        the loop must act on (acks for WAIT, link states for MASTERDOWN) also send it a message.
        """
        facade = self.facade
        link = self.replica.link
        view = (
            LinkView()
            if link is None
            else LinkView(
                state=link.state,
                read_offset=link.read_pos,
                last_io_s=link.last_io_s,
                down_since_s=link.down_since_s,
                transfer_size=link.snap_size,
                transfer_read=link.snap_received,
                transfer_last_io_s=link.snap_last_io_s,
                transfer_replid=link.snap_replid or "",
            )
        )
        now = time.monotonic()
        if (
            force
            or view.state is not facade.link_view.state
            or view.read_offset != facade.link_view.read_offset
            or now - self._last_publish_s >= PUBLISH_INTERVAL_S
        ):
            self._last_publish_s = now
            facade.link_view = view
        backlog = self.backlog
        backlog_view = (
            BacklogView(backlog.first_byte_offset, backlog.histlen) if backlog is not None else None
        )
        if backlog_view != facade.backlog_view:
            facade.backlog_view = backlog_view
        if self.replicas_dirty or force:
            self.replicas_dirty = False
            facade.replicas_view = tuple(
                ReplicaView(
                    r.ip, r.port, r.state, r.ack_offset, r.ack_time_s, r.identity in self.primary.resp_links
                )
                for r in self.primary.replicas.values()
            )
            self.tell_loop(m.ReplicasChanged())
        if link_changed:
            self.tell_loop(m.LinkChanged(gen))
