"""Replication: the backlog, the primary side (replicas, PSYNC, snapshots) and the replica side (master link).

Layout:
    replication.py  Replication (loop side) and ReplicationActor (the bus side)
    backlog.py      the offset-addressed replication backlog
"""
