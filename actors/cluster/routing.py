"""Cluster routing: may this node run this command, or where must the client go? The ONE place that decides.

``route`` is Redis's getNodeByQuery plus clusterRedirectClient's texts. ``Server.execute`` calls it (through
the ClusterPort) for every command in cluster mode, before anything else but authentication (the
dispatcher's fast path is off in cluster mode); inside MULTI each queued command is checked as it is queued, and
EXEC checks the whole transaction.

The fast lane (actors/loop/fastlane.py) runs plain GET/SET inline in cluster mode too, in the one case where
``route`` would return None without deciding anything else: ``lane_view`` gives it, once per run of commands, the
slot map, this node's id and the MIGRATING / IMPORTING slots, or None when the run must all come here (the
cluster is down, the client sent ASKING, this node is a replica). Per key the lane then only tests that the slot
is mine and in neither dict; a key that fails the test is left to ``Server.execute`` and so to ``route``, which
answers MOVED / ASK / TRYAGAIN exactly, in pipeline order.

Decision order (cluster.c getNodeByQuery):
    1. a key's slot is unassigned                      -> CLUSTERDOWN Hash slot not served
    2. keys in different slots                         -> CROSSSLOT
    3. the cluster is down                             -> CLUSTERDOWN (reads pass with allow-reads-when-down,
                                                          shard channels unless allow-pubsubshard-when-down no)
    4. MIGRATE in a migrating / importing slot         -> served
    5. slot MIGRATING here and some key missing        -> ASK (all missing) or TRYAGAIN (some missing)
    6. slot IMPORTING here, client ASKING              -> served, or TRYAGAIN (several keys, some missing)
    7. READONLY client (or a shard channel), read command, I replicate the slot's owner -> served
    8. the slot's owner is not me                      -> MOVED
Keys come from actors/commands/getkeys.py, and SPUBLISH / SSUBSCRIBE / SUNSUBSCRIBE route by their channels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.cluster.state import ClusterHealth, ClusterState
from actors.commands.getkeys import get_keys
from actors.commands.script_flags import writes
from actors.server.client import ClientKind
from protocol.slots import keyslot

if TYPE_CHECKING:
    from actors.server.client import Client
    from actors.server.ports import LaneView

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot"
DOWN_UNBOUND = "CLUSTERDOWN Hash slot not served"
DOWN_STATE = "CLUSTERDOWN The cluster is down"
DOWN_RO_STATE = "CLUSTERDOWN The cluster is down and only accepts read commands"
_PUBSUBSHARD = frozenset(("spublish", "ssubscribe", "sunsubscribe"))


def lane_view(state: ClusterState, client: Client) -> LaneView | None:
    """What the fast lane needs to serve a run of GET/SET here (see the module docstring), or None."""
    myself = state.myself
    if state.health is not ClusterHealth.OK or client.asking or myself.master_id is not None:
        return None  # CLUSTERDOWN, ASKING's one-command pass, a replica's READONLY rules: route() decides
    if client.kind is ClientKind.INTERNAL:
        return None
    return state.owners, myself.id, state.migrating, state.importing


def route(
    state: ClusterState,
    allow_reads_when_down: bool,
    client: Client,
    cmd: Any,
    argv: list[bytes],
    allow_pubsubshard_when_down: bool = True,
) -> str | None:
    """None: run the command here; else the error reply (without the leading ``-``)."""
    if client.kind is ClientKind.INTERNAL:
        return None  # the AOF loader and in-process callers: never redirected (Redis: not for the AOF client)
    asking = client.asking
    if cmd.name != "asking" and client.multi is None:
        client.asking = False
    if cmd.name == "exec":
        if not client.multi:
            return None
        commands: list[tuple[Any, list[bytes]]] = client.multi
    else:
        if not cmd.key_info.has_keys and cmd.name not in _PUBSUBSHARD:
            return None  # no keys: every node serves it
        commands = [(cmd, argv)]
    slot = -1
    owner: str | None = None
    migrating = importing = multiple_keys = False
    existing = missing = 0
    first_key: bytes | None = None
    is_write = False
    data = client.db.data
    pubsubshard = False
    for each_cmd, each_argv in commands:
        if each_cmd.name in _PUBSUBSHARD:
            # Shard channels route as keys do (their key specs say "not a key", so get_keys skips them):
            # SPUBLISH's one channel, SSUBSCRIBE's and SUNSUBSCRIBE's every channel.
            pubsubshard = True
            positions = [1] if each_cmd.name == "spublish" else list(range(1, len(each_argv)))
        else:
            positions = get_keys(each_cmd, each_argv)
        if positions:
            is_write = is_write or writes(client, each_cmd, each_argv)
        for pos in positions:
            key = each_argv[pos]
            this_slot = keyslot(key)
            if first_key is None:
                first_key = key
                slot = this_slot
                owner = state.owners[slot]
                if owner is None:
                    return DOWN_UNBOUND
                if owner == state.myself.id and slot in state.migrating:
                    migrating = True
                elif slot in state.importing:
                    importing = True
            else:
                if this_slot != slot:
                    return CROSSSLOT
                if key != first_key:
                    multiple_keys = True
            if (migrating or importing) and not pubsubshard:
                # (a channel is served by the slot's owner until the move ends: nothing to count, as Redis)
                if key in data:
                    existing += 1
                else:
                    missing += 1
    if first_key is None:
        return None
    if state.health is not ClusterHealth.OK:
        if pubsubshard:
            # Shard channels keep working in a down cluster unless cluster-allow-pubsubshard-when-down no
            # (Redis 7.0's getNodeByQuery): the slot's owner still answers, others still redirect.
            if not allow_pubsubshard_when_down:
                return DOWN_STATE
        elif not allow_reads_when_down:
            return DOWN_STATE
        if is_write:
            return DOWN_RO_STATE
    if (migrating or importing) and cmd.name == "migrate":
        return None
    if migrating and missing:
        if existing:
            return TRYAGAIN
        target = state.nodes.get(state.migrating[slot])
        if target is not None:
            return f"ASK {slot} {state.endpoint(target)}:{target.port}"
    if importing and (asking or "asking" in cmd.flags):
        if multiple_keys and missing:
            return TRYAGAIN
        return None
    myself = state.myself
    if (
        (client.cluster_readonly or pubsubshard)  # a replica serves its shard's channels without READONLY
        and not is_write
        and myself.master_id is not None
        and myself.master_id == owner
    ):
        return None
    if owner != myself.id:
        node = state.nodes[owner] if owner is not None else None
        if node is None:
            return DOWN_UNBOUND
        return f"MOVED {slot} {state.endpoint(node)}:{node.port}"
    return None
