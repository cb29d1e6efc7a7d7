"""ops/chaos --cluster, short (issue 15 part C): a seeded run of a 3+3 redactor cluster under RedisCluster writers
with a master killed, a master paused past node-timeout (a failover) and a reshard; the verdict must be PASS (no
replicated write lost, every fault healed, every slot served at the end), and the report says what ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.compat]


@pytest.mark.timeout(240)
def test_cluster_chaos_short_run_passes_with_every_slot_served(tmp_path: Path, seed: int) -> None:
    out_json = tmp_path / "chaos.json"
    argv = [sys.executable, str(REPO / "ops" / "chaos"), "--cluster", "--seed", str(seed), "--duration", "1"]
    argv += ["--every", "0.5-1", "--faults", "kill-master,pause,reshard", "--pause", "2.5-3"]
    argv += [
        "--reshard-slots",
        "5-10",
        "--recover-timeout",
        "60",
        "--min-faults",
        "3",
        "--json",
        str(out_json),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=230, cwd=str(REPO), stdin=subprocess.DEVNULL
    )
    print(done.stdout[-3000:])
    assert f"seed {seed} (replay with --seed {seed})" in done.stdout
    assert done.returncode == 0 and "VERDICT PASS" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out_json.read_text())
    assert report["verdict"] == "PASS"
    assert report["lost_replicated"] == 0 and report["unserved_slots"] == 0 and report["unrecovered"] == 0
    assert report["acked"] > 0 and report["replicated"] > 0
    kinds = [f["kind"] for f in report["faults"]]
    # One round of the three kinds (--min-faults 3), each fault after the previous one healed.
    assert sorted(kinds) == ["kill-master", "pause", "reshard"], kinds
    kill = next(f for f in report["faults"] if f["kind"] == "kill-master")
    assert kill["failover_s"] is not None  # another node served the killed master's slots
    reshard = next(f for f in report["faults"] if f["kind"] == "reshard")
    assert reshard["reshard_ok"], reshard
