"""``redactor up`` of a ``[cluster]`` topology: the launcher joins its nodes into one cluster itself.

What ``redis-cli --cluster create`` does, over the launcher's own RESP requests, and idempotent: every step
first reads what the nodes already know (CLUSTER NODES), so a second join of a joined cluster, or the join
after a restart from nodes.conf, sends nothing but reads.

1. ``CLUSTER SET-CONFIG-EPOCH 1..N`` when every node is fresh (knows only itself), as redis-cli does, so the
   masters start with distinct configEpochs instead of resolving collisions by gossip;
2. ``CLUSTER MEET`` from every node the first node does not know (or that does not know it) to the first;
   waits until every node knows every other one, past the handshake;
3. ``CLUSTER ADDSLOTSRANGE`` for the slots no node serves: the masters (nodes without ``replicaof``, in file
   order) share the 16384 slots in even ranges, split as redis-cli splits them (0-5460, 5461-10922,
   10923-16383 for three);
4. ``CLUSTER REPLICATE <master id>`` for a replica still a slot-less master (a node already a replica, or
   a master holding slots after a failover, keeps its role: the cluster decided it);
5. waits for ``cluster_state:ok`` on every node and every replica's link to its master up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from launcher.topology.probe import MAX_INFO_REPLY_BYTES, parse_info
from launcher.topology.spec import NodeSpec, Topology
from protocol.resp_client import BlockingRespClient, ReplyError

log = structlog.get_logger("redactor.launcher")

SLOT_COUNT = 16384
# The whole join (meet, slots, replicas, cluster_state:ok) on a loaded machine.
JOIN_TIMEOUT_S = 90.0
# How often the join re-reads the nodes while it waits for gossip.
POLL_INTERVAL_S = 0.2
# Each request of the join: longer than status's, so a loaded machine slows the join instead of failing it.
JOIN_REQUEST_TIMEOUT_S = 5.0


class JoinError(Exception):
    """The cluster could not be joined (message says which step and node)."""


@dataclass
class NodeLine:
    """One line of CLUSTER NODES (SENTINEL-CLUSTER.md §2.2)."""

    id: str
    address: str  # ip:port@cport
    flags: list[str]
    master_id: str | None
    ping_sent_ms: int
    pong_recv_ms: int
    config_epoch: int
    link: str  # connected | disconnected
    slots: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges
    open_slots: list[str] = field(default_factory=list)  # [s->-id] / [s-<-id] (myself line only)

    @property
    def port(self) -> int:
        return int(self.address.split("@")[0].rsplit(":", 1)[1])

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    def slot_count(self) -> int:
        return sum(last - first + 1 for first, last in self.slots)


def parse_nodes(text: bytes | str) -> list[NodeLine]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines: list[NodeLine] = []
    for raw in text.splitlines():
        words = raw.split(" ")
        if len(words) < 8:
            continue
        line = NodeLine(
            words[0],
            words[1].split(",")[0],
            words[2].split(","),
            None if words[3] == "-" else words[3],
            int(words[4]),
            int(words[5]),
            int(words[6]),
            words[7],
        )
        for item in words[8:]:
            if item.startswith("["):
                line.open_slots.append(item)
            elif item:
                first, _, last = item.partition("-")
                line.slots.append((int(first), int(last or first)))
        lines.append(line)
    return lines


def myself(lines: Sequence[NodeLine]) -> NodeLine | None:
    return next((line for line in lines if "myself" in line.flags), None)


def format_ranges(ranges: Sequence[tuple[int, int]]) -> str:
    return " ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) or "-"


def even_ranges(masters: int) -> list[tuple[int, int]]:
    """redis-cli's split of the slots over ``masters`` masters (clusterManagerCommandCreate)."""
    per_node = SLOT_COUNT / masters
    ranges: list[tuple[int, int]] = []
    first, cursor = 0, 0.0
    for i in range(masters):
        last = int(cursor + per_node - 1 + 0.5)  # lround
        if last > SLOT_COUNT or i == masters - 1:
            last = SLOT_COUNT - 1
        last = max(last, first)
        ranges.append((first, last))
        first, cursor = last + 1, cursor + per_node
    return ranges


def _ranges_of(slots: Sequence[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for slot in sorted(slots):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges


def call(node: NodeSpec, *args: str | int, timeout_s: float = JOIN_REQUEST_TIMEOUT_S) -> Any:
    options: dict[str, Any] = {"timeout_s": timeout_s, "max_reply_bytes": MAX_INFO_REPLY_BYTES}
    with BlockingRespClient.connect("127.0.0.1", node.port, password=node.password or None, **options) as c:
        return c.call(*args)


def cluster_nodes(node: NodeSpec) -> list[NodeLine]:
    return parse_nodes(call(node, "CLUSTER", "NODES"))


class Joiner:
    """One join of a topology's nodes (all of them answering PING)."""

    def __init__(self, topology: Topology, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.topology = topology
        self.nodes = [n for n in topology.nodes if not n.is_sentinel]
        self.masters = [n for n in self.nodes if n.replicaof is None]
        self.should_stop = should_stop
        self.deadline = time.monotonic() + JOIN_TIMEOUT_S
        self.ids: dict[str, str] = {}
        self.actions: list[str] = []  # what this join changed, for the launcher's summary

    def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        while not predicate():
            if self.should_stop():
                raise JoinError("stop requested")
            if time.monotonic() > self.deadline:
                raise JoinError(f"timed out after {JOIN_TIMEOUT_S:g}s waiting for {what}")
            time.sleep(POLL_INTERVAL_S)

    def _views(self) -> dict[str, list[NodeLine]]:
        return {n.name: cluster_nodes(n) for n in self.nodes}

    def run(self) -> list[str]:
        """Join; returns the actions taken (empty when the cluster was already joined). Raises JoinError."""
        try:
            self._run()
        except (OSError, ConnectionError) as exc:
            raise JoinError(f"a node stopped answering: {exc}") from None
        return self.actions

    def _run(self) -> None:
        views = self._views()
        for node in self.nodes:
            me = myself(views[node.name])
            if me is None:
                raise JoinError(f"node {node.name}: CLUSTER NODES has no myself line")
            self.ids[node.name] = me.id
        self._set_epochs(views)
        self._meet(views)
        self._assign_slots()
        self._replicate()
        self._wait(self._healthy, "cluster_state:ok on every node and every replica's link up")

    def _set_epochs(self, views: dict[str, list[NodeLine]]) -> None:
        if not all(len(views[n.name]) == 1 and views[n.name][0].config_epoch == 0 for n in self.nodes):
            return
        for epoch, node in enumerate(self.nodes, 1):
            try:
                call(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
            except ReplyError as exc:  # redis-cli ignores this reply too
                log.warning("cluster_set_config_epoch_refused", node=node.name, reason=str(exc))
        self.actions.append(f"configEpochs 1-{len(self.nodes)}")

    def _meet(self, views: dict[str, list[NodeLine]]) -> None:
        first = self.nodes[0]
        known_by_first = {line.id for line in views[first.name]}
        met = []
        for node in self.nodes[1:]:
            knows_first = any(line.id == self.ids[first.name] for line in views[node.name])
            if self.ids[node.name] not in known_by_first or not knows_first:
                bus = [] if first.bus_port == first.port + 10000 else [first.bus_port]
                call(node, "CLUSTER", "MEET", "127.0.0.1", first.port, *bus)
                met.append(node.name)
        if met:
            self.actions.append(f"CLUSTER MEET {first.name} from {', '.join(met)}")
        everyone = set(self.ids.values())

        def full_mesh() -> bool:
            for lines in self._views().values():
                settled = {line.id for line in lines if "handshake" not in line.flags}
                if not everyone <= settled:
                    return False
            return True

        self._wait(full_mesh, "every node to know every other node")

    def _assign_slots(self) -> None:
        served: set[int] = set()
        views = self._views()
        for lines in views.values():
            for line in lines:
                if line.is_master:
                    for first, last in line.slots:
                        served.update(range(first, last + 1))
        for master, (first, last) in zip(self.masters, even_ranges(len(self.masters)), strict=True):
            missing = _ranges_of([s for s in range(first, last + 1) if s not in served])
            if not missing:
                continue
            me = myself(views[master.name])
            if me is None or not me.is_master:
                log.warning("cluster_slots_unassigned", node=master.name, slots=format_ranges(missing))
                continue
            args: list[str | int] = ["CLUSTER", "ADDSLOTSRANGE"]
            for a, b in missing:
                args += [a, b]
            call(master, *args)
            self.actions.append(f"slots {format_ranges(missing)} to {master.name}")

    def _replicate(self) -> None:
        for node in self.nodes:
            if node.replicaof is None:
                continue
            master = self.topology.node(node.replicaof)
            master_id = self.ids[master.name]

            def replicated(
                node: NodeSpec = node, master: NodeSpec = master, master_id: str = master_id
            ) -> bool:
                me = myself(cluster_nodes(node))
                if me is None or not me.is_master or me.slots:
                    return True  # a replica already, or a master by failover: the cluster's decision
                try:
                    call(node, "CLUSTER", "REPLICATE", master_id)
                except ReplyError as exc:
                    if "Unknown node" in str(exc):
                        return False  # gossip has not told it about the master yet: retry
                    raise JoinError(f"node {node.name}: CLUSTER REPLICATE {master_id}: {exc}") from None
                self.actions.append(f"{node.name} replicates {master.name}")
                return True

            self._wait(replicated, f"{node.name} to replicate {master.name}")

    def _healthy(self) -> bool:
        for node in self.nodes:
            try:
                info = parse_info(call(node, "CLUSTER", "INFO"))
                replication = parse_info(call(node, "INFO", "replication"))
            except (OSError, ConnectionError, ReplyError):
                return False
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes") or 0) < len(
                self.nodes
            ):
                return False
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
        return True


def join_cluster(topology: Topology, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Join the topology's nodes (see the module docstring). Returns the actions taken; raises JoinError."""
    return Joiner(topology, should_stop).run()
