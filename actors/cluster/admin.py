"""CLUSTER <subcommand>: Redis 7.0's clusterCommand, with its replies and error texts.

Runs on the loop thread against the facade's ``ClusterState``; every change an operator makes that must
survive a restart is saved to nodes.conf (atomically) before the reply leaves, as Redis's
``clusterSaveConfigOrDie`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from actors.cluster.state import SLOTS, ClusterNode, LinkState
from protocol import errors
from protocol.errors import CommandError, echoed
from protocol.resp import OK, Verbatim
from protocol.slots import keyslot

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster
    from actors.server.client import Client

log = structlog.get_logger("redactor.cluster")

Handler = Callable[["Cluster", "Client", list[bytes]], Any]
_HANDLERS: dict[str, tuple[int, Handler]] = {}

HELP_LINES = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "BUMPEPOCH",
    "COUNT-FAILURE-REPORTS <node-id>",
    "COUNTKEYSINSLOT <slot>",
    "DELSLOTS <slot> [<slot> ...]",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "FAILOVER [FORCE|TAKEOVER]",
    "FORGET <node-id>",
    "FLUSHSLOTS",
    "GETKEYSINSLOT <slot> <count>",
    "INFO",
    "KEYSLOT <key>",
    "LINKS",
    "MEET <ip> <port> [<bus-port>]",
    "MYID",
    "NODES",
    "REPLICATE <node-id>",
    "RESET [HARD|SOFT]",
    "SET-CONFIG-EPOCH <epoch>",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "REPLICAS <node-id>",
    "SAVECONFIG",
    "SHARDS",
    "SLOTS",
    "HELP",
    "    Print this help.",
]


def subcommand(name: str, arity: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = (arity, fn)
        return fn

    return register


def dispatch(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    sub = argv[1].decode("utf-8", "replace").lower()
    entry = _HANDLERS.get(sub)
    if entry is None:
        raise errors.unknown_subcommand(errors.echoed(argv[1]), "cluster")
    arity, handler = entry
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise errors.wrong_arity(f"cluster|{sub}")
    return handler(cluster, client, argv)


def _int(arg: bytes) -> int:
    try:
        return int(arg)
    except ValueError:
        raise CommandError(errors.NOT_INTEGER) from None


def _slot(arg: bytes) -> int:
    try:
        slot = int(arg)
    except ValueError:
        slot = -1
    if not 0 <= slot < SLOTS:
        raise CommandError("ERR Invalid or out of range slot")
    return slot


def _node(cluster: Cluster, arg: bytes, message: str = "ERR Unknown node {}") -> ClusterNode:
    name = arg.decode("utf-8", "replace")
    node = cluster.state.nodes.get(name)
    if node is None:
        raise CommandError(message.format(name))
    return node


@subcommand("help", 2)
def _help(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return HELP_LINES


@subcommand("myid", 2)
def _myid(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return cluster.state.myself.id.encode()


@subcommand("nodes", 2)
def _nodes(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return Verbatim(cluster.state.nodes_text().encode())


@subcommand("slots", 2)
def _slots(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return cluster.state.slots_reply()


@subcommand("shards", 2)
def _shards(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return cluster.state.shards_reply()


@subcommand("info", 2)
def _info(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return Verbatim(cluster.state.info_text().encode())


@subcommand("keyslot", 3)
def _keyslot(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return keyslot(argv[2])


@subcommand("countkeysinslot", 3)
def _countkeysinslot(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    slot = _int(argv[2])
    if not 0 <= slot < SLOTS:
        raise CommandError("ERR Invalid slot")
    return cluster.server.keyspace.dbs[0].count_in_slot(slot)


@subcommand("getkeysinslot", 4)
def _getkeysinslot(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    slot = _int(argv[2])
    count = _int(argv[3])
    if count < 0 or not 0 <= slot < SLOTS:
        raise CommandError("ERR Invalid slot or number of keys")
    return cluster.server.keyspace.dbs[0].keys_in_slot(slot, count)


def _change_slots(cluster: Cluster, slots: list[int], add: bool) -> Any:
    state = cluster.state
    seen: set[int] = set()
    for slot in slots:
        owner = state.owners[slot]
        if not add and owner is None:
            raise CommandError(f"ERR Slot {slot} is already unassigned")
        if add and owner is not None:
            raise CommandError(f"ERR Slot {slot} is already busy")
        if slot in seen:
            raise CommandError(f"ERR Slot {slot} specified multiple times")
        seen.add(slot)
    for slot in slots:
        if add:
            state.importing.pop(slot, None)
            state.assign(slot, state.myself.id)
        else:
            state.assign(slot, None)
    cluster.changed()
    return OK


@subcommand("addslots", -3)
def _addslots(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return _change_slots(cluster, [_slot(a) for a in argv[2:]], add=True)


@subcommand("delslots", -3)
def _delslots(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return _change_slots(cluster, [_slot(a) for a in argv[2:]], add=False)


def _ranges(argv: list[bytes]) -> list[int]:
    if len(argv) % 2 == 1:
        raise errors.wrong_arity(f"cluster|{argv[1].decode('utf-8', 'replace').lower()}")
    slots: list[int] = []
    for i in range(2, len(argv), 2):
        start, end = _slot(argv[i]), _slot(argv[i + 1])
        if start > end:
            raise CommandError(f"ERR start slot number {start} is greater than end slot number {end}")
        slots.extend(range(start, end + 1))
    return slots


@subcommand("addslotsrange", -4)
def _addslotsrange(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return _change_slots(cluster, _ranges(argv), add=True)


@subcommand("delslotsrange", -4)
def _delslotsrange(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    return _change_slots(cluster, _ranges(argv), add=False)


@subcommand("flushslots", 2)
def _flushslots(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    if len(cluster.server.keyspace.dbs[0]):
        raise CommandError("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    state = cluster.state
    for slot in state.slots_of(state.myself.id):
        state.assign(slot, None)
    cluster.changed()
    return OK


@subcommand("setslot", -4)
def _setslot(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    state = cluster.state
    myself = state.myself
    if not myself.is_master:
        raise CommandError("ERR Please use SETSLOT only with masters.")
    slot = _slot(argv[2])
    action = argv[3].lower()
    db = cluster.server.keyspace.dbs[0]
    bumped = False
    if action == b"migrating" and len(argv) == 5:
        if state.owners[slot] != myself.id:
            raise CommandError(f"ERR I'm not the owner of hash slot {slot}")
        node = _node(cluster, argv[4], "ERR I don't know about node {}")
        if not node.is_master:
            raise CommandError("ERR Target node is not a master")
        state.migrating[slot] = node.id
    elif action == b"importing" and len(argv) == 5:
        if state.owners[slot] == myself.id:
            raise CommandError(f"ERR I'm already the owner of hash slot {slot}")
        node = _node(cluster, argv[4], "ERR I don't know about node {}")
        if not node.is_master:
            raise CommandError("ERR Target node is not a master")
        state.importing[slot] = node.id
    elif action == b"stable" and len(argv) == 4:
        state.migrating.pop(slot, None)
        state.importing.pop(slot, None)
    elif action == b"node" and len(argv) == 5:
        node = _node(cluster, argv[4])
        if not node.is_master:
            raise CommandError("ERR Target node is not a master")
        if state.owners[slot] == myself.id and node is not myself and db.count_in_slot(slot):
            raise CommandError(
                f"ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
            )
        if db.count_in_slot(slot) == 0:
            state.migrating.pop(slot, None)
        if node is myself and slot in state.importing:
            state.importing.pop(slot)
            bumped = cluster.bump_epoch_without_consensus()
        slot_was_mine = state.owners[slot] == myself.id
        state.assign(slot, node.id)
        if (
            slot_was_mine
            and node is not myself
            and myself.slot_count == 0
            and cluster.config["cluster-allow-replica-migration"]
        ):
            # Redis 7.0: a master whose last slot was given away becomes a replica of the node it went to.
            log.warning(
                "cluster_following_new_master",
                master=node.id,
                message=f"Configuration change detected. Reconfiguring myself as a replica of {node.id}",
            )
            cluster.replicate(node)
    else:
        raise CommandError("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    # As Redis: saved, not fsynced; fsynced with the slot when it came with a new configEpoch.
    cluster.changed(durable=bumped)
    return OK


@subcommand("meet", -4)
def _meet(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    ip = argv[2].decode("utf-8", "replace")
    try:
        port = int(argv[3])
    except ValueError:
        raise CommandError(f"ERR Invalid TCP base port specified: {echoed(argv[3])}") from None
    cport = port + 10000
    if len(argv) > 4:
        try:
            cport = int(argv[4])
        except ValueError:
            raise CommandError(f"ERR Invalid TCP bus port specified: {echoed(argv[4])}") from None
    if not cluster.start_handshake(ip, port, cport):
        raise CommandError(f"ERR Invalid node address specified: {ip}:{echoed(argv[3])}")
    return OK


@subcommand("forget", 3)
def _forget(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    state = cluster.state
    node = _node(cluster, argv[2])
    if node is state.myself:
        raise CommandError("ERR I tried hard but I can't forget myself...")
    if state.myself.master_id == node.id:
        raise CommandError("ERR Can't forget my master!")
    cluster.forget(node.id)
    return OK


@subcommand("replicate", 3)
def _replicate(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    state = cluster.state
    node = _node(cluster, argv[2])
    if node is state.myself:
        raise CommandError("ERR Can't replicate myself")
    if not node.is_master:
        raise CommandError("ERR I can only replicate a master, not a replica.")
    myself = state.myself
    if myself.is_master and (myself.slot_count or len(cluster.server.keyspace.dbs[0])):
        raise CommandError("ERR To set a master the node must be empty and without assigned slots.")
    cluster.replicate(node)
    return OK


def _replicas(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    state = cluster.state
    node = _node(cluster, argv[2])
    if not node.is_master:
        raise CommandError("ERR The specified node is not a master")
    return [state.node_line(state.nodes[r]).encode() for r in sorted(node.replicas) if r in state.nodes]


subcommand("replicas", 3)(_replicas)
subcommand("slaves", 3)(_replicas)


@subcommand("count-failure-reports", 3)
def _count_failure_reports(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    node = _node(cluster, argv[2])
    return len(cluster.fresh_fail_reports(node))


@subcommand("failover", -2)
def _failover(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    mode = argv[2].lower() if len(argv) == 3 else b""
    if mode not in (b"", b"force", b"takeover"):
        raise CommandError(errors.SYNTAX)
    state = cluster.state
    myself = state.myself
    if myself.is_master:
        raise CommandError("ERR You should send CLUSTER FAILOVER to a replica")
    master = state.nodes.get(myself.master_id or "")
    if master is None:
        raise CommandError("ERR I'm a replica but my master is unknown to me")
    if not mode and (master.failed or master.link is LinkState.DISCONNECTED):
        raise CommandError("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")
    cluster.manual_failover(mode.decode())
    return OK


@subcommand("set-config-epoch", 3)
def _set_config_epoch(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    epoch = _int(argv[2])
    state = cluster.state
    if epoch < 0:
        raise CommandError(f"ERR Invalid config epoch specified: {epoch}")
    if len(state.nodes) > 1:
        raise CommandError(
            "ERR The user can assign a config epoch only when the node does not know any other node."
        )
    if state.myself.config_epoch != 0:
        raise CommandError("ERR Node config epoch is already non-zero")
    state.myself.config_epoch = epoch
    state.current_epoch = max(state.current_epoch, epoch)
    cluster.changed()
    return OK


@subcommand("bumpepoch", 2)
def _bumpepoch(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    bumped = cluster.bump_epoch_without_consensus()
    return f"{'BUMPED' if bumped else 'STILL'} {cluster.state.myself.config_epoch}"


@subcommand("reset", -2)
def _reset(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    mode = argv[2].lower() if len(argv) == 3 else b"soft"
    if mode not in (b"hard", b"soft"):
        raise CommandError(errors.SYNTAX)
    if cluster.state.myself.is_master and len(cluster.server.keyspace.dbs[0]):
        raise CommandError("ERR CLUSTER RESET can't be called with master nodes containing keys")
    cluster.reset(hard=mode == b"hard")
    return OK


@subcommand("saveconfig", 2)
def _saveconfig(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    try:
        cluster.save()
    except OSError as exc:
        raise CommandError(f"ERR error saving the cluster node config: {exc}") from None
    return OK


@subcommand("links", 2)
def _links(cluster: Cluster, client: Client, argv: list[bytes]) -> Any:
    links: list[Any] = []
    for node in cluster.state.nodes.values():
        if node is cluster.state.myself or node.link is not LinkState.CONNECTED:
            continue
        for direction in ("to", "from"):
            links.append(
                {
                    b"direction": direction.encode(),
                    b"node": node.id.encode(),
                    b"create-time": node.created_ms,
                    b"events": b"r" if direction == "from" else b"rw",
                    b"send-buffer-allocated": 0,
                    b"send-buffer-used": 0,
                }
            )
    return links
