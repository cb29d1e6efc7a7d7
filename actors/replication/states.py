"""Replication's state machines (Enums, one comment per state) and the read-only views the actor publishes.

The views are immutable and replaced whole by the actor thread, so the loop thread reads them without a lock.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class LinkState(Enum):
    """A replica's link to its master (Redis's repl_state)."""

    NONE = "none"  # not a replica: there is no master to follow
    CONNECT = "connect"  # must (re)connect: waits out its backoff, then asks the loop where its stream stands
    CONNECTING = "connecting"  # DEALER connected, hello sent: waits for the master to answer at all
    HANDSHAKE = "handshake"  # hello answered, PSYNC sent: waits for CONTINUE or FULLRESYNC
    TRANSFER = "transfer"  # FULLRESYNC: waits for the chunks of the snapshot; a loader thread parses each
    LOADING = "loading"  # snapshot received: the loader thread finishes it; the stream is buffered meanwhile
    CONNECTED = "connected"  # streaming: applies the master's stream in order, acks every second


class SyncLoading(Enum):
    """How a replica loads a full sync's snapshot, as the loop sees it (loop_side.Replication._follow_link)."""

    NONE = "none"  # no full sync being loaded: the dataset is served as it is
    BLOCKING = "blocking"  # Redis's disk-based load: -LOADING for most commands, INFO loading:1
    ASYNC = "async"  # repl-diskless-load swapdb: the old data is served meanwhile, INFO async_loading:1


# What ROLE calls each link state (Redis's slavestate strings).
ROLE_STATE_NAMES = {
    LinkState.NONE: "none",
    LinkState.CONNECT: "connect",
    LinkState.CONNECTING: "connecting",
    LinkState.HANDSHAKE: "handshake",
    LinkState.TRANSFER: "sync",
    LinkState.LOADING: "sync",
    LinkState.CONNECTED: "connected",
}


class ReplicaState(Enum):
    """A replica attached to this node, as its master sees it (Redis's replstate)."""

    WAIT_BGSAVE_START = "wait_bgsave_start"  # needs a snapshot: waits for a fork (or the running one)
    WAIT_BGSAVE_END = "wait_bgsave_end"  # forked at the snapshot's offset: the stream from there is buffered,
    # and the file goes out as the child writes it
    SEND_BULK = "send_bulk"  # the file is complete: the rest of it goes out, within a window of acks
    ONLINE = "online"  # streaming: gets each batch of the stream as it is fed


# What INFO calls each replica state (replstateToString).
INFO_STATE_NAMES = {
    ReplicaState.WAIT_BGSAVE_START: "wait_bgsave",
    ReplicaState.WAIT_BGSAVE_END: "wait_bgsave",
    ReplicaState.SEND_BULK: "send_bulk",
    ReplicaState.ONLINE: "online",
}


class JobState(Enum):
    """A snapshot made for replicas."""

    REQUESTED = "requested"  # the loop was asked to fork; replicas needing a snapshot may still join
    FORKED = "forked"  # the child writes the file (replicas are sent it as it grows); its offset is known
    DONE = "done"  # the file is complete: its size is final; replicas are sent the rest of it


# -- views the actor publishes for the loop (immutable; replaced whole, so reading needs no lock) -------------


class ReplicaView(NamedTuple):
    ip: str
    port: int
    state: ReplicaState
    ack_offset: int
    ack_time_s: float  # time.monotonic() of the latest ack (or of going online)
    resp: bool = False  # a Redis replica on a RESP connection (it needs PING and GETACK in the stream)


class LinkView(NamedTuple):
    state: LinkState = LinkState.NONE
    read_offset: int = 0  # stream bytes received and handed to the loop
    last_io_s: float = 0.0  # time.monotonic() of the latest message from the master
    down_since_s: float = 0.0  # time.time() the link went down (0: never up)
    transfer_size: int = -1  # snapshot bytes announced (-1: not yet known)
    transfer_read: int = 0
    transfer_last_io_s: float = 0.0
    transfer_replid: str = ""  # the replication id of the full sync under way (its FULLRESYNC's)


class BacklogView(NamedTuple):
    first_byte_offset: int
    histlen: int
