"""Messages between the loop thread's ``Replication`` and the bus thread's ``ReplicationActor``: one immutable
class per message, passed by reference (both ends live in one process). NamedTuples, not frozen dataclasses:
a node builds these ~30 classes at every start, and a NamedTuple class costs a sixth of a frozen slotted
dataclass's to make; the handlers dispatch on ``type(message)``, never on equality or truth.

Loop -> actor messages go through ``MasterActor.tell_bus`` (FIFO, in order with the stream: one ``Feed`` per
tick at most) and reach the handler the actor registered on the bus for their type. Actor -> loop messages go
through ``MasterActor.call_threadsafe(replication.receive, message)`` (FIFO too). Nothing here is a wire
format: node-to-node frames are protocol/peer.py's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from actors.data.keyspace import Database

# -- loop -> actor ---------------------------------------------------------------------------------------


class Ids(NamedTuple):
    """The node's replication ids changed (or the actor restarted and must learn them)."""

    replid: str
    replid2: str
    second_offset: int


class ResetBacklog(NamedTuple):
    """Start the backlog over at ``start`` (``db``: the database selected there, -1 unknown)."""

    start: int
    db: int
    force: bool  # also when the backlog already ends at start: a new history (full sync installed)


class Feed(NamedTuple):
    """One tick's stream bytes from stream position ``start``, with the SELECTs among them."""

    start: int
    selects: tuple[tuple[int, int], ...]  # (stream position, db) of each SELECT in data
    data: bytes


class Forked(NamedTuple):
    """A snapshot child runs: its file at ``path`` grows; ``done_fd`` reads its done byte (or EOF)."""

    job: int
    pid: int
    offset: int
    stream_db: int
    replid: str
    path: str
    done_fd: int


class ForkFailed(NamedTuple):
    job: int
    reason: str


class SnapshotDone(NamedTuple):
    """The loop reaped a snapshot child (its pipe has usually told the actor already)."""

    job: int
    ok: bool
    path: str


class Ready(NamedTuple):
    """The dataset is loaded and the ids are settled: the actor may answer PSYNC."""


class RequestAcks(NamedTuple):
    """WAIT: ask the online replicas for their offsets now (after this tick's writes)."""


class DropReplicas(NamedTuple):
    reason: str


class ReplicaOf(NamedTuple):
    """Follow ``host:port`` (None: become a master); ``gen`` tags the work of this link."""

    gen: int
    host: str | None
    port: int


class LinkReady(NamedTuple):
    """Answer to PrepareLink: everything handed over so far is applied; PSYNC from here."""

    gen: int
    replid: str  # "?": no history to continue
    offset: int


class Relink(NamedTuple):
    """The loop could not apply the master's stream: drop the link and resync."""

    gen: int
    reason: str


class GetAckInStream(NamedTuple):
    """The loop applied a ``REPLCONF GETACK *`` from its master's stream (a Redis master's WAIT)."""

    gen: int


class AttachRespReplica(NamedTuple):
    """A Redis replica's PSYNC (or SYNC) on a RESP connection, whose socket the loop hands over."""

    fd: int  # a duplicate of the connection's descriptor: the actor owns it now
    pending: bytes  # reply bytes the connection had not written yet: they go out first
    ip: str
    port: int  # its listening-port (REPLCONF), else the connection's port
    replid: str  # "?" for SYNC or a PSYNC with no history
    offset: int  # PSYNC's offset (the first byte it misses), -1 for none
    capa: frozenset[bytes]  # REPLCONF capa: ``eof`` (an EOF-marked snapshot), ``psync2`` (+CONTINUE <id>)
    sync: bool  # SYNC: the snapshot with no +FULLRESYNC line before it


class DirectAttach(NamedTuple):
    """A replica's direct stream socket (direct.py) reached the loop; from stream position ``start`` on
    (where the loop's feed stands: FIFO after the Feeds before it) the loop would write the stream to it."""

    node_id: str  # the replica's run id, as its Psync said
    token: int
    start: int


class DirectLost(NamedTuple):
    """The loop's direct stream socket to a replica failed: the replica must resync (its bytes are lost)."""

    token: int
    reason: str


# -- actor -> loop ---------------------------------------------------------------------------------------


class ActorStarted(NamedTuple):
    """The actor (re)started with empty state: tell it the role, the ids and where the stream stands."""


class RequestSnapshot(NamedTuple):
    """Fork a snapshot child for this job."""

    job: int


class PrepareLink(NamedTuple):
    """The actor is about to (re)connect to the master: answer LinkReady once what it handed over is applied."""

    gen: int


class ApplyStream(NamedTuple):
    gen: int
    start: int
    data: bytes


class InstallSnapshot(NamedTuple):
    gen: int
    dbs: list[Database]
    replid: str
    offset: int
    stream_db: int


class PartialAccepted(NamedTuple):
    gen: int
    replid: str
    stream_db: int


class LinkChanged(NamedTuple):
    """The actor published a new link state."""

    gen: int


class ReplicasChanged(NamedTuple):
    """The actor published new replica states or acks."""


class BacklogFreed(NamedTuple):
    """The backlog was dropped (repl-backlog-ttl): the history can no longer be continued."""


class CountStat(NamedTuple):
    """Add one to ``server.stats.<name>`` (sync_full, sync_partial_ok, sync_partial_err)."""

    name: str


class DirectAccepted(NamedTuple):
    """The replica is online at the DirectAttach's start: the actor stopped sending it the stream."""

    token: int


class DirectClosed(NamedTuple):
    """Close the direct stream socket ``token``: refused (the replica is not online there) or dropped."""

    token: int
    reason: str


class OpenDirect(NamedTuple):
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
