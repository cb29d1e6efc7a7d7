"""INFO persistence's view of a running BGSAVE child (Redis 7.0's child info): ``current_save_keys_total`` and
``current_save_keys_processed``, ``current_fork_perc``, ``current_cow_size`` (and its peak and age), reported
by the child about once a second, zero again once it is gone. The same checks run on redis-server first, so
what is asserted is what Redis does (the sizes themselves differ: Python objects are not Redis's)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import NodeProcess, RedisServer, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

KEYS = 6000
# Each key written takes 0.5 ms longer: the BGSAVE runs ~3 s, long enough for a few reports a second apart.
SAVE_DELAY_US = 500


def persistence(client: redis.Redis) -> dict[str, Any]:
    return dict(client.info("persistence"))


def watch_a_bgsave(client: redis.Redis) -> None:
    client.execute_command("DEBUG", "POPULATE", KEYS, "key", 500)
    client.config_set("rdb-key-save-delay", SAVE_DELAY_US)
    before = persistence(client)
    assert (before["current_save_keys_total"], before["current_fork_perc"], before["current_cow_size"]) == (
        0,
        0.0,
        0,
    )
    client.bgsave()
    assert persistence(client)["current_save_keys_total"] == KEYS
    seen: list[dict[str, Any]] = []

    def reported_twice() -> bool:
        # Writes while the child runs: the pages they touch are copied (copy-on-write grows).
        for i in range(32):
            client.setrange(f"key:{len(seen) * 32 + i}", 0, "B" * 500)
        info = persistence(client)
        assert info["rdb_bgsave_in_progress"] == 1, "the save ended before two reports"
        if info["current_save_keys_processed"] and (
            not seen or info["current_save_keys_processed"] > seen[-1]["current_save_keys_processed"]
        ):
            seen.append(info)
        return len(seen) >= 2

    wait_for(reported_twice, 10, interval_s=0.05, what="two reports from the BGSAVE child")
    for info in seen:
        assert 0 < info["current_save_keys_processed"] < KEYS
        assert 0 < info["current_fork_perc"] < 100
        assert info["current_cow_size"] > 0 and info["current_cow_peak"] >= info["current_cow_size"]
        assert info["current_cow_size_age"] <= 1
    assert seen[1]["current_fork_perc"] > seen[0]["current_fork_perc"]
    wait_for(lambda: persistence(client)["rdb_bgsave_in_progress"] == 0, 20, what="the BGSAVE to end")
    after = persistence(client)
    assert after["rdb_last_bgsave_status"] == "ok"
    assert after["rdb_last_cow_size"] > 0
    assert (
        after["current_save_keys_total"],
        after["current_save_keys_processed"],
        after["current_cow_size"],
    ) == (
        0,
        0,
        0,
    )


def test_bgsave_child_info_as_redis(node_factory: Callable[..., NodeProcess], tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    reference = RedisServer(tmp_path / "redis")
    try:
        watch_a_bgsave(reference.client)
    finally:
        reference.stop()
    watch_a_bgsave(node_factory("n").client())
