"""Whole topologies: ``redactor up | down | status | logs``.

Layout:
    spec.py       the topology file (TOML): NodeSpec, Topology, load_topology, each node's command line
    rundir.py     the run directory: state.json (atomically replaced), live pids, log tails
    probe.py      the launcher's RESP requests to its nodes (PING, SHUTDOWN SAVE, INFO) over
                  protocol/resp_client.py
    supervise.py  ``up``: the Launcher, which starts the nodes and restarts them with a backoff
    sentinels.py  with [[sentinel]] entries: a dead data node restarts after the sentinels' failover, as a
                  replica of the master they name
    clusterjoin.py  with a [cluster] table: the launcher joins the nodes itself (MEET, even slot ranges,
                  REPLICATE, cluster_state:ok), idempotently; CLUSTER NODES parsing
    clusterstatus.py  ``status`` of a cluster: short id, role, slots, epochs, link state, cluster_state
    status.py     ``status``: a table (or JSON) from the state file and each node's INFO
    cli.py        the command line: arguments, ``down``, ``logs``

Commands::

    redactor up TOPOLOGY [--port-offset N]    start every node, wait until each answers PING, then supervise
                                              them in the foreground until SIGINT/SIGTERM
    redactor status [TOPOLOGY] [--json]       a table: name, port, pid, state, role, master, offset, lag, keys,
                                              uptime, restarts (role/offset/lag from INFO replication; "-" when
                                              unknown; lag is how many bytes a replica is behind its master)
    redactor down [TOPOLOGY]                  SIGTERM the launcher, which stops the nodes (SHUTDOWN SAVE each,
                                              replicas first) and exits; without a launcher, stop the nodes here
    redactor logs NODE [TOPOLOGY] [-n N] [--no-follow]   tail -f the node's log

TOPOLOGY defaults to ``$REDACTOR_TOPOLOGY``, else ``ops/topologies/seed.toml``. The port offset (for tests and
for several copies of one topology) is added to every node port, and to explicit ``bus-port`` directives;
it also comes from ``$REDACTOR_PORT_OFFSET``. ``status``, ``down`` and ``logs`` read the ports from the state
file, so they need no offset. The file format: spec.py; supervision: supervise.py.

This package re-exports the topology model (what scripts such as ops/chaos use); the commands are in cli.py.
"""

from launcher.topology.spec import NodeSpec, Topology, TopologyError, load_topology, node_argv

__all__ = ["NodeSpec", "Topology", "TopologyError", "load_topology", "node_argv"]
