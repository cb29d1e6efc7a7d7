"""What the primary side keeps per replica and per snapshot job (bus thread), and the limits of the transfer.

``ReplicaLink`` is one attached replica: its state, acks, the stream buffered for it while it syncs and the
snapshot file being sent to it. ``SnapshotJob`` is one forked snapshot and the replicas waiting for it.
primary.py drives both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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


@dataclass
class SnapshotJob:
    """One forked snapshot and the replicas it is for (actor thread)."""

    id: int
    state: JobState = JobState.REQUESTED
    pid: int = 0
    offset: int = 0  # stream position of the snapshot
    stream_db: int = -1  # the database the stream has selected at that position
    replid: str = ""
    path: str = ""
    size: int = 0
    done_fd: int = -1  # read end of the child's pipe, polled while FORKED (-1: closed)
    replicas: set[bytes] = field(default_factory=set)
    started_s: float = field(default_factory=time.monotonic)


@dataclass
class ReplicaLink:
    """A replica attached to this node (actor thread)."""

    identity: bytes
    node_id: str
    ip: str
    port: int
    state: ReplicaState
    last_io_s: float
    ack_offset: int = 0
    ack_time_s: float = 0.0
    # Stream position just after the last byte queued for it (None until its snapshot offset is known).
    stream_pos: int | None = None
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    job: int | None = None
    snap_file: BinaryIO | None = None
    snap_sent: int = 0
    snap_acked: int = 0
    snap_started_s: float = 0.0
    last_ping_s: float = 0.0
    direct: int = 0  # the loop writes its stream straight to its socket (direct.py): that socket's token
