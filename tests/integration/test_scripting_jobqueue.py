"""A Lua-heavy job queue against a node, unchanged: Dramatiq's Redis broker (every enqueue, fetch, ack, nack
and requeue is its dispatch.lua script) runs its documented quick start, worker in process."""

from __future__ import annotations

import threading

import pytest

from tests.harness import NodeProcess
from tests.integration.shared import module_node_fixture

dramatiq = pytest.importorskip("dramatiq")
redis_brokers = pytest.importorskip("dramatiq.brokers.redis")

node = module_node_fixture()


def test_dramatiq_quick_start_runs_on_a_node(node: NodeProcess) -> None:
    broker = redis_brokers.RedisBroker(host="127.0.0.1", port=node.port)
    dramatiq.set_broker(broker)
    seen: list[int] = []
    lock = threading.Lock()

    @dramatiq.actor(max_retries=0)
    def count_words(text: str) -> None:
        with lock:
            seen.append(len(text.split()))

    @dramatiq.actor(max_retries=0)
    def fails(text: str) -> None:
        raise ValueError(text)

    for i in range(50):
        count_words.send(" ".join(["word"] * (i % 7 + 1)))
    fails.send("on purpose")
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        broker.join(count_words.queue_name, timeout=60_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert sorted(seen) == sorted(i % 7 + 1 for i in range(50))
    # The failed message went to the dead-letter queue, as on redis-server.
    client = node.client()
    assert client.zcard(f"dramatiq:{fails.queue_name}.XQ") == 1
    assert client.hlen(f"dramatiq:{fails.queue_name}.msgs") == 0
