"""What lives inside a node.

Layout:
    version.py      VERSION and REDIS_VERSION
    config.py       directives and live values (CONFIG GET/SET)
    config_values.py  how a value is read: Redis's integers, memory sizes, percentages
    fork.py         fork children for the whole node: one at a time (BGSAVE, AOF rewrite, replica snapshot)
    files.py        durable file replacement: write atomically, fsync the directory
    sockets.py      options of accepted client sockets (tcp-keepalive), for nodes and sentinels
    ratelog.py      rate-limited log lines for errors a remote party can cause (protocol errors, bad frames)
    panic.py        Redis's serverPanic: log its lines and abort (propagation-error-behavior panic)
    data/           databases, values, expiry, the sorted set, the digest (plain data, no I/O)
    server/         the node's state and the command dispatcher (auth, MULTI, READONLY, propagation)
    commands/       the command table, one module per family
    scripting/      Lua: the sandboxed runtime, script cache, runs with time limits, function libraries
    loop/           the master actor: the event-loop thread that owns the keyspace and serves RESP
    persistence/    RDB snapshots, the AOF, loading, the persistence actor, and the file formats (rdb/, aof/)
    replication/    the replication actor: backlog, primary and replica sides
    bus/            the node's ZeroMQ bus
    cluster/        cluster mode: node table, slots, gossip, failover, routing, nodes.conf
    supervision/    starts, watches and restarts the node's actors
    sentinel/       Redis Sentinel: monitoring, votes and failover (a process type of its own, no keyspace)

Imports run one way: launcher -> actors -> protocol.
"""
