"""Messages between the loop thread's ``Replication`` and the bus thread's ``ReplicationActor``: one immutable
class per message, passed by reference (both ends live in one process). Plain classes with ``__slots__``, not
NamedTuples or frozen dataclasses: a node builds these ~30 classes at every start, and a plain class costs a
tenth of a NamedTuple class to make (a sixtieth of a frozen slotted dataclass); the handlers dispatch on
``type(message)``, never on equality, truth or unpacking, and nothing assigns to a message once it is sent.

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


class Ids:
    """The node's replication ids changed (or the actor restarted and must learn them)."""

    __slots__ = ("replid", "replid2", "second_offset")

    def __init__(self, replid: str, replid2: str, second_offset: int) -> None:
        self.replid = replid
        self.replid2 = replid2
        self.second_offset = second_offset


class ResetBacklog:
    """Start the backlog over at ``start`` (``db``: the database selected there, -1 unknown)."""

    __slots__ = ("start", "db", "force")

    def __init__(self, start: int, db: int, force: bool) -> None:
        self.start = start
        self.db = db
        self.force = force  # also when the backlog already ends at start: a new history (full sync installed)


class Feed(NamedTuple):
    """One tick's stream bytes from stream position ``start``, with the SELECTs among them."""

    # A NamedTuple: a ``data`` attribute assigned in __init__ would read as key data to the kvstore scan.
    start: int
    selects: tuple[tuple[int, int], ...]  # (stream position, db) of each SELECT in data
    data: bytes


class Forked:
    """A snapshot child runs: its file at ``path`` grows; ``done_fd`` reads its done byte (or EOF)."""

    __slots__ = ("job", "pid", "offset", "stream_db", "replid", "path", "done_fd")

    def __init__(
        self, job: int, pid: int, offset: int, stream_db: int, replid: str, path: str, done_fd: int
    ) -> None:
        self.job = job
        self.pid = pid
        self.offset = offset
        self.stream_db = stream_db
        self.replid = replid
        self.path = path
        self.done_fd = done_fd


class ForkFailed:
    __slots__ = ("job", "reason")

    def __init__(self, job: int, reason: str) -> None:
        self.job = job
        self.reason = reason


class SnapshotDone:
    """The loop reaped a snapshot child (its pipe has usually told the actor already)."""

    __slots__ = ("job", "ok", "path")

    def __init__(self, job: int, ok: bool, path: str) -> None:
        self.job = job
        self.ok = ok
        self.path = path


class Ready:
    """The dataset is loaded and the ids are settled: the actor may answer PSYNC."""

    __slots__ = ()


class RequestAcks:
    """WAIT: ask the online replicas for their offsets now (after this tick's writes)."""

    __slots__ = ()


class DropReplicas:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ReplicaOf:
    """Follow ``host:port`` (None: become a master); ``gen`` tags the work of this link."""

    __slots__ = ("gen", "host", "port")

    def __init__(self, gen: int, host: str | None, port: int) -> None:
        self.gen = gen
        self.host = host
        self.port = port


class LinkReady:
    """Answer to PrepareLink: everything handed over so far is applied; PSYNC from here."""

    __slots__ = ("gen", "replid", "offset")

    def __init__(self, gen: int, replid: str, offset: int) -> None:
        self.gen = gen
        self.replid = replid  # "?": no history to continue
        self.offset = offset


class Relink:
    """The loop could not apply the master's stream: drop the link and resync."""

    __slots__ = ("gen", "reason")

    def __init__(self, gen: int, reason: str) -> None:
        self.gen = gen
        self.reason = reason


class GetAckInStream:
    """The loop applied a ``REPLCONF GETACK *`` from its master's stream (a Redis master's WAIT)."""

    __slots__ = ("gen",)

    def __init__(self, gen: int) -> None:
        self.gen = gen


class AttachRespReplica:
    """A Redis replica's PSYNC (or SYNC) on a RESP connection, whose socket the loop hands over."""

    __slots__ = ("fd", "pending", "ip", "port", "replid", "offset", "capa", "sync")

    def __init__(
        self,
        fd: int,
        pending: bytes,
        ip: str,
        port: int,
        replid: str,
        offset: int,
        capa: frozenset[bytes],
        sync: bool,
    ) -> None:
        self.fd = fd  # a duplicate of the connection's descriptor: the actor owns it now
        self.pending = pending  # reply bytes the connection had not written yet: they go out first
        self.ip = ip
        self.port = port  # its listening-port (REPLCONF), else the connection's port
        self.replid = replid  # "?" for SYNC or a PSYNC with no history
        self.offset = offset  # PSYNC's offset (the first byte it misses), -1 for none
        self.capa = capa  # REPLCONF capa: ``eof`` (an EOF-marked snapshot), ``psync2`` (+CONTINUE <id>)
        self.sync = sync  # SYNC: the snapshot with no +FULLRESYNC line before it


class DirectAttach:
    """A replica's direct stream socket (direct.py) reached the loop; from stream position ``start`` on
    (where the loop's feed stands: FIFO after the Feeds before it) the loop would write the stream to it."""

    __slots__ = ("node_id", "token", "start")

    def __init__(self, node_id: str, token: int, start: int) -> None:
        self.node_id = node_id  # the replica's run id, as its Psync said
        self.token = token
        self.start = start


class DirectLost:
    """The loop's direct stream socket to a replica failed: the replica must resync (its bytes are lost)."""

    __slots__ = ("token", "reason")

    def __init__(self, token: int, reason: str) -> None:
        self.token = token
        self.reason = reason


# -- actor -> loop ---------------------------------------------------------------------------------------


class ActorStarted:
    """The actor (re)started with empty state: tell it the role, the ids and where the stream stands."""

    __slots__ = ()


class RequestSnapshot:
    """Fork a snapshot child for this job."""

    __slots__ = ("job",)

    def __init__(self, job: int) -> None:
        self.job = job


class KillSnapshot:
    """The actor gave this job up (its last replica left): stop its child, pid ``pid``, if it still runs."""

    __slots__ = ("job", "pid")

    def __init__(self, job: int, pid: int) -> None:
        self.job = job
        self.pid = pid


class PrepareLink:
    """The actor is about to (re)connect to the master: answer LinkReady once what it handed over is applied."""

    __slots__ = ("gen",)

    def __init__(self, gen: int) -> None:
        self.gen = gen


class ApplyStream(NamedTuple):
    # A NamedTuple: a ``data`` attribute assigned in __init__ would read as key data to the kvstore scan.
    gen: int
    start: int
    data: bytes


class InstallSnapshot:
    __slots__ = ("gen", "dbs", "replid", "offset", "stream_db")

    def __init__(self, gen: int, dbs: list[Database], replid: str, offset: int, stream_db: int) -> None:
        self.gen = gen
        self.dbs = dbs
        self.replid = replid
        self.offset = offset
        self.stream_db = stream_db


class PartialAccepted:
    __slots__ = ("gen", "replid", "stream_db")

    def __init__(self, gen: int, replid: str, stream_db: int) -> None:
        self.gen = gen
        self.replid = replid
        self.stream_db = stream_db


class LinkChanged:
    """The actor published a new link state."""

    __slots__ = ("gen",)

    def __init__(self, gen: int) -> None:
        self.gen = gen


class ReplicasChanged:
    """The actor published new replica states or acks."""

    __slots__ = ()


class BacklogFreed:
    """The backlog was dropped (repl-backlog-ttl): the history can no longer be continued."""

    __slots__ = ()


class CountStat:
    """Add one to ``server.stats.<name>`` (sync_full, sync_partial_ok, sync_partial_err)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class DirectAccepted:
    """The replica is online at the DirectAttach's start: the actor stopped sending it the stream."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class DirectClosed:
    """Close the direct stream socket ``token``: refused (the replica is not online there) or dropped."""

    __slots__ = ("token", "reason")

    def __init__(self, token: int, reason: str) -> None:
        self.token = token
        self.reason = reason


class OpenDirect:
    """Replica side: the link is up; the loop may open a direct stream socket to the master (direct.py)."""

    __slots__ = ("gen",)

    def __init__(self, gen: int) -> None:
        self.gen = gen


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
    | KillSnapshot
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
