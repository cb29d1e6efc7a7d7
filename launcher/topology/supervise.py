"""The ``redactor up`` launcher: starts every node of a topology and supervises it in the foreground.

Each node is its own process (``python -m launcher.main server ...``; subprocess, never fork) in the
launcher's process group, so one ``killpg`` removes a whole topology. A node that exits without being asked
to (any exit status: the topology file is the desired state) is restarted after a backoff that doubles from
``RESTART_BACKOFF_INITIAL_S`` up to ``RESTART_BACKOFF_MAX_S`` and resets once the node stayed up for
``STABLE_UPTIME_S``. A node that cannot start while ``up`` brings the topology up fails the whole ``up``.
Ctrl-C on a terminal reaches the nodes as well (same process group); they stop themselves and the launcher
waits for them. A second SIGINT/SIGTERM while stopping kills what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from enum import Enum
from typing import Any

import structlog

from launcher.topology.clusterjoin import JoinError, join_cluster
from launcher.topology.probe import SHUTDOWN_TIMEOUT_S, ping, shutdown_node
from launcher.topology.rundir import (
    exit_description,
    pid_alive,
    pid_matches,
    read_state,
    tail_text,
    write_json_atomically,
)
from launcher.topology.sentinels import (
    failover_retry_window_s,
    follow_sentinels,
    sentinel_restart_delay_s,
    sentinels_name_it_master,
)
from launcher.topology.spec import NodeSpec, Topology, node_argv

log = structlog.get_logger("redactor.launcher")

# First restart delay after a node dies; doubles with each death in a row up to the maximum.
RESTART_BACKOFF_INITIAL_S = 0.5
RESTART_BACKOFF_MAX_S = 30.0
# A node up this long is healthy again: its next death restarts after the initial backoff.
STABLE_UPTIME_S = 10.0
# How often the launcher checks its nodes (process exits, readiness).
SUPERVISE_INTERVAL_S = 0.1
# How often a dead master awaiting its failover asks the sentinels again.
FAILOVER_POLL_S = 0.5
# How long `up` waits for every node to answer PING.
READY_TIMEOUT_S = 30.0
# After SIGTERM (SHUTDOWN SAVE refused or timed out), how long before SIGKILL.
TERM_TIMEOUT_S = 10.0


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
        # Monotonic time until which the sentinels may still fail this dead master over (0: not waiting).
        self.failover_wait_until_s = 0.0
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
            if topology.cluster and not self._stop_requested:
                self._join_cluster()
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
                    tail = tail_text(self.topology.log_path(node.spec.name), 10)
                    return f"node {node.spec.name} exited during start-up ({exit_description(code)}):\n{tail}"
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

    def _join_cluster(self) -> None:
        """A [cluster] topology: join the nodes (clusterjoin.py). A join that fails leaves the nodes running
        and says why: the operator can finish it (redis-cli --cluster fix) without losing the nodes' data."""
        try:
            actions = join_cluster(self.topology, lambda: self._stop_requested)
        except JoinError as exc:
            if self._stop_requested:
                return
            log.error("cluster_join_failed", topology=self.topology.name, reason=str(exc))
            print(f"redactor: cluster join failed: {exc}", file=sys.stderr, flush=True)
            return
        log.info("cluster_joined", topology=self.topology.name, actions=actions)
        summary = "; ".join(actions) if actions else "already joined, nothing to do"
        print(f"cluster {self.topology.name}: cluster_state:ok ({summary})", flush=True)

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
                    backoff_s = max(backoff_s, sentinel_restart_delay_s(self.topology, node.spec))
                    node.last_exit = exit_description(code)
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
                if self._awaits_failover(node, now_s):
                    node.restart_at_s = now_s + FAILOVER_POLL_S
                    continue
                node.failover_wait_until_s = 0.0
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
                follow_sentinels(topology, node.spec, node_argv(topology, node.spec)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=node_dir,
            )
        node.state = NodeState.STARTING
        node.started_at_s = time.monotonic()
        node.started_at_wall_s = time.time()
        log.info("node_started", node=node.spec.name, port=node.spec.port, pid=node.proc.pid)

    def _awaits_failover(self, node: RunningNode, now_s: float) -> bool:
        """A dead master the sentinels still name stays down while another data node is up for them to promote
        and their retried election may come (sentinels.py): restarted now, it would be an empty master."""
        if sentinel_restart_delay_s(self.topology, node.spec) == 0.0:
            return False
        others_up = any(
            n is not node and not n.spec.is_sentinel and n.state is NodeState.UP for n in self.nodes
        )
        if not others_up or not sentinels_name_it_master(self.topology, node.spec):
            return False
        if node.failover_wait_until_s == 0.0:
            node.failover_wait_until_s = now_s + failover_retry_window_s(self.topology)
            log.warning(
                "node_restart_awaits_failover",
                node=node.spec.name,
                reason="the sentinels still name it master",
                wait_s=round(node.failover_wait_until_s - now_s, 1),
            )
        return now_s < node.failover_wait_until_s

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
        node.last_exit = exit_description(proc.returncode)
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
