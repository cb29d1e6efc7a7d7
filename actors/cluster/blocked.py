"""Clients blocked on keys (BLPOP, BZPOPMIN, XREAD ... BLOCK) when their slot leaves this node (loop thread).

Redis 7.0's clusterRedirectBlockedClientIfNeeded: a client waiting on a key whose slot this node no longer
serves would wait for a write that can never come here, so it is released with the redirect it would get if
it sent the command now:

- the cluster is down                                     -> ``-CLUSTERDOWN The cluster is down`` (even with
  cluster-allow-reads-when-down: the write that would wake it may never come);
- the slot is unassigned (CLUSTER DELSLOTS)               -> ``-CLUSTERDOWN Hash slot not served``;
- another node owns it (SETSLOT NODE, an UPDATE), and it is not being imported here, and the client is not a
  READONLY reader on a replica of the owner               -> ``-MOVED <slot> <ip>:<port>``.

Redis runs this from clientsCron; here the cluster's cron runs it, every cron period while anyone is blocked
(not from inside the command or bus message that moved the slot: replies to other clients are not written
in the middle of one).

A master that turns replica releases its blocked clients too, in or out of cluster mode:
``actors.server.blocking.unblock_on_role_change``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.cluster.routing import DOWN_STATE, DOWN_UNBOUND
from actors.cluster.state import ClusterHealth
from actors.server.blocking import blocked_states, registry, release_with_error
from protocol.slots import keyslot

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster


def redirect_if_needed(cluster: Cluster) -> None:
    """Release the blocked clients whose key's slot is no longer served here (see the module docstring)."""
    if not registry(cluster.server).waiting:
        return
    state = cluster.state
    myself = state.myself
    commands = cluster.server.orig_commands  # (by the blocked command's own name)
    for blocked in blocked_states(cluster.server):
        client = blocked.client
        if state.health is ClusterHealth.FAIL:
            release_with_error(cluster.server, client, DOWN_STATE)
            continue
        if not blocked.keys:
            continue
        slot = keyslot(blocked.keys[0])  # a blocked command's keys share one slot (routing checked them)
        owner = state.owners[slot]
        cmd = commands.get(blocked.command.encode())
        if (
            client.cluster_readonly
            and cmd is not None
            and not cmd.is_write
            and myself.master_id is not None
            and myself.master_id == owner
        ):
            continue
        if owner == myself.id or slot in state.importing:
            continue
        node = state.nodes.get(owner) if owner is not None else None
        if node is None:
            release_with_error(cluster.server, client, DOWN_UNBOUND)
        else:
            release_with_error(cluster.server, client, f"MOVED {slot} {node.ip}:{node.port}")
