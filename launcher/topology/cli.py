"""The command line of ``redactor up | down | status | logs``: arguments, then the module that does it.

``down`` and ``logs`` live here (each a function over the run directory); ``up`` is supervise.py's
Launcher, ``status`` is status.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from launcher.topology.probe import SHUTDOWN_TIMEOUT_S, shutdown_node
from launcher.topology.rundir import pid_alive, pid_matches, read_state, tail_text, write_json_atomically
from launcher.topology.spec import DEFAULT_TOPOLOGY, Topology, TopologyError, load_topology
from launcher.topology.status import collect_status, print_status, state_nodes
from launcher.topology.supervise import TERM_TIMEOUT_S, Launcher, NodeState

# The first paragraph of `redactor up --help` and the others.
DESCRIPTION = "Whole topologies: ``redactor up | down | status | logs``."
# How long `down` waits for the launcher to stop its nodes and exit.
DOWN_TIMEOUT_S = SHUTDOWN_TIMEOUT_S + TERM_TIMEOUT_S + 10.0


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
    for entry in reversed(state_nodes(topology, state)):
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
        out.write(tail_text(path, lines))
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
    parser = argparse.ArgumentParser(prog=f"redactor {command}", description=DESCRIPTION)
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
