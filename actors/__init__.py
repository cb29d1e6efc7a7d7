"""What lives inside a node.

Layout:
    keyspace.py     databases, values, expiry (plain data, no I/O)
    types.py        the sorted set
    config.py       directives and live values (CONFIG GET/SET)
    client.py       one client connection's state (RESP socket or ZeroMQ peer)
    server.py       the node's state and the command dispatcher (auth, MULTI, READONLY, propagation)
    commands/       the command table, one module per family
    master.py       the master actor: the event-loop thread that owns the keyspace and serves RESP
    persistence.py  the persistence actor (RDB snapshots, AOF fsync loop); rdb.py and aof.py hold the formats
    replication.py  the replication actor: the node bus (ZeroMQ), backlog, and the replica state machine
    supervisor.py   starts, watches and restarts the node's actors

Imports run one way: launcher -> actors -> protocol.
"""
