"""Redis Cluster mode: node table, slot map, gossip, failure detection, failover, routing, nodes.conf.

Semantics follow Redis 7.0's cluster.c as far as a client, redis-cli --cluster or redis-py can observe them
(the contract is /work/shared/SENTINEL-CLUSTER.md §2); the node-to-node transport is redactor's own: the
node bus (actors/bus/) carries protocol/clusterbus.py's frames, family ``C``, next to replication's. The state
lives on the loop thread (no locks); the bus thread only moves frames (link.py).

Layout:
    state.py      ClusterNode, ClusterState (node table, slot owners, IMPORTING / MIGRATING, epochs), and the
                  NODES / SLOTS / SHARDS / INFO renderings
    nodesconf.py  nodes.conf in Redis's format, written atomically, read back on start, flock'ed
    routing.py    route(): MOVED / ASK / TRYAGAIN / CROSSSLOT / CLUSTERDOWN, the one place that decides
    admin.py      CLUSTER <subcommand>
    gossip.py     MEET / PING / PONG / FAIL / UPDATE, slot ownership by configEpoch, PFAIL -> FAIL, the cron
    failover.py   replica elections, votes, CLUSTER FAILOVER [FORCE|TAKEOVER]
    migration.py  replica migration: a replica of a master with replicas to spare moves to an orphaned master
    blocked.py    blocked clients released with MOVED / CLUSTERDOWN when their slot leaves
    facade.py     Cluster: ``server.cluster`` (the ClusterPort), owner of the state, wired by launcher/node.py
    link.py       ClusterLink: the bus extension (bus thread): frames in to the loop, DEALERs out to peers
"""
