"""`redactor up ops/topologies/cluster.toml`: six nodes the launcher joins into a cluster itself (no redis-cli);
`redactor status` shows ids, slots, epochs and links; `redactor cli -c` follows MOVED and ASK; a second `up`
is refused harmlessly; after `down`, `up` reuses nodes.conf (same ids, a moved slot stays moved)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from launcher.shell import Shell, build_parser
from launcher.topology.clusterjoin import even_ranges
from launcher.topology.spec import load_topology, node_argv
from tests.harness import REPO, wait_for
from tests.integration.test_launcher import Up, free_offset, gone, redactor

pytestmark = [pytest.mark.slow]
BASE_PORTS = [30001, 30002, 30003, 30004, 30005, 30006]


def test_cluster_topology_file() -> None:
    topology = load_topology(REPO / "ops" / "topologies" / "cluster.toml", port_offset=10)
    assert topology.cluster
    assert [(n.name, n.replicaof) for n in topology.nodes][3:] == [("r1", "m1"), ("r2", "m2"), ("r3", "m3")]
    argv = node_argv(topology, topology.node("r1"))
    assert "--replicaof" not in argv  # a cluster replica is made with CLUSTER REPLICATE
    assert argv[argv.index("--cluster-enabled") + 1] == "yes"
    assert argv[argv.index("--cluster-node-timeout") + 1] == "2000"
    assert even_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]  # redis-cli create's split
    assert even_ranges(4)[0] == (0, 4095) and even_ranges(4)[-1] == (12288, 16383)


def rows(topology: Path) -> dict[str, dict[str, Any]]:
    run = redactor("status", str(topology), "--json")
    assert run.returncode == 0, run.stderr
    return {r["name"]: r for r in json.loads(run.stdout)["nodes"]}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.main", "cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


def raw_call(port: int, *args: str) -> Any:
    with redis.Redis(port=port, socket_timeout=5) as client:
        return client.execute_command(*args)


@pytest.mark.timeout(240)
def test_up_joins_status_cli_follows_redirections_and_restart_keeps_nodes_conf(tmp_path: Path) -> None:
    text = (
        (REPO / "ops" / "topologies" / "cluster.toml")
        .read_text()
        .replace('"../../var/cluster"', f'"{tmp_path / "run"}"')
    )
    topology = tmp_path / "cluster.toml"
    topology.write_text(text)
    offset = free_offset(BASE_PORTS)
    m1, m2, m3, r1 = (p + offset for p in BASE_PORTS[:4])
    up = Up(topology, offset)
    try:
        wait_for(lambda: "is up" in up.text(), 120, interval_s=0.2, what=f"the cluster up:\n{up.text()}")
        assert "cluster cluster: cluster_state:ok (configEpochs 1-6; CLUSTER MEET" in up.text(), up.text()
        first = rows(topology)
        assert [first[m]["slots"] for m in ("m1", "m2", "m3")] == ["0-5460", "5461-10922", "10923-16383"]
        assert [first[r]["master"] for r in ("r1", "r2", "r3")] == ["m1", "m2", "m3"]
        assert {r["role"] for n, r in first.items() if n.startswith("r")} == {"replica"}
        assert {r["cluster_state"] for r in first.values()} == {"ok"}
        assert first["m1"]["epochs"].startswith("1/") and first["m3"]["config_epoch"] == 3
        assert len({r["node_id"] for r in first.values()}) == 6
        wait_for(
            lambda: {r["link"] for r in rows(topology).values()} == {"5/5 connected"},
            30,
            what="every node's link seen connected by its five peers",
        )
        table = redactor("status", str(topology))
        for word in ("id", "slots", "epochs", "link", "cluster_state", "10923-16383", first["m2"]["id"]):
            assert word in table.stdout, table.stdout
        check = subprocess.run(
            ["redis-cli", "--cluster", "check", f"127.0.0.1:{m1}"], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stdout

        # A second `up` is refused and changes nothing.
        again = redactor("up", str(topology), "--port-offset", str(offset))
        assert again.returncode == 1 and "already up" in again.stderr
        assert rows(topology)["m1"]["pid"] == first["m1"]["pid"]

        # cli -c: MOVED followed (foo is slot 12182, m3's); quiet when not interactive, as redis-cli.
        moved = cli("-c", "-p", str(m1), "set", "foo", "bar")
        assert (moved.returncode, moved.stdout) == (0, "OK\n"), moved
        assert raw_call(m3, "GET", "foo") == b"bar"
        assert cli("-p", str(m1), "get", "foo").stdout.strip() == f"MOVED 12182 127.0.0.1:{m3}"  # without -c
        # Interactively it prints redis-cli's line and stays on the node it was sent to.
        args = build_parser().parse_args(["-c", "-p", str(m1), "--no-raw"])
        out = io.BytesIO()
        shell = Shell(args, out=out)
        shell.interactive = True
        try:
            assert shell.run_line("get foo")
            assert shell.prompt() == f"127.0.0.1:{m3}> "
        finally:
            shell.close()
        assert out.getvalue() == b'-> Redirected to slot [12182] located at 127.0.0.1:%d\n"bar"\n' % m3

        # ASK: slot 12182 half-way from m3 to m1, foo already moved: m3 says ASK, cli -c sends ASKING.
        m1_id, m3_id = first["m1"]["node_id"], first["m3"]["node_id"]
        assert raw_call(m1, "CLUSTER", "SETSLOT", "12182", "IMPORTING", m3_id) in (b"OK", True)
        assert raw_call(m3, "CLUSTER", "SETSLOT", "12182", "MIGRATING", m1_id) in (b"OK", True)
        assert raw_call(m3, "MIGRATE", "127.0.0.1", str(m1), "foo", "0", "5000") in (b"OK", True)
        with pytest.raises(redis.exceptions.AskError, match=f"12182 127.0.0.1:{m1}"):
            raw_call(m3, "GET", "foo")
        asked = cli("-c", "-p", str(m3), "get", "foo")
        assert (asked.returncode, asked.stdout) == (0, "bar\n"), asked
        for port in (m1, m3, m2):  # finish the move by hand, as redis-cli --cluster reshard would
            assert raw_call(port, "CLUSTER", "SETSLOT", "12182", "NODE", m1_id) in (b"OK", True)
        wait_for(lambda: rows(topology)["r1"]["cluster_state"] == "ok", 20, what="the cluster ok again")

        # down, then up: nodes.conf brings back the same ids and slots; the join has nothing to do.
        down = redactor("down", str(topology))
        assert down.returncode == 0, down.stdout + down.stderr
        up.proc.wait(30)
        assert all(gone(r["pid"]) for r in first.values())
        up = Up(topology, offset)  # (a new launcher.out)
        wait_for(lambda: "is up" in up.text(), 120, interval_s=0.2, what=f"up again:\n{up.text()}")
        assert "cluster_state:ok (already joined, nothing to do)" in up.text(), up.text()
        second = rows(topology)
        assert {n: r["node_id"] for n, r in second.items()} == {n: r["node_id"] for n, r in first.items()}
        assert second["m1"]["slots"] == "0-5460 12182"
        assert second["m3"]["slots"] == "10923-12181 12183-16383"
        assert raw_call(r1, "CLUSTER", "MYID").decode() == first["r1"]["node_id"]
        assert cli("-c", "-p", str(m2), "get", "foo").stdout == "bar\n"
        down = redactor("down", str(topology))
        assert down.returncode == 0, down.stdout + down.stderr
        up.proc.wait(30)
        assert all(gone(r["pid"]) for r in second.values() if r["pid"])
    finally:
        up.kill_group()
