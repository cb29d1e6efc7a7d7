"""INFO's fields as monitoring tools read them (redis_exporter, Datadog, redis-cli --stat): every field Redis 7.0
prints, in Redis's order, unless listed below as absent with its reason; and the new ones measured, several
against a real redis-server doing the same thing."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.compat

# Redis 7.0's fields the node does not print, with why (the README lists them too).
ABSENT = {
    "Server": {
        "atomicvar_api": "no C atomics to name",
        "gcc_version": "no C compiler built the node",
    },
    "Memory": {
        "mem_clients_slaves": "replicas are bus peers, not clients",
        "mem_cluster_links": "the cluster bus is ZeroMQ's, not counted",
    },
    "Stats": {
        "total_net_repl_input_bytes": "replication bytes are not counted apart",
        "total_net_repl_output_bytes": "replication bytes are not counted apart",
        "instantaneous_input_repl_kbps": "replication bytes are not counted apart",
        "instantaneous_output_repl_kbps": "replication bytes are not counted apart",
        "reply_buffer_shrinks": "no per-client reply buffer to resize",
        "reply_buffer_expands": "no per-client reply buffer to resize",
    },
}
# The node's own fields.
EXTRA = {"Server": {"redactor_version", "python_version"}, "Memory": {"used_memory_clients"}}
# Sections whose lines are per command, error or database, not fixed fields.
VARIABLE = {"Commandstats", "Latencystats", "Errorstats", "Keyspace"}


def fields(client: redis.Redis) -> dict[str, list[str]]:
    """INFO everything's field names by section title, in order."""
    connection = client.connection_pool.get_connection()
    try:
        connection.send_command("INFO", "everything")
        text = str(connection.read_response())  # (raw: redis-py's INFO callback would parse it)
    finally:
        client.connection_pool.release(connection)
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("# "):
            section = line[2:]
            out[section] = []
        elif ":" in line:
            out[section].append(line.split(":", 1)[0])
    return out


def info(client: redis.Redis, section: str) -> dict[str, Any]:
    return dict(client.info(section))


@pytest.fixture
def pair(
    node: NodeProcess, redis_servers: Callable[..., RedisServer], tmp_path: Path
) -> tuple[redis.Redis, redis.Redis]:
    server = redis_servers(tmp_path)
    return redis.Redis(port=server.port, decode_responses=True), node.client(decode_responses=True)


def test_every_field_redis_prints_is_printed_in_redis_order(pair: tuple[redis.Redis, redis.Redis]) -> None:
    reference, ours = (fields(client) for client in pair)
    for section, names in reference.items():
        if section in VARIABLE:
            continue
        assert section in ours, section
        absent = ABSENT.get(section, {})
        missing = [name for name in names if name not in ours[section] and name not in absent]
        assert missing == [], f"{section}: Redis prints {missing}"
        printed = [name for name in absent if name in ours[section]]
        assert printed == [], f"{section}: printed now, take out of ABSENT: {printed}"
        extra = [name for name in ours[section] if name not in names and name not in EXTRA.get(section, ())]
        assert extra == [], f"{section}: not Redis's: {extra}"
        common = [name for name in names if name in ours[section]]
        assert [name for name in ours[section] if name in names] == common, f"{section}: order"


def test_reads_and_writes_processed_count_as_redis_counts(pair: tuple[redis.Redis, redis.Redis]) -> None:
    deltas = []
    for client in pair:
        client.ping()  # connected, and nothing else pending
        before = info(client, "stats")
        for _ in range(10):
            client.ping()
        after = info(client, "stats")
        deltas.append(
            tuple(after[name] - before[name] for name in ("total_reads_processed", "total_writes_processed"))
        )
    assert deltas[1] == deltas[0] == (11, 11)


def test_clients_in_timeout_table_counts_blocked_clients_with_a_timeout(
    pair: tuple[redis.Redis, redis.Redis],
) -> None:
    for client in pair:
        port = client.connection_pool.connection_kwargs["port"]
        blockers = [redis.Redis(port=port) for _ in range(2)]
        threads = [
            threading.Thread(target=blocker.blpop, args=(["nothing"], timeout), daemon=True)
            for blocker, timeout in zip(blockers, (30, 0), strict=True)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda c=client: info(c, "clients")["blocked_clients"] == 2, what="two clients blocked")
        assert info(client, "clients")["clients_in_timeout_table"] == 1
        client.lpush("nothing", "a", "b")
        for thread in threads:
            thread.join(timeout=10)
        assert info(client, "clients")["clients_in_timeout_table"] == 0
        for blocker in blockers:
            blocker.close()


def test_avg_ttl_and_the_expire_cycles_figures(node: NodeProcess) -> None:
    r = node.client(decode_responses=True)
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    with r.pipeline(transaction=False) as pipe:
        for index in range(500):
            pipe.set(f"long:{index}", "v", ex=1000)
            pipe.set(f"short:{index}", "v", px=1)
        pipe.execute()
    wait_for(
        lambda: all(r.pttl(f"short:{index}") == -2 for index in range(0, 500, 50)), what="short keys due"
    )
    assert info(r, "keyspace")["db0"]["avg_ttl"] == 0  # no cycle has sampled yet
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    wait_for(lambda: r.dbsize() == 500, what="the active cycle to delete the 500 short keys")
    stats = info(r, "stats")
    assert 0 < stats["expired_stale_perc"] <= 100
    assert stats["expire_cycle_cpu_milliseconds"] >= 0 and stats["expired_time_cap_reached_count"] >= 0
    # The sampled TTLs are the long keys': about 1000 s, in milliseconds.
    avg_ttl = wait_for(lambda: info(r, "keyspace")["db0"]["avg_ttl"], what="avg_ttl")
    assert 900_000 < avg_ttl <= 1_000_000
    r.config_resetstat()
    assert info(r, "stats")["expired_stale_perc"] == 0
    r.flushall()
    wait_for(lambda: "db0" not in info(r, "keyspace"), what="an empty keyspace")


def test_eviction_exceeded_time_runs_while_over_maxmemory(node: NodeProcess) -> None:
    r = node.client(decode_responses=True)
    r.config_set("maxmemory", "1mb")
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        for index in range(10_000):
            r.set(f"key:{index}", "x" * 1000)
    stats = wait_for(
        lambda: (lambda s: s if s["current_eviction_exceeded_time"] >= 20 else None)(info(r, "stats")),
        what="20 ms over maxmemory",
    )
    assert stats["total_eviction_exceeded_time"] >= stats["current_eviction_exceeded_time"]
    r.flushall()
    stats = info(r, "stats")
    assert stats["current_eviction_exceeded_time"] == 0 and stats["total_eviction_exceeded_time"] >= 20
    r.config_set("maxmemory", "0")


def test_memory_and_cpu_fields_hold_together(pair: tuple[redis.Redis, redis.Redis]) -> None:
    reference, ours = pair
    ours.function_load("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
    memory = info(ours, "memory")
    assert memory["number_of_libraries"] == 1 and memory["number_of_functions"] == 1
    assert memory["mem_fragmentation_bytes"] == memory["used_memory_rss"] - memory["used_memory"]
    assert memory["used_memory_overhead"] == memory["used_memory"] - memory["used_memory_dataset"]
    assert memory["total_system_memory_human"].endswith(("M", "G", "T"))
    cpu = info(ours, "cpu")
    # Linux splits each figure into user and system time by scaling, per thread and per process apart, so only
    # their sums compare (the thread's is read first: the process's can only be larger).
    main_thread_s = cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]
    assert 0 < main_thread_s <= cpu["used_cpu_user"] + cpu["used_cpu_sys"] + 0.001
    # Both clocks are seconds on 24 bits (Redis's is cached once per cron tick).
    clocks = [info(client, "server")["lru_clock"] for client in (reference, ours)]
    assert abs(clocks[0] - clocks[1]) <= 2


def test_activedefrag_is_refused_as_redis_without_jemalloc_refuses_it(
    pair: tuple[redis.Redis, redis.Redis],
) -> None:
    messages = []
    for client in pair:
        with pytest.raises(redis.ResponseError) as caught:
            client.config_set("activedefrag", "yes")
        messages.append(str(caught.value))
        assert client.config_set("activedefrag", "no") is True
    assert messages[1] == messages[0]


def test_instantaneous_kbps_follow_the_traffic(node: NodeProcess) -> None:
    r = node.client(decode_responses=True)
    payload = "x" * 10_000
    deadline = time.monotonic() + 10
    stats: dict[str, Any] = {}
    # ~1 MB each way per round: the 1.6 s window sees at least tens of KB/s.
    while time.monotonic() < deadline:
        for _ in range(100):
            r.echo(payload)
        stats = info(r, "stats")
        if stats["instantaneous_input_kbps"] > 10 and stats["instantaneous_output_kbps"] > 10:
            break
    assert stats["instantaneous_input_kbps"] > 10 and stats["instantaneous_output_kbps"] > 10, stats


def test_memory_stats_and_doctor_are_redis(pair: tuple[redis.Redis, redis.Redis]) -> None:
    names = []
    for client in pair:
        stats = client.execute_command("MEMORY", "STATS")
        if isinstance(stats, list):
            stats = dict(zip(stats[::2], stats[1::2], strict=True))
        names.append([name for name in stats if not str(name).startswith("db.")])
    assert names[1] == names[0]
    # An empty instance: Redis's "empty" report, word for word (under 5 MB of used memory).
    doctors = [client.execute_command("MEMORY", "DOCTOR") for client in pair]
    assert doctors[1] == doctors[0]


def test_replication_buffers_grow_behind_a_stalled_replica_and_tracked_keys_count(
    node_factory: Callable[..., NodeProcess],
) -> None:
    """mem_total_replication_buffers grows while a replica is stopped (Redis's own shutdown tests wait on it
    to know the replica's link is full) and comes back once it caught up; slave_expires_tracked_keys counts a
    writable replica's own keys with a TTL."""
    master = node_factory("master", repl_backlog_size="1mb")
    replica = node_factory("replica", replicaof=f"127.0.0.1 {master.port}", replica_read_only="no")
    m, r = master.client(), replica.client()
    wait_for(lambda: r.info("replication")["master_link_status"] == "up", 20, what="the link")
    replica.signal(signal.SIGSTOP)
    try:
        payload = "x" * 1024
        for batch in range(4):
            pipe = m.pipeline(transaction=False)
            for i in range(1024):
                pipe.set(f"k:{batch}:{i}", payload)
            pipe.execute()
        assert info(m, "memory")["mem_total_replication_buffers"] > 3 * 1024 * 1024
    finally:
        replica.signal(signal.SIGCONT)
    wait_for(
        lambda: info(m, "memory")["mem_total_replication_buffers"] <= 1024 * 1024,
        20,
        what="the buffers to shrink back to the backlog",
    )
    r.set("own", "1", ex=100)
    r.set("plain", "1")
    assert info(r, "stats")["slave_expires_tracked_keys"] == 1
    assert info(m, "stats")["slave_expires_tracked_keys"] == 0
