"""The topology file: a TOML description of the nodes ``redactor up`` runs, and each node's command line.

A topology is a TOML file::

    [topology]
    name = "seed"
    run_dir = "../../var/seed"   # relative to this file's directory (absolute paths allowed)

    [[node]]
    name = "n1"
    port = 7001
    config = { appendonly = "yes" }   # any redis.conf directive; lists give several arguments

    [[node]]
    name = "n2"
    port = 7002
    replicaof = "n1"                  # becomes --replicaof 127.0.0.1 <n1's port>

    [[sentinel]]                      # a sentinel (actors/sentinel/): its sentinel.conf is written once
    name = "s1"                       # into <run_dir>/s1/, then kept (it holds the sentinel's state)
    port = 26379
    monitor = "n1"                    # the node it monitors first, as master `master_name` ("mymaster")
    quorum = 2
    config = { down-after-milliseconds = 1000, failover-timeout = 10000 }   # `sentinel <option> <name> <v>`

A ``[cluster]`` table makes the topology a Redis Cluster (clusterjoin.py joins it after start-up)::

    [cluster]
    config = { cluster-node-timeout = 2000 }   # directives every node gets, after cluster-enabled yes

    [[node]]
    name = "m1"                       # a node without replicaof is a master: the masters share the 16384
    port = 30001                      # slots in even ranges, in file order
    [[node]]
    name = "r1"
    port = 30004
    replicaof = "m1"                  # in a cluster: CLUSTER REPLICATE <m1's id> (never --replicaof)

``run_dir`` is resolved against the topology file's directory, not the working directory, so ``status``,
``down`` and ``logs`` find the same files from anywhere. Under it::

    state.json         the launcher's pid and each node's port, pid, restarts (atomically replaced)
    <node>/            the node's ``dir`` (data files)
    <node>/node.log    the node's log (``logfile``), its stdout and stderr too

The port offset (for tests and for several copies of one topology) is added to every node port, and to
explicit ``bus-port`` directives.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.ports import bus_port_for

DEFAULT_TOPOLOGY = "ops/topologies/seed.toml"
STATE_FILE = "state.json"
LOG_FILE = "node.log"
# Directives the launcher sets itself from the topology.
RESERVED_DIRECTIVES = {"port", "dir", "logfile", "replicaof", "slaveof", "daemonize"}


class TopologyError(Exception):
    """A topology file that cannot be used (message says which file and what)."""


SENTINEL_CONF = "sentinel.conf"
DEFAULT_MASTER_NAME = "mymaster"


@dataclass
class NodeSpec:
    name: str
    port: int
    replicaof: str | None = None
    # Directive name -> arguments (already strings); for a sentinel, its per-master options.
    config: dict[str, list[str]] = field(default_factory=dict)
    # Sentinels only: the node monitored first, under which master name, with which quorum.
    sentinel_of: str | None = None
    master_name: str = DEFAULT_MASTER_NAME
    quorum: int = 2

    @property
    def is_sentinel(self) -> bool:
        return self.sentinel_of is not None

    @property
    def bus_port(self) -> int:
        if self.is_sentinel:
            return self.port  # a sentinel has no bus: its one port
        for bus_directive in ("bus-port", "cluster-port"):  # (launcher/node.py's order: bus-port wins)
            explicit = self.config.get(bus_directive)
            if explicit and explicit[0] not in ("", "0"):
                return bus_port_for(self.port, int(explicit[0]))
        return bus_port_for(self.port)

    @property
    def password(self) -> str:
        value = self.config.get("requirepass")
        return value[0] if value else ""


@dataclass
class Topology:
    name: str
    path: Path
    run_dir: Path
    nodes: list[NodeSpec]
    port_offset: int = 0
    # A [cluster] table: every node runs with cluster-enabled yes and the launcher joins them (clusterjoin.py).
    cluster: bool = False

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TopologyError(
            f"{self.path}: no node named '{name}' (nodes: {', '.join(n.name for n in self.nodes)})"
        )

    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    def node_dir(self, name: str) -> Path:
        return self.run_dir / name

    def log_path(self, name: str) -> Path:
        return self.run_dir / name / LOG_FILE


def _directive_args(path: Path, node: str, key: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, int | float | str):
        return [str(value)]
    if isinstance(value, list) and all(
        isinstance(v, int | float | str) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value] or [""]
    raise TopologyError(
        f"{path}: node '{node}': config '{key}' must be a string, number, boolean or list of those"
    )


def load_topology(path: str | Path, port_offset: int = 0) -> Topology:
    """Read and check a topology file. Raises ``TopologyError`` naming the file and the problem."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise TopologyError(f"can't open topology file '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: {exc}") from None
    header = data.get("topology", {})
    if not isinstance(header, dict):
        raise TopologyError(f"{path}: [topology] must be a table")
    name = str(header.get("name") or path.stem)
    run_dir = Path(str(header.get("run_dir") or f"var/{name}")).expanduser()
    if not run_dir.is_absolute():
        run_dir = (path.parent / run_dir).resolve()
    raw_nodes = data.get("node")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise TopologyError(f"{path}: no [[node]] entries")
    nodes: list[NodeSpec] = []
    for index, raw in enumerate(raw_nodes, 1):
        if not isinstance(raw, dict):
            raise TopologyError(f"{path}: node #{index} must be a table")
        node_name = raw.get("name")
        if (
            not isinstance(node_name, str)
            or not node_name
            or not node_name.replace("-", "").replace("_", "").isalnum()
        ):
            raise TopologyError(f"{path}: node #{index} needs a name of letters, digits, '-' or '_'")
        port = raw.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port + port_offset < 65536:
            raise TopologyError(f"{path}: node '{node_name}' needs a port (1-65535 after the port offset)")
        unknown = set(raw) - {"name", "port", "replicaof", "config"}
        if unknown:
            raise TopologyError(f"{path}: node '{node_name}': unknown keys {sorted(unknown)}")
        config_table = raw.get("config", {})
        if not isinstance(config_table, dict):
            raise TopologyError(f"{path}: node '{node_name}': config must be a table")
        config: dict[str, list[str]] = {}
        for key, value in config_table.items():
            directive = key.lower()
            if directive in RESERVED_DIRECTIVES:
                raise TopologyError(
                    f"{path}: node '{node_name}': '{key}' is set by the launcher (use the node's "
                    "port / replicaof keys)"
                )
            config[directive] = _directive_args(path, node_name, key, value)
        for bus_directive in ("bus-port", "cluster-port"):
            if bus_directive in config and config[bus_directive][0] not in ("", "0"):
                config[bus_directive] = [str(int(config[bus_directive][0]) + port_offset)]
        replicaof = raw.get("replicaof")
        if replicaof is not None and not isinstance(replicaof, str):
            raise TopologyError(f"{path}: node '{node_name}': replicaof must name another node")
        nodes.append(NodeSpec(node_name, port + port_offset, replicaof, config))
    nodes += _load_sentinels(path, data.get("sentinel", []), port_offset)
    cluster = _apply_cluster_table(path, data.get("cluster"), nodes)
    names = [n.name for n in nodes]
    for node in nodes:
        if node.sentinel_of is not None and node.sentinel_of not in names:
            raise TopologyError(f"{path}: sentinel '{node.name}': monitor '{node.sentinel_of}' is not a node")
        if names.count(node.name) > 1:
            raise TopologyError(f"{path}: node name '{node.name}' is used twice")
        if node.replicaof is not None and (node.replicaof not in names or node.replicaof == node.name):
            raise TopologyError(
                f"{path}: node '{node.name}': replicaof '{node.replicaof}' is not another node"
            )
    ports = [p for n in nodes for p in ((n.port,) if n.is_sentinel else (n.port, n.bus_port))]
    if len(set(ports)) != len(ports):
        raise TopologyError(
            f"{path}: two nodes share a port (each node also uses its bus port, port + 10000)"
        )
    return Topology(name, path, run_dir, nodes, port_offset, cluster)


def _apply_cluster_table(path: Path, raw: Any, nodes: list[NodeSpec]) -> bool:
    """A ``[cluster]`` table: every node gets ``cluster-enabled yes`` and the table's directives (a node's own
    ``config`` wins). Returns whether the topology is a cluster."""
    if raw is None:
        return False
    if not isinstance(raw, dict) or set(raw) - {"config"}:
        raise TopologyError(f"{path}: [cluster] must be a table with only a 'config' table")
    config_table = raw.get("config", {})
    if not isinstance(config_table, dict):
        raise TopologyError(f"{path}: [cluster] config must be a table")
    if any(n.is_sentinel for n in nodes):
        raise TopologyError(f"{path}: a [cluster] topology has no sentinels (the cluster fails over itself)")
    if not any(n.replicaof is None for n in nodes):
        raise TopologyError(
            f"{path}: a [cluster] topology needs at least one master (a node without replicaof)"
        )
    shared = {k.lower(): _directive_args(path, "[cluster]", k, v) for k, v in config_table.items()}
    shared["cluster-enabled"] = ["yes"]
    for node in nodes:
        node.config = {**shared, **node.config}
        if node.config["cluster-enabled"] != ["yes"]:
            raise TopologyError(f"{path}: node '{node.name}': a [cluster] topology needs cluster-enabled yes")
    return True


def _load_sentinels(path: Path, raw_sentinels: Any, port_offset: int) -> list[NodeSpec]:
    if not isinstance(raw_sentinels, list):
        raise TopologyError(f"{path}: [[sentinel]] entries must be tables")
    sentinels: list[NodeSpec] = []
    for index, raw in enumerate(raw_sentinels, 1):
        if not isinstance(raw, dict):
            raise TopologyError(f"{path}: sentinel #{index} must be a table")
        name = raw.get("name")
        if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise TopologyError(f"{path}: sentinel #{index} needs a name of letters, digits, '-' or '_'")
        unknown = set(raw) - {"name", "port", "monitor", "quorum", "master_name", "config"}
        if unknown:
            raise TopologyError(f"{path}: sentinel '{name}': unknown keys {sorted(unknown)}")
        port = raw.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port + port_offset < 65536:
            raise TopologyError(f"{path}: sentinel '{name}' needs a port (1-65535 after the port offset)")
        monitor = raw.get("monitor")
        quorum = raw.get("quorum", 2)
        if not isinstance(monitor, str) or not isinstance(quorum, int) or quorum < 1:
            raise TopologyError(f"{path}: sentinel '{name}' needs monitor = \"<node>\" and a quorum >= 1")
        config_table = raw.get("config", {})
        if not isinstance(config_table, dict):
            raise TopologyError(f"{path}: sentinel '{name}': config must be a table")
        config = {k.lower(): _directive_args(path, name, k, v) for k, v in config_table.items()}
        master_name = str(raw.get("master_name") or DEFAULT_MASTER_NAME)
        sentinels.append(NodeSpec(name, port + port_offset, None, config, monitor, master_name, quorum))
    return sentinels


def sentinel_conf_text(topology: Topology, sentinel: NodeSpec) -> str:
    """A sentinel's first sentinel.conf (written once: afterwards the sentinel owns the file)."""
    assert sentinel.sentinel_of is not None
    master = topology.node(sentinel.sentinel_of)
    lines = [
        f"port {sentinel.port}",
        f"sentinel monitor {sentinel.master_name} 127.0.0.1 {master.port} {sentinel.quorum}",
    ]
    for option, args in sentinel.config.items():
        lines.append(" ".join(["sentinel", option, sentinel.master_name, *args]))
    return "\n".join(lines) + "\n"


def node_argv(topology: Topology, node: NodeSpec) -> list[str]:
    """The command line of one node process (for a sentinel: its sentinel.conf is written if missing)."""
    if node.is_sentinel:
        conf = topology.node_dir(node.name) / SENTINEL_CONF
        if not conf.exists():
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(sentinel_conf_text(topology, node))
        return [
            sys.executable, "-m", "launcher.main", "sentinel", str(conf),
            "--logfile", str(topology.log_path(node.name)),
        ]  # fmt: skip
    argv = [
        sys.executable,
        "-m",
        "launcher.main",
        "server",
        "--port",
        str(node.port),
        "--dir",
        str(topology.node_dir(node.name)),
        "--logfile",
        str(topology.log_path(node.name)),
    ]
    if node.replicaof is not None and not topology.cluster:  # a cluster replica: CLUSTER REPLICATE
        master = topology.node(node.replicaof)
        argv += ["--replicaof", "127.0.0.1", str(master.port)]
    for directive, args in node.config.items():
        argv += [f"--{directive}", *args]
    return argv
