"""The dispatcher and what it keeps per client; runs on the master actor's loop thread only.

Layout:
    server.py     Server: the node's state and Server.execute, the single entry point of every command
    server_state.py Server's node-wide flags (what keeps commands off the fast paths) and the stream's old names
    dispatch.py   the general lane: runs of data commands with execute's effects, node state checked once per run
    client.py     one client connection's state (RESP socket, ZeroMQ peer, AOF loader, master link)
    blocking.py   clients blocked in BLPOP / BZPOPMIN / WAIT ... and what wakes them
    stream.py     PropagationStream: the writes on their way to the AOF and the replicas; the replication offset
    maxmemory.py  the memory check before each command, eviction in time slices, the OOM refusal
    buffers.py    client-output-buffer-limit: closing clients whose unsent replies pass their class's limits
    client_memory.py what each client holds (CLIENT LIST's qbuf/omem/tot-mem) and maxmemory-clients eviction
    acl.py        ACL users, the per-command permission check, AUTH, the ACL LOG, the ACL file
    acl_rules.py  the ACL rule language: User and Selector records, applying and describing rules, categories
    errorstats.py error replies counted by prefix (total_error_replies, INFO errorstats), as Redis
    latency.py    the latency monitor's event series (latency-monitor-threshold), read by LATENCY
    latencystats.py per-command latency histograms (latency-tracking): LATENCY HISTOGRAM, INFO latencystats
    cmdstats.py   per-subcommand records (config|set, client|list): their calls, times and histograms
    ports.py      the commands' whole view of the actors: PersistencePort, ReplicationPort, SupervisorPort, ...
    tls.py        the SSL context of tls-port from the tls-* directives, refused with Redis's lines
    notify.py     keyspace notifications: publishes the events commands and the keyspace report
    pause.py      CLIENT PAUSE / UNPAUSE: held commands wait (not refused) until the pause ends
    shutdown.py   SHUTDOWN's and the signals' flags, the wait for lagging replicas (shutdown-timeout), ABORT
    reply_mode.py CLIENT REPLY ON / OFF / SKIP: the replies a client asked not to get are dropped
    wrappers.py   wrappers around Server.execute for features in use (reply modes, tracking): zero cost otherwise
    tracking.py   client-side caching: CLIENT TRACKING tables, invalidation messages (RESP3 push, RESP2 redirect)
    oom_score.py  oom-score-adj: the OOM killer's score per process class (master, replica, fork child)
    lazyfree.py   UNLINK's big values emptied in slices on the loop after the reply (INFO lazyfree_*)
    redact.py     the arguments SLOWLOG and MONITOR show as (redacted): passwords, ACL rules, sensitive configs
"""
