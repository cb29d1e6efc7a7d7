"""The primary side of replication (bus thread): the replicas attached to this node, the PSYNC decision,
snapshot jobs and the bulk transfer of their files.

A replica says Hello, then Psync (protocol/peer.py). When its history is still in the backlog it gets
Continue and the rest of the stream (partial resync); otherwise a full sync: the replica joins a snapshot job
(snapshot_jobs.py), the loop forks a child for it (snapshot_child.py), the replica gets FullResync at the
job's offset and the file as the child writes it, in chunks within a window of acks (``send_bulk``, a bulk
sender of the bus, so control frames go first), while the stream from the job's offset is buffered for it.
Then it is ONLINE and
gets every batch of the stream (``enqueue`` / ``flush``) and a Ping every repl-ping-replica-period.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import structlog

from actors.replication import messages as m
from actors.replication.links import (
    REPLICA_BUFFER_LIMIT_BYTES,
    SNAPSHOT_CHUNK_BYTES,
    SNAPSHOT_MIN_PARTIAL_CHUNK_BYTES,
    SNAPSHOT_WINDOW_BYTES,
    STREAM_MESSAGE_MAX_BYTES,
    SYNC_KEEPALIVE_INTERVAL_S,
    ReplicaLink,
    SnapshotJob,
)
from actors.replication.resp_replica import RespReplicaLink
from actors.replication.snapshot_child import unlink_quietly
from actors.replication.snapshot_jobs import SnapshotJobs
from actors.replication.states import INFO_STATE_NAMES, JobState, LinkState, ReplicaState
from protocol import errors, peer
from protocol.peer import PEER_PROTOCOL_VERSION

if TYPE_CHECKING:
    from actors.replication.actor import ReplicationActor

log = structlog.get_logger("redactor.replication")


class PrimarySide(SnapshotJobs):
    """The replicas attached to this node and the snapshot jobs made for them (bus thread)."""

    def __init__(self, actor: ReplicationActor) -> None:
        self.actor = actor
        self.bus = actor.bus
        self.server = actor.server
        self.config = actor.config
        self.replicas: dict[bytes, ReplicaLink] = {}
        self.no_replicas_since_s = time.monotonic()
        self.jobs: dict[int, SnapshotJob] = {}
        self._next_job = 1
        # Redis replicas on RESP connections, by their identity in ``replicas`` (resp_replica.py).
        self.resp_links: dict[bytes, RespReplicaLink] = {}

    def say_bye(self) -> bool:
        """Node or actor stopping: tell every replica (True if there was one to tell)."""
        for replica in self.replicas.values():
            self._send(replica.identity, peer.Bye())
        return bool(self.replicas)

    def close(self) -> None:
        """The bus is stopping: forget the replicas and the jobs (quietly; the byes went out already)."""
        for replica in list(self.replicas.values()):
            self.drop_replica(replica, "node stopping", quiet=True)
        # Snapshot children belong to the loop, which reaps them (and kills them when the node stops); a file a
        # child is still writing is deleted when the next incarnation hears it is done (an unknown job).
        for job in list(self.jobs.values()):
            self._close_done_fd(job)
            if job.state is JobState.DONE:
                unlink_quietly(job.path)
        self.jobs.clear()

    def on_feed(self, start: int, data: bytes) -> None:
        """A batch of the stream, appended to the backlog already: queue it for every replica that streams."""
        for replica in list(self.replicas.values()):
            if replica.stream_pos is not None:
                self.enqueue(replica, start, data)

    def on_request_acks(self, message: m.RequestAcks) -> None:
        for replica in list(self.replicas.values()):
            if replica.state is ReplicaState.ONLINE:
                self.flush_replica(replica)  # the writes WAIT is about go before the request
                self._send(replica.identity, peer.GetAck())

    def on_drop_replicas(self, message: m.DropReplicas) -> None:
        for replica in list(self.replicas.values()):
            self.drop_replica(replica, message.reason)

    def on_peer_message(self, identity: bytes, frames: list[bytes]) -> None:
        """A replication frame on the router (bus family ``PEER_FAMILY``) from a replica or a would-be one."""
        try:
            frame = peer.decode(frames)
        except peer.PeerFrameError as exc:
            log.info("node_message_ignored", reason=f"bad frame: {exc}")
            if exc.verb == "hello":  # a peer that may speak another version: tell it rather than go silent
                self._send(
                    identity, peer.Error(f"ERR bad hello ({exc}): this node speaks {PEER_PROTOCOL_VERSION}")
                )
            return
        now = time.monotonic()
        if not self.actor.ready and isinstance(frame, peer.Hello | peer.Psync):
            self._send(identity, peer.Error(errors.LOADING))
            return
        if isinstance(frame, peer.Hello):
            error = self._check_auth(frame.auth)
            if error is None and frame.version != PEER_PROTOCOL_VERSION:
                error = (
                    f"ERR replication protocol version {frame.version!r} is not supported (this node speaks "
                    f"{PEER_PROTOCOL_VERSION})"
                )
            if error is None:
                self.bus.peer_authenticated(identity)  # lifts the bus's limits before AUTH (admission.py)
            self._send(identity, peer.Error(error) if error else peer.HelloOk(self.server.run_id))
            return
        if isinstance(frame, peer.Psync):
            self._on_psync(identity, frame, now)
            return
        replica = self.replicas.get(identity)
        if replica is None:
            if not isinstance(frame, peer.Bye):
                # A replica we dropped (timeout) still talks: tell it to start over.
                self._send(identity, peer.Error("unknown replica: resync"))
            return
        replica.last_io_s = now
        if isinstance(frame, peer.Ack):
            if frame.offset >= 0:
                replica.ack_offset = max(replica.ack_offset, frame.offset)
                replica.ack_time_s = now
                self.actor.replicas_dirty = True
        elif isinstance(frame, peer.SnapAck):
            replica.snap_acked = max(replica.snap_acked, frame.received)
        elif isinstance(frame, peer.Bye):
            self.drop_replica(replica, "replica closed the link")
        else:
            log.info("node_message_ignored", verb=frame.VERB)

    def _check_auth(self, auth: Any) -> str | None:
        """A replica's credentials (masteruser / masterauth) against the ACL users, as Redis's AUTH would be."""
        user, password = peer.unpack_auth(str(auth))
        return self.server.acl.link_refusal(user, password)

    def _on_psync(self, identity: bytes, frame: peer.Psync, now: float) -> None:
        error = self._check_auth(frame.auth)
        if error:
            self._send(identity, peer.Error(error))
            return
        self.bus.peer_authenticated(identity)
        self.accept_psync(identity, frame.replid, frame.offset, frame.node_id, frame.ip, frame.port, now)

    def accept_psync(
        self, identity: bytes, replid: str, psync_offset: int, node_id: str, ip: str, port: int, now: float
    ) -> None:
        """An authenticated PSYNC (bus or RESP): continue from the backlog or start a full sync."""
        link = self.actor.replica.link
        if link is not None and link.state is not LinkState.CONNECTED:
            self._send(identity, peer.Error("NOMASTERLINK Can't SYNC while not connected with my master"))
            return
        for other in list(self.replicas.values()):
            # The same replica again: by link, by run, or by address (a restarted replica has a new node id,
            # and without disconnect notifications its old link would linger until repl-timeout).
            if other.identity == identity or other.node_id == node_id or (other.ip, other.port) == (ip, port):
                self.drop_replica(other, "replaced by a new link", quiet=True)
        replica = ReplicaLink(
            identity, node_id, ip, port, ReplicaState.WAIT_BGSAVE_START, now, ack_time_s=now
        )
        self.replicas[identity] = replica
        addr = f"{replica.ip}:{replica.port}"
        log.info(
            "replica_sync_requested",
            role="master",
            replica=addr,
            replid=replid,
            offset=psync_offset,
            message=f"Replica {addr} asks for synchronization",
        )
        refusal = self._partial_refusal(replid, psync_offset)
        if refusal is None:
            assert self.actor.backlog is not None
            pos = psync_offset - 1
            stream_db = self.actor.backlog.db_at(pos)
            # Counted before the answer leaves, so INFO shows it by the time the replica reports its link up.
            self.actor.tell_loop(m.CountStat("sync_partial_ok"))
            self._send(replica.identity, peer.Continue(self.actor.replid, stream_db))
            replica.state = ReplicaState.ONLINE
            replica.stream_pos = pos
            self.enqueue(replica, pos, self.actor.backlog.read(pos))
            self.flush_replica(replica)
            log.info(
                "partial_resync_accepted",
                replica=addr,
                offset=psync_offset,
                backlog_bytes=self.actor.backlog.end_pos - pos,
                replid=self.actor.replid,
                message=f"Partial resynchronization request from {addr} accepted. Sending "
                f"{self.actor.backlog.end_pos - pos} bytes of backlog starting from offset {psync_offset}.",
            )
        else:
            if replid != "?":
                self.actor.tell_loop(m.CountStat("sync_partial_err"))
                log.info(
                    "partial_resync_refused", replica=addr, reason=refusal, replid=replid, offset=psync_offset
                )
            self.actor.tell_loop(m.CountStat("sync_full"))
            self._start_full_sync(replica)
        self.actor.replicas_dirty = True

    def _partial_refusal(self, replid: str, psync_offset: int) -> str | None:
        """Why a PSYNC cannot continue (masterTryPartialResynchronization), or None if it can."""
        if replid == "?":
            return "no history"
        if replid != self.actor.replid and not (
            replid == self.actor.replid2 and psync_offset <= self.actor.second_offset
        ):
            if replid == self.actor.replid2:
                return f"offset {psync_offset} is past the end of the previous history ({self.actor.second_offset})"
            return "replication id mismatch"
        backlog = self.actor.backlog
        if backlog is None:
            return "no backlog"
        if not backlog.covers(psync_offset - 1):
            return (
                f"offset {psync_offset} outside the backlog [{backlog.first_byte_offset}, "
                f"{backlog.end_pos + 1}]"
            )
        return None

    def send_bulk(self, budget_bytes: int) -> bool:
        """The bus's bulk sender: up to ``budget_bytes`` of snapshot files to the replicas being sent one.

        Returns True when it stopped only for the budget (more is ready to go at once), so the bus polls
        without blocking and drains control frames before the next piece.
        """
        now = time.monotonic()
        for replica in list(self.replicas.values()):
            if replica.snap_file is None:  # only WAIT_BGSAVE_END (the file grows) and SEND_BULK have one
                continue
            if budget_bytes <= 0:
                return True
            sent, more = self._send_bulk(replica, now, budget_bytes)
            budget_bytes -= sent
            if more:
                return True
        return False

    def _send_bulk(self, replica: ReplicaLink, now: float, budget_bytes: int) -> tuple[int, bool]:
        """Send what the window and the budget allow of the snapshot file, growing (FORKED) or complete (DONE).

        Returns (bytes sent, whether it stopped only for the budget).
        """
        job = self.jobs.get(replica.job) if replica.job is not None else None
        if job is None or replica.snap_file is None:
            self.drop_replica(replica, "snapshot vanished")
            return 0, False
        done = job.state is JobState.DONE
        fd = replica.snap_file.fileno()
        sent = 0
        resp = self.resp_links.get(replica.identity)
        if resp is not None:
            # A Redis replica acks no chunks: what its writer has not written yet is what is in flight.
            replica.snap_acked = replica.snap_sent - resp.queued_bytes
            if not resp.capa_eof:
                if not done:
                    return 0, False  # the disk-based form needs the size first: wait for the whole file
                if replica.snap_sent == 0:
                    resp.send_sized_snapshot(job.size)
        while replica.snap_sent - replica.snap_acked < SNAPSHOT_WINDOW_BYTES:
            try:
                # While the child writes, only bytes below the file's size are final (written and visible).
                available = (job.size if done else os.fstat(fd).st_size) - replica.snap_sent
                if available <= 0 or (not done and available < SNAPSHOT_MIN_PARTIAL_CHUNK_BYTES):
                    break  # all sent, or wait for a worthwhile piece rather than send crumbs
                if sent >= budget_bytes:
                    return sent, True
                chunk = os.pread(fd, min(SNAPSHOT_CHUNK_BYTES, available), replica.snap_sent)
            except OSError as exc:
                self.drop_replica(replica, f"cannot read snapshot: {exc.strerror}")
                return sent, False
            if not chunk:
                self.drop_replica(replica, f"snapshot file shorter than its {job.size} bytes")
                return sent, False
            self._send(replica.identity, peer.SnapChunk(replica.snap_sent, chunk))
            replica.snap_sent += len(chunk)
            sent += len(chunk)
        if not done or replica.snap_sent < job.size:
            return sent, False
        replica.snap_file.close()
        replica.snap_file = None
        if resp is None:
            self._send(replica.identity, peer.SnapEnd(job.size, job.stream_db))
        elif resp.capa_eof:
            resp.send_snapshot_end(job.size)
        log.info(
            "snapshot_sent",
            replica=f"{replica.ip}:{replica.port}",
            bytes=job.size,
            duration_ms=round((now - replica.snap_started_s) * 1000, 1),
            offset=job.offset,
            message=f"Synchronization with replica {replica.ip}:{replica.port} succeeded",
        )
        job.replicas.discard(replica.identity)
        replica.job = None
        replica.state = ReplicaState.ONLINE
        replica.ack_time_s = now
        self.flush_replica(replica)
        self.actor.replicas_dirty = True
        self._release_job(job)
        return sent, False

    def enqueue(self, replica: ReplicaLink, start: int, data: bytes) -> None:
        """Queue the stream bytes [start, start+len) for a replica, from where it stands."""
        pos = replica.stream_pos
        if pos is None or not data:
            return
        end = start + len(data)
        if end <= pos:
            return
        if replica.direct:  # the loop wrote these bytes to it already
            replica.stream_pos = end
            return
        if start > pos:
            self.drop_replica(replica, f"stream gap at {pos}")
            return
        if start < pos:
            data = data[pos - start :]
        replica.pending.append(data)
        replica.pending_bytes += len(data)
        replica.stream_pos = end
        if replica.state is not ReplicaState.ONLINE and replica.pending_bytes > REPLICA_BUFFER_LIMIT_BYTES:
            self.drop_replica(replica, "replica output buffer limit reached during sync")

    def flush_replica(self, replica: ReplicaLink) -> None:
        if not replica.pending or replica.stream_pos is None:
            return
        data = replica.pending[0] if len(replica.pending) == 1 else b"".join(replica.pending)
        replica.pending = []
        replica.pending_bytes = 0
        start = replica.stream_pos - len(data)
        for offset in range(0, len(data), STREAM_MESSAGE_MAX_BYTES):
            self._send(
                replica.identity,
                peer.Stream(start + offset, data[offset : offset + STREAM_MESSAGE_MAX_BYTES]),
            )

    def peers_gone(self, identities: list[bytes]) -> None:
        """Bus connections closed: their replicas are gone now, not at repl-timeout (Redis frees a replica's
        client when its socket closes: INFO, WAIT and a shutdown's wait stop counting it at once)."""
        for identity in identities:
            replica = self.replicas.get(identity)
            if replica is not None and identity not in self.resp_links:
                log.warning(
                    "link_lost",
                    role="master",
                    replica=f"{replica.ip}:{replica.port}",
                    reason="connection closed",
                    state=INFO_STATE_NAMES[replica.state],
                    message=f"Connection with replica {replica.ip}:{replica.port} lost.",
                )
                # (quiet: no Bye to a closed link, and the line above says what the quiet drop would not)
                self.drop_replica(replica, "connection closed", quiet=True)

    def drop_replica(self, replica: ReplicaLink, reason: str, quiet: bool = False) -> None:
        if self.replicas.get(replica.identity) is not replica:
            return
        del self.replicas[replica.identity]
        if replica.direct:
            self.actor.tell_loop(m.DirectClosed(replica.direct, reason))
        if replica.snap_file is not None:
            replica.snap_file.close()
            replica.snap_file = None
        if replica.job is not None:
            job = self.jobs.get(replica.job)
            if job is not None:
                job.replicas.discard(replica.identity)
                self._release_job(job)
                self.abandon_if_useless(job)
        resp = self.resp_links.pop(replica.identity, None)
        if resp is not None:
            resp.close(after_writes=not quiet)
        elif not quiet:
            self._send(replica.identity, peer.Bye())
        if not quiet:
            log.warning(
                "link_lost",
                role="master",
                replica=f"{replica.ip}:{replica.port}",
                reason=reason,
                state=INFO_STATE_NAMES[replica.state],
                message=f"Connection with replica {replica.ip}:{replica.port} lost.",
            )
        if not self.replicas:
            self.no_replicas_since_s = time.monotonic()
        self.actor.replicas_dirty = True

    def _send(self, identity: bytes, frame: peer.PeerFrame) -> None:
        resp = self.resp_links.get(identity)
        if resp is not None:
            resp.send_frame(frame)
            return
        self.bus.send_to_peer(identity, peer.encode(frame))

    def tick(self, now: float) -> None:
        config = self.config
        timeout_s = config["repl-timeout"]
        ping_period_s = config["repl-ping-replica-period"]
        for replica in list(self.replicas.values()):
            if now - replica.last_io_s > timeout_s:
                self.drop_replica(replica, "timeout")
                continue
            state = replica.state
            if state is ReplicaState.ONLINE:
                self.flush_replica(replica)
                if now - replica.last_ping_s >= ping_period_s:
                    replica.last_ping_s = now
                    self._send(
                        replica.identity,
                        peer.Ping(-1 if replica.stream_pos is None or replica.direct else replica.stream_pos),
                    )
            elif now - replica.last_ping_s >= SYNC_KEEPALIVE_INTERVAL_S:  # the file goes out in send_bulk
                replica.last_ping_s = now
                self._send(replica.identity, peer.Ping(-1))
        self._start_waiting_syncs(now)
        backlog = self.actor.backlog
        if backlog is not None:
            size = config["repl-backlog-size"]
            if size != backlog.size_bytes:
                backlog.resize(size)
            ttl_s = config["repl-backlog-ttl"]
            if (
                self.actor.replica.link is None
                and not self.replicas
                and not self.jobs
                and ttl_s
                and now - self.no_replicas_since_s > ttl_s
            ):
                log.info("replication_backlog_freed", idle_s=int(now - self.no_replicas_since_s))
                self.actor.backlog = None
                self.actor.tell_loop(m.BacklogFreed())
                self.actor.publish(force=True)
