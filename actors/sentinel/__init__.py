"""Redis Sentinel: a separate process type that monitors masters, agrees with other sentinels that one is down,
and fails it over; Redis 7.0's commands, events, hello messages and sentinel.conf, so redis-py's Sentinel client
and real redis-sentinel processes work with it.

Layout:
    state.py       the instance model (masters, replicas, sentinels), flags, FailoverState, Redis's timings
    config.py      sentinel.conf: parse, and the atomic rewrite on every state change
    monitor.py     links, PING / INFO / hello timers, INFO and hello processing, SDOWN, ODOWN, TILT
    failover.py    votes and leader election, replica selection, promotion, reconfiguration, the switch
    commands.py    SENTINEL subcommands, INFO and ROLE
    scripts.py     notification-script and client-reconfig-script: the queue, time limit, retries, PENDING-SCRIPTS
    server.py      the RESP listener: the commands a sentinel serves, and its event pub/sub
    acl.py         ACL users: redis-sentinel's command table for the node's ACL engine, user lines, CLIENT KILL
    system.py      the actor system: config-writer, monitor and listener actors under the node's Supervisor

No keyspace, no persistence, no replication: launcher/sentinel.py starts the actor system (system.py), whose
monitor and listener actors each own an asyncio loop. Imports run one way: launcher -> actors -> protocol.
"""
