"""The hidden ``key-load-delay`` test knob (Redis 7.0's): each key an RDB load or AOF replay brings in takes that
many microseconds longer, and the node answers -LOADING meanwhile (Redis's own sentinel and persistence units
use it to catch a node mid-load). Also: both it and ``loading-process-events-interval-bytes`` are hidden from
``CONFIG GET *`` and shown when named, as redis-server shows them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.harness import PROBE_RETRY, NodeProcess, RedisServer, wait_for

HIDDEN = ("key-load-delay", "loading-process-events-interval-bytes")


def loading_field(node: NodeProcess, name: str) -> str:
    return str(node.client().info("persistence")[name])


def restart_and_time_the_load(node: NodeProcess) -> float:
    node.stop()
    started = time.monotonic()
    node.start(wait=False)
    # No retries: redis-py's default retries -LOADING (a ConnectionError) until the load is over.
    client = redis.Redis(port=node.port, socket_timeout=5, retry=PROBE_RETRY)

    def loading() -> bool:
        try:
            client.ping()
            return False
        except redis.BusyLoadingError:
            return True
        except redis.ConnectionError:
            return False  # not listening yet

    wait_for(loading, 15, interval_s=0.01, what="the node to answer -LOADING")
    percents = []
    deadline = time.monotonic() + 30
    while True:  # poll (bounded) until PING answers, sampling INFO's progress meanwhile
        assert time.monotonic() < deadline, "the load did not end within 30 s"
        try:
            client.ping()
            break
        except redis.BusyLoadingError:
            # (INFO is served while loading; the field is gone if the load ended since that PING)
            perc = client.info("persistence").get("loading_loaded_perc")
            if perc is not None:
                percents.append(float(perc))
            time.sleep(0.2)  # the polling interval
    client.close()
    assert percents == sorted(percents) and len(set(percents)) > 1, percents  # the progress walks forward
    return time.monotonic() - started


def test_an_rdb_load_takes_the_delay_per_key(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("rdb")
    node.client().execute_command("DEBUG", "POPULATE", 1000)
    node.client().config_set("key-load-delay", 2000)  # 1000 keys x 2 ms: at least 2 s
    node.client().save()
    node.directives["key-load-delay"] = 2000
    assert restart_and_time_the_load(node) >= 2.0
    assert node.client().dbsize() == 1000


def test_an_aof_replay_takes_the_delay_per_command(node_factory: Callable[..., NodeProcess]) -> None:
    node = node_factory("aof", appendonly="yes", aof_use_rdb_preamble="no")
    pipe = node.client().pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"k{i}", i)
    pipe.execute()
    node.directives["key-load-delay"] = 4000  # 500 commands x 4 ms: at least 2 s
    assert restart_and_time_the_load(node) >= 2.0
    assert node.client().dbsize() == 500


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_knobs_are_hidden_as_in_redis(node_factory: Callable[..., NodeProcess], tmp_path: Path) -> None:
    node = node_factory("n")  # (first: node_factory stops it whatever happens next)
    (tmp_path / "redis").mkdir()
    reference = RedisServer(tmp_path / "redis")
    try:
        for client in (reference.client, node.client()):
            listed = client.config_get("*")
            assert not any(name in listed for name in HIDDEN)
        for name in HIDDEN:
            assert node.client().config_get(name) == reference.client.config_get(name)
        for value in ("-50", "0", "abc"):
            outcomes = []
            for client in (reference.client, node.client()):
                try:
                    outcomes.append(client.config_set("key-load-delay", value))
                except redis.ResponseError as exc:
                    outcomes.append(str(exc))
            assert outcomes[0] == outcomes[1]
    finally:
        reference.stop()
