"""launcher/topology/probe.py: the launcher's PING, INFO and SHUTDOWN SAVE, with and without requirepass."""

from __future__ import annotations

from pathlib import Path

from launcher.topology.probe import node_info, ping, shutdown_node
from tests.harness import NodeProcess, free_port, wait_for


def test_probes_authenticate_and_report_a_refusal(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, "locked", requirepass="pw", save="").start()
    try:
        assert ping(node.port, "pw")
        assert not ping(node.port)  # NOAUTH
        assert not ping(node.port, "wrong")  # WRONGPASS
        info = node_info(node.port, "pw")
        assert info is not None and info["role"] == "master" and info["tcp_port"] == str(node.port)
        assert node_info(node.port) is None
        refused = shutdown_node(node.port, "wrong")
        assert refused is not None and refused.startswith("SHUTDOWN SAVE refused: WRONGPASS")
        assert node.alive()
        assert shutdown_node(node.port, "pw") is None  # the node closes the connection: it is stopping
        wait_for(lambda: not node.alive(), 15, what="the node to exit after SHUTDOWN SAVE")
        assert node.wait_exit() == 0
    finally:
        node.stop()


def test_probes_of_a_port_nobody_listens_on() -> None:
    port = free_port()
    assert not ping(port)
    assert node_info(port) is None
    assert shutdown_node(port) == "not listening"
