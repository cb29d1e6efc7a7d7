"""CLUSTER, ASKING, READONLY, READWRITE: thin, over the ClusterPort (actors/server/ports.py).

The subcommands' logic is the cluster package's (actors/cluster/admin.py); here only what a node without
cluster mode answers (``This instance has cluster support disabled``, as Redis) and the per-connection flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

DISABLED = "ERR This instance has cluster support disabled"


# Redis 7.0's CLUSTER subcommands, all served by the cluster actor's admin table (actors/cluster/admin.py; a test
# keeps the two lists equal): COMMAND LIST / INFO, ACL rules and the per-subcommand stats know them.
CLUSTER_SUBCOMMANDS = (
    "addslots",
    "addslotsrange",
    "bumpepoch",
    "count-failure-reports",
    "countkeysinslot",
    "delslots",
    "delslotsrange",
    "failover",
    "flushslots",
    "forget",
    "getkeysinslot",
    "help",
    "info",
    "keyslot",
    "links",
    "meet",
    "myid",
    "nodes",
    "replicas",
    "replicate",
    "reset",
    "saveconfig",
    "set-config-epoch",
    "setslot",
    "shards",
    "slaves",
    "slots",
)


@command(
    "cluster",
    -2,
    "loading stale",
    (0, 0, 0),
    "cluster",
    "A container for Redis Cluster commands",
    subcommands=CLUSTER_SUBCOMMANDS,
)
def cmd_cluster(client: Client, argv: list[bytes]) -> Any:
    cluster = client.server.cluster
    if cluster is None:
        # What Redis's dispatcher answers before CLUSTER says it is disabled: an unknown subcommand, or a known
        # one with the wrong number of arguments.
        from actors.commands.server import check_subcommand

        check_subcommand("cluster", argv)
        raise CommandError(DISABLED)
    return cluster.command(client, argv)


@command("asking", 1, "fast", (0, 0, 0), "cluster", "Sent by cluster clients after an -ASK redirect")
def cmd_asking(client: Client, argv: list[bytes]) -> Any:
    if client.server.cluster is None:
        raise CommandError(DISABLED)
    client.asking = True
    return OK


@command("readonly", 1, "loading stale fast", (0, 0, 0), "cluster", "Enables read queries to a replica")
def cmd_readonly(client: Client, argv: list[bytes]) -> Any:
    if client.server.cluster is None:
        raise CommandError(DISABLED)
    client.cluster_readonly = True
    return OK


@command("readwrite", 1, "loading stale fast", (0, 0, 0), "cluster", "Disables read queries to a replica")
def cmd_readwrite(client: Client, argv: list[bytes]) -> Any:
    if client.server.cluster is None:
        raise CommandError(DISABLED)
    client.cluster_readonly = False
    return OK
