"""The bus-port rule, in one place: a node's ZeroMQ bus listens on its RESP port + 10000.

Redis Cluster uses the same convention for its cluster bus (``cluster-port`` 0 means ``port + 10000``), so a
redactor node's bus port is where a Redis Cluster tool would look for it. A node started with a ``bus-port``
directive listens there instead; everything that needs the bus port of a node (the bus itself, replicas
finding their master, the shell, the launcher, the tests) asks ``bus_port_for`` rather than adding 10000.
"""

from __future__ import annotations

__all__ = ["BUS_PORT_OFFSET", "CLUSTER_FAMILY", "MAX_RESP_PORT_WITH_BUS", "bus_port_for"]

# The offset of the bus port from the RESP port when the node's bus-port directive is 0 (Redis Cluster's).
BUS_PORT_OFFSET = 10000
# The highest RESP port whose default bus port is still a TCP port (65535 - 10000), as Redis Cluster requires.
MAX_RESP_PORT_WITH_BUS = 65535 - BUS_PORT_OFFSET
# First frame of every cluster message on the bus port: the bus hands frames with this family to the cluster
# (protocol/clusterbus.py re-exports it). Here so the bus's admission knows it without importing the cluster's
# frame classes, which a node outside cluster mode never loads.
CLUSTER_FAMILY = b"C"


def bus_port_for(resp_port: int, bus_port: int = 0) -> int:
    """The bus port a node listens on for ``resp_port``: ``bus_port`` when given (non-zero), else port + 10000."""
    return bus_port or resp_port + BUS_PORT_OFFSET
