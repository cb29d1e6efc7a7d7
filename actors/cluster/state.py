"""The cluster's node table and slot map, as this node sees them, and the texts Redis renders from them.

Owns: ``ClusterNode`` (one row of CLUSTER NODES), ``ClusterState`` (the node table, the slot -> owner map,
IMPORTING / MIGRATING slots, epochs, the ok / fail state) and the replies that are pure functions of them:
CLUSTER NODES lines (also nodes.conf's), CLUSTER SLOTS, CLUSTER SHARDS, CLUSTER INFO. No I/O: gossip.py
mutates it from bus messages, admin.py from CLUSTER commands; both on the loop thread.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SLOTS = 16384
_NO_SLOTS = bytes(SLOTS // 8)
# Flags in the order CLUSTER NODES prints them (Redis's redisNodeFlagsTable).
FLAG_ORDER = ("myself", "master", "slave", "fail?", "fail", "handshake", "noaddr", "nofailover")
# Message types as CLUSTER INFO names their counters, in Redis's order.
MESSAGE_TYPES = (
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "module",
    "publishshard",
)


class LinkState(Enum):
    CONNECTED = "connected"  # we heard a PONG from it within node-timeout (or it is myself)
    DISCONNECTED = "disconnected"  # no PONG for node-timeout: our pings go unanswered


class ClusterHealth(Enum):
    OK = "ok"  # every slot is served by a reachable master, and we are in the majority
    FAIL = "fail"  # some slot is unserved or its owner failed, or we are in a minority partition


def new_node_id() -> str:
    return os.urandom(20).hex()


@dataclass
class ClusterNode:
    id: str
    ip: str
    port: int
    cport: int
    flags: set[str] = field(default_factory=set)
    # Its cluster-announce-hostname ("": none), from its own gossip; shown beside its ip (CLUSTER NODES,
    # SLOTS, SHARDS) and, with cluster-preferred-endpoint-type hostname, instead of it.
    hostname: str = ""
    master_id: str | None = None
    # Milliseconds (wall clock) of the PING in flight (0: none) and of the last PONG received.
    ping_sent_ms: int = 0
    pong_recv_ms: int = 0
    config_epoch: int = 0
    link: LinkState = LinkState.DISCONNECTED
    # When the node was flagged FAIL (ms), and who reported it PFAIL / FAIL: reporter id -> report time (ms).
    fail_time_ms: int = 0
    fail_reports: dict[str, int] = field(default_factory=dict)
    # Masters known to hold this node FAIL themselves (they sent its FAIL, or gossiped it with the fail flag):
    # its replica starts its election without the fixed delay once they are a majority (failover.py).
    failed_by: set[str] = field(default_factory=set)
    # When any gossip frame last came from it (ms): silence is what PFAIL measures (gossip.cron).
    data_recv_ms: int = 0
    repl_offset: int = 0
    # When a handshake node was created (ms): it is dropped if the handshake does not finish in time.
    created_ms: int = 0
    # Masters: the slots it serves, counted (the map itself is ClusterState.owners).
    slot_count: int = 0
    # Replicas of this master: ids.
    replicas: set[str] = field(default_factory=set)
    # Redis's CLUSTER_NODE_MIGRATE_TO (not shown in CLUSTER NODES, not saved): a master that had replicas, or
    # took over from one that did, or got its first slot while other masters had replicas, is a master replica
    # migration may give a replica to once it has none left working (migration.py).
    migrate_to: bool = False
    # When this master was first seen orphaned by the migration check (ms; 0: not orphaned): a replica
    # migrates only after it stayed so for a while (migration.py).
    orphaned_ms: int = 0

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags

    @property
    def pfailed(self) -> bool:
        return "fail?" in self.flags

    def flag_text(self) -> str:
        present = [f for f in FLAG_ORDER if f in self.flags]
        return ",".join(present) if present else "noflags"


class ClusterState:
    """The node table and slot map (loop thread). Every change that must survive a restart ends with the
    caller saving nodes.conf (nodesconf.save) before it is acted on."""

    def __init__(self, myself: ClusterNode) -> None:
        self.myself = myself
        self.nodes: dict[str, ClusterNode] = {myself.id: myself}
        # slot -> owner id (None: unassigned).
        self.owners: list[str | None] = [None] * SLOTS
        self.importing: dict[int, str] = {}  # slot -> source node id
        self.migrating: dict[int, str] = {}  # slot -> destination node id
        self.current_epoch = 0
        self.last_vote_epoch = 0
        self.health = ClusterHealth.FAIL
        self.size = 0  # masters serving at least one slot
        # Message counters for CLUSTER INFO.
        self.sent: dict[str, int] = {}
        self.received: dict[str, int] = {}
        # Forgotten node ids -> until (ms): gossip does not bring them back meanwhile (CLUSTER FORGET).
        self.blacklist: dict[str, int] = {}
        # Bumped whenever a slot changes owner: the slot ranges (NODES, nodes.conf) are rebuilt only then.
        self.slots_version = 0
        # Each owner's slots as Redis's 16384-bit bitmap, kept up to date by ``assign`` (every PING carries
        # one, and every PING received is compared with one: rebuilding it is a 16384-slot Python loop,
        # ~2 ms, and a reshard changes an owner for every slot it moves).
        self._bits: dict[str, bytearray] = {}
        self.unassigned = SLOTS  # slots with no owner (the coverage check, without a 16384-slot scan)
        self._ranges_cache: tuple[int, dict[str | None, list[tuple[int, int]]]] = (-1, {})
        # cluster-preferred-endpoint-type (set by the facade from the configuration): what MOVED, ASK, SLOTS
        # and SHARDS give clients to reach a node by.
        self.endpoint_type = "ip"
        # Called with (slot, owner id) before a slot leaves its owner (Redis's clusterDelSlot): the facade
        # unsubscribes the slot's shard channels there.
        self.on_slot_leaving: Callable[[int, str], None] | None = None

    # -- slots -------------------------------------------------------------------------------------------

    def assign(self, slot: int, node_id: str | None) -> None:
        old = self.owners[slot]
        if old == node_id:
            return
        if old is not None and self.on_slot_leaving is not None:
            self.on_slot_leaving(slot, old)
        byte, bit = slot >> 3, 1 << (slot & 7)
        if old is None:
            self.unassigned -= 1
        else:
            if old in self.nodes:
                self.nodes[old].slot_count -= 1
            self._bits[old][byte] &= ~bit
        self.owners[slot] = node_id
        if node_id is None:
            self.unassigned += 1
        else:
            node = self.nodes[node_id]
            node.slot_count += 1
            if node.slot_count == 1 and self._masters_have_replicas():
                # Redis's clusterAddSlot: a master's first slot makes it a migration target if replicas exist
                # anywhere (a new master of a cluster with replicas is supposed to get one too).
                node.migrate_to = True
            bits = self._bits.get(node_id)
            if bits is None:
                bits = self._bits[node_id] = bytearray(SLOTS // 8)
            bits[byte] |= bit
        self.slots_version += 1

    def _masters_have_replicas(self) -> bool:
        return any(n.replicas for n in self.nodes.values() if "slave" not in n.flags)

    def slots_of(self, node_id: str) -> list[int]:
        return [s for s, owner in enumerate(self.owners) if owner == node_id]

    def bitmap_of(self, node_id: str) -> bytes:
        bits = self._bits.get(node_id)
        return bytes(bits) if bits is not None else _NO_SLOTS

    @staticmethod
    def slots_beyond(bitmap: bytes, known: bytes) -> list[int]:
        """The slots set in ``bitmap`` and not in ``known`` (a claim's news: gossip compares every claim
        with what it knows of the sender, and a reshard changes one slot at a time)."""
        size = len(bitmap)
        news = int.from_bytes(bitmap, "little") & ~int.from_bytes(known, "little")
        diff = news.to_bytes(size, "little")
        return [(i << 3) + bit for i, byte in enumerate(diff) if byte for bit in range(8) if byte >> bit & 1]

    @staticmethod
    def slots_in_bitmap(bitmap: bytes) -> list[int]:
        return [
            (i << 3) + bit for i, byte in enumerate(bitmap) if byte for bit in range(8) if byte & (1 << bit)
        ]

    def ranges_of(self, node_id: str) -> list[tuple[int, int]]:
        """``node_id``'s slots as inclusive ranges. All owners' ranges come from one pass over the slots,
        kept until the slots change (``slots_version``): CLUSTER NODES and every nodes.conf save (a reshard
        saves once per slot moved) render every node's ranges."""
        if self._ranges_cache[0] != self.slots_version:
            ranges: dict[str | None, list[tuple[int, int]]] = {}
            for start, end, owner in self.slot_ranges():
                ranges.setdefault(owner, []).append((start, end))
            self._ranges_cache = (self.slots_version, ranges)
        return list(self._ranges_cache[1].get(node_id, ()))

    # -- nodes -------------------------------------------------------------------------------------------

    def add(self, node: ClusterNode) -> None:
        self.nodes[node.id] = node
        self._adopt_replicas(node)

    def _adopt_replicas(self, master: ClusterNode) -> None:
        """Nodes already known as ``master``'s replicas join its set now. A replica's header can name a master
        this node has not met yet (gossip brings nodes in any order), and its master_id is kept as a name:
        Redis's clusterNodeAddSlave happens on the next header that finds the master, and so it does here,
        when the master arrives. Without this, that master never counts the replica (nor becomes a migration
        target), since later headers name the same master and change nothing."""
        for other in self.nodes.values():
            if other.master_id == master.id and other is not master:
                self.add_replica(master, other.id)

    def remove(self, node_id: str) -> None:
        node = self.nodes.pop(node_id, None)
        if node is None:
            return
        for slot, owner in enumerate(self.owners):
            if owner == node_id:
                self.owners[slot] = None
                self.unassigned += 1
        self._bits.pop(node_id, None)
        if node.slot_count:
            self.slots_version += 1
        for other in self.nodes.values():
            other.fail_reports.pop(node_id, None)
            other.failed_by.discard(node_id)
            if node_id in other.replicas:
                self._drop_replica(other, node_id)

    def rename(self, old_id: str, new_id: str) -> None:
        node = self.nodes.pop(old_id)
        node.id = new_id
        self.nodes[new_id] = node
        bits = self._bits.pop(old_id, None)
        if bits is not None:
            self._bits[new_id] = bits
        self._adopt_replicas(node)
        if node.slot_count:
            for slot, owner in enumerate(self.owners):
                if owner == old_id:
                    self.owners[slot] = new_id
            self.slots_version += 1

    def set_master_of(self, node: ClusterNode, master_id: str | None) -> None:
        """Make ``node`` a replica of ``master_id``, or a master (None), keeping the masters' replica sets and
        their migrate_to flags as Redis's clusterNodeAddSlave / clusterNodeRemoveSlave / clusterSetNodeAsMaster
        keep CLUSTER_NODE_MIGRATE_TO."""
        was_replica = node.master_id is not None
        if node.master_id and node.master_id in self.nodes:
            self._drop_replica(self.nodes[node.master_id], node.id)
        node.master_id = master_id
        if master_id is not None:
            if node.is_master:
                node.migrate_to = False  # a master turned replica is no target any more
            node.flags.discard("master")
            node.flags.add("slave")
            if master_id in self.nodes:
                self.add_replica(self.nodes[master_id], node.id)
        else:
            node.flags.discard("slave")
            node.flags.add("master")
            if was_replica and node is not self.myself:
                node.migrate_to = True  # it took over a master that had a replica (itself, at least)

    def add_replica(self, master: ClusterNode, replica_id: str) -> None:
        master.replicas.add(replica_id)
        master.migrate_to = True

    @staticmethod
    def _drop_replica(master: ClusterNode, replica_id: str) -> None:
        master.replicas.discard(replica_id)
        if not master.replicas:
            # Redis: a master whose last replica left is no target (until it gets one again).
            master.migrate_to = False

    def by_address(self, ip: str, port: int) -> ClusterNode | None:
        for node in self.nodes.values():
            if node.ip == ip and node.port == port:
                return node
        return None

    def masters_with_slots(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.is_master and n.slot_count]

    def failure_quorum(self) -> int:
        return self.size // 2 + 1

    def effective_epoch(self, node: ClusterNode) -> int:
        """The epoch NODES shows: a replica shows its master's configEpoch."""
        if node.master_id and node.master_id in self.nodes:
            return self.nodes[node.master_id].config_epoch
        return node.config_epoch

    def random_nodes(self, count: int, rng: random.Random) -> list[ClusterNode]:
        others = [n for n in self.nodes.values() if n is not self.myself and "handshake" not in n.flags]
        return rng.sample(others, min(count, len(others)))

    # -- renderings ----------------------------------------------------------------------------------------

    def node_line(self, node: ClusterNode, with_open_slots: bool = True) -> str:
        parts = [
            node.id,
            f"{node.ip}:{node.port}@{node.cport}" + (f",{node.hostname}" if node.hostname else ""),
            node.flag_text(),
            node.master_id or "-",
            str(node.ping_sent_ms),
            str(node.pong_recv_ms),
            str(self.effective_epoch(node)),
            node.link.value if node is not self.myself else "connected",
        ]
        for start, end in self.ranges_of(node.id):
            parts.append(str(start) if start == end else f"{start}-{end}")
        if node is self.myself and with_open_slots:
            for slot, dest in sorted(self.migrating.items()):
                parts.append(f"[{slot}->-{dest}]")
            for slot, src in sorted(self.importing.items()):
                parts.append(f"[{slot}-<-{src}]")
        return " ".join(parts)

    def nodes_text(self) -> str:
        # myself first, as Redis's dict order is arbitrary anyway and tools look for the "myself" flag.
        ordered = [self.myself] + [n for n in self.nodes.values() if n is not self.myself]
        return "".join(self.node_line(n) + "\n" for n in ordered)

    def slot_ranges(self) -> list[tuple[int, int, str]]:
        """Contiguous ranges of one owner, in slot order (groupby walks the 16384 owners in C: this runs
        for every nodes.conf save of a reshard, once per slot moved)."""
        out: list[tuple[int, int, str]] = []
        start = 0
        for owner, run in itertools.groupby(self.owners):
            length = len(list(run))
            if owner is not None:
                out.append((start, start + length - 1, owner))
            start += length
        return out

    def endpoint(self, node: ClusterNode) -> str:
        """The address clients are told to reach ``node`` at (Redis's getPreferredEndpoint): its ip, its
        hostname ("?" while it announces none) or, for unknown-endpoint, nothing (the client's own)."""
        if self.endpoint_type == "ip":
            return node.ip
        if self.endpoint_type == "hostname":
            return node.hostname or "?"
        return ""

    def _node_entry(self, node: ClusterNode) -> list[Any]:
        """One node of a CLUSTER SLOTS range: endpoint, port, id, then the addresses the endpoint is not."""
        endpoint: bytes | None = self.endpoint(node).encode()
        if self.endpoint_type == "unknown-endpoint":
            endpoint = None
        extra: dict[bytes, bytes] = {}
        if self.endpoint_type != "ip":
            extra[b"ip"] = node.ip.encode()
        if self.endpoint_type != "hostname" and node.hostname:
            extra[b"hostname"] = node.hostname.encode()
        return [endpoint, node.port, node.id.encode(), extra]

    def available_replicas(self, master: ClusterNode) -> list[ClusterNode]:
        found = [self.nodes[r] for r in sorted(master.replicas) if r in self.nodes]
        return [r for r in found if not r.failed and r.repl_offset != 0]

    def slots_reply(self) -> list[Any]:
        reply: list[Any] = []
        for start, end, owner in self.slot_ranges():
            master = self.nodes[owner]
            entry: list[Any] = [start, end, self._node_entry(master)]
            entry += [self._node_entry(r) for r in self.available_replicas(master)]
            reply.append(entry)
        return reply

    def _shard_node(self, node: ClusterNode) -> dict[bytes, Any]:
        # Redis's rule: a replica whose offset is 0 (a full sync going on, or none yet) is loading.
        health = (
            "fail" if node.failed else "loading" if node.master_id and node.repl_offset == 0 else "online"
        )
        return {
            b"id": node.id.encode(),
            b"port": node.port,
            b"ip": node.ip.encode(),
            b"endpoint": self.endpoint(node).encode(),
            **({b"hostname": node.hostname.encode()} if node.hostname else {}),
            b"role": b"master" if node.is_master else b"replica",
            b"replication-offset": node.repl_offset,
            b"health": health.encode(),
        }

    def shards_reply(self) -> list[Any]:
        reply: list[Any] = []
        for master in self.nodes.values():
            if not master.is_master:
                continue
            slots: list[int] = []
            for start, end in self.ranges_of(master.id):
                slots += [start, end]
            members = [master] + [self.nodes[r] for r in sorted(master.replicas) if r in self.nodes]
            reply.append({b"slots": slots, b"nodes": [self._shard_node(n) for n in members]})
        return reply

    def info_text(self) -> str:
        assigned = SLOTS - self.unassigned
        pfail = fail = 0
        for owner in self.owners:
            if owner is None:
                continue
            node = self.nodes[owner]
            if node.failed:
                fail += 1
            elif node.pfailed:
                pfail += 1
        lines = [
            f"cluster_state:{self.health.value}",
            f"cluster_slots_assigned:{assigned}",
            f"cluster_slots_ok:{assigned - pfail - fail}",
            f"cluster_slots_pfail:{pfail}",
            f"cluster_slots_fail:{fail}",
            f"cluster_known_nodes:{len(self.nodes)}",
            f"cluster_size:{self.size}",
            f"cluster_current_epoch:{self.current_epoch}",
            f"cluster_my_epoch:{self.effective_epoch(self.myself)}",
        ]
        for title, counters in (("sent", self.sent), ("received", self.received)):
            for kind in MESSAGE_TYPES:
                if counters.get(kind):
                    lines.append(f"cluster_stats_messages_{kind}_{title}:{counters[kind]}")
            lines.append(f"cluster_stats_messages_{title}:{sum(counters.values())}")
        lines.append("total_cluster_links_buffer_limit_exceeded:0")
        return "".join(line + "\r\n" for line in lines)
