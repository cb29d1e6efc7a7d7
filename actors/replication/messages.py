"""Messages between the loop thread's ``Replication`` and the bus thread's ``ReplicationActor``: one frozen
dataclass per message, passed by reference (both ends live in one process).

Loop -> actor messages go through ``MasterActor.tell_bus`` (FIFO, in order with the stream: one ``Feed`` per
tick at most) and reach the handler the actor registered on the bus for their type. Actor -> loop messages go
through ``MasterActor.call_threadsafe(replication.receive, message)`` (FIFO too). Nothing here is a wire
format: node-to-node frames are protocol/peer.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.data.keyspace import Database

# -- loop -> actor ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ids:
    """The node's replication ids changed (or the actor restarted and must learn them)."""

    replid: str
    replid2: str
    second_offset: int


@dataclass(frozen=True, slots=True)
class ResetBacklog:
    """Start the backlog over at ``start`` (``db``: the database selected there, -1 unknown)."""

    start: int
    db: int
    force: bool  # also when the backlog already ends at start: a new history (full sync installed)


@dataclass(frozen=True, slots=True)
class Feed:
    """One tick's stream bytes from stream position ``start``, with the SELECTs among them."""

    start: int
    selects: tuple[tuple[int, int], ...]  # (stream position, db) of each SELECT in data
    data: bytes


@dataclass(frozen=True, slots=True)
class Forked:
    """A snapshot child runs: its file at ``path`` grows; ``done_fd`` reads its done byte (or EOF)."""

    job: int
    pid: int
    offset: int
    stream_db: int
    replid: str
    path: str
    done_fd: int


@dataclass(frozen=True, slots=True)
class ForkFailed:
    job: int
    reason: str


@dataclass(frozen=True, slots=True)
class SnapshotDone:
    """The loop reaped a snapshot child (its pipe has usually told the actor already)."""

    job: int
    ok: bool
    path: str


@dataclass(frozen=True, slots=True)
class Ready:
    """The dataset is loaded and the ids are settled: the actor may answer PSYNC."""


@dataclass(frozen=True, slots=True)
class RequestAcks:
    """WAIT: ask the online replicas for their offsets now (after this tick's writes)."""


@dataclass(frozen=True, slots=True)
class DropReplicas:
    reason: str


@dataclass(frozen=True, slots=True)
class ReplicaOf:
    """Follow ``host:port`` (None: become a master); ``gen`` tags the work of this link."""

    gen: int
    host: str | None
    port: int


@dataclass(frozen=True, slots=True)
class LinkReady:
    """Answer to PrepareLink: everything handed over so far is applied; PSYNC from here."""

    gen: int
    replid: str  # "?": no history to continue
    offset: int


@dataclass(frozen=True, slots=True)
class Relink:
    """The loop could not apply the master's stream: drop the link and resync."""

    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class GetAckInStream:
    """The loop applied a ``REPLCONF GETACK *`` from its master's stream (a Redis master's WAIT)."""

    gen: int


@dataclass(frozen=True, slots=True)
class AttachRespReplica:
    """A Redis replica's PSYNC (or SYNC) on a RESP connection, whose socket the loop hands over."""

    fd: int  # a duplicate of the connection's descriptor: the actor owns it now
    pending: bytes  # reply bytes the connection had not written yet: they go out first
    ip: str
    port: int  # its listening-port (REPLCONF), else the connection's port
    replid: str  # "?" for SYNC or a PSYNC with no history
    offset: int  # PSYNC's offset (the first byte it misses), -1 for none
    capa: frozenset[bytes]  # REPLCONF capa: ``eof`` (an EOF-marked snapshot), ``psync2`` (+CONTINUE <id>)
    sync: bool  # SYNC: the snapshot with no +FULLRESYNC line before it


@dataclass(frozen=True, slots=True)
class DirectAttach:
    """A replica's direct stream socket (direct.py) reached the loop; from stream position ``start`` on
    (where the loop's feed stands: FIFO after the Feeds before it) the loop would write the stream to it."""

    node_id: str  # the replica's run id, as its Psync said
    token: int
    start: int


@dataclass(frozen=True, slots=True)
class DirectLost:
    """The loop's direct stream socket to a replica failed: the replica must resync (its bytes are lost)."""

    token: int
    reason: str


# -- actor -> loop ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorStarted:
    """The actor (re)started with empty state: tell it the role, the ids and where the stream stands."""


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """Fork a snapshot child for this job."""

    job: int


@dataclass(frozen=True, slots=True)
class PrepareLink:
    """The actor is about to (re)connect to the master: answer LinkReady once what it handed over is applied."""

    gen: int


@dataclass(frozen=True, slots=True)
class ApplyStream:
    gen: int
    start: int
    data: bytes


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    gen: int
    dbs: list[Database]
    replid: str
    offset: int
    stream_db: int


@dataclass(frozen=True, slots=True)
class PartialAccepted:
    gen: int
    replid: str
    stream_db: int


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The actor published a new link state."""

    gen: int


@dataclass(frozen=True, slots=True)
class ReplicasChanged:
    """The actor published new replica states or acks."""


@dataclass(frozen=True, slots=True)
class BacklogFreed:
    """The backlog was dropped (repl-backlog-ttl): the history can no longer be continued."""


@dataclass(frozen=True, slots=True)
class CountStat:
    """Add one to ``server.stats.<name>`` (sync_full, sync_partial_ok, sync_partial_err)."""

    name: str


@dataclass(frozen=True, slots=True)
class DirectAccepted:
    """The replica is online at the DirectAttach's start: the actor stopped sending it the stream."""

    token: int


@dataclass(frozen=True, slots=True)
class DirectClosed:
    """Close the direct stream socket ``token``: refused (the replica is not online there) or dropped."""

    token: int
    reason: str


@dataclass(frozen=True, slots=True)
class OpenDirect:
    """Replica side: the link is up; the loop may open a direct stream socket to the master (direct.py)."""

    gen: int


LoopToActor = (
    Ids
    | ResetBacklog
    | Feed
    | Forked
    | ForkFailed
    | SnapshotDone
    | Ready
    | RequestAcks
    | DropReplicas
    | ReplicaOf
    | LinkReady
    | Relink
    | AttachRespReplica
    | GetAckInStream
    | DirectAttach
    | DirectLost
)
ActorToLoop = (
    ActorStarted
    | RequestSnapshot
    | PrepareLink
    | ApplyStream
    | InstallSnapshot
    | PartialAccepted
    | LinkChanged
    | ReplicasChanged
    | BacklogFreed
    | CountStat
    | DirectAccepted
    | DirectClosed
    | OpenDirect
)
