"""Snapshot jobs of the primary side (bus thread): when a full sync gets a snapshot, and the snapshot's life.

A replica that needs a full sync joins a job: one the loop is about to fork, one forked whose offset the backlog
still covers, or a new one. Only one fork runs at a time; with ``repl-diskless-sync`` a new one waits
``repl-diskless-sync-delay`` seconds (or for ``repl-diskless-sync-max-replicas`` replicas) so that replicas
arriving meanwhile share it, as Redis's syncCommand and replicationCron do. Once forked, each replica of the job
gets FullResync and the file as the child writes it (primary.py's ``send_bulk``); the child's pipe, or the
loop's reaping of it, says when the file is complete.

A mixin: ``PrimarySide`` (primary.py) owns the state named below.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import structlog

from actors.replication import messages as m
from actors.replication.links import ReplicaLink, SnapshotJob
from actors.replication.resp_replica import RespReplicaLink
from actors.replication.snapshot_child import SNAPSHOT_DONE_BYTE, unlink_quietly
from actors.replication.states import JobState, ReplicaState
from protocol import peer

if TYPE_CHECKING:
    from actors.bus.bus import BusActor
    from actors.config import Config
    from actors.replication.actor import ReplicationActor

log = structlog.get_logger("redactor.replication")

DELAYED = "Delay next BGSAVE for diskless SYNC"  # Redis's log line


class SnapshotJobs:
    """The snapshot jobs made for full syncs (a mixin of ``PrimarySide``, bus thread)."""

    actor: ReplicationActor
    bus: BusActor
    config: Config
    replicas: dict[bytes, ReplicaLink]
    resp_links: dict[bytes, RespReplicaLink]
    jobs: dict[int, SnapshotJob]
    _next_job: int

    def _send(self, identity: bytes, frame: peer.PeerFrame) -> None:
        raise NotImplementedError

    def enqueue(self, replica: ReplicaLink, start: int, data: bytes) -> None:
        raise NotImplementedError

    def drop_replica(self, replica: ReplicaLink, reason: str, quiet: bool = False) -> None:
        raise NotImplementedError

    def _start_full_sync(self, replica: ReplicaLink) -> None:
        """Attach to a snapshot in the making if one can serve it, else ask the loop for a new fork."""
        replica.state = ReplicaState.WAIT_BGSAVE_START
        backlog = self.actor.backlog
        for job in self.jobs.values():
            if job.state is JobState.REQUESTED:
                job.replicas.add(replica.identity)
                replica.job = job.id
                return
            if (
                job.state is JobState.FORKED
                and job.replid == self.actor.replid
                and backlog is not None
                and backlog.covers(job.offset)
            ):
                # The child is writing a snapshot at job.offset and the backlog still has everything after it.
                job.replicas.add(replica.identity)
                self._attach_to_forked(replica, job)
                self.enqueue(replica, job.offset, backlog.read(job.offset))
                return
        if any(job.state is not JobState.DONE for job in self.jobs.values()):
            return  # one fork at a time: it waits for the running one to finish (see _start_waiting_syncs)
        link = self.resp_links.get(replica.identity)
        if (
            self.config["repl-diskless-sync"]
            and self.config["repl-diskless-sync-delay"]
            and (link is None or link.capa_eof)
        ):
            # Redis's syncCommand: a diskless transfer waits repl-diskless-sync-delay for more replicas to
            # share it (the tick starts it: _start_waiting_syncs). A Redis replica without ``capa eof`` gets a
            # disk-based sync there, which starts at once.
            log.info("full_sync_delayed", replica=f"{replica.ip}:{replica.port}", message=DELAYED)
            return
        self._new_job([replica])

    def _new_job(self, replicas: list[ReplicaLink]) -> None:
        job = SnapshotJob(self._next_job)
        self._next_job += 1
        self.jobs[job.id] = job
        for replica in replicas:
            job.replicas.add(replica.identity)
            replica.job = job.id
        self.actor.tell_loop(m.RequestSnapshot(job.id))

    def _start_waiting_syncs(self, now: float | None = None) -> None:
        """A snapshot for the replicas waiting for one, when no job runs (Redis's shouldStartChildReplication):
        at once, or on a ``tick`` (``now``) once one of them waited repl-diskless-sync-delay or
        repl-diskless-sync-max-replicas of them wait."""
        if any(job.state is not JobState.DONE for job in self.jobs.values()):
            return
        waiting = [
            r for r in self.replicas.values() if r.state is ReplicaState.WAIT_BGSAVE_START and r.job is None
        ]
        if not waiting:
            return
        config = self.config
        if now is not None and config["repl-diskless-sync"]:
            enough = config["repl-diskless-sync-max-replicas"]
            waited_s = now - min(replica.sync_requested_s for replica in waiting)
            if waited_s < config["repl-diskless-sync-delay"] and not (enough and len(waiting) >= enough):
                return
        self._new_job(waiting)

    def _attach_to_forked(self, replica: ReplicaLink, job: SnapshotJob) -> None:
        """FULLRESYNC at the job's offset, and the snapshot starts flowing: it is sent as the child writes it."""
        replica.job = job.id
        replica.state = ReplicaState.WAIT_BGSAVE_END
        replica.stream_pos = job.offset
        replica.pending.clear()
        replica.pending_bytes = 0
        try:
            replica.snap_file = open(job.path, "rb", buffering=0)  # closed when the transfer ends
        except OSError as exc:
            self.drop_replica(replica, f"cannot open snapshot: {exc.strerror}")
            return
        replica.snap_sent = replica.snap_acked = 0
        replica.snap_started_s = time.monotonic()
        self._send(replica.identity, peer.FullResync(job.replid, job.offset))
        self._send(replica.identity, peer.SnapBegin(-1))  # the size is known at snap_end
        log.info(
            "full_sync_started",
            replica=f"{replica.ip}:{replica.port}",
            offset=job.offset,
            job=job.id,
            replid=job.replid,
            message=f"Full resync requested by replica {replica.ip}:{replica.port}",
        )

    def on_forked(self, message: m.Forked) -> None:
        job = self.jobs.get(message.job)
        if job is None:
            os.close(message.done_fd)
            return  # asked by a previous incarnation of this actor: its file is removed when it is done
        job.state, job.pid, job.offset = JobState.FORKED, message.pid, message.offset
        job.stream_db, job.replid, job.path = message.stream_db, message.replid, message.path
        job.done_fd = message.done_fd
        self.bus.add_socket(job.done_fd, lambda: self._on_child_signal(job))
        for identity in list(job.replicas):
            replica = self.replicas.get(identity)
            if replica is None:
                job.replicas.discard(identity)
                continue
            self._attach_to_forked(replica, job)
        self.abandon_if_useless(job)  # every replica it was asked for left before the fork

    def on_fork_failed(self, message: m.ForkFailed) -> None:
        self._on_job_failed(message.job, f"fork failed: {message.reason}")

    def _on_job_failed(self, job_id: int, reason: str) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        self._close_done_fd(job)
        log.warning("full_sync_failed", job=job_id, reason=reason)
        for identity in job.replicas:
            replica = self.replicas.get(identity)
            if replica is not None:
                self._send(replica.identity, peer.Error(f"full sync failed: {reason}"))
                self.drop_replica(replica, reason, quiet=True)
        if job.path:
            unlink_quietly(job.path)
        self._start_waiting_syncs()

    def _close_done_fd(self, job: SnapshotJob) -> None:
        if job.done_fd >= 0:
            self.bus.remove_socket(job.done_fd, close=True)
            job.done_fd = -1

    def _on_child_signal(self, job: SnapshotJob) -> None:
        """The child's pipe is readable: its done byte (the file is complete) or EOF (it died without it)."""
        if job.done_fd < 0:
            return
        try:
            said = os.read(job.done_fd, 16)
        except BlockingIOError:
            return
        except OSError:
            said = b""
        self._close_done_fd(job)
        if self.jobs.get(job.id) is not job or job.state is not JobState.FORKED:
            return
        if SNAPSHOT_DONE_BYTE in said:
            self._on_snapshot_written(job)
        else:
            self._on_job_failed(job.id, "snapshot child failed")

    def on_snapshot_done(self, message: m.SnapshotDone) -> None:
        """The loop reaped the child (its pipe has usually told this actor already)."""
        job_id, ok, path = message.job, message.ok, message.path
        job = self.jobs.get(job_id)
        if job is None:
            unlink_quietly(path)  # a job of a previous incarnation of this actor, or one already released
            return
        if job.state is not JobState.FORKED:
            return
        if not ok:
            self._on_job_failed(job_id, "snapshot child failed")
            return
        self._on_snapshot_written(job)

    def _on_snapshot_written(self, job: SnapshotJob) -> None:
        self._close_done_fd(job)
        try:
            job.size = os.path.getsize(job.path)
        except OSError as exc:
            self._on_job_failed(job.id, f"snapshot file missing: {exc.strerror}")
            return
        job.state = JobState.DONE
        log.info(
            "snapshot_written",
            job=job.id,
            child_pid=job.pid,
            bytes=job.size,
            duration_ms=round((time.monotonic() - job.started_s) * 1000, 1),
        )
        for identity in list(job.replicas):
            replica = self.replicas.get(identity)
            if replica is None:
                job.replicas.discard(identity)
                continue
            replica.state = ReplicaState.SEND_BULK  # the rest goes out from this iteration's send_bulk
            self.actor.replicas_dirty = True
        self._release_job(job)
        self._start_waiting_syncs()

    def abandon_if_useless(self, job: SnapshotJob) -> None:
        """A forked job whose last replica left is given up and its child killed, as Redis does (the RDB pipe
        for a diskless sync; freeClient for a disk-based one, but only without save points, its child's file
        being dump.rdb there): the child costs no more memory, and the next full sync can fork at once."""
        if job.state is not JobState.FORKED or job.replicas or self.jobs.get(job.id) is not job:
            return
        diskless = self.config["repl-diskless-sync"]
        if not diskless and self.config["save"]:
            return
        self.jobs.pop(job.id, None)
        self._close_done_fd(job)
        unlink_quietly(job.path)  # (the child may still write it: the name is gone, and the file with it)
        log.info(
            "snapshot_abandoned",
            job=job.id,
            child_pid=job.pid,
            **(
                {"message": "Diskless rdb transfer, last replica dropped, killing fork child."}
                if diskless
                else {}
            ),
        )
        self.actor.tell_loop(m.KillSnapshot(job.id, job.pid))

    def _release_job(self, job: SnapshotJob) -> None:
        """Delete a finished snapshot once no replica is still being sent it."""
        if job.state is JobState.DONE and not job.replicas:
            self.jobs.pop(job.id, None)
            unlink_quietly(job.path)
