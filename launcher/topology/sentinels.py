"""The launcher and the sentinels of a topology: who decides which node is the master.

Without sentinels the topology file decides. With sentinels, they do: a data node that died is restarted only
after the sentinels had time to fail it over (their down-after-milliseconds plus ``FAILOVER_MARGIN_S``), and
it is restarted as a replica of the master the sentinels name (when that is another node), not with the
file's role. A dead master restarted at once, as an empty master, would otherwise make its replicas sync the
empty dataset before any sentinel noticed: Redis's documentation warns against exactly that. For the same
reason, a dead master the sentinels still name after that delay (their election failed and will be retried)
stays down while another data node is up for them to promote, up to ``failover_retry_window_s``.
"""

from __future__ import annotations

from launcher.topology.probe import sentinel_master
from launcher.topology.spec import NodeSpec, Topology

# Time the sentinels get, beyond their down-after-milliseconds, to elect a leader and promote a replica.
FAILOVER_MARGIN_S = 2.0
# Redis's default down-after-milliseconds and failover-timeout, for sentinels whose entry does not set them.
DEFAULT_DOWN_AFTER_MS = 30_000
DEFAULT_FAILOVER_TIMEOUT_MS = 180_000


def _sentinels(topology: Topology) -> list[NodeSpec]:
    return [n for n in topology.nodes if n.is_sentinel]


def _largest_setting_ms(topology: Topology, directive: str, default_ms: int) -> int | None:
    """The largest ``directive`` among the sentinels that monitor a master (Redis's default where one does not
    set it); None when no sentinel monitors one."""
    sentinels = [s for s in _sentinels(topology) if s.sentinel_of is not None]
    if not sentinels:
        return None
    return max(int(s.config.get(directive, [str(default_ms)])[0]) for s in sentinels)


def sentinel_restart_delay_s(topology: Topology, node: NodeSpec) -> float:
    """How long a dead data node waits before its restart (0 without sentinels or for a sentinel)."""
    down_after_ms = _largest_setting_ms(topology, "down-after-milliseconds", DEFAULT_DOWN_AFTER_MS)
    if node.is_sentinel or down_after_ms is None:
        return 0.0
    return down_after_ms / 1000 + FAILOVER_MARGIN_S


def failover_retry_window_s(topology: Topology) -> float:
    """How long after a node's restart delay its sentinels may still be failing it over.

    An election can fail (a split vote: each sentinel voted for itself); Redis's sentinels try again only
    2 x failover-timeout after the attempt began. A dead master the sentinels still name is kept down that
    long, so that a retried election, not an empty restart, decides (see ``sentinels_name_it_master``)."""
    failover_timeout_ms = _largest_setting_ms(topology, "failover-timeout", DEFAULT_FAILOVER_TIMEOUT_MS)
    if failover_timeout_ms is None:
        return 0.0
    return 2 * failover_timeout_ms / 1000 + FAILOVER_MARGIN_S


def _named_master(topology: Topology) -> tuple[str, int] | None:
    """The master's address as the first answering sentinel names it; None when no sentinel answers."""
    for sentinel in _sentinels(topology):
        address = sentinel_master(sentinel.port, sentinel.master_name)
        if address is not None:
            return address
    return None


def _is_node(address: tuple[str, int], node: NodeSpec) -> bool:
    host, port = address
    return port == node.port and host in ("127.0.0.1", "localhost")


def sentinels_name_it_master(topology: Topology, node: NodeSpec) -> bool:
    """True when the first answering sentinel names ``node`` itself as its master's address (no failover yet)."""
    address = _named_master(topology)
    return address is not None and _is_node(address, node)


def follow_sentinels(topology: Topology, node: NodeSpec, argv: list[str]) -> list[str]:
    """``argv`` with ``--replicaof`` set to the master the first answering sentinel names, when that master is
    another node; unchanged when no sentinel answers or when they name this node."""
    if node.is_sentinel:
        return argv
    address = _named_master(topology)
    if address is None:
        return argv
    if _is_node(address, node):
        return _without_replicaof(argv)
    host, port = address
    return [*_without_replicaof(argv), "--replicaof", host, str(port)]


def _without_replicaof(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        if arg in ("--replicaof", "--slaveof"):
            skip = 2
            continue
        out.append(arg)
    return out
