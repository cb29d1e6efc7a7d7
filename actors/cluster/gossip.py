"""Gossip: MEET / PING / PONG / FAIL / UPDATE handling and the cluster cron's timers (loop thread).

Follows Redis's clusterProcessPacket and clusterCron, over the bus's ZeroMQ frames instead of TCP links:

- a MEET makes the receiver add the sender (with its real id: our MEET carries it) and answer PONG; the
  meeting node held the peer as a ``handshake`` node under a random id and renames it on that PONG;
- every message from a known sender refreshes its role, epochs, replication offset and slots (a higher
  configEpoch wins a slot: clusterUpdateSlotsConfigWith), and its gossip entries feed failure reports and
  introduce unknown nodes (added under their own id and role, then PINGed: clusterProcessGossipSection);
- PING every node whose last PONG is older than node_timeout / 2 (node_timeout / 8 for a slot-owning
  master: ``_probe_period_ms``), plus once a second the stalest of 5 random nodes; a PING unanswered for
  node_timeout, with nothing else heard for as long, flags the node ``fail?`` (PFAIL); PFAIL reports from
  a majority of slot-owning masters make it ``fail`` (FAIL), broadcast to all; a master that flags a node
  PFAIL pings the other masters at once, so the reports meet sooner than Redis's next regular ping, and one
  that learns a FAIL from another's message pings the failed master's replicas (failover.py);
- an UPDATE tells a node with stale slots who owns them now; equal master configEpochs are resolved by
  bumping the node with the smaller id (clusterHandleConfigEpochCollision).
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import structlog

from actors.cluster import failover
from actors.cluster.state import ClusterNode, LinkState
from actors.commands.pubsub import publish
from protocol.clusterbus import (
    AuthAck,
    AuthRequest,
    ClusterFrame,
    Fail,
    Gossip,
    MfOffset,
    MfStart,
    Publish,
    Update,
)

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster

log = structlog.get_logger("redactor.cluster")

# Redis's CLUSTER_FAIL_UNDO_TIME_MULT: a FAIL master with slots is cleared after node_timeout times this.
FAIL_UNDO_TIME_MULT = 2
# A handshake that gets no PONG in max(node_timeout, this) is dropped.
HANDSHAKE_MIN_TIMEOUT_MS = 1000
# The shortest period between PINGs to a slot-owning master (see _probe_period_ms): the cron's period.
PROBE_MIN_PERIOD_MS = 100


def _now_ms() -> int:
    return int(time.time() * 1000)


def _count(cluster: Cluster, kind: str) -> None:
    received = cluster.state.received
    received[kind] = received.get(kind, 0) + 1


def gossip_frame(
    cluster: Cluster, kind: str, target: ClusterNode, about: ClusterNode | None = None
) -> Gossip:
    """A PING / PONG / MEET for ``target``: our header and a slice of the node table (every PFAIL node, and
    ``about`` when given: a FAIL node its replicas must hear about from us)."""
    state = cluster.state
    myself = state.myself
    master = state.nodes.get(myself.master_id or "") if myself.master_id else None
    config_epoch = master.config_epoch if master is not None else myself.config_epoch
    slots = state.bitmap_of(master.id if master is not None else myself.id)
    candidates = [
        n
        for n in state.nodes.values()
        if n is not myself and n is not target and "handshake" not in n.flags and n.ip
    ]
    wanted = max(3, len(state.nodes) // 10)
    chosen = cluster.rng.sample(candidates, min(wanted, len(candidates)))
    for node in candidates:
        if (node.pfailed or node is about) and node not in chosen:
            chosen.append(node)
    entries = [
        [
            n.id,
            n.ip,
            n.port,
            n.cport,
            sorted(n.flags - {"myself"}),
            n.ping_sent_ms,
            n.pong_recv_ms,
        ]
        for n in chosen
    ]
    own_flags = sorted(myself.flags & {"master", "slave", "nofailover"})
    return Gossip(
        kind,
        myself.id,
        myself.ip,
        myself.port,
        myself.cport,
        own_flags,
        state.current_epoch,
        config_epoch,
        cluster.repl_offset(),
        myself.master_id or "",
        slots,
        target.ip,
        state.health.value == "ok",
        entries,
        myself.hostname,
    )


def send_gossip(cluster: Cluster, node: ClusterNode, kind: str, about: ClusterNode | None = None) -> None:
    if kind == "ping":
        now = _now_ms()
        if node.ping_sent_ms == 0:
            node.ping_sent_ms = now
        cluster.last_ping_ms[node.id] = now
    cluster.send(node, gossip_frame(cluster, kind, node, about), kind)


def handle(cluster: Cluster, frame: ClusterFrame) -> None:
    if isinstance(frame, Gossip):
        _count(cluster, frame.kind)
        _on_gossip(cluster, frame)
    elif isinstance(frame, Fail):
        _count(cluster, "fail")
        _on_fail(cluster, frame)
    elif isinstance(frame, Update):
        _count(cluster, "update")
        _on_update(cluster, frame)
    elif isinstance(frame, AuthRequest):
        _count(cluster, "auth-req")
        failover.on_auth_request(cluster, frame)
    elif isinstance(frame, AuthAck):
        _count(cluster, "auth-ack")
        failover.on_auth_ack(cluster, frame)
    elif isinstance(frame, MfStart):
        _count(cluster, "mfstart")
        failover.on_mfstart(cluster, frame)
    elif isinstance(frame, MfOffset):
        failover.on_mfoffset(cluster, frame)
    elif isinstance(frame, Publish):
        _count(cluster, "publish")
        publish(cluster.server, frame.channel, frame.message)


def _on_gossip(cluster: Cluster, msg: Gossip) -> None:
    state = cluster.state
    myself = state.myself
    now = _now_ms()
    # What changed is saved at the end of the tick (Cluster.changed); fsynced, as Redis fsyncs it, only for
    # epochs and slot owners (clusterProcessPacket / clusterUpdateSlotsConfigWith: CLUSTER_TODO_FSYNC_CONFIG).
    save = durable = False
    announced = bool(cluster.config["cluster-announce-ip"])  # then our ip is that, whatever peers see
    if not myself.ip and msg.to_ip and not announced:
        myself.ip = msg.to_ip
        save = True
    sender = state.nodes.get(msg.sender)
    if sender is not None and "handshake" in sender.flags:
        sender = None
    if sender is not None:
        if msg.current_epoch > state.current_epoch:
            state.current_epoch = msg.current_epoch
            save = durable = True
        if not msg.master_id and msg.config_epoch > sender.config_epoch:
            sender.config_epoch = msg.config_epoch
            save = durable = True
    if msg.kind == "meet" and sender is None and msg.sender not in state.blacklist:
        if not myself.ip and not announced:
            myself.ip = msg.to_ip
        sender = ClusterNode(msg.sender, msg.ip, msg.port, msg.cport, flags={"master"})
        sender.created_ms = now
        state.add(sender)
        log.info("cluster_node_met", node_id=msg.sender, ip=msg.ip, port=msg.port)
        save = True
    if msg.kind in ("ping", "meet"):
        reply_to = sender or ClusterNode(msg.sender, msg.ip, msg.port, msg.cport)
        cluster.send(reply_to, gossip_frame(cluster, "pong", reply_to), "pong")
    if msg.kind == "pong" and sender is None:
        # The answer to our MEET: the handshake node at that address gets its real id (or goes, when we know
        # that id already). As in Redis, that is all this first PONG teaches: its epochs, slots and gossip wait
        # for the node's next message, so a node never heard from again past its handshake is known by name
        # only (27-endpoints in Redis's cluster suite relies on it).
        for node in list(state.nodes.values()):
            if "handshake" in node.flags and node.ip == msg.ip and node.port == msg.port:
                if msg.sender in state.nodes:
                    state.remove(node.id)  # we know it already under its real id
                else:
                    state.rename(node.id, msg.sender)
                    node.flags -= {"handshake", "meet"}
                    node.flags.add("slave" if "slave" in msg.flags else "master")
                    node.link = LinkState.CONNECTED
                    node.pong_recv_ms = node.data_recv_ms = now
                    node.ping_sent_ms = 0
                    log.info("cluster_handshake_done", node_id=msg.sender)
                cluster.changed(durable=False)
                return
    if sender is None:
        if save:
            cluster.changed(durable)
        return
    sender.link = LinkState.CONNECTED
    sender.data_recv_ms = now
    if msg.kind == "pong":
        sender.pong_recv_ms = now
        sender.ping_sent_ms = 0
        if sender.pfailed:
            sender.flags.discard("fail?")
            save = True
        elif sender.failed:
            save = _clear_failure_if_needed(cluster, sender, now) or save
    if sender.ip != msg.ip or sender.port != msg.port or sender.cport != msg.cport:
        sender.ip, sender.port, sender.cport = msg.ip, msg.port, msg.cport
        save = True
    if sender.hostname != msg.hostname:
        sender.hostname = msg.hostname
        save = True
    sender.repl_offset = msg.offset
    if "nofailover" in msg.flags:
        sender.flags.add("nofailover")
    else:
        sender.flags.discard("nofailover")
    # Role.
    if not msg.master_id:
        if not sender.is_master:
            state.set_master_of(sender, None)
            save = True
    elif sender.master_id != msg.master_id:
        if sender.is_master:
            for slot in state.slots_of(sender.id):
                state.assign(slot, None)
        state.set_master_of(sender, msg.master_id)
        save = True
    # Slots (only a master's claim counts; a replica's header carries its master's).
    if sender.is_master:
        if update_slots(cluster, sender, msg.config_epoch, msg.slots):
            save = durable = True
        _send_update_if_stale(cluster, sender, msg)
        _handle_epoch_collision(cluster, sender, msg.config_epoch)
    _process_entries(cluster, sender, msg.entries, now)
    if save:
        cluster.changed(durable)


def _clear_failure_if_needed(cluster: Cluster, node: ClusterNode, now: int) -> bool:
    if not node.is_master or node.slot_count == 0:
        node.flags.discard("fail")
        node.failed_by.clear()
        log.info(
            "cluster_fail_cleared",
            node_id=node.id,
            reason="reachable replica or slotless master",
            message=f"Clear FAIL state for node {node.id}: {'master without slots' if node.is_master else 'replica'}"
            " is reachable again.",
        )
        return True
    if now - node.fail_time_ms > cluster.node_timeout_ms * FAIL_UNDO_TIME_MULT:
        node.flags.discard("fail")
        node.failed_by.clear()
        log.info(
            "cluster_fail_cleared",
            node_id=node.id,
            reason="master reachable again, nobody took over",
            message=f"Clear FAIL state for node {node.id}: is reachable again and nobody is serving its slots "
            "after some time.",
        )
        return True
    return False


def update_slots(cluster: Cluster, sender: ClusterNode, config_epoch: int, bitmap: bytes) -> bool:
    """Redis's clusterUpdateSlotsConfigWith: take every slot the sender claims with a higher configEpoch."""
    state = cluster.state
    myself = state.myself
    known = state.bitmap_of(sender.id)
    if sender is myself or bitmap == known:
        return False  # (the common case, every ping: the sender claims what we know it serves)
    current_master = myself if myself.is_master else state.nodes.get(myself.master_id or "")
    new_master: ClusterNode | None = None
    taken_from_ours = 0  # Redis's migrated_our_slots
    dirty: list[int] = []
    changed = False
    for slot in state.slots_beyond(bitmap, known):  # the claimed slots we do not know as the sender's
        owner = state.owners[slot]
        if owner == sender.id or slot in state.importing:
            continue
        owner_node = state.nodes.get(owner) if owner is not None else None
        if owner_node is None or owner_node.config_epoch < config_epoch:
            if owner == myself.id and cluster.server.keyspace.dbs[0].count_in_slot(slot):
                dirty.append(slot)
            if current_master is not None and owner == current_master.id:
                new_master = sender
                taken_from_ours += 1
            state.assign(slot, sender.id)
            state.migrating.pop(slot, None)
            changed = True
    if not changed:
        return False
    # Our master (or we) lost its last slot to the sender: follow it, unless replica migration is off and the
    # sender holds slots that were not ours (a failover takes exactly our master's slots: that one we follow).
    follows = (
        bool(cluster.config["cluster-allow-replica-migration"])
        or taken_from_ours == int.from_bytes(bitmap, "little").bit_count()
    )
    master = state.nodes.get(myself.master_id) if myself.master_id is not None else None
    grandmaster = state.nodes.get(master.master_id) if master is not None and master.master_id else None
    if new_master is not None and current_master is not None and current_master.slot_count == 0 and follows:
        log.warning(
            "cluster_following_new_master",
            master=new_master.id,
            message=f"Configuration change detected. Reconfiguring myself as a replica of {new_master.id}",
        )
        cluster.replicate(new_master)
    elif grandmaster is not None and grandmaster is not myself:
        # Redis's safeguard against sub-replicas: our master turned replica when its last slot went (and we did
        # not follow): nothing else would ever move us, so we replicate its master. (A replica of a replica of
        # ourselves, after a FAILOVER TAKEOVER, is left for the operator, as Redis leaves it.)
        log.warning(
            "cluster_sub_replica",
            master=grandmaster.id,
            message=f"I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {grandmaster.id}",
        )
        cluster.replicate(grandmaster)
    elif dirty:
        keyspace = cluster.server.keyspace
        db = keyspace.dbs[0]
        for slot in dirty:
            for key in db.keys_in_slot(slot, db.count_in_slot(slot)):
                keyspace.delete(db, key)
    return True


def _send_update_if_stale(cluster: Cluster, sender: ClusterNode, msg: Gossip) -> None:
    """The sender claims a slot whose owner we know with a higher configEpoch: tell it (UPDATE)."""
    state = cluster.state
    known = state.bitmap_of(sender.id)
    if msg.slots == known:
        return  # every claimed slot is the sender's already
    for slot in state.slots_beyond(msg.slots, known):
        owner = state.owners[slot]
        if owner is None or owner == sender.id:
            continue
        owner_node = state.nodes[owner]
        if owner_node.config_epoch > msg.config_epoch:
            update = Update(state.myself.id, owner, owner_node.config_epoch, state.bitmap_of(owner))
            cluster.send(sender, update, "update")
            return


def _handle_epoch_collision(cluster: Cluster, sender: ClusterNode, config_epoch: int) -> None:
    state = cluster.state
    myself = state.myself
    if not (myself.is_master and sender.is_master) or config_epoch != myself.config_epoch:
        return
    if sender.id <= myself.id:
        return  # the node with the smaller id bumps: that is the sender
    state.current_epoch += 1
    myself.config_epoch = state.current_epoch
    log.info("cluster_config_epoch_collision", config_epoch=myself.config_epoch)
    cluster.changed()


def _process_entries(cluster: Cluster, sender: ClusterNode, entries: list[list[object]], now: int) -> None:
    state = cluster.state
    for entry in entries:
        if len(entry) != 7:
            continue
        node_id, ip, port, cport, flags = entry[0], entry[1], entry[2], entry[3], entry[4]
        if not (isinstance(node_id, str) and isinstance(ip, str) and isinstance(port, int)):
            continue
        if not (isinstance(cport, int) and isinstance(flags, list)):
            continue
        node = state.nodes.get(node_id)
        if node is not None:
            if sender.is_master and node is not state.myself:
                if "fail" in flags or "fail?" in flags:
                    node.fail_reports[sender.id] = now
                    mark_failing_if_needed(cluster, node)
                    if "fail" in flags and sender.id not in node.failed_by:
                        node.failed_by.add(sender.id)
                        if node.failed:
                            _failover_if_my_master(cluster, node)
                else:
                    node.fail_reports.pop(sender.id, None)
                    node.failed_by.discard(sender.id)
            if node.link is LinkState.DISCONNECTED and node.ip != ip and not node.pfailed:
                node.ip, node.port, node.cport = ip, port, cport
        elif node_id not in state.blacklist and ip and "noaddr" not in flags and "handshake" not in flags:
            # As Redis's clusterProcessGossipSection: a node a known peer vouches for joins under its own id
            # and role, and is PINGed (cron). No MEET handshake: that would let a node we cannot exchange
            # PINGs with (DEBUG DROP-CLUSTER-PACKET-FILTER, a one-way partition) answer a MEET with a PONG
            # and teach us its slots, which Redis never learns that way (27-endpoints).
            if len(node_id) == 40 and valid_address(ip, port, cport):
                learned = ClusterNode(
                    node_id, ip, port, cport, flags={"slave" if "slave" in flags else "master"}
                )
                learned.created_ms = now
                state.add(learned)
                cluster.changed(durable=False)


def valid_address(ip: str, port: int, cport: int) -> bool:
    """A numeric ip and two ports a node can be reached at (CLUSTER MEET's check, and gossip's)."""
    if not ip or not 0 < port < 65536 or not 0 < cport < 65536:
        return False
    try:
        socket.getaddrinfo(ip, port, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return False
    return True


def mark_failing_if_needed(cluster: Cluster, node: ClusterNode) -> None:
    state = cluster.state
    if not node.pfailed or node.failed:
        return
    reports = len(cluster.fresh_fail_reports(node))
    if state.myself.is_master:
        reports += 1
    if reports < state.failure_quorum():
        return
    log.info(
        "cluster_node_failed",
        node_id=node.id,
        reports=reports,
        message=f"Marking node {node.id} as failing (quorum reached).",
    )
    node.flags.discard("fail?")
    node.flags.add("fail")
    node.fail_time_ms = _now_ms()
    if state.myself.is_master:
        node.failed_by.add(state.myself.id)
    cluster.broadcast(Fail(state.myself.id, node.id), "fail")
    cluster.changed(durable=False)  # as Redis: saved, not fsynced (re-learned after a crash)
    _failover_if_my_master(cluster, node)


def _failover_if_my_master(cluster: Cluster, node: ClusterNode) -> None:
    """Our master just became FAIL: schedule the election now rather than at the next cron tick."""
    if cluster.state.myself.master_id == node.id:
        failover.cron(cluster)


def _on_fail(cluster: Cluster, msg: Fail) -> None:
    state = cluster.state
    sender = state.nodes.get(msg.sender)
    if sender is None:
        return
    node = state.nodes.get(msg.node_id)
    if node is None or node is state.myself:
        return
    if sender.is_master:
        node.failed_by.add(sender.id)  # it sent the FAIL: it holds the node FAIL itself
    if node.failed:
        _failover_if_my_master(cluster, node)  # one more master known to hold it FAIL
        return
    log.info(
        "cluster_node_failed",
        node_id=node.id,
        reported_by=msg.sender,
        message=f"FAIL message received from {msg.sender} about {node.id}",
    )
    node.flags.discard("fail?")
    node.flags.add("fail")
    node.fail_time_ms = _now_ms()
    if state.myself.is_master:
        node.failed_by.add(state.myself.id)
        _tell_replicas_of(cluster, node)
    cluster.changed(durable=False)
    _failover_if_my_master(cluster, node)


def _tell_replicas_of(cluster: Cluster, failed: ClusterNode) -> None:
    """A master that learned from another's FAIL message that ``failed`` is FAIL pings its replicas at once,
    with ``failed`` among the entries (fail flag): a replica starts its election as soon as it knows a
    majority of masters hold its master FAIL (they would refuse the vote otherwise), instead of after Redis's
    fixed 500 ms wait for the FAIL to spread (failover.py). The master that declared the FAIL needs no ping:
    its FAIL message says so."""
    if not failed.slot_count:
        return
    for replica_id in failed.replicas:
        replica = cluster.state.nodes.get(replica_id)
        if replica is not None and not replica.failed:
            send_gossip(cluster, replica, "ping", about=failed)


def _on_update(cluster: Cluster, msg: Update) -> None:
    state = cluster.state
    node = state.nodes.get(msg.node_id)
    if node is None or msg.sender not in state.nodes or node.config_epoch >= msg.config_epoch:
        return
    if not node.is_master:
        state.set_master_of(node, None)
    node.config_epoch = msg.config_epoch
    if update_slots(cluster, node, msg.config_epoch, msg.slots):
        cluster.changed()


def cron(cluster: Cluster) -> None:
    state = cluster.state
    myself = state.myself
    now = _now_ms()
    timeout = cluster.node_timeout_ms
    for node_id, until in list(state.blacklist.items()):
        if until < now:
            del state.blacklist[node_id]
    changed = False
    for node in list(state.nodes.values()):
        if node is myself:
            continue
        if "handshake" in node.flags:
            if now - node.created_ms > max(timeout, HANDSHAKE_MIN_TIMEOUT_MS):
                state.remove(node.id)
            elif now - cluster.last_ping_ms.get(node.id, 0) >= 200:
                cluster.last_ping_ms[node.id] = now
                send_gossip(cluster, node, "meet")
            continue
    # Once a second: the stalest of 5 random nodes.
    if cluster.cron_iteration % 10 == 0:
        sample = state.random_nodes(5, cluster.rng)
        idle = [n for n in sample if n.ping_sent_ms == 0]
        if idle:
            send_gossip(cluster, min(idle, key=lambda n: n.pong_recv_ms), "ping")
    for node in list(state.nodes.values()):
        if node is myself or "handshake" in node.flags:
            continue
        last_ping = cluster.last_ping_ms.get(node.id, 0)
        if node.ping_sent_ms == 0 and now - node.pong_recv_ms > _probe_period_ms(node, timeout):
            send_gossip(cluster, node, "ping")
        elif node.ping_sent_ms and now - last_ping > max(timeout // 2, 100):
            send_gossip(cluster, node, "ping")  # re-send: the first may have been dropped
        if node.ping_sent_ms and _unreachable(cluster, node, now):
            if node.link is LinkState.CONNECTED:
                node.link = LinkState.DISCONNECTED
            if not node.pfailed and not node.failed:
                log.info("cluster_node_pfail", node_id=node.id)
                node.flags.add("fail?")
                changed = True
                if myself.is_master and myself.slot_count:
                    _report_pfail_now(cluster, node)
                mark_failing_if_needed(cluster, node)  # the other masters' reports may be here already
    if changed:
        cluster.update_health()


def _probe_period_ms(node: ClusterNode, timeout: int) -> int:
    """How long after its last PONG a node gets our next PING.

    Redis pings a node node_timeout / 2 after its last PONG and flags it PFAIL once that PING has waited
    node_timeout: a master that dies just after a PONG is flagged up to 1.5 x node_timeout after it died. A
    slot-owning master (whose death stops its slots until a failover) is pinged every node_timeout / 8 here
    (at least every 100 ms, the cron period), so its PFAIL comes node_timeout + at most node_timeout / 8
    after it died. The PFAIL rule itself is Redis's, unchanged (``_unreachable``): a live node still has a
    full node_timeout to answer. The cost is more PINGs to the masters: 8 per node_timeout instead of 2."""
    if node.is_master and node.slot_count:
        return max(timeout // 8, PROBE_MIN_PERIOD_MS)
    return timeout // 2


def _unreachable(cluster: Cluster, node: ClusterNode, now: int) -> bool:
    """Redis's PFAIL rule (clusterCron): our pending PING has waited node_timeout, and nothing else came from
    the node for that long either (any frame is proof of life)."""
    timeout = cluster.node_timeout_ms
    heard = max(node.data_recv_ms, node.pong_recv_ms, cluster.started_ms)
    return now - node.ping_sent_ms > timeout and now - heard > timeout


def _report_pfail_now(cluster: Cluster, failing: ClusterNode) -> None:
    """A slot-owning master just flagged ``failing`` PFAIL: ping the other slot-owning masters now (every
    ping carries all PFAIL nodes), so they gather the majority of reports that makes it FAIL without waiting
    for their next regular ping (up to node_timeout / 2 later). Redis waits; this is only earlier gossip."""
    state = cluster.state
    for node in state.masters_with_slots():
        if node is not state.myself and node is not failing and not (node.failed or node.pfailed):
            send_gossip(cluster, node, "ping")
