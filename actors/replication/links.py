"""What the primary side keeps per replica and per snapshot job (bus thread), and the limits of the transfer.

``ReplicaLink`` is one attached replica: its state, acks, the stream buffered for it while it syncs and the
snapshot file being sent to it. ``SnapshotJob`` is one forked snapshot and the replicas waiting for it.
primary.py drives both.
"""

from __future__ import annotations

import time
from typing import BinaryIO

from actors.replication.states import JobState, ReplicaState

# Snapshot transfer: chunk size, and how many unacknowledged bytes may be in flight to one replica (enough to
# keep a loopback or LAN link busy, small enough that a stalled replica costs little memory).
SNAPSHOT_CHUNK_BYTES = 1024 * 1024
SNAPSHOT_WINDOW_BYTES = 8 * SNAPSHOT_CHUNK_BYTES
# While the child still writes the file, a chunk shorter than this waits for more (unless it is the last).
SNAPSHOT_MIN_PARTIAL_CHUNK_BYTES = 256 * 1024
# Stream messages are cut at this size so one message never holds a huge batch (a replica parses them on its
# loop thread between other clients' commands).
STREAM_MESSAGE_MAX_BYTES = 1024 * 1024
# Redis's default client-output-buffer-limit for replicas (hard limit): a replica whose buffered stream (while
# it syncs) grows past this is dropped rather than letting the master's memory grow without bound.
REPLICA_BUFFER_LIMIT_BYTES = 256 * 1024 * 1024
# While a replica waits for its snapshot the master keeps it alive this often (Redis sends a newline a second).
SYNC_KEEPALIVE_INTERVAL_S = 1.0


class SnapshotJob:
    """One forked snapshot and the replicas it is for (actor thread)."""

    def __init__(
        self,
        id: int,
        state: JobState = JobState.REQUESTED,
        pid: int = 0,
        offset: int = 0,
        stream_db: int = -1,
        replid: str = "",
        path: str = "",
        size: int = 0,
        done_fd: int = -1,
        replicas: set[bytes] | None = None,
        started_s: float | None = None,
    ) -> None:
        self.id: int = id
        self.state: JobState = state
        self.pid: int = pid
        # stream position of the snapshot
        self.offset: int = offset
        # the database the stream has selected at that position
        self.stream_db: int = stream_db
        self.replid: str = replid
        self.path: str = path
        self.size: int = size
        # read end of the child's pipe, polled while FORKED (-1: closed)
        self.done_fd: int = done_fd
        self.replicas: set[bytes] = set() if replicas is None else replicas
        self.started_s: float = time.monotonic() if started_s is None else started_s


class ReplicaLink:
    """A replica attached to this node (actor thread)."""

    def __init__(
        self,
        identity: bytes,
        node_id: str,
        ip: str,
        port: int,
        state: ReplicaState,
        last_io_s: float,
        ack_offset: int = 0,
        ack_time_s: float = 0.0,
        stream_pos: int | None = None,
        pending: list[bytes] | None = None,
        pending_bytes: int = 0,
        job: int | None = None,
        snap_file: BinaryIO | None = None,
        snap_sent: int = 0,
        snap_acked: int = 0,
        snap_started_s: float = 0.0,
        last_ping_s: float = 0.0,
        direct: int = 0,
    ) -> None:
        self.identity: bytes = identity
        self.node_id: str = node_id
        self.ip: str = ip
        self.port: int = port
        self.state: ReplicaState = state
        self.last_io_s: float = last_io_s
        self.ack_offset: int = ack_offset
        self.ack_time_s: float = ack_time_s
        # Stream position just after the last byte queued for it (None until its snapshot offset is known).
        self.stream_pos: int | None = stream_pos
        self.pending: list[bytes] = [] if pending is None else pending
        self.pending_bytes: int = pending_bytes
        self.job: int | None = job
        self.snap_file: BinaryIO | None = snap_file
        self.snap_sent: int = snap_sent
        self.snap_acked: int = snap_acked
        self.snap_started_s: float = snap_started_s
        self.last_ping_s: float = last_ping_s
        # When it asked for the sync (repl-diskless-sync-delay counts from there).
        self.sync_requested_s: float = last_io_s
        # the loop writes its stream straight to its socket (direct.py): that socket's token
        self.direct: int = direct
