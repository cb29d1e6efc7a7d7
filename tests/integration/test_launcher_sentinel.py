"""`redactor up ops/topologies/sentinel.toml`: three data nodes and three sentinels under the launcher;
`redactor status` shows the master each sentinel names; `redactor down` stops them all."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime
from pathlib import Path

import redis

from launcher.topology.spec import load_topology, node_argv
from tests.harness import REPO, wait_for
from tests.integration.test_launcher import Up, free_offset, redactor


def test_sentinel_topology_file_becomes_sentinel_command_lines(tmp_path: Path) -> None:
    topology = load_topology(REPO / "ops" / "topologies" / "sentinel.toml", port_offset=100)
    topology.run_dir = tmp_path
    sentinels = [n for n in topology.nodes if n.is_sentinel]
    assert [s.name for s in sentinels] == ["s1", "s2", "s3"]
    argv = node_argv(topology, sentinels[0])
    assert argv[3:5] == ["sentinel", str(tmp_path / "s1" / "sentinel.conf")]
    conf = (tmp_path / "s1" / "sentinel.conf").read_text()
    assert "sentinel monitor mymaster 127.0.0.1 7201 2" in conf
    assert "sentinel down-after-milliseconds mymaster 1000" in conf


# The sentinels' ports move next to the data nodes' (26379... -> 7104...): one offset then keeps the whole
# topology, bus ports included, below the ephemeral range, where no client connection can take a port between
# free_offset's check and a node's bind (seen: a sentinel failing with "address already in use").
PORTS = [7101, 7102, 7103, 7104, 7105, 7106]


def sentinel_topology(tmp_path: Path) -> str:
    text = (
        (REPO / "ops" / "topologies" / "sentinel.toml")
        .read_text()
        .replace('"../../var/sentinel"', f'"{tmp_path / "run"}"')
    )
    for n, port in enumerate((26379, 26380, 26381)):
        assert f"port = {port}\n" in text
        text = text.replace(f"port = {port}\n", f"port = {7104 + n}\n")
    return text


def up_topology(tmp_path: Path, text: str) -> tuple[Path, int, Up]:
    """``text`` as the run's topology file under `redactor up`, once the launcher says it is up."""
    topology = tmp_path / "sentinel.toml"
    topology.write_text(text)
    offset = free_offset(PORTS)
    up = Up(topology, offset)
    try:
        wait_for(lambda: "is up" in up.text(), 60, interval_s=0.2, what=f"the topology up:\n{up.text()}")
    except BaseException:
        up.kill_group()
        raise
    return topology, offset, up


def test_up_status_shows_each_sentinels_view_and_down_stops_them(tmp_path: Path) -> None:
    topology, offset, up = up_topology(tmp_path, sentinel_topology(tmp_path))
    try:

        def every_sentinel_sees_everything() -> bool:
            run = redactor("status", str(topology), "--json")
            rows = {r["name"]: r for r in json.loads(run.stdout)["nodes"]}
            views = [rows[s]["master"] for s in ("s1", "s2", "s3")]
            return (
                all(v == "mymaster=n1 (ok, 2 replicas, 3 sentinels)" for v in views)
                and rows["s1"]["role"] == "sentinel"
            )

        wait_for(every_sentinel_sees_everything, 30, interval_s=0.5, what="status rows of the sentinels")
        with redis.Redis(port=7104 + offset, socket_timeout=5) as r:
            assert r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster") == [
                b"127.0.0.1",
                str(7101 + offset).encode(),
            ]
        # kill -9 of the master: the sentinels promote a replica, and the launcher restarts the old master
        # only after that, as a replica of the new one (not as an empty master its replicas would copy).
        with redis.Redis(port=7101 + offset, socket_timeout=5) as r:
            r.set("kept", "1")
            # Replication is asynchronous: without this a kill right after the SET may lose it (not the point).
            assert r.execute_command("WAIT", 2, 10000) == 2
            pid = int(r.info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)

        def old_master_follows_new() -> bool:
            with redis.Redis(port=7101 + offset, socket_timeout=2) as r:
                info = r.info("replication")
                return (
                    info["role"] == "slave" and info["master_link_status"] == "up" and r.get("kept") == b"1"
                )

        # 60 s: a split vote (each sentinel voting for itself) is retried 2 x failover-timeout (10 s) later.
        wait_for(old_master_follows_new, 60, interval_s=0.3, what="n1 back as a replica of the new master")
        run = redactor("down", str(topology))
        assert run.returncode == 0, run.stdout + run.stderr
        up.proc.wait(30)
    finally:
        up.kill_group()


def test_a_dead_master_the_sentinels_cannot_replace_stays_down_for_their_retry_window(tmp_path: Path) -> None:
    # The replicas have replica-priority 0: no sentinel will promote one, as when their election keeps failing.
    # The launcher must not restart the master after the usual delay (down-after + 2 s) as an empty master its
    # replicas would copy: it waits 2 x failover-timeout + 2 s (a retried election's chance), then restarts it.
    text = (
        sentinel_topology(tmp_path)
        .replace('replicaof = "n1"\nconfig = { ', 'replicaof = "n1"\nconfig = { replica-priority = 0, ')
        .replace("failover-timeout = 10000", "failover-timeout = 3000")
    )
    assert text.count("replica-priority = 0") == 2
    topology, offset, up = up_topology(tmp_path, text)
    try:
        with redis.Redis(port=7101 + offset, socket_timeout=5) as r:
            r.set("kept", "1")
            assert r.execute_command("WAIT", 2, 10000) == 2
            pid = int(r.info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)

        def events() -> dict[str, float]:
            found: dict[str, float] = {}
            for line in up.text().splitlines():
                if line.startswith("{") and '"node": "n1"' in line:
                    entry = json.loads(line)
                    found.setdefault(entry["event"], datetime.fromisoformat(entry["timestamp"]).timestamp())
            return found

        wait_for(lambda: "node_restarted" in events(), 60, interval_s=0.3, what=f"n1 restarted:\n{up.text()}")
        seen = events()
        assert "node_restart_awaits_failover" in seen, up.text()
        # Exited -> restarted: the usual 3 s delay, then the 8 s window (2 x 3 s + 2 s) while n2 and n3 are up.
        assert seen["node_restarted"] - seen["node_exited"] >= 3 + 8 - 0.5, up.text()
        run = redactor("down", str(topology))
        assert run.returncode == 0, run.stdout + run.stderr
        up.proc.wait(30)
    finally:
        up.kill_group()
