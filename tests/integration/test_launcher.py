"""The topology launcher: `redactor up` runs three node processes, restarts one that is killed, `status`
reports them, `logs` prints a node's log, and `down` leaves no process behind.

The launcher runs as `python -m launcher.main up FILE --port-offset N` in its own session; every test kills
that process group in a finally, so nothing survives a failing test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from launcher.topology import TopologyError, load_topology, node_argv
from tests.harness import REPO, free_offset, wait_for

TOPOLOGY = """\
[topology]
name = "trio"
run_dir = "run"

[[node]]
name = "n1"
port = 7001
config = { save = "", enable-debug-command = "yes" }

[[node]]
name = "n2"
port = 7002
replicaof = "n1"
config = { save = "" }

[[node]]
name = "n3"
port = 7003
replicaof = "n1"
config = { save = "" }
"""


def redactor(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
    )


def status(topology: Path) -> list[dict[str, Any]]:
    result = redactor("status", str(topology), "--json")
    assert result.returncode == 0, result.stderr
    nodes: list[dict[str, Any]] = json.loads(result.stdout)["nodes"]
    return nodes


def answers_ping(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as r:
            return bool(r.ping())
    except redis.ConnectionError:
        return False


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Up:
    """A `redactor up` process in its own process group."""

    def __init__(self, topology: Path, offset: int) -> None:
        self.output = topology.parent / "launcher.out"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "launcher.main", "up", str(topology), "--port-offset", str(offset)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the nodes share the launcher's process group
        except ProcessLookupError:
            pass
        self.proc.wait(10)


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[tuple[Path, int, Up]]:
    topology = tmp_path / "trio.toml"
    topology.write_text(TOPOLOGY)
    offset = free_offset([7001, 7002, 7003])
    up = Up(topology, offset)
    try:
        yield topology, offset, up
    finally:
        up.kill_group()


def test_up_status_restart_logs_and_down(trio: tuple[Path, int, Up]) -> None:
    topology, offset, up = trio
    ports = [7001 + offset, 7002 + offset, 7003 + offset]
    for port in ports:
        try:
            wait_for(lambda p=port: answers_ping(p), 30, what=f"port {port} to answer PING")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nthe launcher said:\n{up.text()}") from None
    wait_for(lambda: "is up" in up.text(), 10)

    nodes = status(topology)
    assert [(n["name"], n["port"], n["state"], n["restarts"]) for n in nodes] == [
        ("n1", ports[0], "up", 0),
        ("n2", ports[1], "up", 0),
        ("n3", ports[2], "up", 0),
    ]
    assert all(isinstance(n["pid"], int) for n in nodes)
    assert all(n["keys"] == 0 and n["uptime_s"] is not None for n in nodes)
    table = redactor("status", str(topology))
    assert table.returncode == 0
    for word in (
        "name",
        "port",
        "pid",
        "role",
        "master",
        "offset",
        "lag",
        "keys",
        "uptime",
        "restarts",
        "n1",
        "n2",
        "n3",
        str(ports[1]),
    ):
        assert word in table.stdout

    # A node killed with SIGKILL comes back with a new pid, and status counts the restart.
    old_pid = nodes[1]["pid"]
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        n2 = status(topology)[1]
        return n2 if n2["pid"] not in (None, old_pid) and n2["state"] == "up" else None

    n2 = wait_for(restarted, 15, interval_s=0.2, what="n2 to be restarted")
    assert n2["restarts"] == 1
    assert answers_ping(ports[1])
    assert '"event": "node_restarted"' in up.text()

    logs = redactor("logs", "n2", str(topology), "--no-follow", "-n", "all")
    assert logs.returncode == 0
    assert logs.stdout.count('"event": "node_started"') == 2  # one line per incarnation
    tail = redactor("logs", "n2", str(topology), "--no-follow", "-n", "1")
    assert len(tail.stdout.splitlines()) == 1

    pids = [up.proc.pid] + [n["pid"] for n in status(topology)]
    down = redactor("down", str(topology))
    assert down.returncode == 0, down.stderr
    assert down.stdout == "topology trio is down\n"
    assert up.proc.wait(30) == 0
    wait_for(lambda: all(gone(pid) for pid in pids), 10, what=f"pids {pids} to be gone")
    state = json.loads((topology.parent / "run" / "state.json").read_text())
    assert state["launcher_pid"] is None
    assert [n["pid"] for n in state["nodes"]] == [None, None, None]
    assert [n["state"] for n in status(topology)] == ["down", "down", "down"]


def test_a_node_that_cannot_start_fails_up_and_stops_the_others(tmp_path: Path) -> None:
    topology = tmp_path / "clash.toml"
    topology.write_text(
        TOPOLOGY.replace('config = { save = "" }\n', 'config = { save = "", maxmemory = "lots" }\n', 1)
    )
    offset = free_offset([7001, 7002, 7003])
    up = Up(topology, offset)
    try:
        assert up.proc.wait(30) == 1
        assert "node n2 exited during start-up (exit 1)" in up.text()
        assert not answers_ping(7001 + offset)
    finally:
        up.kill_group()


def test_topology_files_are_checked_and_become_node_command_lines(tmp_path: Path) -> None:
    seed = load_topology(REPO / "ops" / "topologies" / "seed.toml", port_offset=100)
    assert seed.name == "seed"
    assert seed.run_dir == REPO / "var" / "seed"
    assert [(n.name, n.port, n.replicaof) for n in seed.nodes] == [
        ("n1", 7101, None),
        ("n2", 7102, "n1"),
        ("n3", 7103, "n1"),
    ]
    argv = node_argv(seed, seed.nodes[1])
    assert argv[1:] == [
        "-m",
        "launcher.main",
        "server",
        "--port",
        "7102",
        "--dir",
        str(REPO / "var/seed/n2"),
        "--logfile",
        str(REPO / "var/seed/n2/node.log"),
        "--replicaof",
        "127.0.0.1",
        "7101",
        "--repl-diskless-sync-delay",
        "0",
    ]
    assert node_argv(seed, seed.nodes[0])[-4:] == ["--appendonly", "yes", "--repl-diskless-sync-delay", "0"]

    # The bus port of a node: bus-port, else cluster-port (both moved by the port offset), else port + 10000.
    buses = tmp_path / "buses.toml"
    buses.write_text(
        '[topology]\nname = "buses"\n'
        '[[node]]\nname = "a"\nport = 7001\nconfig = { cluster-port = 9001 }\n'
        '[[node]]\nname = "b"\nport = 7002\nconfig = { bus-port = 9002, cluster-port = 9102 }\n'
        '[[node]]\nname = "c"\nport = 7003\n'
    )
    loaded = load_topology(buses, port_offset=10)
    assert [n.bus_port for n in loaded.nodes] == [9011, 9012, 17013]
    assert node_argv(loaded, loaded.nodes[0])[-2:] == ["--cluster-port", "9011"]

    bad = tmp_path / "bad.toml"
    for body, message in [
        ('[[node]]\nname = "a"\nport = 1\nreplicaof = "b"\n', "replicaof 'b' is not another node"),
        ('[[node]]\nname = "a"\nport = 1\n[[node]]\nname = "a"\nport = 2\n', "node name 'a' is used twice"),
        ('[[node]]\nname = "a"\nport = 1\nconfig = { port = 5 }\n', "'port' is set by the launcher"),
        ('[topology]\nname = "x"\n', "no [[node]] entries"),
    ]:
        bad.write_text(textwrap.dedent(body))
        with pytest.raises(TopologyError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_topology(bad)
    result = redactor("logs", "zz", str(REPO / "ops" / "topologies" / "seed.toml"), "--no-follow")
    assert result.returncode == 1
    assert "no node named 'zz' (nodes: n1, n2, n3)" in result.stderr


def test_a_node_off_a_terminal_imports_structlog_without_rich_which_stays_importable() -> None:
    # rich costs a node ~25 ms of start-up and serves only tracebacks on a terminal (launcher/main.py).
    script = textwrap.dedent(
        """
        import sys
        from launcher.main import _hide_rich_from_structlog
        _hide_rich_from_structlog()
        import launcher.node, structlog.dev
        print("rich" in sys.modules, structlog.dev.rich is None)
        import rich
        print(rich.__name__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True", "rich"]
