"""Replication: the backlog, the primary side (replicas, PSYNC, snapshots) and the replica side (master link).

Semantics follow Redis 7.0's replication.c (full sync, partial resync with PSYNC2 ids, WAIT, min-replicas,
chained replicas); the transport is the node bus (actors/bus/), the frames are protocol/peer.py's. Two threads:
the loop thread owns what commands see (``Replication``), the bus thread owns the sockets, the backlog and
the replicas (``ReplicationActor``, a bus extension). They talk only through messages.py's messages. The
stream of an online replica skips the bus: the master's loop writes it to the replica's loop over a connection
to the master's RESP port (direct.py).

Layout:
    loop_side.py       Replication (``server.replication``, loop thread): ids, offsets, the per-tick Feed,
                       install_snapshot, role changes, WAIT (waits.py), INFO (report.py)
    apply.py           StreamApplier (a mixin of Replication): the master's stream applied as the master client
    report.py          INFO replication and ROLE, read-only over Replication and the published views
    waits.py           WAIT clients and the min-replicas refusal, over the published replica views
    failover.py        FAILOVER: writes held until a replica caught up, then the roles switch (or an abort)
    messages.py        loop <-> actor messages, one frozen dataclass each
    states.py          LinkState / ReplicaState / JobState Enums and the views the actor publishes
    actor.py           ReplicationActor: registers with the bus; owns the backlog, the id mirror, publishing
    primary.py         PrimarySide: replica table, PSYNC decision, bulk send, stream fan-out
    snapshot_jobs.py   SnapshotJobs (a mixin of PrimarySide): when a full sync gets its snapshot
                       (repl-diskless-sync-delay), the fork's job from request to file complete
    links.py           ReplicaLink and SnapshotJob (what primary.py keeps per replica and job), transfer limits
    replica.py         ReplicaSide: the MasterLink state machine
    snapshot_loader.py SnapshotLoader: a full sync's snapshot parsed while it is received (key-load-delay)
    direct.py          the direct stream: master loop -> replica loop on one socket, handed over from the bus
    snapshot_child.py  replica-snapshot fork children (actors/fork.py's REPLICA_SNAPSHOT kind)
    backlog.py         the offset-addressed replication backlog
    resp_feed.py       Redis replicas on RESP, loop side: the PSYNC hand-over, PING / GETACK in the stream
    resp_replica.py    Redis replicas on RESP, actor side: the socket, frames translated to Redis's bytes
    redis_master.py    a replica's RESP link: tells redactor from Redis masters, replicates from Redis

Offsets are Redis's: ``master_repl_offset`` counts stream bytes; PSYNC asks for ``offset + 1``, the first byte
missing. Every stream message carries its start position, so a replica notices any lost message (a gap) and
resyncs, which is partial when the backlog still has the bytes (the zguide Clone pattern's rule). The stream's
SELECTs are tracked as positions (``Backlog.db_at``), so Continue and a snapshot both tell the replica which
database the stream has selected where it resumes.

Full sync: the loop forks; the child writes the RDB to ``temp-repl-<pid>-<job>.rdb`` and writes one byte on
a pipe once it is complete; the offset at fork time is the snapshot's offset, and from it on the stream is
buffered per replica. Save, transfer and load overlap, as Redis's diskless sync does: the actor sends the file
while the child still writes it (what is below its size is final), in chunks of up to 1 MiB within a window of
acks; the replica's loader thread parses the chunks as they arrive; once the end is announced and parsed, the
loop swaps the new databases in at once. A transfer that breaks off, is short or fails its checksum leaves the
old data in place and the replica starts over.

Chained replication: a replica keeps a backlog of the stream it applied, byte for byte the master's, and serves
sub-replicas from it with the same ids and offsets. Pointed at another master it keeps them (Redis's
replicationSetMaster) until its history changes: a partial resync with another id, or a full sync installed.
"""
