"""What lives inside a node.

Layout:
    config.py       directives and live values (CONFIG GET/SET)
    data/           databases, values, expiry, the sorted set, the digest (plain data, no I/O)
    server/         the node's state and the command dispatcher (auth, MULTI, READONLY, propagation)
    commands/       the command table, one module per family
    scripting/      Lua: the sandboxed runtime, script cache, runs with time limits, function libraries
    loop/           the master actor: the event-loop thread that owns the keyspace and serves RESP
    persistence/    the persistence actor (RDB snapshots, AOF fsync loop) and the file formats
    replication/    the replication actor: backlog, primary and replica sides
    bus/            the node's ZeroMQ bus
    supervision/    starts, watches and restarts the node's actors

Imports run one way: launcher -> actors -> protocol.
"""
