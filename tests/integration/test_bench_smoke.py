"""ops/bench end to end with tiny counts, and DEBUG POPULATE (its dataset builder) against redis-server.

The benchmark run is a smoke test: it checks the script starts both servers, prints every section's table
with its ratio column, writes the JSON, reports a missing redactor feature as n/a rather than a number, and
stops everything it started. It asserts no timing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import REPO, NodeProcess, free_port, wait_for

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None,
        reason="needs Debian's redis-server and redis-benchmark",
    ),
]

SECTIONS = ("core", "types", "aof", "persistence", "replication")


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone as far as the benchmark is concerned only once reaped,
    # and the benchmark reaps its children, so any state other than a live process fails here.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_bench_quick_prints_every_section_with_a_ratio_and_stops_what_it_started(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "ops" / "bench"),
            "--quick",
            "--timeout",  # a redactor feature that hangs fails its row in 20 s rather than the test
            "20",
            "--json",
            str(out_json),
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert "machine: nproc" in out
    assert "redis-benchmark -h 127.0.0.1 -p PORT -c 50 -r 100000 -n 5000 -q --csv -t set" in out
    for section in SECTIONS:
        assert f"\n{section}  (ratio = redactor/redis" in out
    assert out.count("ratio redactor/redis") == len(SECTIONS)  # one table header per section

    report = json.loads(out_json.read_text())
    rows = report["rows"]
    assert {r["section"] for r in rows} == set(SECTIONS)
    tests = {(r["section"], r["test"]) for r in rows}
    for name in ("SET", "GET", "SET -P 16", "GET -P 16"):
        assert ("core", name) in tests
    for name in ("LPUSH", "LPOP", "SADD", "HSET", "ZADD", "LRANGE_100"):
        assert ("types", name) in tests
    for row in rows:
        # redis-server is the reference: every figure of it must be measured.
        assert row["redis"]["error"] is None, row
        assert isinstance(row["redis"]["value"], (int, float)) and math.isfinite(row["redis"]["value"]), row
        redactor = row["redactor"]
        if redactor["value"] is None:
            assert redactor["error"].startswith(("not implemented: ", "failed: ")), row
            assert row["ratio_redactor_over_redis"] is None
        else:
            assert redactor["error"] is None, row
            if row["redis"]["value"]:
                assert row["ratio_redactor_over_redis"] == pytest.approx(
                    redactor["value"] / row["redis"]["value"]
                )
    # Both servers took part in every section (n/a rows included: they were started and asked).
    kinds_by_name = {(s["kind"], s["name"].split("-")[0]) for s in report["servers"]}
    for section_prefix in ("core", "types", "aof", "persist", "repl"):
        assert ("redis", section_prefix) in kinds_by_name
    # Everything it started is stopped and its temp dir removed.
    for server in report["servers"]:
        for pid in server["pids"]:
            assert _pid_gone(pid), server
    assert not Path(report["machine"]["workdir"]).exists()
    assert any(c.startswith("redis-benchmark -h 127.0.0.1 -p ") for c in report["commands"])


# redis-benchmark 7.0's default test set, as its CSV names them.
DEFAULT_BENCHMARK_TESTS = (
    "PING_INLINE",
    "PING_MBULK",
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)",
    "LRANGE_600 (first 600 elements)",
    "MSET (10 keys)",
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_all_commands_measures_every_default_test_at_both_depths(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    # Enough requests that redis-server's -P 16 runs last over a millisecond: redis-benchmark times in whole
    # milliseconds and reports a shorter run as "inf" req/s, which is no figure.
    argv = [sys.executable, str(REPO / "ops" / "bench"), "--quick", "--requests", "5000", "--timeout", "20"]
    argv += ["--sections", "all-commands", "--json", str(out_json), "--workdir", str(tmp_path)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=280, cwd=str(REPO), stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = json.loads(out_json.read_text())
    rows = {r["test"]: r for r in report["rows"] if r["section"] == "all-commands"}
    expected = [*DEFAULT_BENCHMARK_TESTS, *(f"{t} -P 16" for t in DEFAULT_BENCHMARK_TESTS)]
    assert sorted(rows) == sorted(expected)
    for row in rows.values():  # every test redis-benchmark has runs against redactor without an error reply
        for kind in ("redis", "redactor"):
            assert row[kind]["error"] is None, row
            assert math.isfinite(row[kind]["value"]) and row[kind]["value"] > 0, row
    assert "P1: geometric mean of 20 ratios" in done.stdout
    assert "P16: geometric mean of 20 ratios" in done.stdout
    for server in report["servers"]:
        for pid in server["pids"]:
            assert _pid_gone(pid), server


def test_bench_baseline_tree_compares_two_trees_and_redis_in_one_run(tmp_path: Path) -> None:
    """--baseline-tree: a second redactor tree (here this same tree) joins the core and scripting sections; the
    before/after table and the JSON carry both trees' figures, and every row has CPU us per request."""
    out_json = tmp_path / "bench.json"
    argv = [sys.executable, str(REPO / "ops" / "bench"), "--quick", "--requests", "2000", "--timeout", "20"]
    argv += ["--sections", "core,scripting", "--baseline-tree", str(REPO), "--json", str(out_json)]
    argv += ["--workdir", str(tmp_path)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=110, cwd=str(REPO), stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout.count("before/after (baseline = ") == 2  # one per section
    assert "cpu ratio base" in done.stdout
    report = json.loads(out_json.read_text())
    rows = {(r["section"], r["test"]): r for r in report["rows"]}
    assert set(rows) == {
        *(("core", t) for t in ("SET", "GET", "SET -P 16", "GET -P 16")),
        ("scripting", "EVALSHA (GET+SET)"),
        ("scripting", "EVALSHA (GET+SET) -P 16"),
    }
    for row in rows.values():
        for kind in ("redis", "redactor", "baseline"):
            fig = row[kind]
            assert fig["error"] is None and fig["value"] > 0, (kind, row)
            assert fig["extra"]["cpu_us_per_req"] >= 0, (kind, row)
            assert len(fig["samples"]) == len(fig["extra"]["cpu_us_per_req_samples"]) == 1, (kind, row)
    kinds = {(s["kind"], s["name"].split("-")[0]) for s in report["servers"]}
    assert kinds >= {(k, sec) for k in ("redis", "redactor", "baseline") for sec in ("core", "scripting")}
    for server in report["servers"]:
        for pid in server["pids"]:
            assert _pid_gone(pid), server


def test_bench_rejects_an_unknown_section() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "ops" / "bench"), "--sections", "core,nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "unknown section(s) ['nonsense']" in done.stderr


# -- DEBUG POPULATE ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    """(redactor, redis-server), both empty per test (the test flushes), both with DEBUG enabled."""
    base = tmp_path_factory.mktemp("populate")
    node = NodeProcess(base, "redactor").start()
    port = free_port()
    reference = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--dir",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ref = redis.Redis(port=port, socket_timeout=10)
        wait_for(ref.ping, 10, what="redis-server to answer PING")
        yield node.client(), ref
        ref.close()
    finally:
        reference.terminate()
        reference.wait(10)
        node.stop()


def _both(pair: tuple[redis.Redis, redis.Redis], *args: str) -> list[object]:
    """Run one command on both servers; each result is the reply or the error message."""
    results: list[object] = []
    for client in pair:
        try:
            results.append(client.execute_command(*args))
        except redis.ResponseError as exc:
            results.append(f"ERR:{exc}")
    return results


@pytest.fixture
def flushed(pair: tuple[redis.Redis, redis.Redis]) -> tuple[redis.Redis, redis.Redis]:
    for client in pair:
        client.flushall()
    return pair


def test_populate_makes_key_n_value_n_and_leaves_existing_keys(
    flushed: tuple[redis.Redis, redis.Redis],
) -> None:
    ours, _ = flushed
    ours.set("key:1", "mine")
    assert ours.execute_command("DEBUG", "POPULATE", "4") == b"OK"
    assert ours.dbsize() == 4
    assert ours.mget("key:0", "key:1", "key:2", "key:3", "key:4") == [
        b"value:0",
        b"mine",
        b"value:2",
        b"value:3",
        None,
    ]


def test_populate_prefix_and_size_pad_with_nul_or_cut(flushed: tuple[redis.Redis, redis.Redis]) -> None:
    ours, _ = flushed
    assert ours.execute_command("DEBUG", "POPULATE", "2", "pad", "12") == b"OK"
    assert ours.execute_command("DEBUG", "POPULATE", "2", "cut", "3") == b"OK"
    assert ours.execute_command("DEBUG", "POPULATE", "1", "zero", "0") == b"OK"
    assert ours.get("pad:1") == b"value:1\x00\x00\x00\x00\x00"
    assert ours.get("cut:1") == b"val"
    assert ours.get("zero:0") == b"value:0"


def test_populate_builds_the_same_dataset_as_redis(flushed: tuple[redis.Redis, redis.Redis]) -> None:
    _both(flushed, "SET", "key:7", "existing")
    _both(flushed, "EXPIRE", "key:7", "1000")
    assert _both(flushed, "DEBUG", "POPULATE", "1000") == [b"OK", b"OK"]
    assert _both(flushed, "DEBUG", "POPULATE", "50", "sized", "20") == [b"OK", b"OK"]
    assert _both(flushed, "DEBUG", "POPULATE", "50", "tiny", "2") == [b"OK", b"OK"]
    ours, ref = _both(flushed, "DEBUG", "DIGEST")
    assert ours == ref
    assert _both(flushed, "DBSIZE") == [1100, 1100]


@pytest.mark.parametrize(
    "args",
    [
        ("DEBUG", "POPULATE", "-1"),
        ("DEBUG", "POPULATE", "abc"),
        ("DEBUG", "POPULATE", "01"),
        ("DEBUG", "POPULATE", "99999999999999999999"),
        ("DEBUG", "POPULATE", "2", "p", "-3"),
        ("DEBUG", "POPULATE"),
        ("DEBUG", "POPULATE", "1", "p", "3", "extra"),
    ],
)
def test_populate_errors_match_redis(flushed: tuple[redis.Redis, redis.Redis], args: tuple[str, ...]) -> None:
    ours, ref = _both(flushed, *args)
    assert isinstance(ref, str) and ref.startswith("ERR:"), ref
    assert ours == ref


# -- the lag arithmetic (pure; the script is loaded from its path, ops/ is not a package) -----------------


def _load_bench() -> Any:
    loader = importlib.machinery.SourceFileLoader("ops_bench", str(REPO / "ops" / "bench"))
    spec = importlib.util.spec_from_loader("ops_bench", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ops_bench"] = module  # dataclasses look their module up while the classes are built
    try:
        loader.exec_module(module)
    finally:
        del sys.modules["ops_bench"]
    return module


def test_lag_is_the_age_of_the_master_offset_the_replica_is_at() -> None:
    bench = _load_bench()
    # The master's offset grows linearly between its samples: 0 at t=0, 100 at t=1, 200 at t=2, then idle.
    master = [(0.0, 0), (1.0, 100), (2.0, 200), (3.0, 200)]
    replica = [
        (0.5, 0),  # the master passed 0 at t=0: 0.5 s behind
        (1.5, 50),  # the master passed 50 at t=0.5: 1 s behind
        (1.6, 100),  # the master passed 100 at t=1.0: 0.6 s behind
        (1.2, 150),  # the master passes 150 only at t=1.5, after this sample: not behind
        (2.5, 200),  # at the master's last offset: caught up
        (3.5, 150),  # outside the window: ignored
    ]
    lags = bench._lag_percentiles(master, replica, (0.0, 3.0))
    assert lags == pytest.approx([500.0, 1000.0, 600.0, 0.0, 0.0])
    values = [float(v) for v in range(1, 101)]
    assert bench._percentile(values, 50) == 50.0
    assert bench._percentile(values, 99) == 99.0
    assert bench._percentile([7.0], 99) == 7.0


def test_bench_tls_section_compares_over_tls(tmp_path: Path) -> None:
    """ops/bench --sections tls: both servers serve redis-benchmark --tls, each row has both figures."""
    out_json = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "ops" / "bench"), "--quick", "--sections", "tls", "--timeout", "20",
         "--json", str(out_json), "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=110, cwd=str(REPO), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    rows = json.loads(out_json.read_text())["rows"]
    assert {r["test"] for r in rows} == {"SET (TLS)", "GET (TLS)", "SET -P 16 (TLS)", "GET -P 16 (TLS)"}
    for row in rows:
        assert row["redis"]["error"] is None and row["redactor"]["error"] is None, row
        assert row["redactor"]["value"] > 0 and row["redis"]["value"] > 0


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_bench_cluster_section_measures_both_clusters_and_loses_no_acked_write(tmp_path: Path) -> None:
    """ops/bench --sections cluster with tiny counts: both 3+3 clusters come up, every row has both figures,
    the reshard under a writer loses no acknowledged write, and every node it started is stopped."""
    out_json = tmp_path / "bench.json"
    argv = [sys.executable, str(REPO / "ops" / "bench"), "--quick", "--requests", "2000", "--timeout", "120"]
    argv += ["--sections", "cluster", "--json", str(out_json), "--workdir", str(tmp_path)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=380, cwd=str(REPO), stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = json.loads(out_json.read_text())
    rows = {r["test"]: r for r in report["rows"]}
    assert set(rows) == {
        "SET (cluster)",
        "GET (cluster)",
        "SET -P 16 (cluster)",
        "GET -P 16 (cluster)",
        "reshard 10 slots under a writer",
        "acked writes lost in the reshard",
        "kill -9 master -> first RedisCluster write",
    }
    for row in rows.values():
        for kind in ("redis", "redactor"):
            assert row[kind]["error"] is None, row
    for kind in ("redis", "redactor"):
        assert rows["acked writes lost in the reshard"][kind]["value"] == 0
        moved = rows["reshard 10 slots under a writer"][kind]["extra"]
        assert moved["slots"] == 10 and moved["keys"] >= 10 * 20, moved  # the preloaded keys all moved
        assert rows["kill -9 master -> first RedisCluster write"][kind]["value"] > 0
    assert len(report["servers"]) == 12
    for server in report["servers"]:
        for pid in server["pids"]:
            assert _pid_gone(pid), server
