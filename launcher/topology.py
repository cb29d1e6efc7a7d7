"""Whole topologies: ``redactor up | down | status | logs``.

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

``run_dir`` is resolved against the topology file's directory, not the working directory, so ``status``,
``down`` and ``logs`` find the same files from anywhere. Under it::

    state.json         the launcher's pid and each node's port, pid, restarts (atomically replaced)
    <node>/            the node's ``dir`` (data files)
    <node>/node.log    the node's log (``logfile``), its stdout and stderr too

Commands::

    redactor up TOPOLOGY [--port-offset N]    start every node, wait until each answers PING, then supervise
                                              them in the foreground until SIGINT/SIGTERM
    redactor status [TOPOLOGY] [--json]       a table: name, port, pid, state, role, master, offset, lag, keys,
                                              uptime, restarts (role/offset/lag from INFO replication; "-" when
                                              unknown; lag is how many bytes a replica is behind its master)
    redactor down [TOPOLOGY]                  SIGTERM the launcher, which stops the nodes (SHUTDOWN SAVE each,
                                              replicas first) and exits; without a launcher, stop the nodes here
    redactor logs NODE [TOPOLOGY] [-n N] [--no-follow]   tail -f the node's log

TOPOLOGY defaults to ``$REDACTOR_TOPOLOGY``, else ``ops/topologies/seed.toml``. The port offset (for tests and
for several copies of one topology) is added to every node port, and to explicit ``bus-port`` directives;
it also comes from ``$REDACTOR_PORT_OFFSET``. ``status``, ``down`` and ``logs`` read the ports from the state
file, so they need no offset.

Supervision: each node is its own process (``python -m launcher.main server ...``; subprocess, never fork) in
the launcher's process group, so one ``killpg`` removes a whole topology. A node that exits without being
asked to (any exit status: the topology file is the desired state) is restarted after a backoff that doubles
from ``RESTART_BACKOFF_INITIAL_S`` up to ``RESTART_BACKOFF_MAX_S`` and resets once the node stayed up for
``STABLE_UPTIME_S``. A node that cannot start while ``up`` brings the topology up fails the whole ``up``.
Ctrl-C on a terminal reaches the nodes as well (same process group); they stop themselves and the launcher
waits for them. A second SIGINT/SIGTERM while stopping kills what is left.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import hiredis
import structlog

from actors.files import write_bytes_atomically
from protocol.resp import encode_command

log = structlog.get_logger("redactor.launcher")

DEFAULT_TOPOLOGY = "ops/topologies/seed.toml"
STATE_FILE = "state.json"
LOG_FILE = "node.log"
# First restart delay after a node dies; doubles with each death in a row up to the maximum.
RESTART_BACKOFF_INITIAL_S = 0.5
RESTART_BACKOFF_MAX_S = 30.0
# A node up this long is healthy again: its next death restarts after the initial backoff.
STABLE_UPTIME_S = 10.0
# How often the launcher checks its nodes (process exits, readiness).
SUPERVISE_INTERVAL_S = 0.1
# How long `up` waits for every node to answer PING.
READY_TIMEOUT_S = 30.0
# After SHUTDOWN SAVE a node may be writing a large snapshot; then SIGTERM, then SIGKILL.
SHUTDOWN_TIMEOUT_S = 60.0
TERM_TIMEOUT_S = 10.0
# How long `down` waits for the launcher to stop its nodes and exit.
DOWN_TIMEOUT_S = SHUTDOWN_TIMEOUT_S + TERM_TIMEOUT_S + 10.0
# Socket timeout of the launcher's own RESP requests (PING, INFO); SHUTDOWN waits longer (it may save).
REQUEST_TIMEOUT_S = 1.0
# Directives the launcher sets itself from the topology.
RESERVED_DIRECTIVES = {"port", "dir", "logfile", "replicaof", "slaveof", "daemonize"}


class TopologyError(Exception):
    """A topology file that cannot be used (message says which file and what)."""


# -- the topology file -------------------------------------------------------------------------------------


@dataclass
class NodeSpec:
    name: str
    port: int
    replicaof: str | None = None
    # Directive name -> arguments (already strings).
    config: dict[str, list[str]] = field(default_factory=dict)

    @property
    def bus_port(self) -> int:
        explicit = self.config.get("bus-port")
        return int(explicit[0]) if explicit and explicit[0] not in ("", "0") else self.port + 10000

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
        if "bus-port" in config and config["bus-port"][0] not in ("", "0"):
            config["bus-port"] = [str(int(config["bus-port"][0]) + port_offset)]
        replicaof = raw.get("replicaof")
        if replicaof is not None and not isinstance(replicaof, str):
            raise TopologyError(f"{path}: node '{node_name}': replicaof must name another node")
        nodes.append(NodeSpec(node_name, port + port_offset, replicaof, config))
    names = [n.name for n in nodes]
    for node in nodes:
        if names.count(node.name) > 1:
            raise TopologyError(f"{path}: node name '{node.name}' is used twice")
        if node.replicaof is not None and (node.replicaof not in names or node.replicaof == node.name):
            raise TopologyError(
                f"{path}: node '{node.name}': replicaof '{node.replicaof}' is not another node"
            )
    ports = [p for n in nodes for p in (n.port, n.bus_port)]
    if len(set(ports)) != len(ports):
        raise TopologyError(
            f"{path}: two nodes share a port (each node also uses its bus port, port + 10000)"
        )
    return Topology(name, path, run_dir, nodes, port_offset)


def node_argv(topology: Topology, node: NodeSpec) -> list[str]:
    """The command line of one node process."""
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
    if node.replicaof is not None:
        master = topology.node(node.replicaof)
        argv += ["--replicaof", "127.0.0.1", str(master.port)]
    for directive, args in node.config.items():
        argv += [f"--{directive}", *args]
    return argv


# -- small process and RESP helpers ------------------------------------------------------------------------


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            status = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no procfs (not Linux): trust kill(0)
    except (OSError, IndexError):
        return True
    return status not in ("Z", "X")


def pid_matches(pid: int, *markers: str) -> bool:
    """Whether ``pid``'s command line holds every marker: guards against a pid reused by another program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return True  # cannot tell (no procfs): trust the state file
    return all(marker in args for marker in markers)


def resp_call(
    port: int, *commands: list[str], timeout_s: float = REQUEST_TIMEOUT_S, host: str = "127.0.0.1"
) -> Any:
    """Send commands on one connection; return the last reply (an error reply is a ``hiredis.ReplyError``).

    Raises OSError when the node does not answer, ConnectionError when it closes the connection first.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(b"".join(encode_command([a.encode() for a in argv]) for argv in commands))
        reader = hiredis.Reader()
        replies: list[Any] = []
        while len(replies) < len(commands):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the node")
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        return replies[-1]


def _with_auth(password: str, command: list[str]) -> list[list[str]]:
    return [["AUTH", password], command] if password else [command]


def ping(port: int, password: str = "", timeout_s: float = REQUEST_TIMEOUT_S) -> bool:
    try:
        reply = resp_call(port, *_with_auth(password, ["PING"]), timeout_s=timeout_s)
    except OSError:
        return False
    return reply == b"PONG"


def shutdown_node(port: int, password: str = "") -> str | None:
    """SHUTDOWN SAVE. None when the node closed the connection (it is stopping); else why it did not take it
    (refused, or not listening: still starting, or already stopping), and the caller sends SIGTERM instead."""
    try:
        reply = resp_call(port, *_with_auth(password, ["SHUTDOWN", "SAVE"]), timeout_s=SHUTDOWN_TIMEOUT_S)
    except ConnectionRefusedError:
        return "not listening"
    except ConnectionError:
        return None  # closed without a reply: what SHUTDOWN does
    except OSError as exc:
        return f"no answer to SHUTDOWN SAVE: {exc}"
    return f"SHUTDOWN SAVE refused: {reply}"


def parse_info(text: bytes | str) -> dict[str, str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value
    return fields


def node_info(port: int, password: str = "") -> dict[str, str] | None:
    try:
        reply = resp_call(port, *_with_auth(password, ["INFO", "server", "replication", "keyspace"]))
    except OSError:
        return None
    if not isinstance(reply, bytes):
        return None
    return parse_info(reply)


def write_json_atomically(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: temp file, fsync, rename, fsync the directory."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(os.fspath(path), text.encode("utf-8"))


def read_state(topology: Topology) -> dict[str, Any] | None:
    try:
        with open(topology.state_path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


# -- the launcher (`up`) ----------------------------------------------------------------------------------


class NodeState(Enum):
    STOPPED = "stopped"  # no process: before the first start, or after a clean stop
    STARTING = "starting"  # process started; waiting for it to answer PING
    UP = "up"  # answered PING; watched for an exit
    BACKOFF = "backoff"  # exited unasked; restarted once its backoff delay is over
    STOPPING = "stopping"  # asked to SHUTDOWN SAVE; waiting for the process to exit


class RunningNode:
    """The launcher's record of one node process."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.state = NodeState.STOPPED
        self.restarts = 0  # processes started after the first
        self.deaths_in_a_row = 0  # drives the backoff; reset once the node stays up STABLE_UPTIME_S
        self.started_at_s = 0.0  # monotonic
        self.started_at_wall_s = 0.0  # epoch, for status's uptime when the node does not answer
        self.restart_at_s = 0.0  # monotonic time the BACKOFF ends
        self.last_exit: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


class Launcher:
    """Runs one topology in the foreground (the `up` command). Main thread only."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.nodes = [RunningNode(spec) for spec in topology.nodes]
        self._stop_requested = False
        self._force_requested = False

    # -- signals ---------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Only flags here: the loop notices within SUPERVISE_INTERVAL_S (sleep is interrupted and resumed).
        if self._stop_requested:
            self._force_requested = True
        self._stop_requested = True

    # -- the main loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        topology = self.topology
        state = read_state(topology)
        if state and pid_alive(state.get("launcher_pid")) and pid_matches(state["launcher_pid"], "up"):
            print(
                f"redactor: topology '{topology.name}' is already up (launcher pid {state['launcher_pid']}); "
                f"run `redactor down {topology.path}` first",
                file=sys.stderr,
            )
            return 1
        topology.run_dir.mkdir(parents=True, exist_ok=True)
        previous = {
            signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            log.info(
                "topology_starting",
                topology=topology.name,
                nodes=len(self.nodes),
                run_dir=str(topology.run_dir),
                port_offset=topology.port_offset,
                pid=os.getpid(),
            )
            for node in self.nodes:
                self._start(node)
            self._write_state()
            error = self._wait_ready()
            if error is not None:
                log.error("topology_start_failed", topology=topology.name, reason=error)
                print(f"redactor: {error}", file=sys.stderr)
                self._stop_all()
                return 1
            if not self._stop_requested:
                log.info(
                    "topology_up",
                    topology=topology.name,
                    nodes={n.spec.name: n.spec.port for n in self.nodes},
                )
                print(
                    f"topology {topology.name} is up: "
                    + ", ".join(f"{n.spec.name} 127.0.0.1:{n.spec.port} pid {n.pid}" for n in self.nodes)
                    + " (Ctrl-C or `redactor down` stops it)",
                    flush=True,
                )
            while not self._stop_requested:
                time.sleep(SUPERVISE_INTERVAL_S)
                # A terminal's Ctrl-C stops the nodes too: their exits then are no deaths to restart.
                if not self._stop_requested:
                    self._supervise()
            self._stop_all()
            return 0
        finally:
            for node in self.nodes:  # whatever happened above, leave no node behind
                if node.proc is not None and node.proc.poll() is None:
                    node.proc.kill()
                    node.proc.wait()
            self._write_state(final=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _wait_ready(self) -> str | None:
        """Until every node answers PING. Returns an error, or None (also when a stop was requested)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._stop_requested:
            for node in self.nodes:
                assert node.proc is not None
                code = node.proc.poll()
                if code is not None:
                    tail = _tail_text(self.topology.log_path(node.spec.name), 10)
                    return (
                        f"node {node.spec.name} exited during start-up ({_exit_description(code)}):\n{tail}"
                    )
                if node.state is NodeState.STARTING and ping(node.spec.port, node.spec.password):
                    node.state = NodeState.UP
                    log.info("node_ready", node=node.spec.name, port=node.spec.port, pid=node.pid)
                    self._write_state()
            if all(n.state is NodeState.UP for n in self.nodes):
                return None
            if time.monotonic() > deadline:
                waiting = [n.spec.name for n in self.nodes if n.state is not NodeState.UP]
                return f"nodes {', '.join(waiting)} did not answer PING within {READY_TIMEOUT_S:g}s"
            time.sleep(SUPERVISE_INTERVAL_S)
        return None

    def _supervise(self) -> None:
        """One pass: notice exits, restart after backoff, mark restarted nodes ready."""
        now_s = time.monotonic()
        changed = False
        for node in self.nodes:
            if node.state in (NodeState.STARTING, NodeState.UP):
                assert node.proc is not None
                code = node.proc.poll()
                if code is not None:
                    if now_s - node.started_at_s >= STABLE_UPTIME_S:
                        node.deaths_in_a_row = 0
                    backoff_s = min(
                        RESTART_BACKOFF_INITIAL_S * 2**node.deaths_in_a_row, RESTART_BACKOFF_MAX_S
                    )
                    node.deaths_in_a_row += 1
                    node.last_exit = _exit_description(code)
                    node.state = NodeState.BACKOFF
                    node.restart_at_s = now_s + backoff_s
                    log.warning(
                        "node_exited",
                        node=node.spec.name,
                        pid=node.proc.pid,
                        status=node.last_exit,
                        uptime_s=round(now_s - node.started_at_s, 3),
                        restart_in_s=backoff_s,
                    )
                    changed = True
                elif node.state is NodeState.STARTING and ping(
                    node.spec.port, node.spec.password, timeout_s=0.2
                ):
                    node.state = NodeState.UP
                    log.info("node_ready", node=node.spec.name, port=node.spec.port, pid=node.pid)
                    changed = True
                elif (
                    node.state is NodeState.UP
                    and node.deaths_in_a_row
                    and now_s - node.started_at_s >= STABLE_UPTIME_S
                ):
                    node.deaths_in_a_row = 0
            elif node.state is NodeState.BACKOFF and now_s >= node.restart_at_s:
                node.restarts += 1
                self._start(node)
                log.warning(
                    "node_restarted",
                    node=node.spec.name,
                    pid=node.pid,
                    restarts=node.restarts,
                    after=node.last_exit,
                )
                changed = True
        if changed:
            self._write_state()

    def _start(self, node: RunningNode) -> None:
        topology = self.topology
        node_dir = topology.node_dir(node.spec.name)
        node_dir.mkdir(parents=True, exist_ok=True)
        # The node's stdout and stderr (start-up errors, tracebacks) go to its log too.
        with open(topology.log_path(node.spec.name), "ab") as out:
            node.proc = subprocess.Popen(
                node_argv(topology, node.spec),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=node_dir,
            )
        node.state = NodeState.STARTING
        node.started_at_s = time.monotonic()
        node.started_at_wall_s = time.time()
        log.info("node_started", node=node.spec.name, port=node.spec.port, pid=node.proc.pid)

    # -- stopping --------------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        """Stop the nodes one by one, last first (replicas before the masters they follow)."""
        log.info("topology_stopping", topology=self.topology.name)
        for node in reversed(self.nodes):
            self._stop(node)
        log.info("topology_stopped", topology=self.topology.name)

    def _stop(self, node: RunningNode) -> None:
        proc = node.proc
        if proc is None or proc.poll() is not None:
            node.state = NodeState.STOPPED
            return
        node.state = NodeState.STOPPING
        self._write_state()
        error = shutdown_node(node.spec.port, node.spec.password) if not self._force_requested else "forced"
        if error is not None:
            log.warning("node_shutdown_refused", node=node.spec.name, reason=error)
            proc.terminate()
        if not self._wait_exit(proc, SHUTDOWN_TIMEOUT_S if error is None else TERM_TIMEOUT_S):
            if error is None:
                log.warning("node_shutdown_timed_out", node=node.spec.name, timeout_s=SHUTDOWN_TIMEOUT_S)
                proc.terminate()
            if not self._wait_exit(proc, TERM_TIMEOUT_S):
                log.warning("node_killed", node=node.spec.name, pid=proc.pid)
                proc.kill()
                proc.wait()
        node.state = NodeState.STOPPED
        node.last_exit = _exit_description(proc.returncode)
        log.info("node_stopped", node=node.spec.name, pid=proc.pid, status=node.last_exit)

    def _wait_exit(self, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if self._force_requested:
                proc.kill()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- the state file --------------------------------------------------------------------------------

    def _write_state(self, final: bool = False) -> None:
        topology = self.topology
        data = {
            "topology": topology.name,
            "file": str(topology.path),
            "run_dir": str(topology.run_dir),
            "port_offset": topology.port_offset,
            "launcher_pid": None if final else os.getpid(),
            "updated_at": time.time(),
            "nodes": [
                {
                    "name": n.spec.name,
                    "port": n.spec.port,
                    "bus_port": n.spec.bus_port,
                    "pid": None if final else n.pid,
                    "state": NodeState.STOPPED.value if final else n.state.value,
                    "restarts": n.restarts,
                    "started_at": n.started_at_wall_s or None,
                    "last_exit": n.last_exit,
                    "log": str(topology.log_path(n.spec.name)),
                }
                for n in self.nodes
            ],
        }
        try:
            write_json_atomically(topology.state_path, data)
        except OSError as exc:
            log.error("state_write_failed", path=str(topology.state_path), reason=str(exc))


# -- status / down / logs ---------------------------------------------------------------------------------


def _state_nodes(topology: Topology, state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The nodes as the state file has them (ports with the offset `up` used), else as the topology has them."""
    by_name = {n.get("name"): n for n in (state or {}).get("nodes", []) if isinstance(n, dict)}
    out = []
    for spec in topology.nodes:
        entry = dict(by_name.get(spec.name, {}))
        entry.setdefault("name", spec.name)
        entry.setdefault("port", spec.port)
        entry.setdefault("restarts", 0)
        pid = entry.get("pid")
        if not (isinstance(pid, int) and pid_alive(pid) and pid_matches(pid, "server", str(entry["port"]))):
            entry["pid"] = None
        out.append(entry)
    return out


def _format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def collect_status(topology: Topology) -> list[dict[str, Any]]:
    """One dict per node: what the state file and the node's INFO say; None where nothing is known."""
    state = read_state(topology)
    entries = _state_nodes(topology, state)
    port_to_name = {int(e["port"]): e["name"] for e in entries}
    rows: list[dict[str, Any]] = []
    infos: dict[str, dict[str, str] | None] = {}
    for entry in entries:
        spec = topology.node(entry["name"])
        infos[entry["name"]] = node_info(int(entry["port"]), spec.password)
    for entry in entries:
        info = infos[entry["name"]]
        row: dict[str, Any] = {
            "name": entry["name"],
            "port": int(entry["port"]),
            "pid": entry.get("pid"),
            "state": "down",
            "role": None,
            "master": None,
            "offset": None,
            "lag": None,
            "keys": None,
            "uptime_s": None,
            "restarts": int(entry.get("restarts") or 0),
        }
        if info is None:
            if row["pid"] is not None:
                row["state"] = str(entry.get("state") or "starting")
        else:
            row["state"] = "up"
            if row["pid"] is None and info.get("process_id", "").isdigit():
                row["pid"] = int(info["process_id"])
            if info.get("uptime_in_seconds", "").isdigit():
                row["uptime_s"] = int(info["uptime_in_seconds"])
            role = info.get("role")
            row["role"] = "replica" if role == "slave" else role
            if role == "slave":
                host, port = info.get("master_host", "?"), info.get("master_port", "?")
                name = (
                    port_to_name.get(int(port))
                    if port.isdigit() and host in ("127.0.0.1", "localhost")
                    else None
                )
                row["master"] = name or f"{host}:{port}"
                offset = info.get("slave_repl_offset") or info.get("master_repl_offset")
            else:
                offset = info.get("master_repl_offset")
            if offset is not None and offset.lstrip("-").isdigit():
                row["offset"] = int(offset)
            keys = 0
            found_keyspace = False
            for key, value in info.items():
                if key.startswith("db") and key[2:].isdigit():
                    found_keyspace = True
                    for part in value.split(","):
                        if part.startswith("keys=") and part[5:].isdigit():
                            keys += int(part[5:])
            row["keys"] = keys if found_keyspace or "redis_version" in info else None
        rows.append(row)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        master = by_name.get(row["master"]) if row["master"] else None
        if master is not None and master["offset"] is not None and row["offset"] is not None:
            row["lag"] = max(master["offset"] - row["offset"], 0)
    return rows


def print_status(topology: Topology, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"topology": topology.name, "nodes": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe has no width; don't squeeze the columns
    state = read_state(topology)
    launcher_pid = (state or {}).get("launcher_pid")
    launcher = f"launcher pid {launcher_pid}" if pid_alive(launcher_pid) else "no launcher running"
    table = Table(title=f"topology {topology.name} ({launcher})")
    for column in (
        "name",
        "port",
        "pid",
        "state",
        "role",
        "master",
        "offset",
        "lag",
        "keys",
        "uptime",
        "restarts",
    ):
        table.add_column(
            column,
            justify="right" if column in ("port", "pid", "offset", "lag", "keys", "restarts") else "left",
        )
    for row in rows:
        cells = []
        for column in (
            "name",
            "port",
            "pid",
            "state",
            "role",
            "master",
            "offset",
            "lag",
            "keys",
            "uptime_s",
            "restarts",
        ):
            value = row[column]
            if value is None:
                cells.append("-")
            elif column == "uptime_s":
                cells.append(_format_uptime(value))
            else:
                cells.append(str(value))
        style = None if row["state"] == "up" else "red"
        table.add_row(*cells, style=style)
    console.print(table)


def down(topology: Topology) -> int:
    state = read_state(topology)
    if state is None:
        print(f"topology {topology.name} is not running (no {topology.state_path})")
        return 0
    launcher_pid = state.get("launcher_pid")
    if isinstance(launcher_pid, int) and pid_alive(launcher_pid) and pid_matches(launcher_pid, "up"):
        os.kill(launcher_pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT_S
        while pid_alive(launcher_pid):
            if time.monotonic() > deadline:
                print(
                    f"redactor: the launcher (pid {launcher_pid}) did not stop within {DOWN_TIMEOUT_S:g}s",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.05)
        print(f"topology {topology.name} is down")
        return 0
    # No launcher (it was killed): stop the nodes it left, replicas first.
    stopped = 0
    for entry in reversed(_state_nodes(topology, state)):
        pid = entry.get("pid")
        if pid is None:
            continue
        spec = topology.node(entry["name"])
        error = shutdown_node(int(entry["port"]), spec.password)
        if error is not None:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + (SHUTDOWN_TIMEOUT_S if error is None else TERM_TIMEOUT_S)
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped += 1
    for entry in state.get("nodes", []):
        if isinstance(entry, dict):
            entry["pid"] = None
            entry["state"] = NodeState.STOPPED.value
    state["launcher_pid"] = None
    write_json_atomically(topology.state_path, state)
    if stopped:
        print(f"topology {topology.name} is down ({stopped} node(s) stopped without a launcher)")
    else:
        print(f"topology {topology.name} is not running")
    return 0


def _tail_text(path: Path, lines: int | None) -> str:
    """The last ``lines`` lines of a file (all of it for None)."""
    try:
        with open(path, "rb") as fh:
            if lines is None:
                data = fh.read()
            else:
                size = fh.seek(0, os.SEEK_END)
                chunk = 64 * 1024
                data = b""
                while size > 0 and data.count(b"\n") <= lines:
                    step = min(chunk, size)
                    size -= step
                    fh.seek(size)
                    data = fh.read(step) + data
                data = b"".join(data.splitlines(keepends=True)[-lines:]) if lines else b""
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def logs(topology: Topology, node_name: str, lines: int | None, follow: bool) -> int:
    topology.node(node_name)  # an unknown node is an error, even before any log exists
    path = topology.log_path(node_name)
    if not path.exists() and not follow:
        print(f"redactor: no log yet at {path}", file=sys.stderr)
        return 1
    out = sys.stdout
    try:
        while follow and not path.exists():
            time.sleep(0.2)
        out.write(_tail_text(path, lines))
        out.flush()
        if not follow:
            return 0
        position = path.stat().st_size
        while True:
            time.sleep(0.2)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < position:
                position = 0  # truncated or replaced: start over
            if size > position:
                with open(path, "rb") as fh:
                    fh.seek(position)
                    data = fh.read(size - position)
                position += len(data)
                out.write(data.decode("utf-8", "replace"))
                out.flush()
    except KeyboardInterrupt:
        return 0


# -- the command line --------------------------------------------------------------------------------------


def _port_offset(value: int | None) -> int:
    if value is not None:
        return value
    env = os.environ.get("REDACTOR_PORT_OFFSET", "")
    try:
        return int(env) if env else 0
    except ValueError:
        raise TopologyError(f"REDACTOR_PORT_OFFSET must be an integer, not '{env}'") from None


def _default_topology() -> str:
    return os.environ.get("REDACTOR_TOPOLOGY") or DEFAULT_TOPOLOGY


def main(command: str, args: list[str]) -> int:
    """Entry point from launcher.main: ``command`` is up, down, status or logs."""
    parser = argparse.ArgumentParser(prog=f"redactor {command}", description=__doc__.split("\n\n")[0])
    if command == "up":
        parser.add_argument("topology", help="the topology file (TOML)")
        parser.add_argument(
            "--port-offset",
            type=int,
            default=None,
            help="added to every node port (default: $REDACTOR_PORT_OFFSET or 0)",
        )
        parser.add_argument("--loglevel", default="notice", help="the launcher's own log level")
    elif command == "logs":
        parser.add_argument("node", help="the node's name in the topology")
        parser.add_argument("topology", nargs="?", default=None, help=f"default: {DEFAULT_TOPOLOGY}")
        parser.add_argument("-n", "--lines", default="10", help="lines to show first (a number, or 'all')")
        parser.add_argument("--no-follow", action="store_true", help="print and exit instead of following")
    else:
        parser.add_argument("topology", nargs="?", default=None, help=f"default: {DEFAULT_TOPOLOGY}")
        if command == "status":
            parser.add_argument("--json", action="store_true", help="machine-readable output")
    options = parser.parse_args(args)
    try:
        if command == "up":
            from launcher.logs import configure_logging

            topology = load_topology(options.topology, _port_offset(options.port_offset))
            configure_logging(options.loglevel, "", role="launcher")
            return Launcher(topology).run()
        topology = load_topology(options.topology or _default_topology())
        if command == "status":
            print_status(topology, collect_status(topology), options.json)
            return 0
        if command == "down":
            return down(topology)
        if command == "logs":
            lines = None if options.lines == "all" else int(options.lines)
            return logs(topology, options.node, lines, follow=not options.no_follow)
    except TopologyError as exc:
        print(f"redactor: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"redactor: {exc}", file=sys.stderr)
        return 2
    print(f"redactor: unknown command '{command}'", file=sys.stderr)
    return 2
