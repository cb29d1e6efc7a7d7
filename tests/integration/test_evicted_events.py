"""Evictions publish the ``evicted`` keyspace event (class ``e``), as Redis's performEvictions does, and
invalidate tracked keys."""

from __future__ import annotations

from collections.abc import Callable

import redis

from tests.harness import NodeProcess, wait_for


def test_an_eviction_publishes_evicted_for_each_evicted_key(
    node_factory: Callable[..., NodeProcess],
) -> None:
    node = node_factory("cache", maxmemory="2mb", maxmemory_policy="allkeys-random")
    r = node.client()
    r.config_set("notify-keyspace-events", "Ee")
    sub = redis.Redis(port=node.port).pubsub()
    sub.subscribe("__keyevent@0__:evicted")
    wait_for(lambda: sub.get_message(timeout=0.1) is not None, 10, what="the subscribe confirmation")
    for i in range(400):  # 400 x 10 KB: well past 2 MB
        r.set(f"k{i}", b"x" * 10_000)
    assert r.info("stats")["evicted_keys"] > 0
    seen: set[bytes] = set()

    def got_events() -> bool:
        while (message := sub.get_message(timeout=0.1)) is not None:
            if message["type"] == "message":
                seen.add(message["data"])
        return len(seen) >= r.info("stats")["evicted_keys"]

    wait_for(got_events, 10, what="an evicted event per evicted key")
    assert all(key.startswith(b"k") for key in seen)
    assert not any(r.exists(key) for key in seen)
    sub.close()
