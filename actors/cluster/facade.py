"""The loop-side cluster facade: ``Server.cluster`` (the ClusterPort), owner of the ClusterState.

Built by launcher/node.py when ``cluster-enabled yes``: it loads nodes.conf (or makes a new node id and writes
it), installs itself on the server (which turns routing on), and registers its cron (gossip.py's timers and
failover.py's election) with the master actor. Bus frames reach it through ``on_frames`` (actors/cluster/
link.py hands them over from the bus thread); frames leave through ``send`` (``MasterActor.tell_bus``).
Everything here runs on the loop thread, so the state needs no lock. A change to the state is saved to
nodes.conf (and ok / fail re-evaluated) once per loop tick, before the tick's replies leave (``changed``,
``before_sleep``: Redis's clusterDoBeforeSleep / clusterBeforeSleep).
"""

from __future__ import annotations

import random
import socket
import time
from typing import TYPE_CHECKING, Any

import structlog

from actors.cluster import admin, blocked, failover, gossip, migration, nodesconf, routing
from actors.cluster.link import ClusterSend
from actors.cluster.state import ClusterHealth, ClusterNode, ClusterState, LinkState, new_node_id
from actors.commands import pubsub_shard
from actors.server.blocking import unblock_on_role_change
from protocol import clusterbus
from protocol.clusterbus import ClusterFrame, ClusterFrameError, Gossip

if TYPE_CHECKING:
    from actors.config import Config
    from actors.loop.master import MasterActor
    from actors.server.client import Client
    from actors.server.ports import LaneView
    from actors.server.server import Server

log = structlog.get_logger("redactor.cluster")

# Redis's CLUSTER_WRITABLE_DELAY: a master starts in the fail state and stays there this long after start-up,
# so it can learn a newer configuration before serving writes.
WRITABLE_DELAY_MS = 2000
# The directives ``announce`` reads: CONFIG SET of one re-applies them all.
_ANNOUNCED = (
    "port",
    "cluster-announce-ip",
    "cluster-announce-port",
    "cluster-announce-bus-port",
    "cluster-announce-hostname",
    "cluster-preferred-endpoint-type",
    "cluster-replica-no-failover",
)
# Redis's CLUSTERMSG_TYPE_* numbers of our frames (a gossip frame by its kind), for DEBUG
# DROP-CLUSTER-PACKET-FILTER. A manual failover's offset rides a PING in Redis.
_PACKET_TYPES = {
    "ping": 0,
    "pong": 1,
    "meet": 2,
    "fail": 3,
    "publish": 4,
    "authreq": 5,
    "authack": 6,
    "update": 7,
    "mfstart": 8,
    "mfoffset": 0,
}
# Redis's CLUSTER_BLACKLIST_TTL: a forgotten node is not re-added by gossip for this long.
FORGET_TTL_MS = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def local_ip_towards(ip: str) -> str:
    """The address this host uses to reach ``ip`` (as Redis learns its own ip from a connected socket)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((ip, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return ip


class Cluster:
    def __init__(self, server: Server, master: MasterActor, config: Config, bus_port: int) -> None:
        self.server = server
        self.master = master
        self.config = config
        self.path = str(config["cluster-config-file"])
        self._lock = nodesconf.lock(self.path + ".lock")
        self.bus_port = bus_port
        state = nodesconf.load(self.path)
        if state is None:
            myself = ClusterNode(new_node_id(), "", 0, 0, flags={"myself", "master"})
            myself.link = LinkState.CONNECTED
            state = ClusterState(myself)
            log.info("cluster_node_created", node_id=myself.id)
        else:
            log.info("cluster_node_loaded", node_id=state.myself.id, nodes=len(state.nodes))
        self.state = state
        # The cluster-announce-ip last applied: only a change of it touches our ip (an ip learned from a peer
        # stays while none is set, as Redis's clusterUpdateMyselfIp).
        self._announced_ip = ""
        self.announce()
        state.on_slot_leaving = self._slot_leaving
        for name in _ANNOUNCED:
            config.on_change(name, self._announce_changed)
        self.rng = random.Random()
        self.cron_iteration = 0
        # node id -> when we last sent it a PING (ms), pending or not: re-sent every node_timeout / 2.
        self.last_ping_ms: dict[str, int] = {}
        self.election = failover.Election()
        self.started_ms = now_ms()
        # A replica restarted from nodes.conf points replication at its master at the first cron.
        self._master_link_pending = state.myself.master_id is not None
        # Work ``changed`` defers to the end of the tick (before_sleep): save nodes.conf (with fsync),
        # re-evaluate ok / fail.
        self._todo_save = self._todo_fsync = self._todo_health = False
        self.save()
        self.update_health()
        server.cluster = self
        master.cron_jobs.append(self.cron)
        master.after_flush.append(self.before_sleep)

    # -- what we announce -----------------------------------------------------------------------------

    def announce(self) -> None:
        """Our own entry as peers and clients are to see it: the cluster-announce-* directives over what the
        node listens on (Redis's clusterUpdateMyselfAnnouncedPorts, ...Ip and ...Hostname), the nofailover flag
        of cluster-replica-no-failover (...Flags), and how clients are told to reach nodes
        (cluster-preferred-endpoint-type). The next gossip carries it to the peers, which connect to the
        announced ip and bus port: the addresses a node behind NAT (a container's port mapping) is reached at,
        which it cannot see itself."""
        config = self.config
        myself = self.state.myself
        ip = str(config["cluster-announce-ip"])
        if ip != self._announced_ip:
            # Set: used as is, never replaced by what peers see. Cleared: learned again from the next peer.
            myself.ip = ip
            self._announced_ip = ip
        myself.port = int(config["cluster-announce-port"]) or int(config["port"])
        myself.cport = int(config["cluster-announce-bus-port"]) or self.bus_port
        myself.hostname = str(config["cluster-announce-hostname"])
        self.state.endpoint_type = str(config["cluster-preferred-endpoint-type"])
        # Our nofailover flag, shown in CLUSTER NODES everywhere (Redis's clusterUpdateMyselfFlags).
        if config["cluster-replica-no-failover"]:
            myself.flags.add("nofailover")
        else:
            myself.flags.discard("nofailover")

    def _slot_leaving(self, slot: int, owner_id: str) -> None:
        """A slot leaves its owner (Redis's clusterDelSlot): if that is our shard (we own it, or replicate its
        owner), its shard channels' subscribers here are unsubscribed, to resubscribe where it went."""
        if not self.server.pubsub_shard_channels:
            return
        myself = self.state.myself
        if owner_id == myself.id or owner_id == myself.master_id:
            pubsub_shard.unsubscribe_slot(self.server, slot)

    def _announce_changed(self, _value: Any) -> None:
        self.announce()
        self.changed(durable=False)

    # -- the port --------------------------------------------------------------------------------------

    def route(self, client: Client, cmd: Any, argv: list[bytes]) -> str | None:
        config = self.config
        return routing.route(
            self.state,
            bool(config["cluster-allow-reads-when-down"]),
            client,
            cmd,
            argv,
            bool(config["cluster-allow-pubsubshard-when-down"]),
        )

    def lane_view(self, client: Client) -> LaneView | None:
        return routing.lane_view(self.state, client)

    def command(self, client: Client, argv: list[bytes]) -> Any:
        return admin.dispatch(self, client, argv)

    def info_section(self) -> list[tuple[str, Any]]:
        return [("cluster_enabled", 1)]

    def connections(self) -> int:
        """INFO clients' cluster_connections, as Redis counts it: two links per other known node."""
        return (len(self.state.nodes) - 1) * 2

    def publish(self, channel: bytes, message: bytes) -> None:
        self.broadcast(clusterbus.Publish(channel, message), "publish")

    # -- persistence of the state -------------------------------------------------------------------------

    def save(self, durable: bool = True) -> None:
        """Replace nodes.conf now (CLUSTER SAVECONFIG, start-up); any save pending for the tick is done."""
        self._todo_save = self._todo_fsync = False
        nodesconf.save(self.state, self.path, durable)

    def changed(self, durable: bool = True) -> None:
        """The state changed in a way that must survive a restart: nodes.conf is saved, and ok / fail
        re-evaluated, ONCE at the end of this loop tick (``before_sleep``), as Redis's clusterDoBeforeSleep
        defers both to clusterBeforeSleep: a reshard sends ~6 config changes per slot, often several in one
        tick. The tick's replies leave after the save (so "+OK" still means "in nodes.conf", as in Redis), and
        a bus frame never leaves while an fsynced save is pending (``send_to``; Redis, too, writes its bus
        links only after beforeSleep). ``durable=False``: without fsync (slot moves; see nodesconf.save); one
        durable change makes the tick's save durable."""
        self._todo_save = True
        self._todo_fsync = self._todo_fsync or durable
        self._todo_health = True
        if self.master.loop is None:
            self.before_sleep()  # no loop (yet): no tick to wait for
            return
        self.master.schedule_flush()

    def before_sleep(self) -> None:
        """End of the loop tick (MasterActor.after_flush, before the tick's replies leave): the deferred work of
        ``changed``."""
        if self._todo_health:
            self._todo_health = False
            self.update_health()
        if self._todo_save:
            self.save(self._todo_fsync)

    # -- wire ------------------------------------------------------------------------------------------

    @property
    def node_timeout_ms(self) -> int:
        return int(self.config["cluster-node-timeout"])

    def send_to(self, ip: str, cport: int, frame: ClusterFrame, kind: str) -> None:
        if self._todo_fsync:
            self.before_sleep()  # an epoch or a vote is on disk before any frame that may carry it leaves
        self.state.sent[kind] = self.state.sent.get(kind, 0) + 1
        self.master.tell_bus(ClusterSend(ip, cport, clusterbus.encode(frame)))

    def send(self, node: ClusterNode, frame: ClusterFrame, kind: str) -> None:
        if node.ip:
            self.send_to(node.ip, node.cport, frame, kind)

    def broadcast(self, frame: ClusterFrame, kind: str) -> None:
        for node in list(self.state.nodes.values()):
            if node is not self.state.myself and "handshake" not in node.flags:
                self.send(node, frame, kind)

    def on_frames(self, frames: list[bytes]) -> None:
        try:
            frame = clusterbus.decode(frames)
        except ClusterFrameError as exc:
            log.warning("cluster_frame_dropped", reason=str(exc))
            return
        dropped = self.server.cluster_drop_packet_filter
        if dropped >= 0 and _PACKET_TYPES[frame.kind if isinstance(frame, Gossip) else frame.VERB] == dropped:
            log.warning("cluster_frame_filtered", message="Dropping packet that matches debug drop filter")
            return
        try:
            gossip.handle(self, frame)
        except Exception:
            log.exception("cluster_frame_failed", verb=frame.VERB)

    def repl_offset(self) -> int:
        """The replication offset this node announces and ranks by: Redis's replicationGetSlaveOffset, which is 0
        while a replica takes a full sync (its old master state is gone; the new one is not loaded yet). So a
        replica in a full sync shows as "loading" in CLUSTER SHARDS and is left out of CLUSTER SLOTS."""
        replication = self.server.replication
        if replication is not None and replication.full_sync_in_progress():
            return 0
        return self.server.repl_offset

    # -- timers ----------------------------------------------------------------------------------------

    def cron(self) -> None:
        self.cron_iteration += 1
        self.state.myself.repl_offset = self.repl_offset()
        if self._master_link_pending:
            master = self.state.nodes.get(self.state.myself.master_id or "")
            if master is not None and master.ip and self.server.replication is not None:
                self.server.replication.set_master(master.ip, master.port)
            self._master_link_pending = False
        gossip.cron(self)
        failover.cron(self)
        migration.cron(self)
        self.update_health()
        blocked.redirect_if_needed(self)

    # -- state transitions -------------------------------------------------------------------------------

    def update_health(self) -> None:
        state = self.state
        masters = state.masters_with_slots()
        state.size = len(masters)
        health = ClusterHealth.OK
        # A slot unassigned, or served by a failed master (slot_count is kept by ClusterState.assign).
        if self.config["cluster-require-full-coverage"] and (
            state.unassigned or any(n.failed and n.slot_count for n in state.nodes.values())
        ):
            health = ClusterHealth.FAIL
        reachable = sum(1 for m in masters if not (m.failed or m.pfailed))
        if reachable < state.size // 2 + 1:
            health = ClusterHealth.FAIL
        if (
            health is ClusterHealth.OK
            and state.health is ClusterHealth.FAIL
            and state.myself.is_master
            and now_ms() - self.started_ms < WRITABLE_DELAY_MS
        ):
            return
        if health is not state.health:
            log.info(
                "cluster_state_changed", state=health.value, message=f"Cluster state changed: {health.value}"
            )
            state.health = health

    def start_handshake(self, ip: str, port: int, cport: int) -> bool:
        if not gossip.valid_address(ip, port, cport):
            return False
        state = self.state
        for node in state.nodes.values():
            if "handshake" in node.flags and node.ip == ip and node.port == port and node.cport == cport:
                return True  # one in progress already
        if not state.myself.ip:
            state.myself.ip = local_ip_towards(ip)
        node = ClusterNode(new_node_id(), ip, port, cport, flags={"handshake", "meet"})
        node.created_ms = now_ms()
        state.add(node)
        gossip.send_gossip(self, node, "meet")
        return True

    def forget(self, node_id: str) -> None:
        self.state.blacklist[node_id] = now_ms() + FORGET_TTL_MS
        self.state.remove(node_id)
        self.changed()

    def fresh_fail_reports(self, node: ClusterNode) -> dict[str, int]:
        oldest = now_ms() - self.node_timeout_ms * 2
        for reporter, when in list(node.fail_reports.items()):
            if when < oldest or reporter not in self.state.nodes:
                del node.fail_reports[reporter]
        return node.fail_reports

    def bump_epoch_without_consensus(self) -> bool:
        state = self.state
        highest = max(n.config_epoch for n in state.nodes.values())
        if state.myself.config_epoch == 0 or state.myself.config_epoch != highest:
            state.current_epoch += 1
            state.myself.config_epoch = state.current_epoch
            log.info("cluster_epoch_bumped", config_epoch=state.myself.config_epoch)
            self.changed()
            return True
        return False

    def replicate(self, master: ClusterNode) -> None:
        """Become a replica of ``master`` (CLUSTER REPLICATE, or slots lost to it): slots go, data follows."""
        state = self.state
        myself = state.myself
        unblock_on_role_change(self.server)
        for slot in state.slots_of(myself.id):
            state.assign(slot, None)
        state.importing.clear()
        state.migrating.clear()
        state.set_master_of(myself, master.id)
        self.election.reset()
        self.changed()
        if self.server.replication is not None and master.ip:
            self.server.replication.set_master(master.ip, master.port)
        # A manual failover paused our writes: they run now, as a replica's, so they get MOVED.
        failover.end_master_pause(self)
        log.info("cluster_replicating", master=master.id)

    def is_replica(self) -> bool:
        return self.state.myself.master_id is not None

    def become_master(self) -> None:
        state = self.state
        state.set_master_of(state.myself, None)
        if self.server.replication is not None:
            self.server.replication.unset_master()

    def manual_failover(self, mode: str) -> None:
        failover.start_manual(self, mode)

    def reset(self, hard: bool) -> None:
        state = self.state
        myself = state.myself
        if not myself.is_master:
            self.become_master()
        for node_id in [n for n in state.nodes if n != myself.id]:
            state.remove(node_id)
        for slot in range(len(state.owners)):
            state.assign(slot, None)
        state.importing.clear()
        state.migrating.clear()
        if hard:
            state.current_epoch = state.last_vote_epoch = 0
            myself.config_epoch = 0
            old = myself.id
            state.rename(old, new_node_id())
        self.changed()
